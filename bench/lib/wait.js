import { setTimeout as delay } from 'node:timers/promises';

/** Polls `check` until it returns a truthy value; throws with `what` when `timeoutMs` passes first. */
export async function pollUntil(check, { timeoutMs = 60_000, intervalMs = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(intervalMs);
  }
}

/**
 * Waits until `left()` (tasks not yet finished, out of `total`, the first enqueued at `t0`) reads 0, and resolves
 * with the time that reading was taken, for every system alike. A reading is a query on the machine the system
 * uses: one every 20 ms throughout cost the harness and its backend 3.4 s of CPU, 3 % of the two cores, in a 55 s
 * W2 run (2,750 readings), CPU the measured system then lacked. So the wait between readings is half the time the
 * rate so far says the rest will take, between 20 ms and 500 ms: a few dozen readings in a long run, the last
 * ones 20 ms apart as before, so the end is seen as precisely (unless the rate more than doubles in the last half
 * second).
 */
export async function waitUntilDone(left, { total, t0, timeoutMs = 300_000, what = 'the tasks to finish' }) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await left();
    const at = performance.now();
    if (n <= 0) return at;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${n} of ${total} left)`);
    const done = total - n;
    const eta = done > 0 ? (n * (at - t0)) / done : 0;
    await delay(Math.min(500, Math.max(20, eta / 2)));
  }
}

export { delay };
