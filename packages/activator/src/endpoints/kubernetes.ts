// The Kubernetes endpoint source and its configuration loader, the only
// modules that load @kubernetes/client-node. serve.ts imports this module
// only when SLUICE_ENDPOINT_SOURCE=kubernetes; bundle.mjs puts it, with
// client-node, in a bundle of its own (kubernetes.bundle.cjs), so the local
// source never parses it.

export { KubernetesSource } from './kubernetes-source.ts'
export { loadKubeConfig } from './kube-config.ts'
export { CertificateSource } from './certificate-source.ts'
export { ConfigMapWatch } from './config-maps.ts'
