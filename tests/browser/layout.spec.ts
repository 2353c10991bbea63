// The window at the sizes users have, with content as long as deliveries can make it, and
// the timeline read as time. Screenshots per size land in tests/artifacts/layout-*.png.

import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, type Page } from '@playwright/test';
import { fixture, freePort, Hookscope, importEvents, tagAdded, tagAddedBody } from './hookscope.ts';
import { row, shot, test } from './watched.ts';

const SIZES: [number, number][] = [
  [760, 480],
  [1024, 700],
  [1280, 800],
  [1366, 768],
  [1440, 900],
  [1920, 1080],
];
/** The app's width below which the detail opens over the timeline (App.svelte). */
const THREE_PANES_FROM = 1100;

const CHECK = readFileSync(join(import.meta.dirname, 'layout-check.js'), 'utf8');
const layoutProblems = async (page: Page) => {
  // Wait for the frame where a resize or a click settled (the header measures itself).
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  return (await page.evaluate(`(() => {${CHECK}})()`)) as { problems: string[]; checked: number };
};
const expectSoundLayout = async (page: Page, where: string) => {
  const { problems, checked } = await layoutProblems(page);
  expect(problems, `${where}: nothing overlaps, is cut or leaves the window`).toEqual([]);
  expect(checked, `${where}: the check saw the window's controls`).toBeGreaterThan(10);
};

// Content as long as a delivery can make it: a 300-character name, email and offer, a
// 200-character tag (its summary has no space to break at), a right-to-left name.
const LONG_NAME: [string, string] = ['Zénobie-' + 'Alexandrine'.repeat(13), 'Montmorency-' + 'Laval'.repeat(28)];
const LONG_EMAIL = `${'very.long.address.'.repeat(15)}end@${'sub.'.repeat(6)}example.com`;
const LONG_OFFER = 'Formation complète '.repeat(15) + 'fin';
const LONG_TAG = 'T'.repeat(200);
const RTL_NAME: [string, string] = ['مريم', 'الحسيني'];

async function longContent(server: Hookscope): Promise<void> {
  const sale = fixture('systeme-settings/sale-new');
  const body = JSON.parse(sale.text);
  body.customer.email = LONG_EMAIL;
  body.customer.fields.first_name = LONG_NAME[0];
  body.customer.fields.surname = LONG_NAME[1];
  body.pricePlan.name = LONG_OFFER;
  await server.send(tagAdded(LONG_EMAIL, LONG_TAG, LONG_NAME));
  await server.send(tagAdded('maryam@example.com', 'عميل', RTL_NAME));
  await server.send({ ...sale, body: JSON.stringify(body) });
  await server.send({ body: JSON.stringify({ type: 'x'.repeat(300) }), headers: { 'content-type': 'application/json' } });
}

/** Every action of the header: on screen, or in its menu. */
async function headerActionsReachable(page: Page, where: string) {
  const actions = ['Tunnel…', 'Export', 'Forward…', 'systeme.io…', 'Insights…'];
  const header = page.locator('header');
  const inMenu: string[] = [];
  for (const name of actions) {
    if (!(await header.getByRole('button', { name, exact: true }).isVisible())) inMenu.push(name);
  }
  if (inMenu.length > 0) {
    await page.getByTestId('more-button').click();
    for (const name of inMenu) await expect(page.getByRole('menuitem', { name, exact: true }), `${where}: ${name}`).toBeVisible();
    await expectSoundLayoutOf(page, page.getByRole('menu'), `${where}, menu open`);
    await page.getByTestId('more-button').click();
    await expect(page.getByRole('menu')).toHaveCount(0);
  }
  // The webhook URL: shown (its end at least) and copyable.
  const url = page.getByTestId(
    (await page.getByTestId('public-url').count()) > 0 ? 'public-url' : 'webhook-url',
  );
  await expect(url).toBeVisible();
  expect((await url.boundingBox())!.width, `${where}: the URL shows more than its ends`).toBeGreaterThan(90);
  await expect(header.getByRole('button', { name: /^Copy (public )?URL$/ }).first()).toBeVisible();
  return inMenu;
}

