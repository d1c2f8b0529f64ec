import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Every test forks real processes against a real PostgreSQL; on two cores, one file at a time.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/support/embedded-global-setup.ts'],
    reporters: ['default'],
    // expect.poll waits for a condition; on a loaded 2-core machine, give it time.
    expect: { poll: { timeout: 20_000, interval: 50 } },
  },
});
