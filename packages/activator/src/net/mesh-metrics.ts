// The mesh settings in force and which revisions route through their private
// Service's ClusterIP, as metrics (deploy/README.md, "Istio / service mesh":
// how an operator checks the mode without reading logs). Read from the
// throttler at each scrape, so they can never disagree with it.

import type { Registry } from 'prom-client'
import { loadPromParts } from '@sluice/core/prom-parts'
import type { Throttler } from './throttler.ts'
import { MESH_MODES } from './mesh-config.ts'
import { revisionLabels } from '../metrics.ts'

export function registerMeshMetrics(registry: Registry, throttler: Throttler): void {
  const { Gauge } = loadPromParts()
  new Gauge({
    name: 'sluice_activator_mesh_compatibility_mode',
    help: 'config-network mesh-compatibility-mode in force: 1 for the mode in force, 0 for the others',
    labelNames: ['mode'],
    registers: [registry],
    collect() {
      const current = throttler.mesh.mode
      for (const mode of MESH_MODES) this.set({ mode }, mode === current ? 1 : 0)
    },
  })
  new Gauge({
    name: 'sluice_activator_mesh_pod_addressability',
    help: 'config-network enable-mesh-pod-addressability in force (1: probes and requests carry the passthrough headers)',
    registers: [registry],
    collect() {
      this.set(throttler.mesh.passthroughLb ? 1 : 0)
    },
  })
  new Gauge({
    name: 'sluice_activator_clusterip_routing',
    help: '1 while the revision is routed through its private Service ClusterIP (mesh fallback or mode enabled), 0 while routed to pods',
    labelNames: ['namespace_name', 'revision_name'],
    registers: [registry],
    collect() {
      this.reset()
      for (const rt of throttler.all()) {
        this.set(revisionLabels(rt.key), rt.clusterDest === null ? 0 : 1)
      }
    },
  })
}
