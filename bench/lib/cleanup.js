/**
 * Everything the benchmark starts is registered here as it starts (subprocesses, schemas, Redis queues), and
 * undone in reverse order: after each run, and on failure or Ctrl-C for whatever is still registered.
 */
import { progress } from './progress.js';

const stack = [];

/** Registers an undo step; returns a function that runs it now (once) and unregisters it. */
export function defer(name, fn) {
  const entry = { name, fn, done: null };
  stack.push(entry);
  return () => runEntry(entry);
}

function runEntry(entry) {
  if (!entry.done) {
    const i = stack.indexOf(entry);
    if (i >= 0) stack.splice(i, 1);
    entry.done = Promise.resolve()
      .then(entry.fn)
      .catch((error) => progress(`cleanup "${entry.name}" failed: ${error?.message ?? error}`));
  }
  return entry.done;
}

/** Runs every registered step, newest first. */
export async function cleanupAll() {
  while (stack.length > 0) await runEntry(stack[stack.length - 1]);
}

/** Scoped resources: `fn` gets a `defer`, whose steps run when `fn` settles. */
export async function scope(fn) {
  const mine = [];
  const local = (name, undo) => {
    const run = defer(name, undo);
    mine.push(run);
    return run;
  };
  try {
    return await fn(local);
  } finally {
    for (const run of mine.reverse()) await run();
  }
}

let interrupted = false;

/** Ctrl-C / SIGTERM: undo everything, exit 130. A second signal exits at once. */
export function handleSignals() {
  const onSignal = (signal) => {
    if (interrupted) {
      progress(`${signal} again: exiting without finishing the cleanup`);
      process.exit(130);
    }
    interrupted = true;
    progress(`${signal}: stopping and cleaning up (send it again to exit at once)`);
    void cleanupAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

export function isInterrupted() {
  return interrupted;
}
