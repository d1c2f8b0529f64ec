// graphile-worker's pool in its own process: `run()` with concurrency 4, default options or its batching options.
import { Logger, run } from 'graphile-worker';
import { serveRunner } from '../lib/peer-process.js';
import { insertRow } from './handlers.js';

const config = JSON.parse(process.argv[2]);

const logger = new Logger(() => (level, message) => {
  if (level === 'error') process.stderr.write(`graphile-worker: ${message}\n`);
});

const batching = { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 };

const runner = await run({
  taskList: {
    bench_echo: async (payload) => payload,
    bench_insert: async ({ schema, i }) => insertRow(config.url, schema, i),
  },
  logger,
  noHandleSignals: true,
  preset: {
    worker: {
      connectionString: config.url,
      schema: config.schema,
      concurrentJobs: 4,
      ...(config.batched ? batching : {}),
    },
  },
});

serveRunner(() => runner.stop());
