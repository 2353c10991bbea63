// Personal data in the window: forgetting a person, how long deliveries are kept, and
// saying so while the store is still indexing what it holds.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, type Page } from '@playwright/test';
import { BINARY, Hookscope, importEvents, tagAdded, tagAddedBody } from './hookscope.ts';
import { row, shot, test } from './watched.ts';

test('forgetting a contact says how much goes, offers their data, and leaves nothing of them', async ({
  hookscope,
  watched: page,
}) => {
  await hookscope.send(tagAdded('marie.forget@example.fr', 'First', ['Marie', 'Zzyzx']));
  await hookscope.send(tagAdded('Marie.Forget@example.fr', 'Second', ['Marie', 'Zzyzx']));
  // Someone else's delivery that names her.
  const mention = JSON.parse(tagAdded('bob@example.com', 'Referral').body as string);
  mention.data.note = 'referred by MARIE.FORGET@example.fr';
  await hookscope.send({ body: JSON.stringify(mention), headers: { 'content-type': 'application/json' } });
  await hookscope.send(tagAdded('ann@example.com', 'Kept'));

  await page.goto(hookscope.uiUrl);
  const marie = page.locator('[data-testid="contact"][data-email="marie.forget@example.fr"]');
  await marie.click();
  await page.getByTestId('forget-button').click();
  await expect(page.getByTestId('forget-preview')).toContainText(
    '2 deliveries about them, and 1 other delivery that mention their email',
  );
  await shot(page, 'forget-confirmation');

  // Their copy first (the right of access), then the erasure.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Export their data' }).click(),
  ]);
  const copy = JSON.parse(readFileSync((await download.path())!, 'utf8')) as { contact_key: string }[];
  // Exactly what the forget erases: hers, and Bob's that names her.
  expect(copy.map((e) => e.contact_key)).toEqual(['marie.forget@example.fr', 'marie.forget@example.fr', 'bob@example.com']);

  await page.getByTestId('forget-confirm').click();
  await expect(marie).toHaveCount(0);
  await expect(page.getByTestId('timeline-title')).toHaveText('All events');
  await expect(row(page, 'Tag added: Kept')).toBeVisible();
  await expect(row(page, 'Tag added: First')).toHaveCount(0);
  await expect(row(page, 'Tag added: Referral')).toHaveCount(0);
  await expect(page.getByTestId('counts')).toContainText('1 events');
  await page.getByLabel('Search contacts by email or name').fill('zzyzx');
  await expect(page.getByTestId('contacts-empty')).toContainText('No contact matches');
  const answer = await fetch(`${hookscope.uiBase}/api/contacts/marie.forget%40example.fr`, {
    headers: { authorization: `Bearer ${hookscope.token}` },
  });
  expect(answer.status).toBe(404);
});

test('a window is told when a person is forgotten from the command line', async ({ hookscope, watched: page }) => {
  await hookscope.send(tagAdded('gone@example.com', 'Soon gone'));
  await hookscope.send(tagAdded('stays@example.com', 'Stays'));
  await page.goto(hookscope.uiUrl);
  await expect(row(page, 'Tag added: Soon gone')).toBeVisible();
  const forgot = spawnSync(BINARY, ['forget', 'gone@example.com', '--yes', '--data-dir', hookscope.dataDir], {
    encoding: 'utf8',
  });
  expect(forgot.status, forgot.stderr).toBe(0);
  await expect(row(page, 'Tag added: Soon gone')).toHaveCount(0);
  await expect(page.locator('[data-email="gone@example.com"]')).toHaveCount(0);
  await expect(row(page, 'Tag added: Stays')).toBeVisible();
});

