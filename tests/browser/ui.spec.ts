import { createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer as createHttpServer } from 'node:http';
import { join } from 'node:path';
import { expect, type Page } from '@playwright/test';
import { allFixtures, fixture, freePort, Hookscope, systemeStandIn, tagAdded } from './hookscope.ts';
import { headerAction, row, shot, test } from './watched.ts';

test('deliveries appear live on the right contact, pretty and raw', async ({ hookscope, watched: page }) => {
  await page.goto(hookscope.uiUrl);
  await expect(page).not.toHaveURL(/token=/);
  await expect(page.getByTestId('empty-state')).toBeVisible();
  await expect(page.getByTestId('listener-status')).toHaveText('Listening');
  await shot(page, 'empty-state');

  const sale = fixture('systeme-automation/sale-completed');
  await hookscope.send(sale);
  const saleSummary = 'New sale: 5.83 EUR, Comment créer un blog qui rapporte';
  await expect(row(page, saleSummary)).toBeVisible();
  const contact = page.locator('[data-testid="contact"][data-email="test-1922@systeme.io"]');
  await expect(contact).toBeVisible();
  await expect(page.getByTestId('counts')).toContainText('1 events');

  await contact.click();
  await expect(page.getByTestId('timeline-title')).toHaveText('test-1922 test-1922');
  await hookscope.send(tagAdded('someone.else@example.com', 'Elsewhere'));
  await hookscope.send(tagAdded('TEST-1922@Systeme.io', 'Buyer'));
  await expect(row(page, 'Tag added: Buyer')).toBeVisible();
  await expect(page.getByTestId('event')).toHaveCount(2);
  await expect(contact).toContainText('2');

  await row(page, saleSummary).click();
  await expect(page.getByTestId('detail-summary')).toHaveText(saleSummary);
  const panel = page.getByTestId('tab-panel');
  await expect(panel).toContainText('"Comment créer un blog qui rapporte"');
  await expect(panel).not.toContainText('\\u00e9');
  await shot(page, 'contact-timeline');
  await page.getByTestId('tab-raw').click();
  await expect(page.getByTestId('raw-body')).toHaveText(sale.text);
  await expect(page.getByTestId('raw-body')).toContainText('Comment cr\\u00e9er un blog qui rapporte');
  await shot(page, 'detail-raw');

  await page.getByRole('button', { name: 'All events' }).click();
  await hookscope.send(fixture('systeme-automation/page-visited'));
  await row(page, 'Page visited').click();
  await page.getByTestId('tab-pretty').click();
  await expect(panel).toContainText('"Thank You / Download Page"');
  await page.getByTestId('tab-raw').click();
  await expect(page.getByTestId('raw-body')).toContainText('Thank You \\/ Download Page');
  await page.getByTestId('tab-headers').click();
  await expect(panel).toContainText('Symfony');
});

test('search by email finds a contact that is not on screen', async ({ hookscope, watched: page }) => {
  await hookscope.send(tagAdded('Needle.Person@Example.org', 'Oldest', ['Needle', 'Person']));
  const crowd = Array.from({ length: 150 }, (_, i) => tagAdded(`person${String(i).padStart(3, '0')}@example.com`, `T${i}`));
  for (let i = 0; i < crowd.length; i += 25) await Promise.all(crowd.slice(i, i + 25).map((d) => hookscope.send(d)));

  await page.goto(hookscope.uiUrl);
  await expect(page.getByTestId('counts')).toContainText('151 contacts');
  const needle = page.locator('[data-email="needle.person@example.org"]');
  await expect(needle).toHaveCount(0);

  await page.keyboard.press('/');
  await expect(page.getByLabel('Search contacts by email or name')).toBeFocused();
  await page.keyboard.type('nEEDLE.person@EXAMPLE');
  await expect(needle).toBeVisible();
  await expect(page.getByTestId('contact')).toHaveCount(1);
  await shot(page, 'search');
  await needle.click();
  await expect(row(page, 'Tag added: Oldest')).toBeVisible();

  await page.getByLabel('Search contacts by email or name').fill('nobody-like-this');
  await expect(page.getByTestId('contacts-empty')).toContainText('No contact matches');
  await page.keyboard.press('Escape');
  await expect(page.getByLabel('Search contacts by email or name')).toHaveValue('');
  await expect(page.getByTestId('contact').first()).toBeVisible();
});

test('export downloads valid JSON holding the exact bytes', async ({ hookscope, watched: page }) => {
  const names = allFixtures();
  for (const name of names) await hookscope.send(fixture(name));
  await page.goto(hookscope.uiUrl);
  await expect(page.getByTestId('counts')).toContainText(`${names.length} events`);

  await page.getByRole('button', { name: 'Export', exact: true }).click();
  const [all] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download', exact: true }).click()]);
  expect(all.suggestedFilename()).toMatch(/^hookscope-export-.*\.json$/);
  const text = readFileSync((await all.path())!, 'utf8');
  const events = JSON.parse(text) as { body?: unknown }[];
  expect(events).toHaveLength(names.length);
  expect(text).toContain(fixture('systeme-automation/sale-completed').text);
  expect(text).toContain(fixture('systeme-settings/sale-new').text);

  await page.locator('[data-email="marie.dupont@example.fr"]').click();
  await page.getByRole('button', { name: 'Export', exact: true }).click();
  await page.getByLabel(/This contact/).check();
  await page.getByLabel(/NDJSON/).check();
  const [one] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download', exact: true }).click()]);
  const lines = readFileSync((await one.path())!, 'utf8').trim().split('\n');
  expect(lines).toHaveLength(9);
  for (const line of lines) expect(JSON.parse(line).contact_key).toBe('marie.dupont@example.fr');
});

test('hostile payloads render as text everywhere', async ({ hookscope, watched: page }) => {
  await page.addInitScript(() => {
    (window as unknown as { __pwned: number }).__pwned = 0;
  });
  await page.goto(hookscope.uiUrl);
  const attack = '<img src=x onerror="window.__pwned++">';
  await hookscope.send(fixture('generic/xss-tag-added'));
  await hookscope.send({
    body: JSON.stringify({
      type: `contact.tag.added`,
      data: {
        tag: { name: attack },
        contact: { email: 'x"><svg onload=window.__pwned++>@example.com', fields: { first_name: 'javascript:window.__pwned++', surname: '<script>window.__pwned++</script>' } },
      },
    }),
    headers: { 'content-type': 'application/json', 'x-evil': '<iframe src=javascript:window.__pwned++>' },
    suffix: '/%3Cscript%3E?q=<b>x</b>',
  });
  await expect(row(page, `Tag added: ${attack}`)).toBeVisible();
  await row(page, `Tag added: ${attack}`).click();
  for (const tab of ['pretty', 'raw', 'headers']) {
    await page.getByTestId(`tab-${tab}`).click();
    await expect(page.getByTestId('tab-panel')).toBeVisible();
  }
  await expect(page.getByTestId('tab-panel')).toContainText('<iframe src=javascript:window.__pwned++>');
  await page.locator('[data-testid="contact"]').first().click();
  await shot(page, 'hostile');
  const injected = await page.evaluate(() => ({
    pwned: (window as unknown as { __pwned: number }).__pwned,
    elements: document.querySelectorAll('#app img, #app script, #app svg, #app iframe, #app b').length,
  }));
  expect(injected).toEqual({ pwned: 0, elements: 0 });
});

