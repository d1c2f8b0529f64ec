/**
 * What a task's connection shows in pg_stat_activity: the queue schema, the worker and the task, so a DBA
 * can tell who owns a backend. The server keeps 63 bytes.
 */
export function taskApplicationName(schema: string, workerId: number, taskId: string): string {
  return fullName(schema, workerId, taskId).slice(0, 63);
}

/**
 * Whether the server keeps the whole name, so that it names this task's connection alone (a long schema name
 * cuts off the worker and the task), and a backend can be found by it without its pid.
 */
export function taskApplicationNameIsWhole(schema: string, workerId: number, taskId: string): boolean {
  return fullName(schema, workerId, taskId).length <= 63;
}

function fullName(schema: string, workerId: number, taskId: string): string {
  return `prefork:${schema} w${workerId} t${taskId}`;
}