/** An open menu or dialog: inside the window, its controls apart. */
async function expectSoundLayoutOf(page: Page, part: ReturnType<Page['locator']>, where: string) {
  const box = (await part.boundingBox())!;
  const size = page.viewportSize()!;
  expect(box.x >= 0 && box.y >= 0 && box.x + box.width <= size.width && box.y + box.height <= size.height, `${where}: inside the window`).toBe(true);
  const overlaps = await part.evaluate((root) => {
    const items = [...root.querySelectorAll('button, input, select, textarea, [role=tab], [role=menuitem]')]
      .map((el) => ({ el, r: el.getBoundingClientRect() }))
      .filter(({ r }) => r.width > 2 && r.height > 2);
    const found: string[] = [];
    for (let i = 0; i < items.length; i++)
      for (let j = i + 1; j < items.length; j++) {
        const [a, b] = [items[i]!.r, items[j]!.r];
        if (Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1)
          found.push(`${items[i]!.el.textContent?.trim()} / ${items[j]!.el.textContent?.trim()}`);
      }
    return found;
  });
  expect(overlaps, `${where}: nothing overlaps`).toEqual([]);
}

test('the window holds at every size with the longest content', async ({ hookscope, watched: page }) => {
  test.setTimeout(180_000);
  await longContent(hookscope);
  await page.goto(hookscope.uiUrl);
  await expect(page.getByTestId('counts')).toContainText('4 events');
  const longContact = page.locator(`[data-testid="contact"][data-email="${LONG_EMAIL.toLowerCase()}"]`);
  const saleRow = row(page, 'New sale: 47.00 EUR, Formation complète');

  for (const tunnel of ['off', 'a public URL'] as const) {
    if (tunnel === 'a public URL') {
      const answer = await fetch(`${hookscope.uiBase}/api/tunnel`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${hookscope.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ tunnel: 'manual:https://a-rather-long-name-for-a-public-hook-host.example.com' }),
      });
      expect(answer.status).toBe(200);
      await expect(page.getByTestId('public-url')).toBeVisible();
      // And a relay that is away: the header's longest state.
      const follow = await fetch(`${hookscope.uiBase}/api/follow`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${hookscope.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: `http://127.0.0.1:${await freePort()}`, token: 'relay-token' }),
      });
      expect(follow.status).toBe(200);
      await expect(page.getByTestId('relay-state')).toContainText('Relay unreachable since');
    }
    for (const [width, height] of SIZES) {
      const where = `${width}×${height}, tunnel ${tunnel}`;
      await page.setViewportSize({ width, height });
      await longContact.click();
      await expect(page.getByTestId('timeline-title')).toHaveText(`${LONG_NAME[0]} ${LONG_NAME[1]}`);
      await expect(page.getByTestId('timeline-email')).toBeVisible();
      await saleRow.click();
      await expect(page.getByTestId('detail-summary')).toBeVisible();
      // (The store cuts summaries; the payload has the offer whole.)
      await expect(page.getByTestId('detail-summary')).toContainText('New sale: 47.00 EUR, Formation complète Formation');
      const name = `layout-${width}x${height}${tunnel === 'off' ? '' : '-tunnel'}`;
      if (width < THREE_PANES_FROM) {
        // The detail covers the timeline, with its way back; the contacts stay.
        await expect(page.getByTestId('detail-back')).toBeFocused();
        await expect(longContact).toBeVisible();
        await expectSoundLayout(page, `${where}, detail open`);
        await shot(page, `${name}-detail`);
        await page.keyboard.press('Escape');
        await expect(page.getByTestId('detail-summary')).toHaveCount(0);
        await expect(saleRow).toBeFocused();
      }
      await expect(page.getByTestId('timeline-title')).toBeVisible();
      await expectSoundLayout(page, where);
      const inMenu = await headerActionsReachable(page, where);
      // The health view is a click away at every size, and opens inside the window.
      await page.getByTestId('health-button').click();
      const health = page.getByTestId('health-dialog');
      await expect(health).toBeVisible();
      await expect(health.getByTestId('endpoint-health').first()).toBeVisible();
      await expectSoundLayoutOf(page, health, `${where}, health open`);
      await page.keyboard.press('Escape');
      await expect(health).toHaveCount(0);
      await shot(page, name);
      test.info().annotations.push({ type: 'header menu', description: `${where}: ${inMenu.join(', ') || 'none'}` });
      // An RTL name reads in its direction, cut on its own side, in the list and the title.
      await page.locator('[data-testid="contact"][data-email="maryam@example.com"]').click();
      await expect(page.getByTestId('timeline-title')).toHaveText('مريم الحسيني');
      await expectSoundLayout(page, `${where}, RTL contact`);
      // All events: the summary without spaces, the long names beside their rows.
      await page.getByRole('button', { name: 'All events' }).click();
      await expect(page.getByTestId('event')).toHaveCount(4);
      await expectSoundLayout(page, `${where}, all events`);
    }
  }

  // At the narrowest, each dialog of the menu opens inside the window.
  await page.setViewportSize({ width: 760, height: 480 });
  for (const [name, dialog] of [
    ['Forward…', page.getByRole('form', { name: 'Forward deliveries' })],
    ['systeme.io…', page.getByRole('dialog', { name: 'systeme.io account' })],
    ['Insights…', page.getByRole('dialog', { name: 'Insights' })],
  ] as const) {
    await page.getByTestId('more-button').click();
    await page.getByRole('menuitem', { name, exact: true }).click();
    await expect(dialog).toBeVisible();
    const box = (await dialog.boundingBox())!;
    expect(box.x >= 0 && box.x + box.width <= 760, `${name} opens inside the window`).toBe(true);
    if (name === 'Insights…') await shot(page, 'layout-760x480-insights');
    await page.keyboard.press('Escape');
    await expect(dialog).toHaveCount(0);
  }
});

