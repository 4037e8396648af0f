/**
 * The node's HTTP port (the seed's -port): health and metrics only; data
 * never moves over HTTP.
 *   GET /health   200 with the node's view when serving, 503 while starting or stopping
 *   GET /ready    the same verdict, as a bare `ready` or `not ready`: what probes ask
 *                 (Docker HEALTHCHECK, a Kubernetes readinessProbe) without the membership view
 *   GET /metrics  Prometheus text format
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface HealthSource {
  ready(): boolean;
  health(): unknown;
}

export async function startHttp(host: string, port: number, source: HealthSource, registry: Registry): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (path === '/ready') {
      const ready = source.ready();
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n');
    } else if (path === '/health') {
      res.writeHead(source.ready() ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(source.health()));
    } else if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
