// Physical limit of prefork's dispatch path: node:cluster IPC round trips to 4 workers, no database.
// Primary: `node raw/ipc.js <w1Count> <w3Count>`; prints one JSON line {w1Ms, w1Count, w3SamplesMs}.
// W1 keeps one message in flight per worker (as prefork's one slot per worker); W3 sends one at a time.
import cluster from 'node:cluster';

const workers = 4;

if (cluster.isPrimary) {
  const [w1Count, w3Count] = process.argv.slice(2).map(Number);
  process.on('disconnect', () => process.exit(1));
  const ws = [];
  for (let i = 0; i < workers; i++) ws.push(cluster.fork());
  await Promise.all(ws.map((w) => new Promise((resolve) => w.once('message', resolve))));

  const message = (id) => ({ type: 'run', task: { id: String(id), name: 'bench.echo', payload: { i: id }, attempt: 1, maxAttempts: 3 } });

  // W1: pipelined, window 1 per worker.
  let sent = 0;
  let done = 0;
  const t0 = performance.now();
  const w1Ms = w1Count === 0 ? 0 : await new Promise((resolve) => {
    for (const w of ws) {
      w.on('message', () => {
        done += 1;
        if (sent < w1Count) w.send(message(++sent));
        if (done === w1Count) resolve(performance.now() - t0);
      });
      if (sent < w1Count) w.send(message(++sent));
    }
  });
  for (const w of ws) w.removeAllListeners('message');

  // W3: one at a time, round robin.
  const samples = [];
  for (let i = 0; i < w3Count + 20; i++) {
    const w = ws[i % workers];
    const t = performance.now();
    await new Promise((resolve) => {
      w.once('message', resolve);
      w.send(message(i));
    });
    if (i >= 20) samples.push(performance.now() - t);
  }
  process.stdout.write(`${JSON.stringify({ w1Ms, w1Count, w3SamplesMs: samples })}\n`);
  for (const w of ws) w.kill();
  process.exit(0);
} else {
  process.on('message', (m) => {
    process.send({ type: 'task_succeeded', taskId: m.task.id, result: m.task.payload });
  });
  process.send({ type: 'ready' });
}
