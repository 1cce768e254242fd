// The kernel's connection table as waiting-uploads.ts reads it: a socket the
// process does not read is found by its key, ESTABLISHED while the client is
// there, CLOSE_WAIT after the client's FIN, gone after its RST; for IPv4,
// IPv4-mapped (a dual-stack listener) and IPv6 addresses.
import t, { type Test } from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { readTcpStates, TcpState, tcpFamily, tcpKey } from '@sluice/activator/net/tcp-table'
import { waitFor } from '../../helpers/request-path.ts'

interface Pair {
  client: net.Socket
  key: string
}

/** A connection whose accepted side is never read (pauseOnConnect). */
async function pair(t: Test, bind: string, host: string): Promise<Pair> {
  const server = net.createServer({ pauseOnConnect: true })
  const accepted: net.Socket[] = []
  server.on('connection', (s: net.Socket) => {
    s.on('error', () => {})
    accepted.push(s)
  })
  server.listen(0, bind)
  await once(server, 'listening')
  const client = net.connect((server.address() as net.AddressInfo).port, host)
  client.on('error', () => {})
  await once(client, 'connect')
  await waitFor(() => accepted.length === 1)
  const s = accepted[0]!
  t.teardown(() => {
    client.destroy()
    s.destroy()
    server.close()
  })
  return { client, key: tcpKey(s.localAddress, s.localPort, s.remoteAddress, s.remotePort) }
}

async function state(key: string): Promise<string | undefined> {
  return (await readTcpStates(tcpFamily(key), new Set([key]))).get(key)
}

/** The state once it is no longer `from` (the kernel handles the FIN or RST asynchronously). */
async function stateAfter(key: string, from: string | undefined): Promise<string | undefined> {
  const deadline = Date.now() + 2000
  let st = await state(key)
  while (st === from && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10))
    st = await state(key)
  }
  return st
}

for (const [bind, host, family] of [['127.0.0.1', '127.0.0.1', 'tcp'], ['::', '127.0.0.1', 'tcp6'], ['::1', '::1', 'tcp6']] as const) {
  t.test(`listener on ${bind}, client from ${host}: found in ${family}; CLOSE_WAIT after a FIN, gone after a RST`, async (t) => {
    const fin = await pair(t, bind, host)
    t.equal(tcpFamily(fin.key), family)
    t.equal(await state(fin.key), TcpState.established)
    fin.client.end()
    t.equal(await stateAfter(fin.key, TcpState.established), TcpState.closeWait)

    const rst = await pair(t, bind, host)
    t.equal(await state(rst.key), TcpState.established)
    rst.client.resetAndDestroy()
    t.equal(await stateAfter(rst.key, TcpState.established), undefined)
  })
}

t.test('an address it cannot name gives no key', async (t) => {
  t.equal(tcpKey(undefined, 1, '127.0.0.1', 2), '')
  t.equal(tcpKey('127.0.0.1', 1, 'not-an-ip', 2), '')
  t.equal(tcpKey('127.0.0.1', 80, '::1', 2), '', 'families differ')
  t.equal(tcpKey('127.0.0.1', 8012, '10.1.2.3', 40000), '0100007F:1F4C 0302010A:9C40')
  t.equal(tcpKey('2001:db8::1', 8012, '::ffff:10.1.2.3', 40000), 'B80D0120000000000000000001000000:1F4C 0000000000000000FFFF00000302010A:9C40')
})
