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

export { delay };