test('the diff dialog holds at every size with the longest content', async ({ hookscope, watched: page }) => {
  test.setTimeout(120_000);
  await longContent(hookscope);
  await hookscope.send(fixture('systeme-settings/sale-new-discounted'));
  // Text bodies, line by line, one line as long as a delivery can make it.
  const text = (lines: string[]) => ({ body: lines.join('\n'), headers: { 'content-type': 'text/plain' } });
  await hookscope.send(text(['ping', 'from a monitoring job', 'ok']));
  await hookscope.send(text(['ping', 'from ' + 'a-very-long-job-name'.repeat(40), 'ok']));
  await page.goto(hookscope.uiUrl);
  await expect(page.getByTestId('counts')).toContainText('7 events');
  const dialog = page.getByRole('dialog', { name: 'Compare deliveries' });
  const pairs = [
    ['JSON', row(page, 'New sale: 47.00 EUR, Formation complète'), row(page, 'New sale: 27.00 EUR')],
    ['text', row(page, 'from a monitoring job'), row(page, 'a-very-long-job-name')],
  ] as const;
  for (const [kind, one, two] of pairs) {
    await page.setViewportSize({ width: 1440, height: 900 });
    await one.click({ modifiers: ['Control'] });
    await two.click({ modifiers: ['Control'] });
    for (const [width, height] of SIZES) {
      const where = `${width}×${height}, ${kind} diff`;
      await page.setViewportSize({ width, height });
      await page.getByRole('button', { name: 'Compare 2 picked' }).click();
      await expect(dialog.getByTestId(kind === 'JSON' ? 'diff-path' : 'diff-line').first()).toBeVisible();
      await dialog.locator('details.folded summary').click();
      // The dialog covers the window: only its own controls are there to check.
      const { problems, checked } = await layoutProblems(page);
      expect(problems, `${where}: nothing overlaps, is cut or leaves the window`).toEqual([]);
      expect(checked, `${where}: the check saw the dialog's controls`).toBeGreaterThanOrEqual(2);
      await expectSoundLayoutOf(page, dialog, where);
      await shot(page, `layout-${width}x${height}-diff-${kind.toLowerCase()}`);
      await page.keyboard.press('Escape');
      await expect(dialog).toHaveCount(0);
    }
    await page.getByRole('button', { name: 'Unpick' }).click();
  }
});

