/** Progress goes to stderr, so that stdout carries only the report. */
const started = Date.now();

export function progress(message) {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${t}s] ${message}\n`);
}
