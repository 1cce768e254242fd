// system-internal-tls end to end (spec §1.16, §2.9): client → activator's TLS
// port → queue-proxy's TLS port → app, with certificates issued by a CA made
// in the test; a queue-proxy whose certificate another CA signed is refused
// (502, logged) and gets nothing in plain text; a rotation of the Secret and
// of the queue-proxy's certificate under steady traffic fails no request.
// The Secret is watched through the fake Kubernetes API and, when
// SLUICE_KUBE_APISERVER_BIN is set, a real kube-apiserver: every case runs on both.

import t, { type Test } from 'tap'
import http2 from 'node:http2'
import https from 'node:https'
import tls from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { h2Get } from '../../helpers/servers.ts'
import { kubeApis, type KubeApi } from '../../helpers/kube-apis.ts'
import { issue, makeCa } from './certs.ts'
import { REVISION, SERVER_NAME, startPair, type Pair } from './harness.ts'

const HOST = 'hello.default.example.com'
/** As the ingress sends them to the activator (revision identification, spec §2.5). */
const REVISION_HEADERS = { host: HOST, 'knative-serving-revision': REVISION, 'knative-serving-namespace': 'default' }

function get(port: number, ca: string | string[], path = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path, ca, servername: SERVER_NAME, headers: REVISION_HEADERS, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode!, body }))
    }).on('error', reject)
  })
}

/** The issuer CN of the certificate served on `port`. */
function servedIssuer(port: number, ca: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: SERVER_NAME }, () => {
      resolve(String(s.getPeerCertificate().issuer.CN))
      s.end()
    })
    s.on('error', reject)
  })
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

function generation(p: Pair): number {
  return p.activator.ctx.upstreams.tls?.generation ?? 0
}