test('menus and dialogs close on Esc, ahead of the detail, and menus on a press outside', async ({ hookscope, watched: page }) => {
  await hookscope.send(tagAdded('esc@example.com', 'Escape'));
  await page.setViewportSize({ width: 760, height: 480 });
  await page.goto(hookscope.uiUrl);
  await row(page, 'Tag added: Escape').click();
  await expect(page.getByTestId('detail-back')).toBeFocused();
  const more = page.getByTestId('more-button');
  const menu = page.getByRole('menu', { name: 'More actions' });
  // The contact list's empty foot: outside every menu, and pressing it changes nothing.
  const pressOutside = () => page.mouse.click(10, 470);

  // Esc closes the open menu only: the detail that covers the timeline stays.
  await more.click();
  await expect(menu).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(menu).toHaveCount(0);
  await expect(more).toBeFocused();
  await expect(page.getByTestId('detail-summary')).toBeVisible();
  // A press outside closes it too; the toggle itself still opens and closes it.
  await more.click();
  await pressOutside();
  await expect(menu).toHaveCount(0);
  await more.click();
  await more.click();
  await expect(menu).toHaveCount(0);

  // A dialog being filled in closes on Esc (a press outside leaves it: it holds input).
  await more.click();
  await page.getByRole('menuitem', { name: 'Forward…', exact: true }).click();
  const forward = page.getByRole('form', { name: 'Forward deliveries' });
  await page.getByLabel('Forward target URL').fill('http://localhost:3000/hook');
  await pressOutside();
  await expect(forward).toBeVisible();
  await page.getByLabel('Forward target URL').press('Escape');
  await expect(forward).toHaveCount(0);
  await expect(page.getByTestId('detail-summary')).toBeVisible();

  // Export: Esc, and a press outside.
  const exportButton = page.getByRole('button', { name: 'Export', exact: true });
  const exportDialog = page.getByRole('dialog', { name: 'Export events' });
  await exportButton.click();
  await expect(exportDialog).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(exportDialog).toHaveCount(0);
  await exportButton.click();
  await pressOutside();
  await expect(exportDialog).toHaveCount(0);

  // With nothing open, Esc is the window's again: back from the detail.
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('detail-summary')).toHaveCount(0);
});

test('pane sizes are dragged, kept across a reload, and never squeeze a pane away', async ({ hookscope, watched: page }) => {
  await hookscope.send(tagAdded('panes@example.com', 'Panes'));
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto(hookscope.uiUrl);
  const contacts = page.getByRole('navigation', { name: 'Contacts' });
  await expect(contacts).toBeVisible();
  const before = (await contacts.boundingBox())!.width;
  const divider = page.getByRole('separator', { name: 'Resize the contact list' });
  const handle = (await divider.boundingBox())!;
  await page.mouse.move(handle.x + handle.width / 2, handle.y + 200);
  await page.mouse.down();
  await page.mouse.move(handle.x + 120, handle.y + 220, { steps: 8 });
  await page.mouse.up();
  const dragged = (await contacts.boundingBox())!.width;
  expect(dragged, 'the contact list widened by the drag').toBeGreaterThan(before + 80);
  // Kept once the drag settles (paneforge writes it 100 ms later).
  const savedContactsShare = () =>
    page.evaluate(() => {
      const saved = JSON.parse(localStorage.getItem('paneforge:hookscope-panes') ?? '{}') as Record<string, { layout: number[] }>;
      return Math.max(0, ...Object.values(saved).map((entry) => entry.layout[0] ?? 0));
    });
  const share = (dragged / (await page.locator('.columns').boundingBox())!.width) * 100;
  await expect.poll(savedContactsShare).toBeCloseTo(share, 0);
  await page.reload();
  await expect(contacts).toBeVisible();
  await expect.poll(async () => Math.round((await contacts.boundingBox())!.width), { message: 'the width is remembered' }).toBe(
    Math.round(dragged),
  );
  // Dragged all the way, every pane keeps room to be used; the keyboard moves it too.
  await page.mouse.move(handle.x + 120, handle.y + 200);
  await page.mouse.down();
  await page.mouse.move(1430, handle.y + 200, { steps: 8 });
  await page.mouse.up();
  await expect(page.getByTestId('timeline-title')).toBeVisible();
  await expectSoundLayout(page, 'contacts dragged wide');
  await divider.focus();
  const widest = (await contacts.boundingBox())!.width;
  await page.keyboard.press('ArrowLeft');
  expect((await contacts.boundingBox())!.width).toBeLessThan(widest);
});

