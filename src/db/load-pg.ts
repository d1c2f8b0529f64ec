/**
 * Loads `pg` once, before anything else imports it, without paying for its Cloudflare Workers probe.
 *
 * pg decides when it loads (lib/stream.js, isCloudflareRuntime) whether it runs in Cloudflare Workers: it reads
 * `navigator.userAgent`, and where there is no `navigator` global, as on Node 20, it constructs a fetch
 * `Response` instead. On Node 20 that first `Response` loads undici, and with it http, http2, tls, zlib and
 * webstreams: about 5 MB of resident memory and 25–35 ms of start-up in every process that imports pg, that
 * is the primary and each worker. Node 21+ has a `navigator` global and never takes that path; this module
 * gives Node 20 the same answer, with a `navigator` that exists only during one synchronous require.
 *
 * Import it first in each entry point (the CLI, the worker, the public API): every later `import pg from 'pg'`
 * gets the module already loaded here. Loaded after pg, it does nothing.
 */
import { createRequire } from 'node:module';

const scope = globalThis as { navigator?: unknown };

if (scope.navigator === undefined) {
  Object.defineProperty(scope, 'navigator', { value: { userAgent: 'Node.js' }, configurable: true, writable: true });
  try {
    createRequire(import.meta.url)('pg');
  } finally {
    delete scope.navigator;
  }
}
