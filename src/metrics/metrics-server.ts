/**
 * The metrics endpoint: GET /metrics (Prometheus text format), GET /healthz (liveness: 200 while the supervisor
 * runs, 503 while it starts or stops) and GET /readyz (readiness: 200 while it runs, reaches its database and
 * has a ready worker). A database outage fails /readyz only: the supervisor recovers by itself, and a liveness
 * check that failed then would restart it for nothing. Closed gracefully: in-flight scrapes finish, idle
 * keep-alive sockets are closed at once, and the rest after a short grace.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { PreforkError } from '../errors.js';

export interface Health {
  /** Alive: the supervisor runs. */
  ok: boolean;
  state: string;
  /** Whether it can take work; absent before the supervisor exists. */
  readiness?: { ready: boolean; database: boolean; workersReady: number; workersWanted: number } | undefined;
}

export interface MetricsServerOptions {
  host: string;
  port: number;
  registry: Registry;
  health: () => Health;
  log: Logger;
}

export class MetricsServer implements AsyncDisposable {
  #closing: Promise<void> | undefined;

  private constructor(
    readonly server: Server,
    readonly address: AddressInfo,
  ) {}

  /** Listens, or fails with a one-line usage error (exit 2) when the address is taken or not allowed. */
  static async listen(options: MetricsServerOptions): Promise<MetricsServer> {
    const server = createServer((req, res) => void handle(req, res, options));
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((error: NodeJS.ErrnoException) => {
      const why = { EADDRINUSE: 'the address is in use', EACCES: 'permission denied', EADDRNOTAVAIL: 'no such local address' }[error.code ?? ''];
      throw new PreforkError('METRICS_LISTEN_FAILED', `--metrics-port ${options.port} --metrics-host ${options.host}: cannot listen: ${why ?? error.message}`, {
        cause: error,
        exitCode: 2,
      });
    });
    server.on('error', (error) => options.log.warn({ event: 'metrics_server_error', err: error }, 'metrics server error'));
    const address = server.address() as AddressInfo;
    options.log.info(
      { event: 'metrics_listening', host: address.address, port: address.port },
      `metrics on http://${hostForUrl(address)}:${address.port}/metrics`,
    );
    return new MetricsServer(server, address);
  }

  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      setTimeout(() => this.server.closeAllConnections(), 2_000).unref();
    });
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, options: MetricsServerOptions): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return reply(res, 405, 'text/plain', 'method not allowed\n', { allow: 'GET, HEAD' });
  if (path === '/metrics') {
    try {
      const body = await options.registry.metrics();
      return reply(res, 200, options.registry.contentType, body);
    } catch (error) {
      options.log.warn({ event: 'metrics_collect_failed', err: error }, 'could not collect the metrics');
      return reply(res, 500, 'text/plain', 'could not collect the metrics\n');
    }
  }
  if (path === '/healthz') {
    const health = options.health();
    return reply(res, health.ok ? 200 : 503, 'application/json', `${JSON.stringify({ status: health.ok ? 'ok' : 'unavailable', state: health.state })}\n`);
  }
  if (path === '/readyz') {
    const health = options.health();
    const r = health.readiness;
    const ready = health.ok && r?.ready === true;
    const body = {
      status: ready ? 'ready' : 'not_ready',
      state: health.state,
      database: r === undefined ? 'unknown' : r.database ? 'reachable' : 'unreachable',
      workersReady: r?.workersReady ?? 0,
      workersWanted: r?.workersWanted ?? 0,
    };
    return reply(res, ready ? 200 : 503, 'application/json', `${JSON.stringify(body)}\n`);
  }
  return reply(res, 404, 'text/plain', 'not found: try /metrics, /healthz or /readyz\n');
}

function reply(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function hostForUrl(address: AddressInfo): string {
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}
