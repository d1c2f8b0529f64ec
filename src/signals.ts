/**
 * Signals, in one place. The first SIGTERM/SIGINT starts a graceful stop; a second one forces it.
 * SIGHUP starts a rolling restart of the workers.
 */
import type { Logger } from 'pino';

export interface Stoppable {
  stop(): Promise<void>;
  forceStop(): Promise<void>;
  reload?(): Promise<void>;
}

export function handleStopSignals(target: Stoppable, log: Logger, onForced: (signal: NodeJS.Signals) => void): () => void {
  let received = 0;
  const handler = (signal: NodeJS.Signals) => {
    received += 1;
    if (received === 1) {
      log.info({ event: 'signal_received', signal }, `${signal}: stopping gracefully (send it again to force)`);
      void target.stop();
      return;
    }
    log.warn({ event: 'signal_received', signal, forced: true }, `${signal} again: forcing the stop`);
    void target.forceStop().finally(() => onForced(signal));
  };
  const hangup = () => {
    log.info({ event: 'signal_received', signal: 'SIGHUP' }, 'SIGHUP: rolling restart of the workers');
    // A failed reload is logged by the supervisor; the workers it did not replace go on.
    void target.reload?.().catch(() => {});
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('SIGHUP', hangup);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
    process.off('SIGHUP', hangup);
  };
}