test('characters that reorder or hide text are written out, not obeyed', async ({ hookscope, watched: page }) => {
  await page.goto(hookscope.uiUrl);
  // U+202E turns what follows around: Ann, U+202E, gpj.exe would read "Annexe.jpg".
  await hookscope.send(tagAdded('ann\u200b@example.com', 'Spoof\u2066', ['Ann\u202egpj.exe', 'Lee']));
  await expect(row(page, 'Tag added: Spoof')).toContainText('· Ann⟨U+202E⟩gpj.exe Lee ·');
  await expect(row(page, 'Tag added: Spoof')).toContainText('Tag added: Spoof⟨U+2066⟩');
  const contact = page.getByTestId('contact').filter({ hasText: 'Lee' });
  await expect(contact).toContainText('Ann⟨U+202E⟩gpj.exe Lee');
  await expect(contact).toContainText('ann⟨U+200B⟩@example.com');
  await contact.click();
  await expect(page.getByTestId('timeline-title')).toHaveText('Ann⟨U+202E⟩gpj.exe Lee');
  await expect(page.getByTestId('card-tags')).toHaveText('Spoof⟨U+2066⟩');
  await row(page, 'Tag added: Spoof').click();
  await expect(page.getByTestId('detail-meta')).toContainText('Ann⟨U+202E⟩gpj.exe Lee · ');
  await expect(page.getByTestId('detail-summary')).toHaveText('Tag added: Spoof⟨U+2066⟩');
  await page.getByTestId('tab-pretty').click();
  await expect(page.getByTestId('tab-panel')).toContainText('"first_name": "Ann\\u202egpj.exe"');
  await expect(page.getByTestId('tab-panel')).toContainText('"email": "ann\\u200b@example.com"');
  await shot(page, 'invisible-characters');

  // The form view and the Headers tab too (security review, finding 6).
  await page.getByRole('button', { name: 'All events' }).click();
  await rawDelivery(hookscope.webhookUrl, 'POST', '', [['content-type', 'application/x-www-form-urlencoded'], ['x-file', 'Ann\u202egpj.exe']], Buffer.from('attachment=Annexe%E2%80%AEgpj.exe&na%E2%80%8Bme=x'));
  await row(page, 'Form').click();
  await page.getByTestId('tab-pretty').click();
  await expect(page.getByTestId('tab-panel')).toContainText('Annexe⟨U+202E⟩gpj.exe');
  await expect(page.getByTestId('tab-panel')).toContainText('na⟨U+200B⟩me');
  await page.getByTestId('tab-raw').click();
  await expect(page.getByTestId('raw-body')).toHaveText('attachment=Annexe%E2%80%AEgpj.exe&na%E2%80%8Bme=x');
  await page.getByTestId('tab-headers').click();
  await expect(page.getByTestId('tab-panel')).toContainText('Ann⟨U+202E⟩gpj.exe');
  await expect(page.getByTestId('tab-panel')).not.toContainText('\u202e');
});

test('a full disk is shown in the window until deliveries are stored again', async ({ watched: page }) => {
  test.skip(process.getuid?.() !== 0, 'mounting a small tmpfs needs root (make test on a fresh machine runs as root)');
  const disk = mkdtempSync(join(tmpdir(), 'hookscope-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', disk]);
  const server = new Hookscope(join(disk, 'data'));
  try {
    await server.start();
    await page.goto(server.uiUrl);
    await server.send(tagAdded('before@example.com', 'Before'));
    await expect(row(page, 'Tag added: Before')).toBeVisible();
    await expect(page.getByTestId('store-trouble')).toHaveCount(0);

    const filler = join(disk, 'filler');
    const fd = openSync(filler, 'w');
    try {
      for (const block = Buffer.alloc(64 * 1024); ; ) writeSync(fd, block);
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }
    const post = (n: number) =>
      fetch(server.webhookUrl, { method: 'POST', body: JSON.stringify({ type: 'contact.tag.added', n, padding: 'x'.repeat(8192) }) });
    let refused = 0;
    for (let n = 0; n < 400 && refused < 3; n++) if ((await post(n)).status === 503) refused++;
    expect(refused, 'a full disk refuses deliveries').toBe(3);
    const notice = page.getByTestId('store-trouble');
    await expect(notice).toContainText('The disk is full');
    await expect(notice).toContainText(/\d+ deliveries refused since/);
    await expect(notice).toContainText('503');
    await shot(page, 'disk-full');

    unlinkSync(filler);
    await expect.poll(async () => (await post(1000)).status, { timeout: 10_000 }).toBe(200);
    await expect(notice).toHaveCount(0);
  } finally {
    await server.stop();
    execFileSync('umount', ['-l', disk]);
    rmSync(disk, { recursive: true, force: true });
  }
});

test('keyboard moves through events', async ({ hookscope, watched: page }) => {
  for (const tag of ['one', 'two', 'three']) await hookscope.send(tagAdded('keys@example.com', tag));
  await page.goto(hookscope.uiUrl);
  const selected = page.locator('[data-testid="event"].selected');
  await expect(selected).toContainText('Tag added: three');
  await page.keyboard.press('j');
  await expect(selected).toContainText('Tag added: two');
  await page.keyboard.press('ArrowDown');
  await expect(selected).toContainText('Tag added: one');
  await page.keyboard.press('ArrowDown');
  await expect(selected).toContainText('Tag added: one');
  await page.keyboard.press('k');
  await expect(selected).toContainText('Tag added: two');
  await expect(page.getByTestId('detail-summary')).toHaveText('Tag added: two');
});

