import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// Tests sit beside the code they test; property suites live in properties/.
export default defineConfig({
  test: {
    include: ['{machines,broker,sim,load,properties}/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Vitest's default is one worker fewer than the cores: on a 2-core machine like this one the files ran one
    // at a time. Most of the slow files wait on scaled real time (mqtt runs at x60, PostgreSQL and Redis restarts)
    // rather than compute, so two at once took the whole suite from 557 s to 348 s here, all passing.
    maxWorkers: Math.max(2, availableParallelism()),
  },
});
