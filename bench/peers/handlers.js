/** What the peers' jobs do: the same work as bench/tasks.js, without prefork's ctx. */
import { writeFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';

/** W2: a connection of its own for this job: connect, insert one row, end. */
export async function insertRow(url, schema, i) {
  const client = new pg.Client({ connectionString: url, application_name: `${schema} job` });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(`insert into "${schema}".bench_rows (task_no) values ($1)`, [i]);
  } finally {
    await client.end().catch(() => {});
  }
}

/** W4a: the first attempt writes its pid and sleeps, to be killed; a redelivery returns at once. */
export async function crashOnce(firstAttempt, pidFile) {
  if (firstAttempt) {
    writeFileSync(pidFile, String(process.pid));
    await delay(10_000);
  }
  return { pid: process.pid, firstAttempt };
}
