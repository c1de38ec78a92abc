import { defineConfig } from 'vitest/config';

// Tests sit beside the code they test; property suites live in properties/.
export default defineConfig({
  test: {
    include: ['{machines,broker,sim,load,properties}/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
