import { setTimeout as delay } from 'node:timers/promises';

/** Waits until an in-memory condition holds, checking every `everyMs`; false when `timeoutMs` passed first. */
export async function until(condition: () => boolean, timeoutMs: number, everyMs = 10): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() >= deadline) return false;
    await delay(everyMs);
  }
  return true;
}
