/** The README is the CLI's reference: every command and every flag the program knows is documented there. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli/main.js';

describe('the README', () => {
  it('documents every command and every flag', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const missing: string[] = [];
    for (const command of buildProgram().commands) {
      if (!readme.includes(`prefork ${command.name()}`)) missing.push(`prefork ${command.name()}`);
      for (const option of command.options) {
        // As a word: `--prefetch` must not pass for `--prefetch-limit`.
        const flag = new RegExp(`(^|[\\s\`\\[(|])${option.long}(?![-\\w])`, 'm');
        if (option.long && !flag.test(readme)) missing.push(`prefork ${command.name()} ${option.long}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
