#!/usr/bin/env node
// activator entry point: the bundles bundle.mjs makes (the activator, and the
// Kubernetes endpoint source with @kubernetes/client-node in its own file), or
// serve.js when a later TypeScript build made them stale (core's entry-choice.ts).

import { startNewest } from '@sluice/core/entry-choice'

startNewest(import.meta.url, './activator.bundle.cjs', './serve.js', ['../tsconfig.tsbuildinfo', '../../core/tsconfig.tsbuildinfo'])
