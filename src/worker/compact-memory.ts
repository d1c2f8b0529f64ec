/**
 * One memory-reducing collection, asked of V8 once a worker's start-up is over and it sits idle.
 *
 * Loading modules grows V8's young generation (8–16 MB committed) and leaves start-up garbage behind. V8's memory
 * reducer gives both back after some idleness: within 8–20 s on Node 20, by 30 s on Node 22, and not within 90 s
 * on Node 24, whose idle workers stayed at 80 MB. The collection V8 runs under memory pressure
 * (`flavor: 'last-resort'`) returns them at once: measured on 2026-11-29, 77 → 68 MB per worker at 10 s on
 * Node 22 and 81 → 70 MB on Node 24, in 10–25 ms, once. V8 11 (Node 20) accepts the option but keeps its young
 * generation, so there it is not asked.
 *
 * `gc` is taken from a fresh context with `--expose-gc` set only for that moment (as Jest does for
 * `--logHeapUsage`): the worker's global object, where task code runs, never gets a `gc`.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

export function memoryCompactionSupported(version = process.versions.v8): boolean {
  return Number(version.split('.')[0]) >= 12;
}

export interface Compaction {
  rssBeforeMb: number;
  rssAfterMb: number;
  ms: number;
}

export function compactMemory(): Compaction {
  const exposedByUser = process.execArgv.some((a) => /^--expose[-_]gc$/.test(a)) || /--expose[-_]gc\b/.test(process.env.NODE_OPTIONS ?? '');
  v8.setFlagsFromString('--expose-gc');
  let collect: Collect;
  try {
    collect = runInNewContext('gc') as Collect;
  } finally {
    // Contexts that task code creates later get no `gc` unless the process was started with one.
    if (!exposedByUser) v8.setFlagsFromString('--no-expose-gc');
  }
  const rssBefore = process.memoryUsage.rss();
  const start = performance.now();
  collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  const ms = performance.now() - start;
  const mb = (bytes: number) => Math.round((bytes / 1_048_576) * 10) / 10;
  return { rssBeforeMb: mb(rssBefore), rssAfterMb: mb(process.memoryUsage.rss()), ms: Math.round(ms * 10) / 10 };
}
