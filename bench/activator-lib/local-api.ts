// Client of the activator's local endpoint API (SLUICE_ENDPOINT_SOURCE=local, see
// packages/activator/src/endpoints/local-source.ts): the bench plays the control plane with it.
import { request } from 'node:http';

/** The RevisionInfo fields the local source wants (namespace and name come from the path). */
export interface RevisionSpec {
  containerConcurrency: number;
  timeoutSeconds: number;
}

export interface Endpoints {
  ready: string[];
  notReady: string[];
}

export class LocalApi {
  readonly port: number;

  constructor(port: number) {
    this.port = port;
  }

  putRevision(namespace: string, name: string, rev: RevisionSpec): Promise<void> {
    return this.put(`/revisions/${namespace}/${name}`, {
      containerConcurrency: rev.containerConcurrency,
      protocol: 'http1',
      timeoutSeconds: rev.timeoutSeconds,
      responseStartTimeoutSeconds: 0,
      idleTimeoutSeconds: 0,
      serviceName: name.replace(/-\d+$/, ''),
      configurationName: name.replace(/-\d+$/, ''),
      execReadinessProbe: false,
    });
  }

  putEndpoints(namespace: string, name: string, eps: Endpoints): Promise<void> {
    return this.put(`/endpoints/${namespace}/${name}`, eps);
  }

  private put(path: string, body: unknown): Promise<void> {
    const text = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: this.port,
          path,
          method: 'PUT',
          agent: false,
          timeout: 5000,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        },
        (res) => {
          let reply = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (reply += chunk));
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`PUT ${path}: HTTP ${res.statusCode} ${reply.trim()}`)),
          );
        },
      );
      req.on('timeout', () => req.destroy(new Error(`PUT ${path}: no answer within 5 s`)));
      req.on('error', reject);
      req.end(text);
    });
  }
}
