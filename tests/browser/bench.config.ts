import { defineConfig } from '@playwright/test';

// `make bench`: UI figures printed by ui.bench.ts (not part of `make test`).
export default defineConfig({
  testDir: '.',
  testMatch: '*.bench.ts',
  workers: 1,
  reporter: [['list']],
  outputDir: '../artifacts/bench-results',
});
