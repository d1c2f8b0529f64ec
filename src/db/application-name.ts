/**
 * What a task's connection shows in pg_stat_activity: the queue schema, the worker and the task, so a DBA
 * can tell who owns a backend. The server keeps 63 bytes.
 */
export function taskApplicationName(schema: string, workerId: number, taskId: string): string {
  return `prefork:${schema} w${workerId} t${taskId}`.slice(0, 63);
}
