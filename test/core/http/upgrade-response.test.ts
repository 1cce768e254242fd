// Reading an upgrade's answer (core/http/upgrade-response): heads found
// however the bytes are split, bounded and strictly parsed, the 101 checked
// against the requested protocol, 1xx counted, and a refusal's body end found
// for Content-Length, chunked and read-until-close framing.
import t from 'tap'
import { refusedResponse, UpgradeResponse, UpstreamHeadError } from '@sluice/core/http/upgrade-response'

/** Feeds `text` in pieces of `step` bytes; returns the steps seen (errors as "error: <message>"). */
function feed(text: string, step: number, max = 4096, protocol = 'websocket'): { steps: string[]; r: UpgradeResponse } {
  const r = new UpgradeResponse(max, protocol)
  const steps: string[] = []
  const buf = Buffer.from(text, 'latin1')
  try {
    for (let i = 0; i < buf.length; i += step) {
      r.append(buf.subarray(i, i + step))
      for (let s = r.next(); s !== 'more'; s = r.next()) {
        steps.push(s)
        if (s !== 'interim') return { steps, r }
      }
    }
  } catch (err) {
    if (!(err instanceof UpstreamHeadError)) throw err
    steps.push(`error: ${err.message}`)
  }
  return { steps, r }
}

const SWITCH = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n'

t.test('a 101 naming the protocol switches, split at every byte too; what follows is tunnel data', async (t) => {
  for (const step of [1, 7, 1000]) {
    const { steps, r } = feed(`HTTP/1.1 100 Continue\r\n\r\n${SWITCH}frame`, step)
    t.same(steps, ['interim', 'switched'], `step ${step}`)
    t.equal(r.head!.raw.toString('latin1'), SWITCH)
    // In small pieces the head is complete before the tunnel bytes arrive.
    if (step === 1000) t.equal(r.rest().toString(), 'frame')
  }
  t.same(feed('HTTP/1.1 101 OK\nconnection: keep-alive, upgrade\nupgrade: websocket\n\n', 1000).steps, ['switched'], 'LF-only lines, token lists')
})

t.test('a 101 that does not name the requested protocol is a 502', async (t) => {
  t.same(feed('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n', 1000).steps,
    ['error: backend tried to switch protocol "h2c" when "websocket" was requested'])
  t.same(feed('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n', 1000).steps,
    ['error: backend tried to switch protocol "websocket" when "websocket" was requested'], 'no Connection: upgrade (Go reads that as no protocol)')
})

t.test('more than five 1xx answers are a 502', async (t) => {
  const steps = feed('HTTP/1.1 103 Early Hints\r\n\r\n'.repeat(6), 1000).steps
  t.same(steps, ['interim', 'interim', 'interim', 'interim', 'interim', 'error: net/http: too many 1xx informational responses'])
})

t.test('heads beyond the limit, whole or unfinished, are a 502', async (t) => {
  const msg = 'error: net/http: server response headers exceeded 1024 bytes; aborted'
  t.same(feed(`HTTP/1.1 403 Forbidden\r\nX: ${'a'.repeat(2000)}\r\n\r\n`, 1000, 1024).steps, [msg])
  t.same(feed(`HTTP/1.1 403 Forbidden\r\nX: ${'a'.repeat(2000)}`, 100, 1024).steps, [msg], 'never ending')
  t.same(feed(`HTTP/1.1 403 Forbidden\r\nX: ${'a'.repeat(900)}\r\n\r\n`, 1, 1024).steps, ['refused'], 'within it')
})

t.test('malformed heads are a 502, never relayed', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['HTTP/2.0 200 OK\r\n\r\n', /^error: malformed HTTP response "HTTP\/2.0 200 OK"$/],
    ['garbage\r\n\r\n', /malformed HTTP response/],
    ['HTTP/1.1 20 OK\r\n\r\n', /malformed HTTP response/],
    ['HTTP/1.1 099 Low\r\n\r\n', /malformed HTTP status code "099"/],
    ['HTTP/1.1 403 Forbidden\r\nBad Name: x\r\n\r\n', /malformed MIME header line/],
    ['HTTP/1.1 403 Forbidden\r\nX: a\r\n folded\r\n\r\n', /malformed MIME header line/],
    ['HTTP/1.1 403 Forbidden\r\nX: a\rb\r\n\r\n', /malformed MIME header line/],
    ['HTTP/1.1 403 Forbidden\r\nNoColon\r\n\r\n', /malformed MIME header line/],
    ['HTTP/1.1 403 Forb\x00idden\r\n\r\n', /malformed HTTP response/],
  ]
  for (const [text, re] of bad) t.match(feed(text, 1000).steps, [re], JSON.stringify(text))
})

/** The refusal's head text and how many bytes of `body` belong to it (-1: until close). */
function refusal(head: string, body: string, headRequest = false): { head: string; taken: number; done: boolean } {
  const { r } = feed(head, 1000)
  const out = refusedResponse(r.head!, headRequest)
  if (out.body.untilClose) return { head: out.head, taken: -1, done: false }
  let taken = 0
  for (const b of Buffer.from(body, 'latin1')) taken += out.body.take(Buffer.from([b]))
  return { head: out.head, taken, done: out.body.done }
}

t.test('a refusal is relayed as HTTP/1.1, hop-by-hop headers (Connection, Keep-Alive, Upgrade, listed ones) dropped', async (t) => {
  const r = refusal('HTTP/1.0 403 Forbidden\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nUpgrade: websocket\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 3\r\n\r\n', 'abcMORE')
  t.equal(r.head, 'HTTP/1.1 403 Forbidden\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 3\r\n\r\n')
  t.same([r.taken, r.done], [3, true], 'the body ends at its Content-Length')
})

t.test('body framing: chunked (extensions, trailers), none, until close; bad framing is a 502', async (t) => {
  const chunked = refusal('HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n', '3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\nGET /second')
  t.same([chunked.taken, chunked.done], [38, true], 'ends after the trailer, nothing of what follows')
  t.notMatch(chunked.head, /content-length/i, 'Content-Length dropped next to chunked')
  t.same([refusal('HTTP/1.1 204 No Content\r\n\r\n', 'x').taken, refusal('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', 'x', true).taken], [0, 0], '204, HEAD')
  t.equal(refusal('HTTP/1.1 403 Forbidden\r\n\r\n', 'x').taken, -1, 'neither: until the upstream closes')
  t.equal(refusal('HTTP/1.0 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n', '').taken, -1, 'HTTP/1.0: Transfer-Encoding ignored, as Go')
  const bad: Array<[string, RegExp]> = [
    ['HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: gzip\r\n\r\n', /unsupported transfer encoding: "gzip"/],
    ['HTTP/1.1 403 Forbidden\r\nContent-Length: 1x\r\n\r\n', /bad Content-Length "1x"/],
    ['HTTP/1.1 403 Forbidden\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n', /multiple Content-Length/],
  ]
  for (const [text, re] of bad) t.throws(() => refusedResponse(feed(text, 1000).r.head!, false), re)
  for (const body of ['zz\r\n', '3\r\nabcX', '1234567890123\r\n']) {
    const b = refusedResponse(feed('HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n', 1000).r.head!, false).body
    t.throws(() => b.take(Buffer.from(body)), /malformed chunked encoding/, JSON.stringify(body))
  }
})
