// The OTLP trace messages a test collector needs, written out from the public
// opentelemetry-proto definitions (v1; field numbers as published there).
// Only the fields the tests read are listed: protobuf decoders skip the rest
// (events, links, dropped counts, schema URLs). Used for OTLP over HTTP
// (application/x-protobuf) and for the gRPC TraceService.
import protobuf from 'protobufjs'

const proto = `
syntax = "proto3";
package opentelemetry.proto;

message AnyValue {
  oneof value {
    string string_value = 1;
    bool bool_value = 2;
    int64 int_value = 3;
    double double_value = 4;
    ArrayValue array_value = 5;
    KeyValueList kvlist_value = 6;
    bytes bytes_value = 7;
  }
}
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue {
  string key = 1;
  AnyValue value = 2;
}
message InstrumentationScope {
  string name = 1;
  string version = 2;
}
message Resource { repeated KeyValue attributes = 1; }

message Status {
  enum StatusCode {
    STATUS_CODE_UNSET = 0;
    STATUS_CODE_OK = 1;
    STATUS_CODE_ERROR = 2;
  }
  string message = 2;
  StatusCode code = 3;
}
message Span {
  enum SpanKind {
    SPAN_KIND_UNSPECIFIED = 0;
    SPAN_KIND_INTERNAL = 1;
    SPAN_KIND_SERVER = 2;
    SPAN_KIND_CLIENT = 3;
    SPAN_KIND_PRODUCER = 4;
    SPAN_KIND_CONSUMER = 5;
  }
  bytes trace_id = 1;
  bytes span_id = 2;
  string trace_state = 3;
  bytes parent_span_id = 4;
  string name = 5;
  SpanKind kind = 6;
  fixed64 start_time_unix_nano = 7;
  fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9;
  Status status = 15;
  fixed32 flags = 16;
}
message ScopeSpans {
  InstrumentationScope scope = 1;
  repeated Span spans = 2;
}
message ResourceSpans {
  Resource resource = 1;
  repeated ScopeSpans scope_spans = 2;
}
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ExportTracePartialSuccess {
  int64 rejected_spans = 1;
  string error_message = 2;
}
message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
`

// The field names protobufjs gives the decoded objects (camelCase of the .proto).
export interface OtlpAnyValue {
  value?: 'stringValue' | 'boolValue' | 'intValue' | 'doubleValue' | 'arrayValue' | 'kvlistValue' | 'bytesValue'
  stringValue?: string
  boolValue?: boolean
  /** int64 as a decimal string (decoded with longs: String). */
  intValue?: string
  doubleValue?: number
  arrayValue?: { values?: OtlpAnyValue[] }
  kvlistValue?: { values?: OtlpKeyValue[] }
  bytesValue?: Uint8Array
}
export interface OtlpKeyValue {
  key: string
  value?: OtlpAnyValue
}
export interface OtlpSpan {
  traceId: Uint8Array
  spanId: Uint8Array
  parentSpanId?: Uint8Array
  name: string
  /** Enum name, e.g. SPAN_KIND_SERVER (decoded with enums: String). */
  kind?: string
  /** fixed64 nanoseconds as decimal strings. */
  startTimeUnixNano: string
  endTimeUnixNano: string
  attributes?: OtlpKeyValue[]
  status?: { message?: string; code?: string }
}
export interface OtlpExportRequest {
  resourceSpans?: {
    resource?: { attributes?: OtlpKeyValue[] }
    scopeSpans?: { scope?: { name?: string }; spans?: OtlpSpan[] }[]
  }[]
}

const root = protobuf.parse(proto, { keepCase: false }).root
const requestType = root.lookupType('opentelemetry.proto.ExportTraceServiceRequest')
const responseType = root.lookupType('opentelemetry.proto.ExportTraceServiceResponse')

/** Decodes an ExportTraceServiceRequest body into plain objects. */
export function decodeExportRequest(body: Uint8Array): OtlpExportRequest {
  const message = requestType.decode(body)
  return requestType.toObject(message, { longs: String, enums: String, oneofs: true }) as OtlpExportRequest
}

