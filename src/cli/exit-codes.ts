/** The CLI's exit codes: documented in the README, relied on by scripts. */
export const exitCodes = {
  ok: 0,
  /** The task failed, timed out or was cancelled; or the supervisor stopped on an error. */
  taskFailed: 1,
  /** Bad usage or input: unknown flag, bad value, invalid JSON, unknown task, no database configured. */
  usage: 2,
  /** The database or the supervisor cannot be reached. */
  unavailable: 3,
  /** `--timeout` passed before the task finished. */
  timeout: 124,
  /** Stopped by a second signal (forced). */
  forced: 130,
} as const;