test('a server that goes away is shown and caught up with when it returns', async ({ watched: page }) => {
  const [ingest, ui] = [await freePort(), await freePort()];
  const first = await new Hookscope(undefined, `127.0.0.1:${ingest}`, `127.0.0.1:${ui}`).start();
  try {
    await page.goto(first.uiUrl);
    await expect(page.getByTestId('listener-status')).toHaveText('Listening');
    await first.stop('SIGKILL');
    await expect(page.getByTestId('listener-status')).toHaveText('Reconnecting…');
    await expect(page.getByRole('alert')).toContainText('Reconnecting');
    await shot(page, 'reconnecting');

    const second = await new Hookscope(first.dataDir, `127.0.0.1:${ingest}`, `127.0.0.1:${ui}`).start();
    await second.send(tagAdded('back@example.com', 'While away'));
    await expect(page.getByTestId('listener-status')).toHaveText('Listening', { timeout: 20_000 });
    await expect(row(page, 'Tag added: While away')).toBeVisible();
    await expect(page.getByRole('alert')).toHaveCount(0);
    await second.send(tagAdded('back@example.com', 'After'));
    await expect(row(page, 'Tag added: After')).toBeVisible();
    await second.dispose();
  } finally {
    await first.dispose();
  }
});

test('a delivery arriving while you read further down does not move the page', async ({ hookscope, watched: page }) => {
  const many = Array.from({ length: 60 }, (_, i) => tagAdded('reader@example.com', `Old ${i}`));
  for (const delivery of many) await hookscope.send(delivery);
  await page.goto(hookscope.uiUrl);
  await expect(row(page, 'Tag added: Old 59')).toBeVisible();
  const timeline = page.getByRole('region', { name: 'Timeline' });
  const box = (await timeline.boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.wheel(0, 1200);
  await expect(page.getByTestId('new-pill')).toHaveCount(0);
  const rowAt = () =>
    page.evaluate(
      ([x, y]) => document.elementFromPoint(x!, y!)?.closest('[data-testid="event"]')?.getAttribute('data-id') ?? null,
      [box.x + 40, box.y + 200],
    );
  // The wheel scrolls asynchronously: read the row once the page has come to rest.
  let reading: string | null = null;
  await expect
    .poll(async () => {
      const before = await rowAt();
      await page.waitForTimeout(150);
      reading = await rowAt();
      return before !== null && before === reading;
    }, { message: 'the timeline comes to rest on a row' })
    .toBe(true);

  await hookscope.send(tagAdded('reader@example.com', 'Brand new'));
  await expect(page.getByTestId('new-pill')).toHaveText('↑ 1 new');
  expect(await rowAt(), 'the row under the reader stays the same').toBe(reading);
  await shot(page, 'new-pill');

  await page.getByTestId('new-pill').click();
  await expect(row(page, 'Tag added: Brand new')).toBeInViewport();
  await expect(page.getByTestId('new-pill')).toHaveCount(0);
});

test('a tunnel is chosen in the window, its URL shown, and a changed URL announced', async ({ hookscope, watched: page }) => {
  await page.goto(hookscope.uiUrl);
  await expect(page.getByTestId('tunnel-state')).toHaveText('No tunnel');
  const choose = async (kind: RegExp, url?: string) => {
    await page.getByRole('button', { name: 'Tunnel…' }).click();
    await page.getByLabel(kind).check();
    if (url !== undefined) await page.getByLabel('Public base URL').fill(url);
    await page.getByRole('button', { name: 'Use this tunnel' }).click();
  };
  await choose(/My own public URL/, 'ftp://nope');
  await expect(page.getByRole('alert').filter({ hasText: 'not an http' })).toBeVisible();
  // Started without a proxy listener: the window says how to get one.
  await expect(page.getByTestId('proxy-hint')).toContainText('HOOKSCOPE_PROXY=127.0.0.1:4749');
  await page.getByLabel('Public base URL').fill('https://first.example');
  await page.getByRole('button', { name: 'Use this tunnel' }).click();
  const token = hookscope.webhookUrl.split('/h/')[1];
  await expect(page.getByTestId('public-url')).toHaveText(`https://first.example/h/${token}`);
  await expect(page.getByTestId('tunnel-state')).toHaveText('Public');
  await expect(page.getByTestId('tunnel-notice')).toHaveCount(0);

  await choose(/My own public URL/, 'https://second.example/');
  const notice = page.getByTestId('tunnel-notice');
  await expect(notice).toContainText('Your public webhook URL changed');
  await expect(notice).toContainText(`https://second.example/h/${token}`);
  await expect(notice).toContainText(`was https://first.example/h/${token}`);
  await shot(page, 'tunnel-changed');
  await notice.getByRole('button', { name: 'Done' }).click();
  await expect(notice).toHaveCount(0);

  // The choice is the server's: a reload shows it, and the API agrees.
  await page.reload();
  await expect(page.getByTestId('public-url')).toHaveText(`https://second.example/h/${token}`);
  const tunnel = await hookscope.api<{ choice: string }>('/api/tunnel');
  expect(tunnel.choice).toBe('manual:https://second.example');

  // A tunnel that cannot start says why and what to do.
  await choose(/ngrok/);
  await expect(page.getByTestId('tunnel-state')).toHaveText('Tunnel failed');
  await expect(page.getByTestId('tunnel-notice')).toContainText('ngrok needs your authtoken.');
  await expect(page.getByTestId('tunnel-notice')).toContainText('dashboard.ngrok.com');
  await expect(page.getByTestId('public-url')).toHaveCount(0);
});

test('with a proxy listener, the window says where your own tunnel should point', async ({ watched: page }) => {
  const hookscope = await new Hookscope().start({ HOOKSCOPE_PROXY: '127.0.0.1:0' });
  try {
    const tunnel = await hookscope.api<{ proxy_listener: string | null }>('/api/tunnel');
    expect(tunnel.proxy_listener).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(tunnel.proxy_listener).not.toBe(new URL(hookscope.webhookUrl).origin);
    await page.goto(hookscope.uiUrl);
    await page.getByRole('button', { name: 'Tunnel…' }).click();
    await page.getByLabel(/My own public URL/).check();
    await expect(page.getByTestId('proxy-hint')).toHaveText(
      `Point your tunnel or proxy at ${tunnel.proxy_listener}: the sender it appends to X-Forwarded-For is checked against systeme.io's addresses.`,
    );
  } finally {
    await hookscope.dispose();
  }
});

test('signatures are shown, checked once the secret is set, and filtered', async ({ hookscope, watched: page }) => {
  const sale = fixture('systeme-settings/sale-new');
  await hookscope.send(sale);
  await hookscope.send(tagAdded('plain@example.com', 'Unsigned'));
  const tampered = { ...sale, body: sale.text.replaceAll('Blog qui rapporte', 'Blog changed') };
  await page.goto(hookscope.uiUrl);
  const badges = page.getByTestId('signature-badge');
  await expect(badges).toHaveCount(1);
  await expect(badges).toHaveText('signed, no secret');

  await row(page, 'Blog qui rapporte').click();
  await expect(page.getByTestId('signature')).toContainText('no secret is set');
  await page.getByLabel('Endpoint secret').fill('not the secret');
  await page.getByRole('button', { name: 'Set secret' }).click();
  await expect(page.getByTestId('signature')).toContainText('INVALID');
  await page.getByLabel('Endpoint secret').fill('whsec-test-0123456789abcdef');
  await page.getByRole('button', { name: 'Set secret' }).click();
  await expect(page.getByTestId('signature')).toContainText('Valid');
  await expect(row(page, 'Blog qui rapporte').getByTestId('signature-badge')).toHaveText('signed ✓');

  // A delivery changed on the way is loud, live, and found by the filter.
  await hookscope.send(tampered);
  await expect(row(page, 'Blog changed').getByTestId('signature-badge')).toHaveText('invalid signature');
  await page.getByLabel('Delivery filter').selectOption('invalid');
  await expect(page.getByTestId('event')).toHaveCount(1);
  await expect(page.getByTestId('event')).toContainText('Blog changed');
  await shot(page, 'signatures');
  await page.getByLabel('Delivery filter').selectOption('');
  await expect(page.getByTestId('event')).toHaveCount(3);

  // A delivery that failed verification counts for nothing: the card and Insights say so
  // and lead to it. (Another order, so it would be a purchase of its own.)
  await hookscope.send({ ...sale, body: sale.text.replace('7771001', '7771999').replace('4700', '99900') });
  await page.locator('[data-email="marie.dupont@example.fr"]').click();
  await expect(page.getByTestId('card-not-counted')).toContainText('2 deliveries not counted: signature invalid');
  await expect(page.getByTestId('card-purchases').getByRole('listitem')).toHaveCount(1);
  await page.getByTestId('card-not-counted').getByRole('button', { name: 'Show them' }).click();
  await expect(page.getByTestId('event')).toHaveCount(2);
  await page.getByLabel('Delivery filter').selectOption('');
  await headerAction(page, 'Insights…');
  await expect(page.getByTestId('funnels-not-counted')).toContainText('2 deliveries not counted: signature invalid');
  await page.getByTestId('funnels-not-counted').getByRole('button', { name: 'Show them' }).click();
  await expect(page.getByTestId('event')).toHaveCount(2);
  await expect(page.getByLabel('Delivery filter')).toHaveValue('invalid');
});

test('retries of one message and repeated automation bodies are marked, not dropped', async ({ hookscope, watched: page }) => {
  await page.goto(hookscope.uiUrl);
  const sale = fixture('systeme-settings/sale-new');
  const count = page.locator('[data-email="marie.dupont@example.fr"] .count');
  await hookscope.send(sale);
  // On screen before the retry arrives, so the retry reaches it live.
  await expect(count).toHaveText('1');
  await hookscope.send({ ...sale, headers: { ...sale.headers, 'x-webhook-delivery-attempt-id': 'second-attempt' } });
  const tag = tagAdded('twice@example.com', 'Twice');
  await hookscope.send(tag);
  await hookscope.send(tag);
  // The retry sits folded under its first attempt: one row per message.
  await expect(page.getByTestId('event')).toHaveCount(3);
  await expect(page.getByTestId('attempts-badge')).toHaveText('2 attempts');
  await expect(page.getByTestId('repeat-badge')).toHaveText('probable repeat');
  await page.getByTestId('repeat-badge').click();
  await expect(page.getByTestId('repeat')).toContainText('Same body as an earlier delivery');
  await page.getByTestId('attempts-badge').click();
  await expect(page.getByTestId('attempts').getByRole('listitem')).toHaveCount(2);
  await page.getByRole('button', { name: 'Show each attempt in the timeline' }).click();
  await expect(page.getByTestId('event')).toHaveCount(4);
  await page.getByTestId('attempt-badge').click();
  await expect(page.getByTestId('attempt')).toContainText('attempt 2');
  // One message, counted once, live as in the store.
  await expect(count).toHaveText('1');
});


test('diff: two picked sales show the changed price, a retry compares with its previous attempt', async ({ hookscope, watched: page }) => {
  const sale = fixture('systeme-settings/sale-new');
  await hookscope.send(sale);
  await hookscope.send(fixture('systeme-settings/sale-new-discounted'));
  await page.goto(hookscope.uiUrl);
  const dialog = page.getByRole('dialog', { name: 'Compare deliveries' });
  const price = dialog.locator('[data-testid="diff-path"][data-path="order.totalPrice"]');

  // Two picked with Ctrl-click, compared older first.
  await row(page, 'New sale: 47.00 EUR').click({ modifiers: ['Control'] });
  await expect(page.getByRole('button', { name: 'Compare 2 picked' })).toHaveCount(0);
  await row(page, 'New sale: 27.00 EUR').click({ modifiers: ['Control'] });
  await page.getByRole('button', { name: 'Compare 2 picked' }).click();
  await expect(dialog).toBeVisible();
  await expect(dialog.getByTestId('diff-close')).toBeFocused();
  await expect(dialog.getByTestId('diff-side-a')).toContainText('New sale: 47.00 EUR');
  await expect(price.getByLabel('a', { exact: true })).toHaveText('4700');
  await expect(price.getByLabel('b', { exact: true })).toHaveText('2700');
  await expect(price).toContainText('changed');
  const dropped = dialog.locator('[data-testid="diff-path"][data-path="customer.fields.country"]');
  await expect(dropped).toContainText('only in a');
  await expect(dropped.getByLabel('a', { exact: true })).toHaveText('"FR"');
  await expect(dialog.getByTestId('diff-path')).toHaveCount(10);
  await expect(dialog.getByTestId('diff-unchanged')).toHaveText('32 unchanged values folded.');
  // Unchanged headers are folded, and open on demand.
  const folded = dialog.locator('details.folded');
  await expect(folded.locator('summary')).toHaveText(/^\d+ unchanged headers$/);
  await expect(folded.getByText('x-webhook-subscription-id')).toBeHidden();
  await folded.locator('summary').click();
  await expect(folded.getByText('x-webhook-subscription-id')).toBeVisible();
  await shot(page, 'diff-picked');
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);
  await page.getByRole('button', { name: 'Unpick' }).click();

  // From the detail: the discounted sale with the sale before it.
  await row(page, 'New sale: 27.00 EUR').click();
  await page.getByRole('button', { name: 'Compare with previous' }).click();
  await expect(dialog.getByText("a is the previous event of b's type on its endpoint")).toBeVisible();
  await expect(price.getByLabel('b', { exact: true })).toHaveText('2700');
  await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(dialog).toHaveCount(0);
  await expect(page.getByRole('button', { name: 'Compare with previous' })).toBeFocused();

  // A retry of the first sale: the same bytes, one attempt header changed.
  await hookscope.send({ ...sale, headers: { ...sale.headers, 'x-webhook-delivery-attempt-id': 'second-attempt' } });
  await page.getByTestId('attempts-badge').click();
  await page.getByRole('button', { name: 'Show each attempt in the timeline' }).click();
  await page.getByTestId('attempt-badge').click();
  await expect(page.getByTestId('attempt')).toContainText('attempt 2');
  await page.getByRole('button', { name: 'Compare with previous' }).click();
  await expect(dialog.getByText('a is the attempt before b at the same message')).toBeVisible();
  await expect(dialog.getByTestId('diff-same')).toHaveText('The same bytes.');
  const changedHeaders = dialog.getByTestId('diff-header');
  await expect(changedHeaders).toHaveCount(1);
  await expect(changedHeaders).toContainText('x-webhook-delivery-attempt-id');
  await expect(changedHeaders.getByLabel('a', { exact: true })).toHaveText('01a0e483-0a93-7c11-9d55-2b8f3a1c0001');
  await expect(changedHeaders.getByLabel('b', { exact: true })).toHaveText('second-attempt');

  // The first sale has nothing before it: said, in the dialog.
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);
  await row(page, 'New sale: 47.00 EUR')
    .filter({ has: page.getByTestId('attempts-badge') })
    .click({ position: { x: 4, y: 4 } });
  await page.getByRole('button', { name: 'Compare with previous' }).click();
  await expect(dialog.getByTestId('diff-failure')).toContainText('no SALE_NEW event before');
});

