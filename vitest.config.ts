import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites spawn real processes; two cores make more workers slower, not faster.
    maxWorkers: 2,
    // Real services the suites talk to, started once per run and stopped after it.
    globalSetup: ['test/services/postgres.ts', 'test/services/s3.ts'],
  },
});
