/** Commands for supervisors, sent with NOTIFY on the schema's control channel: one union, one parser. */

export type ControlCommand =
  | { command: 'stop' }
  | { command: 'reload' }
  | { command: 'scale'; workers: number }
  | { command: 'cancel'; taskId: string }
  /** The paused task names changed: read them again. */
  | { command: 'paused' };

/** The command in a control payload if it is addressed to `selfId` (or to all), else null. */
export function parseControl(payload: string, selfId: string): ControlCommand | null {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(payload) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null || (raw.target !== '*' && raw.target !== selfId)) return null;
  switch (raw.command) {
    case 'stop':
    case 'reload':
    case 'paused':
      return { command: raw.command };
    case 'scale': {
      const workers = Number(raw.workers);
      return Number.isInteger(workers) && workers >= 1 && workers <= 1024 ? { command: 'scale', workers } : null;
    }
    case 'cancel':
      return typeof raw.taskId === 'string' && /^\d+$/.test(raw.taskId) ? { command: 'cancel', taskId: raw.taskId } : null;
    default:
      return null;
  }
}

export type ControlHandlers = { [K in ControlCommand['command']]: (command: Extract<ControlCommand, { command: K }>) => void };