test('the contact card, shape changes and insights show what the events say', async ({ hookscope, watched: page }) => {
  const marie = 'marie.dupont@example.fr';
  await hookscope.send(fixture('systeme-settings/contact-tag-added'));
  await hookscope.send(fixture('systeme-settings/sale-new'));
  await hookscope.send(fixture('systeme-settings/sale-canceled'));
  await hookscope.send(tagAdded(marie, 'Lead'));
  await page.goto(hookscope.uiUrl);
  await page.locator(`[data-testid="contact"][data-email="${marie}"]`).click();
  const card = page.getByTestId('contact-card');
  await expect(card.getByTestId('card-tags')).toHaveText('ClientLead');
  await expect(card.getByTestId('card-purchases')).toContainText('47.00 EUR');
  await expect(card.getByTestId('card-purchases')).toContainText('canceled');

  // Live: a tag removed and one more added change the card without a reload.
  const removal = fixture('systeme-settings/contact-tag-removed-nested');
  await hookscope.send(removal);
  await hookscope.send(tagAdded(marie, 'VIP'));
  // The removal carries her own tag list (empty, in this sample): the card takes it as
  // the state then, and applies what came after.
  await expect(card.getByTestId('card-tags')).toHaveText('VIP');

  // A delivery whose payload grew a field is flagged, and the detail says where.
  const grown = JSON.parse(tagAdded(marie, 'Grown').body as string);
  grown.data.contact.phone = '+33 6 00 00 00 00';
  await hookscope.send({ body: JSON.stringify(grown), headers: { 'content-type': 'application/json' } });
  const flagged = row(page, 'Tag added: Grown');
  await expect(flagged.getByTestId('drift-badge')).toHaveText('shape changed');
  await flagged.click();
  await expect(page.getByTestId('drift')).toContainText('added');
  await expect(page.getByTestId('drift')).toContainText('data.contact.phone');
  await expect(page.getByTestId('drift-badge')).toHaveCount(1);
  await page.getByLabel('Delivery filter').selectOption('drift');
  await expect(page.getByTestId('event')).toHaveCount(1);
  await shot(page, 'contact-card');

  await headerAction(page, 'Insights…');
  const funnels = page.getByTestId('funnels');
  await expect(funnels).toContainText('Créer un blog');
  await expect(funnels).toContainText('Blog qui rapporte');
  await expect(funnels).toContainText('47.00 EUR');
  await page.getByRole('tab', { name: 'Shapes' }).click();
  await page.getByTestId('shape-type').filter({ hasText: 'contact.tag.added' }).click();
  await expect(page.getByTestId('shape')).toContainText('data.contact.phone');
  await expect(page.getByTestId('shape')).toContainText('1 of 3');
  await shot(page, 'insights');
});

