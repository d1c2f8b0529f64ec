// pg-boss 10 workers in their own process: 4 × work() on one queue. Its workers poll (no LISTEN): each fetches
// up to `batchSize` jobs, runs them, and waits out the rest of the 0.5 s polling interval (its minimum).
import PgBoss from 'pg-boss';
import { serveRunner } from '../lib/peer-process.js';
import { insertRow } from './handlers.js';

const config = JSON.parse(process.argv[2]);
const boss = new PgBoss({ connectionString: config.url, schema: config.schema, supervise: false, schedule: false, max: 6 });
boss.on('error', (error) => process.stderr.write(`pg-boss: ${error.message}\n`));
await boss.start();
await boss.createQueue(config.queue);

const handlers = {
  echo: (job) => job.data,
  insert: (job) => insertRow(config.url, config.schema, job.data.i),
};

for (let k = 0; k < 4; k++) {
  await boss.work(config.queue, { batchSize: config.batchSize, pollingIntervalSeconds: 0.5 }, async (jobs) => {
    const results = [];
    for (const job of jobs) results.push(await handlers[job.data.kind](job));
    return results.length === 1 ? results[0] : undefined;
  });
}

serveRunner(() => boss.stop({ graceful: true, wait: true, timeout: 5_000 }));
