/**
 * Direct submission: a sender on the supervisor's host hands it tasks over a Unix socket, one JSON object per
 * line, and, when it asks to wait, gets the outcome back on the same connection. The supervisor inserts such a
 * task already claimed by itself (one commit: durable before it is accepted) and runs it at once; the outcome
 * is sent once the database recorded it. Whenever the outcome will not come this way (the task was queued
 * behind others, retried, or the connection went), the sender waits through the database as usual.
 */
import type { TaskView } from '../queue/task-view.js';
import { jsonStorageProblem, payloadOrEmpty } from '../queue/task-input.js';

export interface SubmitRequest {
  op: 'submit';
  /** The sender's number for this request, echoed in every reply to it. */
  ref: number;
  /** The sender's id for this task (a UUID): stored with it, so that a resend cannot make a second one. */
  submission: string;
  name: string;
  payload: unknown;
  queue?: string | undefined;
  priority?: number | undefined;
  maxAttempts?: number | undefined;
  key?: string | undefined;
  /** Send the outcome on this connection. */
  wait: boolean;
  /**
   * With `wait`: the sender takes a `result` (or `requeued`) for the `accepted` it implies, so the supervisor
   * holds `accepted` back for up to this many milliseconds and leaves it out when the outcome comes first: one
   * write and one wake-up less for a short task. Left out (or 0): `accepted` at once, as before.
   */
  deferAcceptMs?: number | undefined;
}

/** The longest a sender may ask `accepted` to be held back (it gives the submission up after its own timeout). */
export const maxDeferAcceptMs = 60_000;

export type DirectReply =
  /** In the database. `direct`: it runs here and its outcome follows on this connection. */
  | { op: 'accepted'; ref: number; id: string; deduplicated: boolean; direct: boolean }
  | { op: 'result'; ref: number; task: TaskView }
  /** The outcome will not come here (retried, or given back to the queue): wait through the database. */
  | { op: 'requeued'; ref: number; id: string }
  /** Nothing was inserted: `NOT_ACCEPTING` (stopping; use the database), or bad input. */
  | { op: 'refused'; ref: number; error: { code: string; message: string } };

/** The longest line either side accepts. */
export const maxLineBytes = 64 * 1_048_576;

/** A submit request from a line of JSON, or a one-line reason it is not one. */
export function parseSubmit(line: string): { request: SubmitRequest } | { ref: number; error: string } {
  let m: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ref: 0, error: 'not a JSON object' };
    m = parsed as Record<string, unknown>;
  } catch {
    return { ref: 0, error: 'not JSON' };
  }
  const ref = Number.isSafeInteger(m.ref) ? (m.ref as number) : 0;
  const bad = (what: string) => ({ ref, error: what });
  if (m.op !== 'submit') return bad(`unknown op ${JSON.stringify(m.op)}`);
  if (!Number.isSafeInteger(m.ref)) return bad('ref must be an integer');
  if (typeof m.submission !== 'string' || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(m.submission)) {
    return bad('submission must be a UUID');
  }
  if (typeof m.name !== 'string' || m.name.length < 1 || m.name.length > 200) return bad('name must be a string of 1 to 200 characters');
  if (m.queue !== undefined && (typeof m.queue !== 'string' || m.queue.length === 0)) return bad('queue must be a non-empty string');
  if (m.priority !== undefined && !(Number.isInteger(m.priority) && Math.abs(m.priority as number) <= 2_147_483_647)) return bad('priority must be an integer');
  if (m.maxAttempts !== undefined && !(Number.isInteger(m.maxAttempts) && (m.maxAttempts as number) >= 1 && (m.maxAttempts as number) <= 1_000_000)) {
    return bad('maxAttempts must be a positive integer');
  }
  if (m.key !== undefined && typeof m.key !== 'string') return bad('key must be a string');
  if (typeof m.wait !== 'boolean') return bad('wait must be true or false');
  if (m.deferAcceptMs !== undefined && !(Number.isInteger(m.deferAcceptMs) && (m.deferAcceptMs as number) >= 0 && (m.deferAcceptMs as number) <= maxDeferAcceptMs)) {
    return bad(`deferAcceptMs must be an integer from 0 to ${maxDeferAcceptMs}`);
  }
  // A NUL or a lone surrogate anywhere (payload, name, queue, key): the database could not store it.
  const unstorable = jsonStorageProblem(line);
  if (unstorable) return bad(`the request ${unstorable}`);
  return {
    request: {
      op: 'submit',
      ref: m.ref as number,
      submission: m.submission,
      name: m.name,
      payload: payloadOrEmpty(m.payload),
      queue: m.queue as string | undefined,
      priority: m.priority as number | undefined,
      maxAttempts: m.maxAttempts as number | undefined,
      key: m.key as string | undefined,
      wait: m.wait,
      deferAcceptMs: m.deferAcceptMs as number | undefined,
    },
  };
}

/** Splits a byte stream into lines; calls `onLine` for each, `onOverflow` once when a line passes the limit. */
export function lineReader(onLine: (line: string) => void, onOverflow: () => void): (chunk: Buffer) => void {
  let parts: Buffer[] = [];
  let size = 0;
  let overflowed = false;
  return (chunk) => {
    if (overflowed) return;
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      parts.push(chunk.subarray(start, nl));
      const line = parts.length === 1 ? parts[0]!.toString('utf8') : Buffer.concat(parts).toString('utf8');
      parts = [];
      size = 0;
      start = nl + 1;
      if (line.trim() !== '') onLine(line);
    }
    if (start < chunk.length) {
      parts.push(chunk.subarray(start));
      size += chunk.length - start;
      if (size > maxLineBytes) {
        overflowed = true;
        parts = [];
        onOverflow();
      }
    }
  };
}
