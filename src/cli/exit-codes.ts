/** The CLI's exit codes: documented in the README, relied on by scripts. */
export const exitCodes = {
  ok: 0,
  /** The task failed, timed out or was cancelled; or the supervisor stopped on an error. */
  taskFailed: 1,
  /** Bad usage or input: unknown flag, bad value, invalid JSON, unknown task, --data-dir with a database URL. */
  usage: 2,
  /**
   * The database or the supervisor cannot be reached: also no database configured and no supervisor running
   * here with its embedded PostgreSQL, or the embedded PostgreSQL cannot start or is in use by another one.
   */
  unavailable: 3,
  /** `--timeout` passed before the task finished. */
  timeout: 124,
  /** Stopped by a second signal (forced). */
  forced: 130,
} as const;
