/**
 * The published types, as an application compiles against them: test/fixtures/types/consumer.ts (a task module's
 * tasks typing a Client) is compiled with `strict` against dist/*.d.ts (the package's own exports).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

describe('published types', () => {
  it("a Client typed by a task module's tasks types each payload and result (defineTask and plain handlers) under strict", async () => {
    const tsc = join(process.cwd(), 'node_modules', 'typescript', 'bin', 'tsc');
    const compiled = await promisify(execFile)(process.execPath, [tsc, '-p', join('test', 'fixtures', 'types', 'tsconfig.json')]).then(
      () => '',
      (error: { stdout?: string; message: string }) => error.stdout || error.message,
    );
    expect(compiled).toBe('');
  }, 60_000);
});
