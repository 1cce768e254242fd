import t from 'tap'
import {
  decodeStat,
  decodeWireStatMessages,
  emptyStat,
  encodeStat,
  encodeWireStatMessages,
  ProtoDecodeError,
  type Stat,
} from '@sluice/core/stat-proto'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function fullStat(podName: string): Stat {
  return {
    podName,
    averageConcurrentRequests: 3.5,
    averageProxiedConcurrentRequests: 1.25,
    requestCount: 7,
    proxiedRequestCount: 2,
    processUptime: 123.456,
    timestamp: 1_700_000_000,
  }
}

t.test('spec §3.1 example: pod_name "p", request_count 1.0 is byte-exact', (t) => {
  const s = { ...emptyStat('p'), requestCount: 1 }
  t.equal(hex(encodeStat(s)), '0a017021000000000000f03f')
  t.end()
})

t.test('a stat with only podName is just field 1 (zero values omitted)', (t) => {
  t.equal(hex(encodeStat(emptyStat('pod-1'))), '0a05' + Buffer.from('pod-1').toString('hex'))
  t.equal(encodeStat(emptyStat()).length, 0, 'all-zero stat encodes to nothing')
  t.end()
})

t.test('fields are written in ascending order with the right tag bytes', (t) => {
  const b = encodeStat(fullStat('p'))
  // 0a 01 70 | 11 + 8 | 19 + 8 | 21 + 8 | 29 + 8 | 31 + 8 | 38 varint
  const tags = [b[0], b[3], b[12], b[21], b[30], b[39], b[48]]
  t.same(tags, [0x0a, 0x11, 0x19, 0x21, 0x29, 0x31, 0x38])
  t.equal(b.readDoubleLE(4), 3.5, 'doubles are little-endian IEEE-754')
  t.end()
})

t.test('all fields round-trip through decodeStat', (t) => {
  const s = fullStat('activator-7d9f-xyz')
  t.same(decodeStat(encodeStat(s)), s)
  const odd: Stat = { ...s, averageConcurrentRequests: -0.1, processUptime: 1e-300, requestCount: Number.MAX_VALUE }
  t.same(decodeStat(encodeStat(odd)), odd)
  t.same(decodeStat(new Uint8Array(0)), emptyStat(), 'empty input is the zero stat')
  t.end()
})

t.test('pod names with multi-byte UTF-8 round-trip and use the byte length', (t) => {
  const s = emptyStat('pöd-ü')
  const b = encodeStat(s)
  t.equal(b[1], Buffer.byteLength('pöd-ü'))
  t.equal(decodeStat(b).podName, 'pöd-ü')
  t.end()
})

t.test('timestamp is a varint: small, large unix seconds, negative', (t) => {
  t.equal(hex(encodeStat({ ...emptyStat(), timestamp: 1 })), '3801')
  t.equal(hex(encodeStat({ ...emptyStat(), timestamp: 300 })), '38ac02')
  // 1700000000 = 0x6553f100 -> 5 varint bytes
  t.equal(hex(encodeStat({ ...emptyStat(), timestamp: 1_700_000_000 })), '3880e2cfaa06')
  for (const ts of [1_700_000_000, 2 ** 32 + 5, 253_402_300_799, Number.MAX_SAFE_INTEGER, -1, -1_700_000_000]) {
    t.equal(decodeStat(encodeStat({ ...emptyStat(), timestamp: ts })).timestamp, ts, `timestamp ${ts}`)
  }
  // int64 -1 is ten bytes of two's complement.
  t.equal(encodeStat({ ...emptyStat(), timestamp: -1 }).length, 11)
  t.end()
})

t.test('WireStatMessages round trip with several messages and one without stat', (t) => {
  const msgs = [
    { namespace: 'ns1', name: 'rev-a', stat: fullStat('act-1') },
    { namespace: 'ns2', name: 'rev-b', stat: { ...emptyStat('act-1'), averageConcurrentRequests: 1, requestCount: 1 } },
    { namespace: 'ns3', name: 'rev-c', stat: undefined },
  ]
  const b = encodeWireStatMessages(msgs)
  t.equal(b[0], 0x0a, 'messages is field 1, length-delimited')
  t.same(decodeWireStatMessages(b), msgs)
  t.same(decodeWireStatMessages(encodeWireStatMessages([])), [], 'no messages encodes to nothing')
  t.end()
})