test('the timeline reads as time: day headers, time of day, recent ages', async ({ watched: page }) => {
  // A store with history: today, yesterday, three days ago, last year.
  const now = new Date();
  test.skip(now.getHours() * 60 + now.getMinutes() < 11, 'ten minutes ago would be yesterday');
  const dataDir = mkdtempSync(join(tmpdir(), 'hookscope-days-'));
  const at = (daysAgo: number, hours: number, minutes: number) =>
    new Date(now.getFullYear(), now.getMonth(), now.getDate() - daysAgo, hours, minutes, 7);
  const today = new Date(now.getTime() - 10 * 60_000);
  const yesterday = at(1, 14, 5);
  const threeDaysAgo = at(3, 9, 30);
  const lastYear = new Date(now.getFullYear() - 1, 5, 15, 8, 45, 0);
  // Yesterday's 35 rows push the older days below the fold (the sticky header is tried there).
  const history = [
    { receivedAt: today, body: tagAddedBody('days@example.com', 'Ten minutes ago'), id: 'day-0' },
    ...Array.from({ length: 35 }, (_, i) => ({
      receivedAt: new Date(yesterday.getTime() - i * 1000),
      body: tagAddedBody('days@example.com', i === 0 ? 'Yesterday afternoon' : `Yesterday ${i}`),
      id: `day-1-${String(i).padStart(2, '0')}`,
    })),
    { receivedAt: threeDaysAgo, body: tagAddedBody('days@example.com', 'Three days ago'), id: 'day-3' },
    // Enough of last year's that they fill the list once scrolled to the end.
    ...Array.from({ length: 30 }, (_, i) => ({
      receivedAt: new Date(lastYear.getTime() - i * 1000),
      body: tagAddedBody('days@example.com', `Last year ${i}`),
      id: `day-365-${String(i).padStart(2, '0')}`,
    })),
  ];
  importEvents(dataDir, history);
  const server = await new Hookscope(dataDir).start();
  try {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(server.uiUrl);
    const headers = page.getByTestId('day-header');
    await expect(headers.first()).toHaveText('Today');
    await expect(headers.nth(1)).toHaveText('Yesterday');
    const local = (date: Date, options: Intl.DateTimeFormatOptions) => page.evaluate(
      ([iso, o]) => new Date(iso as string).toLocaleString(undefined, o as Intl.DateTimeFormatOptions),
      [date.toISOString(), options] as const,
    );
    const time = (date: Date) => local(date, { hour: 'numeric', minute: '2-digit' });

    // Each row: its local time of day; the recent one also its age; the exact time on hover.
    const recent = row(page, 'Ten minutes ago');
    await expect(recent.getByTestId('event-time')).toHaveText(await time(today));
    await expect(recent.getByTestId('event-age')).toHaveText('· 10 min ago');
    const pad = (n: number, w = 2) => String(n).padStart(w, '0');
    const exact = (d: Date) =>
      `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
    await expect(recent.getByTestId('event-time')).toHaveAttribute('title', exact(today));
    const older = row(page, 'Yesterday afternoon');
    await expect(older.getByTestId('event-time')).toHaveText(await time(yesterday));
    await expect(older.getByTestId('event-age'), 'an older row needs no age: its day and time say it').toHaveCount(0);

    // Scrolled down, the day of the rows on top stays in view.
    const sticky = page.getByTestId('sticky-day');
    await expect(sticky).toHaveText('Today');
    const list = page.getByRole('region', { name: 'Timeline' });
    const box = (await list.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, 400);
    await expect(sticky).toHaveText('Yesterday');
    // Further down, each day's header passes by in order, then stays on top.
    const weekday = await local(threeDaysAgo, { weekday: 'long', day: 'numeric', month: 'long' });
    const withYear = await local(lastYear, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
    await page.mouse.wheel(0, -10_000);
    await expect(sticky).toHaveText('Today');
    const passed: string[] = [];
    for (let step = 0; step < 40 && !passed.includes(withYear); step++) {
      for (const text of await headers.allTextContents()) if (!passed.includes(text.trim())) passed.push(text.trim());
      await page.mouse.wheel(0, 250);
      await page.waitForTimeout(60);
    }
    expect(passed, 'weekday and date, with the year for another year').toEqual(['Today', 'Yesterday', weekday, withYear]);
    await page.mouse.wheel(0, 4000);
    await expect(sticky).toHaveText(withYear);
    await shot(page, 'timeline-days');

    // The same in a contact's timeline, and a retry still folds under its first attempt.
    const sale = fixture('systeme-settings/sale-new');
    await server.send(sale);
    await server.send({ ...sale, headers: { ...sale.headers, 'x-webhook-delivery-attempt-id': 'second-attempt' } });
    await page.locator('[data-testid="contact"][data-email="marie.dupont@example.fr"]').click();
    await expect(page.getByTestId('event')).toHaveCount(1);
    await expect(page.getByTestId('attempts-badge')).toHaveText('2 attempts');
    await expect(page.getByTestId('day-header')).toHaveText(['Today']);
    await expect(row(page, 'Blog qui rapporte').getByTestId('event-age')).toHaveText('· just now');
  } finally {
    await server.dispose();
  }
});

test('a popover whose action is done closes and leaves the controls beside it free, at every size', async ({ hookscope, watched: page }) => {
  const handler = createHttpServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(200).end('ok'));
  });
  const port = await new Promise<number>((done) => handler.listen(0, '127.0.0.1', () => done((handler.address() as { port: number }).port)));
  try {
    await hookscope.send(tagAdded('one@example.com', 'First pick'));
    await hookscope.send(tagAdded('two@example.com', 'Second pick'));
    await page.goto(hookscope.uiUrl);
    for (const [width, height] of SIZES) {
      const where = `${width}x${height}`;
      await page.setViewportSize({ width, height });
      await row(page, 'Tag added: First pick').click({ modifiers: ['Control'] });
      await row(page, 'Tag added: Second pick').click({ modifiers: ['Control'] });
      const replay = page.getByRole('button', { name: 'Replay 2 picked…' });
      const popover = page.getByRole('form', { name: 'Replay the timeline' });
      await replay.click();
      await page.getByLabel('Replay timeline to').fill(`http://127.0.0.1:${port}/hook`);
      await popover.getByRole('button', { name: 'Replay', exact: true }).click();
      await expect(page.getByTestId('timeline-replay'), where).toHaveText('2 of 2 events answered');
      await expect(popover, `${where}: done, the popover closes`).toHaveCount(0);
      // Nothing covers Unpick: a trial press fails when another element would take it.
      await page.getByRole('button', { name: 'Unpick' }).click({ trial: true, timeout: 2_000 });
      await expectSoundLayout(page, `${where}, after a replay`);
      // Opened again and left with Esc: closed too.
      await replay.click();
      await expect(popover).toBeVisible();
      await page.keyboard.press('Escape');
      await expect(popover, `${where}: Esc closes it`).toHaveCount(0);
      await page.getByRole('button', { name: 'Unpick' }).click();
      await expect(replay).toHaveCount(0);

      // A test event sent: its popover closes as well.
      await page.getByRole('button', { name: 'Test event…' }).click();
      const testEvent = page.getByRole('form', { name: 'Send a test event' });
      await testEvent.getByRole('button', { name: 'Send test event' }).click();
      await expect(testEvent, `${where}: a sent test event closes its popover`).toHaveCount(0);
      await page.getByRole('button', { name: 'Test event…' }).click({ trial: true, timeout: 2_000 });
    }
  } finally {
    handler.closeAllConnections();
    await new Promise((done) => handler.close(done));
  }
});
