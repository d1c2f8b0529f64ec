import type { BackoffOptions } from '../task.js';

export const defaultBackoff: BackoffOptions = { type: 'exponential', baseMs: 1_000, maxMs: 3_600_000 };

/** Delay before attempt `attempt + 1`, after attempt `attempt` failed. Exponential uses full jitter above half. */
export function backoffDelay(backoff: BackoffOptions | undefined, attempt: number, random: () => number = Math.random): number {
  const b = backoff ?? defaultBackoff;
  switch (b.type) {
    case 'none':
      return 0;
    case 'fixed':
      return Math.max(0, b.delayMs);
    case 'exponential': {
      const base = b.baseMs ?? 1_000;
      const cap = b.maxMs ?? 3_600_000;
      const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
      return Math.round(ceiling / 2 + (random() * ceiling) / 2);
    }
  }
}
