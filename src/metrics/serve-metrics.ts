/**
 * The primary's metrics as `prefork start --metrics-port` runs them: the registry, the HTTP endpoint, and
 * the queue-depth reader. `start` imports this module only when metrics are asked for, so a supervisor
 * without them never loads prom-client (with @opentelemetry/api) or node:http: about 90 modules and 40 ms
 * of start-up.
 */
import type { Logger } from 'pino';
import { MetricsServer, type Health } from './metrics-server.js';
import { QueueDepth } from './queue-depth.js';
import { SupervisorMetrics, type MetricsSource } from './supervisor-metrics.js';

export interface ServedMetrics {
  /** Counts the supervisor's events from now on; the queue depth is read from `databaseUrl` on scrape. */
  attach(supervisor: MetricsSource, queue: { databaseUrl: string; schema: string }): void;
  /** Closes the endpoint (in-flight scrapes finish), then the registry's sources. */
  close(): Promise<void>;
}

/** Listens first: a port in use fails with a usage error before anything else starts. */
export async function serveMetrics(options: { host: string; port: number; health: () => Health; log: Logger }): Promise<ServedMetrics> {
  const metrics = new SupervisorMetrics();
  const server = await MetricsServer.listen({ ...options, registry: metrics.registry });
  return {
    attach: (supervisor, queue) => metrics.attach(supervisor, new QueueDepth({ ...queue, log: options.log })),
    close: async () => {
      await server.close();
      await metrics.close();
    },
  };
}