test('systeme.io is pointed at the public URL from the window, and follows a new one', async ({ watched: page }) => {
  const systeme = await systemeStandIn();
  const hookscope = await new Hookscope().start({ HOOKSCOPE_SYSTEME_API: systeme.base });
  try {
    await page.goto(hookscope.uiUrl);
    const useUrl = async (url: string) => {
      await page.getByRole('button', { name: 'Tunnel…' }).click();
      await page.getByLabel(/My own public URL/).check();
      await page.getByLabel('Public base URL').fill(url);
      await page.getByRole('button', { name: 'Use this tunnel' }).click();
    };
    await useUrl('https://first.example');
    const token = hookscope.webhookUrl.split('/h/')[1];
    await expect(page.getByTestId('public-url')).toHaveText(`https://first.example/h/${token}`);

    await headerAction(page, 'systeme.io…');
    await page.getByLabel('systeme.io API key').fill('sk-wrong');
    await page.getByRole('button', { name: 'Save key' }).click();
    await expect(page.getByRole('alert').filter({ hasText: 'refused the API key' })).toBeVisible();
    await page.getByRole('button', { name: 'Forget it' }).click();
    await page.getByLabel('systeme.io API key').fill('sk-browser');
    await page.getByRole('button', { name: 'Save key' }).click();
    await expect(page.getByTestId('systeme-webhooks')).toContainText('No Settings webhooks');
    await page.getByRole('button', { name: 'Point systeme.io here' }).click();
    await expect(page.getByTestId('registration')).toContainText('Created in systeme.io');
    await expect(page.getByTestId('registration')).toContainText('signatures are checked');
    await expect(page.getByTestId('systeme-webhooks')).toContainText('(this Hookscope)');
    expect(systeme.hooks.map((h) => h.url)).toEqual([`https://first.example/h/${token}`]);
    await shot(page, 'systeme-registered');
    await headerAction(page, 'systeme.io…');

    // The stored secret checks what systeme.io signs with it.
    const sale = fixture('systeme-settings/sale-new');
    const signature = createHmac('sha256', systeme.hooks[0]!.secret).update(sale.body).digest('hex');
    await hookscope.send({ ...sale, headers: { ...sale.headers, 'x-webhook-signature': signature } });
    await expect(row(page, 'Blog qui rapporte').getByTestId('signature-badge')).toHaveText('signed ✓');

    // A new address: one click in the banner updates systeme.io.
    await useUrl('https://second.example');
    const notice = page.getByTestId('tunnel-notice');
    await notice.getByRole('button', { name: 'Update in systeme.io' }).click();
    await expect(notice).toContainText(`systeme.io now sends to https://second.example/h/${token}`);
    expect(systeme.hooks.map((h) => h.url)).toEqual([`https://second.example/h/${token}`]);
    await notice.getByRole('button', { name: 'OK' }).click();
    await expect(notice).toHaveCount(0);
  } finally {
    await hookscope.dispose();
    systeme.close();
  }
});

