// Goal: the node:http server of the payment servers' interface (paymentApi.ts): JSON in, JSON out, with
// `GET /metrics` in the Prometheus text format.
// Method: read the body (at most 64 KiB, JSON only, else 413 or 415), hand the request to `PaymentApi`, write
// its answer, and record the request's route, status and wall-clock duration in the metrics (this is I/O code:
// the wall clock here measures the service, it never feeds a run). Every error is a JSON body
// `{ error: { code, message, field } }`; an exception in a handler is a 500 with code `internal`, logged once.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PaymentApi, type ApiResponse, type PaymentApiOptions } from './paymentApi.ts';
import { HttpMetrics } from './metrics.ts';

export const MAX_BODY_BYTES = 64 * 1024;

export interface PaymentHttpServer {
  server: Server;
  api: PaymentApi;
  metrics: HttpMetrics;
  /** Listens and resolves with the base URL (`http://127.0.0.1:PORT`). Port 0 picks a free one. */
  listen(port?: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

export function createPaymentHttpServer(options: PaymentApiOptions, log: (line: string) => void = (line) => console.error(line)): PaymentHttpServer {
  const api = new PaymentApi(options);
  const metrics = new HttpMetrics();
  const server = createServer((req, res) => {
    const started = performance.now();
    metrics.inFlight++;
    handle(req, res)
      .catch((error: unknown) => {
        log(`payfleet http: ${req.method} ${req.url}: ${(error as Error).stack ?? String(error)}`);
        return answer(res, { status: 500, route: 'other', code: 'internal', body: { error: { code: 'internal', message: 'internal error' } } });
      })
      .then((response) => {
        metrics.inFlight--;
        metrics.record(response.route, response.status, (performance.now() - started) / 1000, { code: response.code, replayed: response.replayed });
      });
  });
  // Keep-alive connections are the common case under load (k6 reuses them).
  server.keepAliveTimeout = 30_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<ApiResponse> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/metrics') {
      if (req.method !== 'GET') return answer(res, errorResponse(405, '/metrics', 'methodNotAllowed', 'use GET', 'method'));
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(metrics.text());
      return { status: 200, route: '/metrics', body: undefined };
    }
    let body: unknown;
    if (req.method === 'POST') {
      const type = req.headers['content-type'] ?? '';
      const text = await readBody(req);
      if (text === undefined) return answer(res, errorResponse(413, 'other', 'bodyTooLarge', `the body is over ${MAX_BODY_BYTES} bytes`, 'body'));
      if (text.length > 0) {
        if (!/^application\/json\b/i.test(type)) return answer(res, errorResponse(415, 'other', 'unsupportedMediaType', `expected Content-Type: application/json, got ${type || 'none'}`, 'Content-Type'));
        try {
          body = JSON.parse(text);
        } catch (error) {
          return answer(res, errorResponse(400, 'other', 'badRequest', `the body is not valid JSON: ${(error as Error).message}`, 'body'));
        }
      }
    } else {
      req.resume();
    }
    const headers: Record<string, string | undefined> = {};
    for (const [name, value] of Object.entries(req.headers)) headers[name] = Array.isArray(value) ? value[0] : value;
    return answer(res, api.handle({ method: req.method ?? 'GET', path: url.pathname, headers, body }));
  }

  return {
    server,
    api,
    metrics,
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          resolve(`http://${shown}:${address.port}`);
        });
      });
    },
    close() {
      return new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}

function errorResponse(status: number, route: string, code: string, message: string, field: string): ApiResponse {
  return { status, route, code, body: { error: { code, message, field } } };
}

function answer(res: ServerResponse, response: ApiResponse): ApiResponse {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (response.replayed) headers['idempotent-replayed'] = 'true';
  res.writeHead(response.status, headers);
  res.end(JSON.stringify(response.body));
  return response;
}

/** The body as text, or undefined when it is larger than MAX_BODY_BYTES (the rest is drained, not kept). */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
