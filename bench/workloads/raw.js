/** Physical limits: the same shapes without a queue. IPC for W1/W3, connect-per-task for W2. */
import { fileURLToPath } from 'node:url';
import { scope } from '../lib/cleanup.js';
import { checkRows, createRowsTable, databaseUrl, dropLater, freshSchema, unixSocketUrl } from '../lib/db.js';
import { runJsonScript } from '../lib/json-child.js';
import { latencyFigures, perSecond } from '../lib/timing.js';

const ipcScript = fileURLToPath(new URL('../raw/ipc.js', import.meta.url));
const connectScript = fileURLToPath(new URL('../raw/connect.js', import.meta.url));

/** W1 and W3 in one subprocess: 4 cluster workers, echo over IPC. */
export async function ipc({ w1, w3 }, workloads) {
  return scope(async (defer) => {
    const r = await runJsonScript(defer, ipcScript, [String(workloads.includes('W1') ? w1 : 0), String(workloads.includes('W3') ? w3 : 0)], { timeoutMs: 120_000 });
    const metrics = {};
    if (workloads.includes('W1')) metrics['W1 tasks/s'] = perSecond(r.w1Count, r.w1Ms);
    if (workloads.includes('W3')) Object.assign(metrics, latencyFigures(r.w3SamplesMs));
    return { metrics };
  });
}

export function connect(transport) {
  return async ({ w2: n }) => {
    const url = transport === 'unix' ? unixSocketUrl() : databaseUrl;
    return scope(async (defer) => {
      const schema = freshSchema(`raw${transport}`);
      dropLater(defer, schema);
      await createRowsTable(schema);
      const r = await runJsonScript(defer, connectScript, [url, schema, String(n)], { timeoutMs: 300_000 });
      if (r.errors.length > 0) throw new Error(`raw connect failed: ${r.errors[0]}`);
      return { metrics: { 'W2 tasks/s': perSecond(n, r.ms) }, checks: { W2: await checkRows(schema, n) } };
    });
  };
}
