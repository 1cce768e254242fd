'use strict'
// What the Kubernetes bundle uses of undici (client-node's Watch and kube-list.ts:
// fetch; client-node's KubeConfig: Agent, ProxyAgent), required by path. bundle.mjs
// resolves `undici` to this file there: undici's index also evaluates its mock
// agents, cache stores, interceptors, WebSocket and EventSource, which cost
// ~10 MiB resident for nothing the activator calls.

const { fetch } = require('undici/lib/web/fetch/index.js')

module.exports = {
  fetch,
  Agent: require('undici/lib/dispatcher/agent.js'),
  ProxyAgent: require('undici/lib/dispatcher/proxy-agent.js'),
}
