// Synthesises a `Forwarded` header from X-Forwarded-* (pkg/queue/forwarded_shim.go,
// spec §1.11). Only called when Forwarded is absent and an X-Forwarded-* is set.

function node(n: string): string {
  // A node with a colon is taken for IPv6 and quoted with brackets.
  return n.includes(':') ? `"[${n}]"` : n
}

export function synthesizeForwarded(xff: string, xfh: string, xfp: string): string {
  const nodes = xff === '' ? [] : xff.split(',')
  // A trailing empty element after the last comma is dropped.
  if (nodes.length > 1 && nodes[nodes.length - 1]!.trim() === '') nodes.pop()
  const first = nodes.length > 0 ? nodes[0]!.trim() : ''
  let out = ''
  if (nodes.length > 0) out = `for=${node(first)}`
  if (xfh !== '') {
    if (first !== '') out += ';'
    out += `host=${xfh}`
  }
  if (xfp !== '') {
    if (first !== '' || xfh !== '') out += ';'
    out += `proto=${xfp}`
  }
  for (let i = 1; i < nodes.length; i++) out += `, for=${node(nodes[i]!.trim())}`
  return out
}
