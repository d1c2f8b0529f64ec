/**
 * `prefork status --watch`: re-reads the status every interval until SIGINT or SIGTERM, then exits 0.
 * On a terminal the frame is redrawn in place; otherwise a plain report per refresh; with `json`, one JSON
 * object per refresh (NDJSON). A refresh that fails (the database went away) is shown and retried.
 */
import type pg from 'pg';
import { redactSecrets } from '../../db/connection-string.js';
import { supervisorDefaults } from '../../primary/supervisor-options.js';
import { watchReport, type WatchReport } from '../../queue/watch-report.js';
import { openDatabase, type DatabaseTarget } from '../database.js';
import { sleep } from '../sleep.js';
import { renderWatch } from './render-watch.js';
import { Screen } from './screen.js';

export interface WatchOptions {
  intervalMs: number;
  json: boolean;
}

export async function watchStatus(target: DatabaseTarget, options: WatchOptions): Promise<void> {
  const out = process.stdout;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A reader that went away (`| head`) ends the watch too.
  out.on('error', onSignal);

  // The first connection must work: a wrong URL is an error (exit 3), not a screen that retries forever.
  let client: pg.Client | null = await openDatabase(target, 'prefork status --watch');
  const screen = !options.json && out.isTTY ? new Screen(out) : null;
  let last: WatchReport | null = null;
  let error: string | null = null;
  const draw = () => {
    const lines = renderWatch(last, { schema: target.schema, intervalMs: options.intervalMs, error, interactive: screen !== null });
    if (screen) screen.draw(lines);
    else out.write(`${lines.join('\n')}\n\n`);
  };
  out.on('resize', draw);
  try {
    while (!stop.signal.aborted) {
      try {
        client ??= await openDatabase(target, 'prefork status --watch');
        last = await watchReport(client, target.schema, supervisorDefaults.leaseMs);
        error = null;
      } catch (e) {
        error = `cannot read the status: ${redactSecrets((e as Error)?.message ?? String(e), target.url ?? '')}`;
        await client?.end().catch(() => {});
        client = null;
      }
      if (stop.signal.aborted) break;
      if (options.json) out.write(`${JSON.stringify(error ? { at: new Date().toISOString(), error } : last)}\n`);
      else draw();
      await sleep(options.intervalMs, stop.signal);
    }
  } finally {
    out.off('resize', draw);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    screen?.stop();
    await client?.end().catch(() => {});
  }
}