/** An ExportTraceServiceResponse: empty means every span was accepted. */
export function encodeExportResponse(rejectedSpans = 0, errorMessage = ''): Uint8Array {
  const partial = rejectedSpans === 0 && errorMessage === '' ? {} : { partialSuccess: { rejectedSpans, errorMessage } }
  return responseType.encode(responseType.fromObject(partial)).finish()
}

/** The gRPC method the OTLP exporter calls, with (de)serializers from the types above. */
export const traceServiceExport = {
  path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  requestStream: false,
  responseStream: false,
  requestSerialize: (value: Uint8Array): Buffer => Buffer.from(value),
  requestDeserialize: (bytes: Buffer): OtlpExportRequest => decodeExportRequest(bytes),
  responseSerialize: (value: Uint8Array): Buffer => Buffer.from(value),
  responseDeserialize: (bytes: Buffer): Uint8Array => bytes,
} as const

// OTLP/JSON (what @opentelemetry/exporter-trace-otlp-http sends): the same
// messages in proto3 JSON, except that trace and span ids are hex, enums are
// numbers and 64-bit integers may be strings or numbers.
const SPAN_KINDS = ['SPAN_KIND_UNSPECIFIED', 'SPAN_KIND_INTERNAL', 'SPAN_KIND_SERVER', 'SPAN_KIND_CLIENT', 'SPAN_KIND_PRODUCER', 'SPAN_KIND_CONSUMER']
const ANY_VALUE_FIELDS = ['stringValue', 'boolValue', 'intValue', 'doubleValue', 'arrayValue', 'kvlistValue', 'bytesValue'] as const

type Json = Record<string, unknown>

function jsonAnyValue(v: Json | undefined): OtlpAnyValue | undefined {
  if (v === undefined) return undefined
  const field = ANY_VALUE_FIELDS.find((f) => v[f] !== undefined)
  switch (field) {
    case undefined:
      return {}
    case 'intValue':
      return { value: field, intValue: String(v.intValue) }
    case 'bytesValue':
      return { value: field, bytesValue: Buffer.from(String(v.bytesValue), 'base64') }
    case 'arrayValue':
      return { value: field, arrayValue: { values: ((v.arrayValue as Json).values as Json[] | undefined ?? []).map((x) => jsonAnyValue(x) ?? {}) } }
    case 'kvlistValue':
      return { value: field, kvlistValue: { values: jsonKeyValues((v.kvlistValue as Json).values as Json[] | undefined) } }
    default:
      return { value: field, [field]: v[field] } as OtlpAnyValue
  }
}

function jsonKeyValues(list: Json[] | undefined): OtlpKeyValue[] {
  return (list ?? []).map((kv) => {
    const out: OtlpKeyValue = { key: String(kv.key) }
    const value = jsonAnyValue(kv.value as Json | undefined)
    if (value !== undefined) out.value = value
    return out
  })
}

/** Parses an OTLP/JSON ExportTraceServiceRequest into the shape decodeExportRequest returns. */
export function parseJsonExportRequest(body: string): OtlpExportRequest {
  const json = JSON.parse(body) as { resourceSpans?: Json[] }
  return {
    resourceSpans: (json.resourceSpans ?? []).map((rs) => ({
      resource: { attributes: jsonKeyValues((rs.resource as Json | undefined)?.attributes as Json[] | undefined) },
      scopeSpans: ((rs.scopeSpans as Json[] | undefined) ?? []).map((ss) => ({
        spans: ((ss.spans as Json[] | undefined) ?? []).map((s) => {
          const span: OtlpSpan = {
            traceId: Buffer.from(String(s.traceId ?? ''), 'hex'),
            spanId: Buffer.from(String(s.spanId ?? ''), 'hex'),
            parentSpanId: Buffer.from(String(s.parentSpanId ?? ''), 'hex'),
            name: String(s.name ?? ''),
            kind: SPAN_KINDS[Number(s.kind ?? 0)] ?? 'SPAN_KIND_UNSPECIFIED',
            startTimeUnixNano: String(s.startTimeUnixNano ?? 0),
            endTimeUnixNano: String(s.endTimeUnixNano ?? 0),
            attributes: jsonKeyValues(s.attributes as Json[] | undefined),
          }
          return span
        }),
      })),
    })),
  }
}