test('deliveries are forwarded to your handler and its answers shown', async ({ hookscope, watched: page }) => {
  const received: { url: string; body: string; signature: string | undefined }[] = [];
  const handler = createHttpServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      received.push({ url: request.url ?? '', body, signature: request.headers['x-webhook-signature'] as string | undefined });
      response.writeHead(202, { 'content-type': 'text/plain' });
      response.end('queued by the handler');
    });
  });
  const port = await new Promise<number>((done) => handler.listen(0, '127.0.0.1', () => done((handler.address() as { port: number }).port)));
  try {
    await page.goto(hookscope.uiUrl);
    await page.getByTestId('forward-button').click();
    await page.getByLabel('Forward target URL').fill(`http://127.0.0.1:${port}/webhooks/systeme`);
    await page.getByRole('button', { name: 'Forward', exact: true }).click();
    await expect(page.getByTestId('forward-button')).toHaveText('Forwarding…');

    const sale = fixture('systeme-settings/sale-new');
    await hookscope.send({ ...sale, suffix: '/orders' });
    const forwarded = row(page, 'Blog qui rapporte').getByTestId('forward-badge');
    await expect(forwarded).toHaveText('→ 202');
    expect(received).toHaveLength(1);
    expect(received[0]!.url).toBe('/webhooks/systeme/orders');
    expect(received[0]!.body).toBe(sale.text);
    expect(received[0]!.signature).toBe(sale.headers!['x-webhook-signature']);
    await row(page, 'Blog qui rapporte').click();
    await expect(page.getByTestId('forward')).toContainText('answered 202');
    await page.getByRole('button', { name: 'Show the answer' }).click();
    await expect(page.getByTestId('forward-answer')).toContainText('queued by the handler');

    // Replayed, edited, to the same handler.
    await page.getByRole('button', { name: 'Replay…' }).click();
    await expect(page.getByLabel('Replay to')).toHaveValue(`http://127.0.0.1:${port}/webhooks/systeme/orders`);
    await page.getByLabel('Edit the body first').check();
    const body = page.getByLabel('Body to send');
    await body.fill(sale.text.replace('4700', '9900'));
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await expect(page.getByTestId('replay-result')).toContainText('→ 202');
    expect(received).toHaveLength(2);
    expect(received[1]!.body).toBe(sale.text.replace('4700', '9900'));
    await expect(page.getByTestId('replay-history')).toContainText('Replayed 1 time');

    // The contact's whole timeline, to the forward target.
    await page.locator('[data-testid="contact"][data-email="marie.dupont@example.fr"]').click();
    await page.getByRole('button', { name: 'Replay timeline…' }).click();
    await page.getByRole('button', { name: 'Replay', exact: true }).click();
    await expect(page.getByTestId('timeline-replay')).toHaveText('1 of 1 events answered');
    expect(received).toHaveLength(3);
    await expect(page.getByRole('form', { name: 'Replay the timeline' })).toHaveCount(0);
    await page.getByRole('button', { name: 'All events' }).click();

    // Two picked with Ctrl-click, replayed oldest first.
    await hookscope.send(tagAdded('picked@example.com', 'Picked'));
    await expect(row(page, 'Tag added: Picked').getByTestId('forward-badge')).toHaveText('→ 202');
    await row(page, 'Tag added: Picked').click({ modifiers: ['Control'] });
    await row(page, 'Blog qui rapporte').click({ modifiers: ['Control'] });
    await page.getByRole('button', { name: 'Replay 2 picked…' }).click();
    await page.getByRole('button', { name: 'Replay', exact: true }).click();
    await expect(page.getByTestId('timeline-replay')).toHaveText('2 of 2 events answered');
    expect(received.slice(-2).map((r) => r.body.includes('Picked'))).toEqual([false, true]);
    // Done: the popover is gone and Unpick, beside its button, can be pressed.
    await expect(page.getByRole('form', { name: 'Replay the timeline' })).toHaveCount(0);
    await page.getByRole('button', { name: 'Unpick' }).click();

    // The handler goes away: the delivery is still stored and answered, the forward retries.
    await new Promise((done) => handler.close(done));
    handler.closeAllConnections();
    await hookscope.send(tagAdded('later@example.com', 'Later'));
    await expect(row(page, 'Tag added: Later').getByTestId('forward-badge')).toHaveText('→ retrying');
    await shot(page, 'forwarding');

    // Rehearse a failing handler: the endpoint answers 503, and still stores the delivery.
    await page.getByTestId('forward-button').click();
    await page.getByLabel('Answer status').fill('503');
    await page.getByLabel('Answer body').fill('try later');
    await page.getByRole('button', { name: 'Answer like this' }).click();
    await expect(page.getByTestId('answering')).toHaveText('now answering 503');
    const refused = await fetch(hookscope.webhookUrl, { method: 'POST', body: '{"type":"ping"}' });
    expect(refused.status).toBe(503);
    expect(await refused.text()).toBe('try later');
    await page.getByRole('button', { name: 'Back to a fast 200' }).click();
    await expect(page.getByTestId('answering')).toHaveCount(0);
    await hookscope.send(tagAdded('after@example.com', 'After'));
  } finally {
    handler.close();
  }
});

