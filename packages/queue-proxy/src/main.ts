#!/usr/bin/env node
// queue-proxy entry point: the one-file bundle (bundle.mjs), or serve.js when a
// later TypeScript build made the bundle stale (see core's entry-choice.ts).

import { startNewest } from '@sluice/core/entry-choice'

startNewest(import.meta.url, './queue-proxy.bundle.cjs', './serve.js', ['../tsconfig.tsbuildinfo', '../../core/tsconfig.tsbuildinfo'])