test('the header says how long deliveries are kept, and a new policy prunes at once', async ({ watched: page }) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hookscope-ui-'));
  const now = Date.now();
  importEvents(dataDir, [
    { receivedAt: new Date(now - 3 * 86_400_000), body: tagAddedBody('old@example.com', 'Three days old'), id: 'old-3' },
    { receivedAt: new Date(now - 3600_000), body: tagAddedBody('new@example.com', 'An hour old'), id: 'new-1' },
  ]);
  const server = await new Hookscope(dataDir).start();
  try {
    await page.goto(server.uiUrl);
    await expect(row(page, 'Tag added: Three days old')).toBeVisible();
    // Nothing in the header while everything is kept: the Export dialog says it.
    await expect(page.getByTestId('retention-button')).toHaveCount(0);
    await page.getByRole('button', { name: 'Export', exact: true }).click();
    await expect(page.getByTestId('export-retention')).toContainText('Deliveries are kept until you delete them.');
    await page.getByRole('button', { name: 'Retention…' }).click();
    await expect(page.getByTestId('retention-policy')).toHaveText('Deliveries are kept until you delete them.');
    // Before it is saved, the dialog says what a value would delete now; out of range is refused.
    await page.getByLabel('Days to keep deliveries').fill('7');
    await expect(page.getByTestId('retention-would-prune')).toHaveText('Saving 7 days deletes nothing now.');
    await page.getByLabel('Days to keep deliveries').fill('2');
    await expect(page.getByTestId('retention-would-prune')).toHaveText('Saving 2 days deletes 1 delivery now.');
    await page.getByLabel('Days to keep deliveries').fill('36501');
    await expect(page.getByTestId('retention-would-prune')).toHaveCount(0);
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByRole('alert')).toContainText('1 to 36,500 days');
    await expect(row(page, 'Tag added: Three days old')).toBeVisible();
    await page.getByLabel('Days to keep deliveries').fill('2');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByTestId('retention-policy')).toContainText('older than 2 days are deleted');
    // Pruned at once; the window reloads when the stream says deliveries were erased.
    await expect(row(page, 'Tag added: Three days old')).toHaveCount(0);
    await expect(row(page, 'Tag added: An hour old')).toBeVisible();
    await expect(page.getByTestId('retention-last-run')).toContainText('1 delivery');
    // Beside the counts in the header once a limit is set (in its menu when out of room).
    await expectHeaderRetention(page, 'kept 2 days');
    await shot(page, 'retention');
    await page.reload();
    await expectHeaderRetention(page, 'kept 2 days');
  } finally {
    await server.dispose();
  }
});

/** The header says how long deliveries are kept: beside the counts, or in its menu when
 * the window has no room (the URL's length decides). */
async function expectHeaderRetention(page: Page, text: string): Promise<void> {
  await page.keyboard.press('Escape');
  // The header fits itself to what it now holds: wait until its level holds still.
  const level = () => page.locator('header').getAttribute('class');
  let last = await level();
  for (let still = 0; still < 3; ) {
    await page.waitForTimeout(100);
    const now = await level();
    still = now === last ? still + 1 : 0;
    last = now;
  }
  const inline = page.locator('header .counts').getByTestId('retention-button');
  if (await inline.isVisible()) return expect(inline).toHaveText(text);
  await page.getByTestId('more-button').click();
  await expect(page.getByRole('menuitem', { name: /Kept/ })).toHaveText(`K${text.slice(1)}…`);
  await page.getByTestId('more-button').click();
}

test('while a large import is indexed, the window says so, then shows it all', async ({ hookscope, watched: page }) => {
  test.setTimeout(150_000);
  await page.goto(hookscope.uiUrl);
  await expect(page.getByTestId('listener-status')).toHaveText('Listening');
  const count = 20_000;
  const lines = Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      id: `01900000-0000-7000-8000-${String(i).padStart(12, '0')}`,
      received_at: new Date(Date.now() - (count - i) * 1000).toISOString(),
      endpoint: 'ep_history',
      method: 'POST',
      path: '/h/history',
      headers: [['content-type', 'application/json']],
      body: tagAddedBody(`bulk${i % 500}@example.com`, `Bulk ${i}`),
    }),
  );
  const file = join(hookscope.dataDir, 'bulk.ndjson');
  writeFileSync(file, lines.join('\n'));
  // Beside the running server: the import stores, the server's indexer derives.
  const imported = spawnSync(BINARY, ['import', file, '--data-dir', hookscope.dataDir], { encoding: 'utf8' });
  expect(imported.status, imported.stderr).toBe(0);
  await expect(page.getByTestId('indexing')).toContainText(/Indexing [\d,.\s]+ deliveries… Lists, counts and searches/);
  await shot(page, 'indexing');
  await expect(page.getByTestId('indexing')).toHaveCount(0, { timeout: 90_000 });
  await expect(page.getByTestId('counts')).toContainText(`${count.toLocaleString('en-US')} events`);
  await expect(row(page, `Tag added: Bulk ${count - 1}`)).toBeVisible();
});
