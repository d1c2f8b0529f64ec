/** Runs a bench script as a subprocess that prints one JSON line; stopped (tree and all) if the harness stops. */
import { spawn } from 'node:child_process';
import { stopTree } from './proc.js';

export function runJsonScript(defer, script, args, { timeoutMs = 300_000, env = {} } = {}) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const undo = defer(`subprocess ${script}`, () => stopTree(child, { graceMs: 2_000 }));
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c) => (err = (err + c).slice(-4_000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not finish within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      void undo();
      const line = out.trim().split('\n').pop();
      if (code !== 0 || !line) return reject(new Error(`${script} exited ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}`));
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`${script} printed no JSON: ${line}`));
      }
    });
  });
}
