// Following a relay from the window: choosing it, what it pulled appearing as deliveries
// do, and the header saying when the relay is away (and why) while the window keeps
// working on what it has.

import { expect } from '@playwright/test';
import { freePort, Hookscope, tagAdded } from './hookscope.ts';
import { headerAction, row, shot, test } from './watched.ts';

test('follows a relay chosen in the window, says when it is away, and resumes when it is back', async ({
  hookscope,
  watched: page,
}) => {
  const syncAddress = `127.0.0.1:${await freePort()}`;
  const relay = await new Hookscope().start({ HOOKSCOPE_SYNC: syncAddress });
  try {
    const syncUrl = await relay.printedValue('Sync URL');
    const syncToken = await relay.printedValue('Sync token');
    // Received while this Hookscope was not following.
    await relay.send(tagAdded('away.one@example.com', 'While away 1'));
    await relay.send(tagAdded('away.two@example.com', 'While away 2'));

    await page.goto(hookscope.uiUrl);
    // Where a user looks for how deliveries reach this machine: the tunnel's dialog.
    await headerAction(page, 'Tunnel…');
    await page.getByRole('button', { name: 'Follow a relay…' }).click();
    const dialog = page.getByRole('form', { name: 'Follow a relay' });
    // The token never crosses a network in clear.
    await dialog.getByLabel('Sync URL').fill('http://192.0.2.7:4749');
    await dialog.getByLabel('Sync token').fill(syncToken);
    await dialog.getByRole('button', { name: 'Follow' }).click();
    await expect(dialog.getByRole('alert')).toContainText('in clear');

    await dialog.getByLabel('Sync URL').fill(syncUrl);
    await dialog.getByRole('button', { name: 'Follow' }).click();
    await expect(dialog).toHaveCount(0);
    const state = page.getByTestId('relay-state');
    await expect(state).toHaveText('Relay: following');
    await expect(row(page, 'Tag added: While away 1')).toBeVisible();
    await expect(row(page, 'Tag added: While away 2')).toBeVisible();
    await expect(page.getByTestId('counts')).toContainText('2 events');

    // Live: a delivery to the relay shows here as one sent here would.
    await relay.send(tagAdded('live@example.com', 'Live through the relay'));
    await expect(row(page, 'Tag added: Live through the relay')).toBeVisible();
    await shot(page, 'relay-following');

    // The relay goes away: said in the header, with why; the window keeps what it has.
    await relay.stop('SIGKILL');
    await expect(state).toContainText('Relay unreachable since');
    await expect(state).toHaveAttribute('title', /cannot reach the relay|closed the connection|broke/);
    await expect(row(page, 'Tag added: While away 1')).toBeVisible();
    await page.locator('[data-testid="contact"][data-email="away.two@example.com"]').click();
    await expect(row(page, 'Tag added: While away 2')).toBeVisible();
    await shot(page, 'relay-unreachable');

    // Back on the same address: following again, and what it got meanwhile arrives.
    const back = await new Hookscope(relay.dataDir).start({ HOOKSCOPE_SYNC: syncAddress });
    try {
      await back.send(tagAdded('away.two@example.com', 'After the outage'));
      await expect(state).toHaveText('Relay: following', { timeout: 30_000 });
      await expect(row(page, 'Tag added: After the outage')).toBeVisible();
      // Stopped from the dialog: what was pulled stays.
      await state.click();
      await page.getByRole('form', { name: 'Follow a relay' }).getByRole('button', { name: 'Stop following' }).click();
      await expect(state).toHaveCount(0);
    } finally {
      await back.dispose();
    }
  } finally {
    await relay.dispose();
  }
});
