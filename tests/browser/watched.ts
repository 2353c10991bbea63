// What every browser spec shares: the test with its fixtures, screenshots, rows.

import { join } from 'node:path';
import { test as base, expect, type Page } from '@playwright/test';
import { ARTIFACTS, Hookscope } from './hookscope.ts';

// Every test gets its own server and a page that records what must never happen: a
// script dialog, an uncaught error, a Content-Security-Policy violation.
export const test = base.extend<{ hookscope: Hookscope; watched: Page }>({
  hookscope: async ({}, use: (server: Hookscope) => Promise<void>) => {
    const server = await new Hookscope().start();
    await use(server);
    await server.dispose();
  },
  watched: async ({ page }, use) => {
    const problems: string[] = [];
    page.on('dialog', (dialog) => {
      problems.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        (window as unknown as { __violations: string[] }).__violations ??= [];
        (window as unknown as { __violations: string[] }).__violations.push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    await use(page);
    const violations = await page
      .evaluate(() => (window as unknown as { __violations?: string[] }).__violations ?? [])
      .catch(() => []);
    expect([...problems, ...violations.map((v) => `CSP: ${v}`)], 'no dialogs, errors or CSP violations').toEqual([]);
  },
});

/** A screenshot in tests/artifacts/, named after the font set when it is not a desktop's. */
export const shot = (page: Page, name: string) => {
  const fonts = test.info().project.name === 'minimal-fonts' ? '-minimal-fonts' : '';
  return page.screenshot({ path: join(ARTIFACTS, `${name}${fonts}.png`) });
};
export const row = (page: Page, summary: string) => page.getByTestId('event').filter({ hasText: summary });

/** Presses one of the header's actions: its button, or, when the header has no room for
 * it, the same item in the header's menu. */
export async function headerAction(page: Page, name: string): Promise<void> {
  const button = page.locator('header').getByRole('button', { name, exact: true });
  if (await button.isVisible()) return button.click();
  await page.getByTestId('more-button').click();
  await page.getByRole('menuitem', { name, exact: true }).click();
}
