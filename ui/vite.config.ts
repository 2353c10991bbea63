import { defineConfig } from 'vitest/config';
import type { Plugin } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';

// paneforge (the resizable panes) shows the resize cursor during a drag by writing CSS into
// a <style> element it adds to <head>: the Content-Security-Policy refuses that (and reports
// a violation on every drag). Here it names the cursor in a data attribute on <html>
// instead, and app.css draws it. Fails the build if paneforge's code changed under it.
function paneforgeCursorWithoutInlineStyle(): Plugin {
  const original = /export function resetGlobalCursorStyle\(\) \{[\s\S]*?\n\}\n[\s\S]*?export function setGlobalCursorStyle\(state, doc\) \{[\s\S]*?\n\}\n/;
  return {
    name: 'paneforge-cursor-without-inline-style',
    enforce: 'pre',
    transform(code, id) {
      if (!id.replaceAll('\\', '/').endsWith('/paneforge/dist/internal/utils/style.js')) return null;
      if (!original.test(code)) this.error('paneforge changed how it sets the drag cursor: check this shim');
      return code.replace(
        original,
        `export function resetGlobalCursorStyle() {
    delete document.documentElement.dataset.resizeCursor;
}
export function setGlobalCursorStyle(state, doc) {
    doc.documentElement.dataset.resizeCursor = getCursorStyle(state);
}
`,
      );
    },
  };
}

// The built UI is served by `hookscope serve` under a strict Content-Security-Policy
// (script-src 'self', style-src 'self'): no inline scripts or styles may be emitted.
export default defineConfig({
  plugins: [paneforgeCursorWithoutInlineStyle(), svelte(), svelteTesting()],
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