t.test('WireStatMessage layout: namespace 0x0A, name 0x12, stat 0x1A', (t) => {
  const b = encodeWireStatMessages([{ namespace: 'n', name: 'r', stat: { ...emptyStat('p'), requestCount: 1 } }])
  t.equal(hex(b), '0a14' + '0a016e' + '120172' + '1a0c' + '0a017021000000000000f03f')
  t.end()
})

t.test('unknown fields are skipped', (t) => {
  const known = encodeStat({ ...emptyStat('p'), requestCount: 1 })
  const unknown = Buffer.from([
    0x40, 0x96, 0x01, // field 8 varint 150
    0x49, 1, 2, 3, 4, 5, 6, 7, 8, // field 9 fixed64
    0x52, 0x02, 0x68, 0x69, // field 10 length-delimited "hi"
    0x5d, 1, 2, 3, 4, // field 11 fixed32
    0x10, 0x05, // field 2 with the wrong wire type (varint): skipped, not misread
  ])
  t.same(decodeStat(Buffer.concat([unknown, known, unknown])), { ...emptyStat('p'), requestCount: 1 })

  const wire = encodeWireStatMessages([{ namespace: 'n', name: 'r', stat: emptyStat('p') }])
  // Unknown field inside the message and at the top level.
  const inner = Buffer.concat([Buffer.from([0x20, 0x01]), wire.subarray(2)])
  const withUnknown = Buffer.concat([
    Buffer.from([0x12, 0x01, 0x00]), // top-level field 2
    Buffer.from([0x0a, inner.length]),
    inner,
  ])
  t.same(decodeWireStatMessages(withUnknown), [{ namespace: 'n', name: 'r', stat: emptyStat('p') }])
  t.end()
})

t.test('truncated input throws ProtoDecodeError', (t) => {
  const full = encodeStat(fullStat('pod'))
  // Every strict prefix that ends inside a field must fail; prefixes ending
  // exactly on a field boundary are valid shorter messages.
  const boundaries = new Set([0, 5, 14, 23, 32, 41, 50, full.length])
  for (let n = 1; n < full.length; n++) {
    if (boundaries.has(n)) continue
    t.throws(() => decodeStat(full.subarray(0, n)), ProtoDecodeError, `prefix of ${n} bytes`)
  }
  const wire = encodeWireStatMessages([{ namespace: 'n', name: 'r', stat: fullStat('p') }])
  t.throws(() => decodeWireStatMessages(wire.subarray(0, wire.length - 1)), ProtoDecodeError)
  t.throws(() => decodeStat(Buffer.from([0x38, 0x80])), ProtoDecodeError, 'varint cut mid-way')
  t.throws(() => decodeStat(Buffer.from([0x0a, 0x05, 0x61])), ProtoDecodeError, 'string longer than the input')
  t.throws(() => decodeStat(Buffer.from([0x49, 1, 2])), ProtoDecodeError, 'unknown fixed64 cut short')
  t.throws(() => decodeStat(Buffer.from([0x0b])), ProtoDecodeError, 'group wire type unsupported')
  const err = t.throws(() => decodeStat(Buffer.from([0x11, 0])))
  t.equal((err as Error).name, 'ProtoDecodeError')
  t.end()
})

t.test('decoding works on a subarray of a larger buffer', (t) => {
  const s = fullStat('pod-x')
  const enc = encodeStat(s)
  const big = Buffer.concat([Buffer.from([0xff, 0xff, 0xff]), enc, Buffer.from([0xff])])
  t.same(decodeStat(big.subarray(3, 3 + enc.length)), s)
  t.end()
})

t.test('a 253-char pod name with all fields set fits the scraper 336-byte limit', (t) => {
  const s = fullStat('a'.repeat(253))
  s.timestamp = Number.MAX_SAFE_INTEGER
  const b = encodeStat(s)
  t.ok(b.length <= 336, `${b.length} bytes`)
  t.same(decodeStat(b), s)
  t.end()
})
