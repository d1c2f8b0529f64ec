/**
 * Human-readable log lines for a terminal, formatted in the process that logs (no pino transport, so no
 * worker thread): `12:04:05.123 INFO  primary 4242 worker_ready  worker ready  workerId=1 workerPid=4250`.
 * Input is one pino JSON line, already redacted.
 */

const levelStyle: Record<string, { label: string; colour: string }> = {
  fatal: { label: 'FATAL', colour: '\x1b[35m' },
  error: { label: 'ERROR', colour: '\x1b[31m' },
  warn: { label: 'WARN ', colour: '\x1b[33m' },
  info: { label: 'INFO ', colour: '\x1b[32m' },
  debug: { label: 'DEBUG', colour: '\x1b[34m' },
  trace: { label: 'TRACE', colour: '\x1b[90m' },
};
const reset = '\x1b[0m';
const bold = '\x1b[1m';
const dim = '\x1b[2m';

/** Shown in the prefix or dropped (the supervisor id is in the JSON form; one terminal shows one supervisor). */
const hidden = new Set(['time', 'level', 'msg', 'event', 'role', 'pid', 'supervisorId']);

export function formatPrettyLine(line: string, colour: boolean): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const paint = (code: string, text: string) => (colour ? `${code}${text}${reset}` : text);
  const level = levelStyle[String(record.level)] ?? { label: String(record.level).toUpperCase().padEnd(5), colour: '' };
  const parts = [paint(dim, clock(record.time)), paint(level.colour, level.label)];
  parts.push(paint(dim, `${record.role ?? '-'} ${record.pid ?? '-'}`));
  if (record.event !== undefined) parts.push(paint(bold, String(record.event)));
  if (record.msg !== undefined && record.msg !== '') parts.push(` ${String(record.msg)}`);
  let stack = '';
  const fields: string[] = [];
  for (const [key, value] of Object.entries(record)) {
    if (hidden.has(key) || value === undefined) continue;
    if (isError(value)) {
      fields.push(`${paint(dim, `${key}=`)}${JSON.stringify(`${value.type ?? 'Error'}: ${value.message}`)}`);
      if (typeof value.stack === 'string') stack += `\n${indent(value.stack)}`;
      continue;
    }
    fields.push(`${paint(dim, `${key}=`)}${formatValue(value)}`);
  }
  if (fields.length > 0) parts.push(` ${fields.join(' ')}`);
  return `${parts.join(' ')}${stack}\n`;
}

function clock(time: unknown): string {
  const date = new Date(typeof time === 'string' || typeof time === 'number' ? time : Date.now());
  return Number.isNaN(date.getTime()) ? String(time) : date.toISOString().slice(11, 23);
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  return JSON.stringify(value) ?? String(value);
}

function isError(value: unknown): value is { type?: string; message: string; stack?: unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string' && 'stack' in value;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
