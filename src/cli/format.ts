/** Small formatters for what the CLI prints to people. */

/** 850 ms, 1.2 s, 3m 12s, 2h 5m. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '-';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  const s = Math.floor(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3_600)}h ${Math.floor((s % 3_600) / 60)}m`;
}

/** 12,345 */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** Bytes as whole mebibytes. */
export function megabytes(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? '-' : String(Math.round(bytes / 1_048_576));
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}
