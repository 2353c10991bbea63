import { defineConfig } from 'vitest/config';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';

// The built UI is served by `hookscope serve` under a strict Content-Security-Policy
// (script-src 'self', style-src 'self'): no inline scripts or styles may be emitted.
export default defineConfig({
  plugins: [svelte(), svelteTesting()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  server: {
    // `npm run dev` talks to a running `hookscope serve` (UI port 4748 by default).
    proxy: { '/api': 'http://127.0.0.1:4748' },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.ts'],
  },
});
