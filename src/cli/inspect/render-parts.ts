/** Pieces the `inspect` renderings share. */
import { count } from '../format.js';
import type { InspectedError } from './inspect-task.js';

const maxJson = 2_000;

/** JSON on one line, cut at 2,000 characters (`--json` prints it whole). */
export function jsonText(value: unknown): string {
  const text = JSON.stringify(value) ?? 'null';
  return text.length <= maxJson ? text : `${text.slice(0, maxJson)}… (${count(text.length - maxJson)} more characters; --json for all)`;
}

/** `Name: message [code]`, then up to `stackLines` frames of the stack. */
export function errorLines(error: InspectedError, indent: string, stackLines: number): string[] {
  const lines = [`${indent}${error.name}: ${error.message}${error.code ? ` [${error.code}]` : ''}`];
  if (stackLines > 0 && error.stack) {
    const frames = error.stack.split('\n').filter((l) => /^\s+at /.test(l));
    lines.push(...frames.slice(0, stackLines).map((f) => `${indent}  ${f.trim()}`));
    if (frames.length > stackLines) lines.push(`${indent}  … ${frames.length - stackLines} more frames (--json for the whole stack)`);
  }
  return lines;
}
