/** Command-line flags of `npm run bench -- ...`. A bad flag is a harness error: one line, exit 2. */
export const allSystems = ['prefork', 'raw', 'graphile', 'pgboss', 'bullmq'];
export const allWorkloads = ['W1', 'W2', 'W3', 'W4', 'idle'];

// idleMs: how long a started system sits idle before its memory is read. V8 gives back the young generation
// that start-up grew (16 MB of semi-spaces, ≈10 MB of a Node 20 process's RSS) only once its memory reducer
// ran, which in prefork's workers was mostly between 8 and 20 s into idleness (2026-11-29: at 10 s one to four
// of four workers still held it; at 30 s one of twelve). Full runs read memory at 30 s, quick runs just after
// start-up. Quick runs give W2 200 tasks: on a slow day here (about 50 connections a second) its seven runs
// took 77 s of a quick run's 116 with 500, and `npm run bench -- --quick` (the build included) must stay under 2 min.
const full = { w1: 20_000, w2: 2_000, w3: 300, w3Polling: 30, runs: 3, idleMs: 30_000 };
const quick = { w1: 5_000, w2: 200, w3: 100, w3Polling: 6, runs: 1, idleMs: 500 };

export class UsageError extends Error {}

function list(value, allowed, flag) {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const item of items) if (!allowed.includes(item)) throw new UsageError(`${flag}: unknown "${item}" (allowed: ${allowed.join(', ')})`);
  return items;
}

export function parseArgs(argv) {
  const options = { quick: false, runs: undefined, only: allSystems, workloads: allWorkloads };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--quick':
        options.quick = true;
        break;
      case '--runs': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1 || n > 50) throw new UsageError('--runs must be an integer from 1 to 50');
        options.runs = n;
        break;
      }
      case '--only':
        options.only = list(value(), allSystems, '--only');
        break;
      case '--workloads':
        options.workloads = list(value(), allWorkloads, '--workloads');
        break;
      case '-h':
      case '--help':
        options.help = true;
        break;
      default:
        throw new UsageError(`unknown flag ${arg}`);
    }
  }
  const sizes = options.quick ? quick : full;
  return { ...options, runs: options.runs ?? sizes.runs, sizes };
}

export const usage = `usage: npm run bench -- [--quick] [--runs N] [--only ${allSystems.join(',')}] [--workloads ${allWorkloads.join(',')}]`;
