// Node built-ins whose ESM import costs more than the module itself.
//
// `import http from 'node:http'` builds an ES module facade that reads every
// export, and node:http's lazy WebSocket/CloseEvent/MessageEvent getters then
// load Node's bundled undici with crypto, tls and http2: ~75 internal modules
// and ~10 MiB of resident memory per process (measured: a bare node:http
// server is 61 MiB resident imported that way, 50 MiB through
// process.getBuiltinModule). Types still come from `import type`.

import type http from 'node:http'

let httpMod: typeof http | undefined

/** node:http without the ESM facade. */
export function httpModule(): typeof http {
  return (httpMod ??= process.getBuiltinModule('node:http'))
}
