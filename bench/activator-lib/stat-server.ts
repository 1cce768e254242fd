// A minimal autoscaler stat server for the bench: accepts the activator's websocket, decodes
// every binary frame and hands each stat to a callback. The cold-start driver plays the
// autoscaler with it (a poke for a revision at zero starts the "pod"); nothing is recorded.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { decodeWireStatMessages, type Stat } from '@sluice/core/stat-proto';

export type StatListener = (namespace: string, name: string, stat: Stat, at: number) => void;

export interface StatServer {
  /** ws://127.0.0.1:<port>, for SLUICE_AUTOSCALER_URL. */
  url: string;
  /** Replaced freely; called for every message that carries a stat. */
  onStat: StatListener | undefined;
  /** Frames that did not decode (should stay 0). */
  decodeErrors: number;
  close(): Promise<void>;
}

/** On `port` (8080 plays Knative's autoscaler Service for Knative's activator), ephemeral by default. */
export async function startStatServer(port = 0): Promise<StatServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  await once(wss, 'listening');
  const server: StatServer = {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    onStat: undefined,
    decodeErrors: 0,
    close: () =>
      new Promise((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
  wss.on('connection', (ws) => {
    ws.on('error', () => {}); // a broken connection just ends; the activator reconnects
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return;
      const at = performance.now();
      let messages;
      try {
        messages = decodeWireStatMessages(data);
      } catch {
        server.decodeErrors++;
        return;
      }
      for (const m of messages) if (m.stat !== undefined) server.onStat?.(m.namespace, m.name, m.stat, at);
    });
  });
  return server;
}
