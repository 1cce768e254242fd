import { once } from 'node:events'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import { TcpProbe, dialErrorText, joinHostPort } from '@sluice/queue-proxy/readiness/tcp-probe'

/** A port nothing listens on: bind one, then release it. */
async function closedPort(): Promise<number> {
  const srv = createServer().listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const { port } = srv.address() as AddressInfo
  srv.close()
  await once(srv, 'close')
  return port
}

t.test('passes when the port accepts a connection, and closes that connection', async (t) => {
  const srv = createServer()
  const accepted: Socket[] = []
  srv.on('connection', (s) => accepted.push(s))
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  t.teardown(() => srv.close())
  const { port } = srv.address() as AddressInfo

  await new TcpProbe({ host: '127.0.0.1', port }).run(1000)
  if (accepted.length === 0) await once(srv, 'connection')
  t.equal(accepted.length, 1, 'exactly one connection was opened')
  const sock = accepted[0]!
  sock.resume()
  if (!sock.readableEnded) await once(sock, 'end')
  t.pass('the probe closed its side of the connection')
  sock.destroy()
})

t.test('fails with a Go-style "connection refused" line when nothing listens', async (t) => {
  const port = await closedPort()
  await t.rejects(new TcpProbe({ host: '127.0.0.1', port }).run(1000), {
    message: `dial tcp 127.0.0.1:${port}: connect: connection refused`,
  })
})

t.test('joinHostPort brackets IPv6 hosts', async (t) => {
  t.equal(joinHostPort('127.0.0.1', 80), '127.0.0.1:80')
  t.equal(joinHostPort('::1', 80), '[::1]:80')
})

t.test('dialErrorText maps connect errors and leaves others alone', async (t) => {
  t.equal(dialErrorText(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), 'h:1'), 'dial tcp h:1: connect: connection refused')
  t.equal(dialErrorText(Object.assign(new Error('x'), { code: 'ETIMEDOUT' }), 'h:1'), 'dial tcp h:1: i/o timeout')
  t.equal(dialErrorText(Object.assign(new Error('x'), { code: 'EPIPE' }), 'h:1'), undefined)
})
