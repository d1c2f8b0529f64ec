import initial from './000001-initial.js';
import addTaskFunction from './000002-add-task-function.js';
import taskHistory from './000003-task-history.js';
import claimFunction from './000004-claim-function.js';
import directSubmit from './000005-direct-submit.js';
import claimFunctionPlpgsql from './000006-claim-function-plpgsql.js';
import claimByPriority from './000007-claim-by-priority.js';
import nextRunAt from './000008-next-run-at.js';
import schedules from './000009-schedules.js';
import taskLimits from './000010-task-limits.js';
import taskProgress from './000011-task-progress.js';
import pausedTasks from './000012-paused-tasks.js';
import knownTaskAttempts from './000013-known-task-attempts.js';
import supervisorStarting from './000014-supervisor-starting.js';
import supervisorPidScope from './000015-supervisor-pid-scope.js';

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

/** Append only: a migration that has shipped is never edited. */
export const migrations: readonly Migration[] = [
  { id: 1, name: 'initial', sql: initial },
  { id: 2, name: 'add_task function', sql: addTaskFunction },
  { id: 3, name: 'task history', sql: taskHistory },
  { id: 4, name: 'claim_tasks function', sql: claimFunction },
  { id: 5, name: 'direct submission', sql: directSubmit },
  { id: 6, name: 'claim_tasks in PL/pgSQL', sql: claimFunctionPlpgsql },
  { id: 7, name: 'claims go priority by priority', sql: claimByPriority },
  { id: 8, name: 'next_run_at function', sql: nextRunAt },
  { id: 9, name: 'schedules', sql: schedules },
  { id: 10, name: 'task limits', sql: taskLimits },
  { id: 11, name: 'task progress', sql: taskProgress },
  { id: 12, name: 'paused tasks', sql: pausedTasks },
  { id: 13, name: 'known task attempts', sql: knownTaskAttempts },
  { id: 14, name: 'supervisor starting state', sql: supervisorStarting },
  { id: 15, name: 'supervisor pid scope', sql: supervisorPidScope },
];