test('a test event is made from a sample and shows like a real one', async ({ hookscope, watched: page }) => {
  await page.goto(hookscope.uiUrl);
  await page.getByRole('button', { name: 'Test event…' }).click();
  await page.getByLabel('Test event from').selectOption('systeme-automation/tag-added');
  await page.getByLabel('Test event email').fill('rehearsal@example.com');
  await page.getByLabel('Test event tag').fill('Rehearsed');
  await page.getByRole('button', { name: 'Send test event' }).click();
  await expect(row(page, 'Tag added: Rehearsed')).toBeVisible();
  await expect(page.locator('[data-testid="contact"][data-email="rehearsal@example.com"]')).toBeVisible();
  await expect(page.getByTestId('detail-summary')).toHaveText('Tag added: Rehearsed');

  // A sale with another amount, from the sample of Settings webhooks.
  await page.getByRole('button', { name: 'Test event…' }).click();
  await page.getByLabel('Test event from').selectOption('systeme-settings/sale-new');
  await page.getByLabel('Test event amount').fill('12.50');
  await page.getByRole('button', { name: 'Send test event' }).click();
  await expect(row(page, 'New sale: 12.50 EUR')).toBeVisible();
});

/** Every string of a systeme.io payload replaced by an XSS payload (the event type and
 * times kept, so it is still decoded as that event), emails kept email-shaped. */
function poisoned(value: unknown, payloads: string[], next: { i: number }, key = ''): unknown {
  if (typeof value === 'string') {
    if (key === 'type' || key.endsWith('_at') || key.endsWith('At')) return value;
    const payload = payloads[next.i++ % payloads.length]!;
    return key.toLowerCase().includes('email') ? `${payload}@example.com` : payload;
  }
  if (Array.isArray(value)) return value.map((v) => poisoned(v, payloads, next, key));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, poisoned(v, payloads, next, k)]));
  }
  return value;
}

