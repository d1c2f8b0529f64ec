// Physical limit of a connection per task: 4 processes, each `count/4` times connect + insert + end, in turn.
// Primary: `node raw/connect.js <url> <schema> <count>`; prints one JSON line {ms, count}.
import cluster from 'node:cluster';
import pg from 'pg';

const workers = 4;

if (cluster.isPrimary) {
  const [url, schema, count] = [process.argv[2], process.argv[3], Number(process.argv[4])];
  process.on('disconnect', () => process.exit(1));
  const ws = [];
  for (let i = 0; i < workers; i++) ws.push(cluster.fork({ BENCH_URL: url, BENCH_SCHEMA: schema }));
  await Promise.all(ws.map((w) => new Promise((resolve) => w.once('message', resolve))));
  const t0 = performance.now();
  const per = Math.ceil(count / workers);
  const results = await Promise.all(
    ws.map((w, k) => new Promise((resolve) => {
      w.once('message', resolve);
      w.send({ from: k * per + 1, to: Math.min(count, (k + 1) * per) });
    })),
  );
  const ms = performance.now() - t0;
  const errors = results.flatMap((r) => r.errors);
  process.stdout.write(`${JSON.stringify({ ms, count, errors })}\n`);
  for (const w of ws) w.kill();
  process.exit(0);
} else {
  const table = `"${process.env.BENCH_SCHEMA}".bench_rows`;
  process.on('message', async ({ from, to }) => {
    const errors = [];
    for (let i = from; i <= to; i++) {
      const client = new pg.Client({ connectionString: process.env.BENCH_URL, application_name: `${process.env.BENCH_SCHEMA} raw` });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query(`insert into ${table} (task_no) values ($1)`, [i]);
      } catch (error) {
        errors.push(error.message);
      } finally {
        await client.end().catch(() => {});
      }
    }
    process.send({ errors: errors.slice(0, 5) });
  });
  process.send({ type: 'ready' });
}
