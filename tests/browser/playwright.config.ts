import { join } from 'node:path';
import { defineConfig } from '@playwright/test';

const chromium = {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
};

// Real headless Chromium (Debian's), driven against real `hookscope serve` processes: every
// test starts its own, so two run at once. Fonts change what fits: every suite runs with a
// desktop's fonts (Liberation and Noto beside DejaVu: wider metrics, the set that found a
// popover covering a button), and the layout suite also with DejaVu alone.
export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  workers: 2,
  fullyParallel: true,
  retries: 0,
  outputDir: '../artifacts/browser-results',
  reporter: [['list']],
  use: {
    viewport: { width: 1440, height: 900 },
    acceptDownloads: true,
    trace: 'retain-on-failure',
  },
  projects: [
    { name: 'desktop-fonts', use: { launchOptions: chromium } },
    {
      name: 'minimal-fonts',
      testMatch: 'layout.spec.ts',
      use: {
        launchOptions: {
          ...chromium,
          env: { ...process.env, FONTCONFIG_FILE: join(import.meta.dirname, 'fonts-minimal.conf') },
        },
      },
    },
  ],
});
