// BullMQ 5 worker in its own process, concurrency 4, with a sandboxed processor: each job runs in a child
// process (the closest to prefork's worker processes).
import { fileURLToPath } from 'node:url';
import { Worker } from 'bullmq';
import { serveRunner } from '../lib/peer-process.js';

const config = JSON.parse(process.argv[2]);
const processor = fileURLToPath(new URL('./bullmq-processor.js', import.meta.url));
const worker = new Worker(config.queue, processor, {
  connection: config.connection,
  prefix: config.prefix,
  concurrency: 4,
  useWorkerThreads: false,
});
worker.on('error', (error) => process.stderr.write(`bullmq: ${error.message}\n`));
await worker.waitUntilReady();
serveRunner(() => worker.close());