for (const backend of await kubeApis(t)) {
  const test = (name: string, fn: (t: Test, api: KubeApi) => Promise<void>) =>
    t.test(`[${backend.name}] ${name}`, { skip: backend.skip }, async (t) => fn(t, await backend.use(t)))

  test('an HTTP/1.1 request goes over TLS on both hops', async (t, api) => {
    const ca = makeCa('ca-one')
    const p = await startPair(api, ca)
    t.teardown(() => p.stop())
    t.equal(generation(p), 1, 'certificates loaded from the Secret')
    const r = await get(p.httpsPort, ca.cert, '/one')
    t.same(r, { status: 200, body: 'app /one' })

    t.same(p.seen.filter((s) => !s.probe), [{ url: '/one', tls: true, probe: false }], 'the queue-proxy got it over its TLS port')
    t.ok(p.logs().some((l) => l.message === 'Knative Internal TLS is enabled'), 'start-up log says TLS is on')

    // A client that does not trust the CA is refused by the activator.
    await t.rejects(get(p.httpsPort, makeCa('stranger').cert), 'the activator serves the Secret\'s certificate')
  })

  test('HTTP/2 over TLS on both hops (h2 by ALPN), to an h2c app', async (t, api) => {
    const ca = makeCa('ca-h2')
    const p = await startPair(api, ca, ca, { h2cApp: true })
    t.teardown(() => p.stop())
    const session = http2.connect(`https://127.0.0.1:${p.httpsPort}`, { ca: ca.cert, servername: SERVER_NAME })
    t.teardown(() => session.close())
    const h2 = await h2Get(session, '/two', { ':authority': HOST, 'knative-serving-revision': REVISION, 'knative-serving-namespace': 'default' })
    t.same(h2, { status: 200, body: 'app /two' })

    t.same(p.seen.filter((s) => !s.probe), [{ url: '/two', tls: true, probe: false }], 'the queue-proxy got it over its TLS port')
  })

  test('a queue-proxy whose certificate another CA signed: 502, logged, nothing sent', async (t, api) => {
    const ca = makeCa('ca-trusted')
    const p = await startPair(api, ca, makeCa('ca-other'))
    t.teardown(() => p.stop())
    const r = await get(p.httpsPort, ca.cert, '/secret')
    t.equal(r.status, 502)
    t.match(r.body, /refused queue-proxy 127\.0\.0\.1:\d+: certificate did not verify/)
    t.same(p.seen.filter((s) => !s.probe), [], 'the queue-proxy received no request, plain or TLS')
    const err = p.logs().find((l) => l.message === 'error reverse proxying request')
    t.ok(err, 'the refusal is logged')
    t.match(String(err?.err), /internal TLS: refused queue-proxy .*certificate/)
  })

  test('a certificate without the namespace SAN is refused', async (t, api) => {
    const ca = makeCa('ca-san')
    const p = await startPair(api, ca)
    t.teardown(() => p.stop())
    // Same CA, but issued for another namespace.
    p.setQueueCert(issue(ca, 'queue-proxy', ['kn-user-elsewhere', SERVER_NAME]))
    await sleep(1000) // the queue-proxy's reload poll runs every 100 ms here
    const r = await get(p.httpsPort, ca.cert, '/x')
    t.equal(r.status, 502)
    t.match(r.body, /san "kn-user-default" does not have a matching name/)
    t.same(p.seen.filter((s) => !s.probe), [])
  })

  test('rotating the CA and every certificate under steady traffic fails no request', async (t, api) => {
    const ca1 = makeCa('ca-old')
    const ca2 = makeCa('ca-new')
    const p = await startPair(api, ca1)
    t.teardown(() => p.stop())
    const trust = [ca1.cert, ca2.cert]
    let ok = 0
    const failures: string[] = []
    let running = true
    const worker = async (): Promise<void> => {
      while (running) {
        try {
          const r = await get(p.httpsPort, trust, '/steady')
          if (r.status === 200) ok++
          else failures.push(`${r.status} ${r.body}`)
        } catch (err) {
          failures.push(String(err))
        }
      }
    }
    const workers = Array.from({ length: 4 }, worker)
    await until('traffic', () => ok >= 20)

    // 1. The Secret publishes both CAs (the activator now trusts either).
    await p.setSecret(ca1.cert + ca2.cert, issue(ca1, 'activator', ['kn-routing', SERVER_NAME]))
    await until('the CA bundle', () => generation(p) === 2)
    let before = ok
    await until('traffic after step 1', () => ok >= before + 20)
    // 2. The queue-proxy's certificate is re-issued by the new CA.
    p.setQueueCert(issue(ca2, 'queue-proxy', ['kn-user-default', SERVER_NAME]))
    await sleep(1000) // the queue-proxy's reload poll runs every 100 ms here
    before = ok
    await until('traffic after step 2', () => ok >= before + 20)
    // 3. The Secret drops the old CA and carries a certificate of the new one.
    await p.setSecret(ca2.cert, issue(ca2, 'activator', ['kn-routing', SERVER_NAME]))
    await until('the new CA only', () => generation(p) === 3)
    before = ok
    await until('traffic after step 3', () => ok >= before + 20)
    running = false
    await Promise.all(workers)

    t.same(failures, [], 'no request failed')
    t.ok(ok >= 80, `requests kept flowing (${ok})`)
    t.equal(await servedIssuer(p.httpsPort, trust), 'ca-new', 'the activator serves the new certificate')
    t.ok(p.seen.filter((s) => !s.probe).every((s) => s.tls), 'every proxied request went over TLS')
    t.ok(p.logs().filter((l) => l.message === 'internal TLS certificates loaded').length >= 3, 'each Secret change is logged')
  })

  test('an upgrade (websocket-style tunnel) goes over TLS on both hops', async (t, api) => {
    const ca = makeCa('ca-upgrade')
    const p = await startPair(api, ca)
    t.teardown(() => p.stop())
    const echoed = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: p.httpsPort, ca: ca.cert, servername: SERVER_NAME, ALPNProtocols: ['http/1.1'] }, () => {
        s.write(`GET /ws HTTP/1.1\r\nhost: ${HOST}\r\nknative-serving-revision: ${REVISION}\r\nknative-serving-namespace: default\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n`)
      })
      let got = ''
      let sent = false
      s.setEncoding('utf8').on('data', (d: string) => {
        got += d
        if (!sent && got.includes('\r\n\r\n')) {
          sent = true
          s.write('ping over tls')
        }
        if (got.endsWith('ping over tls')) {
          s.end()
          resolve(got)
        }
      })
      s.on('error', reject)
    })
    t.match(echoed, /^HTTP\/1\.1 101 /)
    t.ok(echoed.endsWith('ping over tls'), 'the tunnel carries data both ways')
    t.same(p.seen.filter((s) => !s.probe), [{ url: '/ws', tls: true, probe: false }], 'the queue-proxy got the upgrade over its TLS port')
  })

  test('an upgrade to a queue-proxy with a certificate of another CA: 502, nothing sent', async (t, api) => {
    const ca = makeCa('ca-upgrade-trusted')
    const p = await startPair(api, ca, makeCa('ca-upgrade-other'))
    t.teardown(() => p.stop())
    const head = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: p.httpsPort, ca: ca.cert, servername: SERVER_NAME, ALPNProtocols: ['http/1.1'] }, () => {
        s.write(`GET /ws HTTP/1.1\r\nhost: ${HOST}\r\nknative-serving-revision: ${REVISION}\r\nknative-serving-namespace: default\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n`)
      })
      let got = ''
      s.setEncoding('utf8').on('data', (d: string) => { got += d })
      s.on('end', () => resolve(got))
      s.on('close', () => resolve(got))
      s.on('error', reject)
    })
    t.match(head, /^HTTP\/1\.1 502 /)
    t.same(p.seen.filter((s) => !s.probe), [], 'the queue-proxy received nothing')
  })

  test('no Secret yet: 502 with a clear error; served once the Secret appears', async (t, api) => {
    const ca = makeCa('ca-late')
    const p = await startPair(api, ca, ca, { secret: false })
    t.teardown(() => p.stop())
    t.ok(p.logs().some((l) => l.message === 'internal TLS: Secret not found; TLS serving and dialling fail until it appears'), 'logged at start')
    // Nothing to serve TLS with yet: the handshake fails.
    await t.rejects(get(p.httpsPort, ca.cert, '/early'))
    await p.setSecret(ca.cert, p.routing)
    await until('the Secret', () => generation(p) === 1)
    t.same(await get(p.httpsPort, ca.cert, '/late'), { status: 200, body: 'app /late' })
  })

  test('a Secret update that does not parse keeps the previous certificates', async (t, api) => {
    const ca = makeCa('ca-keep')
    const p = await startPair(api, ca)
    t.teardown(() => p.stop())
    await p.setSecret('not a certificate', p.routing)
    await until('the warning', () => p.logs().some((l) => String(l.message).startsWith('internal TLS: failed to parse')))
    t.equal(generation(p), 1, 'still the first set')
    t.same(await get(p.httpsPort, ca.cert, '/kept'), { status: 200, body: 'app /kept' })
  })
}