test('a corpus of XSS payloads in every displayed field stays inert', async ({ hookscope, watched: page }) => {
  test.setTimeout(180_000);
  const { payloads } = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'hostile', 'xss-payloads.json'), 'utf8')) as {
    payloads: string[];
  };
  expect(payloads.length).toBeGreaterThanOrEqual(40);
  const ascii = payloads.filter((p) => /^[\x20-\x7e]*$/.test(p));
  const next = { i: 0 };
  let sent = 0;
  for (const name of allFixtures().filter((n) => n.startsWith('systeme-'))) {
    const original = fixture(name);
    const payload = ascii[sent % ascii.length]!;
    await hookscope.send({
      body: JSON.stringify(poisoned(JSON.parse(original.text), payloads, next)),
      headers: { ...original.headers, 'x-evil': payload, 'user-agent': payload },
      suffix: `/${encodeURIComponent(payloads[sent % payloads.length]!)}?q=${encodeURIComponent(payload)}`,
    });
    sent++;
  }
  for (const payload of payloads.slice(0, 10)) {
    await hookscope.send({ body: payload, headers: { 'content-type': 'text/html' } });
    await hookscope.send({
      body: `email=${encodeURIComponent(payload)}%40example.com&name=${encodeURIComponent(payload)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    sent += 2;
  }
  const { endpoints } = await hookscope.api<{ endpoints: { id: string }[] }>('/api/endpoints');
  const renamed = await fetch(`${hookscope.uiBase}/api/endpoints/${endpoints[0]!.id}`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${hookscope.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: payloads[1] }),
  });
  expect(renamed.status).toBe(200);

  // Tall enough that the virtual lists render every contact and event at once.
  await page.setViewportSize({ width: 1400, height: 4000 });
  await page.goto(hookscope.uiUrl);
  await expect(page.getByTestId('counts')).toContainText(`${sent} events`);
  const inert = async (where: string) => {
    const found = await page.evaluate(() => {
      const app = document.querySelector('#app')!;
      const handlers = [...app.querySelectorAll('*')].flatMap((el) =>
        [...el.attributes].filter((a) => a.name.startsWith('on')).map((a) => `${el.tagName} ${a.name}`),
      );
      const foreign = [
        ...app.querySelectorAll(
          'script, img, svg, iframe, object, embed, video, math, marquee, base, meta, link, xss, noscript, a[href^="javascript" i], a[href*="evil.example"]',
        ),
      ].map((el) => el.outerHTML.slice(0, 80));
      return { pwned: (window as unknown as { __pwned?: unknown }).__pwned ?? null, handlers, foreign };
    });
    expect(found, `nothing ran or was injected (${where})`).toEqual({ pwned: null, handlers: [], foreign: [] });
  };
  await inert('lists');

  // Every event, every tab of its detail.
  await page.getByRole('button', { name: /All events/ }).click();
  const events = page.getByTestId('event');
  await expect(events).toHaveCount(sent);
  for (let j = 0; j < sent; j++) {
    await events.nth(j).click();
    await expect(events.nth(j)).toHaveClass(/selected/);
    for (const tab of ['pretty', 'raw', 'headers']) {
      await page.getByTestId(`tab-${tab}`).click();
      await expect(page.getByTestId('tab-panel')).toBeVisible();
      await inert(`event ${j}, ${tab}`);
    }
  }

  // Every contact, with its card and timeline.
  const { contacts: listed } = await hookscope.api<{ contacts: unknown[] }>('/api/contacts?limit=500');
  const contacts = page.getByTestId('contact');
  await expect(contacts).toHaveCount(listed.length);
  expect(listed.length).toBeGreaterThan(10);
  for (let i = 0; i < listed.length; i++) {
    const timeline = page.waitForResponse((r) => r.url().includes('/api/events?') && r.url().includes('email='));
    const card = page.waitForResponse((r) => /\/api\/contacts\/[^?]/.test(r.url()));
    await contacts.nth(i).click();
    await expect(contacts.nth(i)).toHaveClass(/selected/);
    await Promise.all([timeline, card]);
    await expect(page.getByTestId('event').first()).toBeVisible();
    await inert(`contact ${i}`);
  }

  const search = page.getByLabel('Search contacts by email or name');
  for (const payload of payloads.slice(0, 5)) {
    const answered = page.waitForResponse((r) => r.url().includes('/api/contacts?'));
    await search.fill(payload);
    await answered;
    await inert(`search for ${payload}`);
  }
  await search.fill('');
  await headerAction(page, 'Insights…');
  await expect(page.getByTestId('funnels')).toBeVisible();
  await inert('funnels');
  await page.getByRole('tab', { name: 'Shapes' }).click();
  const types = page.getByTestId('shape-type');
  for (let i = 0; i < (await types.count()); i++) {
    await types.nth(i).click();
    await expect(page.getByTestId('shape')).toBeVisible();
    await inert(`shape ${i}`);
  }
  await shot(page, 'xss-corpus');
});

/** Posts a request exactly as written (any method, path and header a sender may choose). */
async function rawDelivery(webhookUrl: string, method: string, suffix: string, headers: [string, string][], body: Buffer): Promise<void> {
  const { connect } = await import('node:net');
  const url = new URL(webhookUrl);
  const head =
    `${method} ${url.pathname}${suffix} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\n` +
    headers.map(([n, v]) => `${n}: ${v}\r\n`).join('') +
    `content-length: ${body.length}\r\n\r\n`;
  const answer = await new Promise<string>((done, fail) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(Buffer.concat([Buffer.from(head, 'utf8'), body])));
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', fail);
  });
  expect(answer, `${method} ${suffix} is stored`).toMatch(/^HTTP\/1.1 200/);
}

test('copied cURL and HTTPie commands send what arrived and run nothing a sender put in them', async ({ hookscope, watched: page }) => {
  test.setTimeout(120_000);
  // What the window copies is kept where the test can read it.
  await page.addInitScript(() => {
    const copied: string[] = [];
    (window as unknown as { __copied: string[] }).__copied = copied;
    Object.defineProperty(navigator, 'clipboard', {
      value: { writeText: async (text: string) => void copied.push(text) },
    });
  });
  // Each case would create a file named after it in the working folder if any part of the
  // command were run instead of passed on.
  const cases: { method: string; suffix: string; headers: [string, string][]; body: Buffer }[] = [
    { method: "X`touch$IFS'm1'`|id&", suffix: '', headers: [], body: Buffer.from('case 1') },
    { method: 'POST', suffix: "/x'$(touch$IFS'p2')';touch$IFS'p3';&touch$IFS'p4'", headers: [], body: Buffer.from('case 2') },
    {
      method: 'POST',
      suffix: '',
      headers: [
        ["X-`touch$IFS'h5'`", "'; touch h6; echo '"],
        ['X-Subst', '$(touch h7) `touch h8`'],
        ['X-Fish', "\\'; touch h9; #"],
        ['X-File', '=@/etc/hostname'],
        ['X-At', '@/etc/hostname'],
      ],
      body: Buffer.from('case 3'),
    },
    { method: 'POST', suffix: '', headers: [['content-type', 'text/plain']], body: Buffer.from('@/etc/hostname') },
    { method: 'POST', suffix: '', headers: [], body: Buffer.from("case 5 '; touch b10; '\\'; touch b11; # $(touch b12) !!") },
    // Ctrl-U and a newline: a line editor would erase the command and run what follows.
    { method: 'POST', suffix: '', headers: [], body: Buffer.from('case 6 \u0015touch b13\ntouch b14\t\u001b[201~') },
    { method: 'PUT', suffix: '', headers: [], body: Buffer.from([0x63, 0x00, 0xff, 0x27, 0x5c, 0x0a]) },
  ];
  for (const c of cases) await rawDelivery(hookscope.webhookUrl, c.method, c.suffix, c.headers, c.body);

  await page.goto(hookscope.uiUrl);
  await expect(page.getByTestId('event')).toHaveCount(cases.length);
  const rows = page.getByTestId('event');
  const commands: { index: number; curl: string; httpie: string }[] = [];
  for (let i = 0; i < cases.length; i++) {
    // The newest is on top.
    await rows.nth(cases.length - 1 - i).click();
    await page.getByRole('button', { name: 'Copy as cURL' }).click();
    await page.getByRole('button', { name: 'Copy as HTTPie' }).click();
    const copied = await page.evaluate(() => (window as unknown as { __copied: string[] }).__copied.splice(0));
    expect(copied.length, 'both commands copied').toBe(2);
    commands.push({ index: i, curl: copied[0]!, httpie: copied[1]! });
  }

  // Stand-ins for curl and http that record their arguments and what they read.
  const bin = mkdtempSync(join(tmpdir(), 'hookscope-bin-'));
  const recorder = `#!/bin/sh\nprintf '%s\\0' "$@" > "$RECORD.args"\ncat > "$RECORD.body"\n`;
  for (const name of ['curl', 'http']) {
    const path = join(bin, name);
    const fd = openSync(path, 'w', 0o755);
    writeSync(fd, recorder);
    closeSync(fd);
  }
  const shells = ['bash', 'zsh', 'fish', 'sh'].filter((shell) => {
    try {
      execFileSync('which', [shell]);
      return true;
    } catch {
      return false;
    }
  });
  expect(shells, 'bash, zsh and fish are installed (make test installs them)').toEqual(expect.arrayContaining(['bash', 'zsh', 'fish']));
  const ingest = new URL(hookscope.webhookUrl).origin;
  for (const { index, curl, httpie } of commands) {
    const sent = cases[index]!;
    for (const command of [curl, httpie]) {
      expect(command, 'nothing a terminal would act on is pasted').not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    }
    for (const shell of shells) {
      for (const [tool, command] of [['curl', curl], ['http', httpie]] as const) {
        const work = mkdtempSync(join(tmpdir(), 'hookscope-paste-'));
        const record = join(bin, `${shell}-${tool}-${index}`);
        execFileSync(shell, ['-c', command], {
          cwd: work,
          // A home of its own: fish keeps its settings there.
          env: { PATH: `${bin}:/usr/bin:/bin`, RECORD: record, HOME: bin },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        expect(readdirSync(work), `${shell} ran nothing from case ${index + 1} (${tool})`).toEqual([]);
        rmSync(work, { recursive: true, force: true });
        const args = readFileSync(`${record}.args`, 'latin1').split('\0').slice(0, -1);
        const body = readFileSync(`${record}.body`);
        // sh (dash) has no \x escapes in printf: only that nothing ran is asserted there.
        if (shell === 'sh') continue;
        const url = `${ingest}${new URL(hookscope.webhookUrl).pathname}${sent.suffix}`;
        expect(Buffer.from(body).equals(sent.body), `${shell}/${tool} case ${index + 1}: the body byte for byte`).toBe(true);
        const utf8Args = args.map((a) => Buffer.from(a, 'latin1').toString('utf8'));
        if (tool === 'curl') {
          expect(utf8Args.slice(0, 4), `${shell} case ${index + 1}`).toEqual(['-g', '-X', sent.method, url]);
          // Header names arrive (and are stored) lower-cased.
          for (const [name, value] of sent.headers) expect(utf8Args).toContain(`${name.toLowerCase()}: ${value}`);
        } else {
          expect(utf8Args.slice(0, 2), `${shell} case ${index + 1}`).toEqual([sent.method, url]);
          for (const [name, value] of sent.headers) {
            const escape = (text: string) => text.replace(/[\\:=@;]/g, (c) => `\\${c}`);
            expect(utf8Args).toContain(`${escape(name.toLowerCase())}:${escape(value)}`);
          }
        }
      }
    }
  }
  rmSync(bin, { recursive: true, force: true });
});
