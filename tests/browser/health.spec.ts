// "Is it reaching me?" in the window: the probe of the public URL both ways, and alerts
// raised by their real causes (a wrong secret, a refusing forward target, a silence set
// short), shown in the window and sent to a local alert receiver.

import { createServer as createHttpServer, type Server } from 'node:http';
import { expect } from '@playwright/test';
import { fixture, freePort, Hookscope, systemeStandIn } from './hookscope.ts';
import { shot, test } from './watched.ts';

/** A local HTTP server: `status(n)` says what the n-th request gets; bodies are kept. */
async function localServer(status: (n: number) => number): Promise<{ server: Server; url: string; bodies: string[] }> {
  const bodies: string[] = [];
  const server = createHttpServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      bodies.push(body);
      response.writeHead(status(bodies.length), { 'content-type': 'text/plain' });
      response.end('ok');
    });
  });
  const port = await new Promise<number>((done) => server.listen(0, '127.0.0.1', () => done((server.address() as { port: number }).port)));
  return { server, url: `http://127.0.0.1:${port}`, bodies };
}

test('the probe, and alerts from a wrong secret, a refusing forward target and a silence, in the window and on the alert receiver', async ({
  watched: page,
}) => {
  test.setTimeout(120_000);
  const receiver = await localServer(() => 200);
  const refusing = await localServer(() => 500);
  const proxyPort = await freePort();
  const hookscope = await new Hookscope().start({
    HOOKSCOPE_ALERT_WEBHOOK: `${receiver.url}/alerts`,
    HOOKSCOPE_ALERT_CHECK_EVERY: '1',
    HOOKSCOPE_PROXY: `127.0.0.1:${proxyPort}`,
  });
  const api = async (method: string, path: string, body: unknown) => {
    const answer = await fetch(hookscope.uiBase + path, {
      method,
      headers: { authorization: `Bearer ${hookscope.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(answer.status, `${method} ${path}`).toBe(200);
    return answer.json();
  };
  const received = () => receiver.bodies.map((b) => JSON.parse(b) as { kind: string; text: string });
  try {
    await page.goto(hookscope.uiUrl);
    const healthButton = page.getByTestId('health-button');
    const dialog = page.getByTestId('health-dialog');

    // Reachable: the public URL leads to the proxy listener.
    await api('PUT', '/api/tunnel', { tunnel: `manual:http://127.0.0.1:${proxyPort}` });
    await healthButton.click();
    await dialog.getByTestId('probe-now').click();
    await expect(dialog.getByTestId('probe-status')).toContainText(/Public URL reaches this Hookscope · checked (just now|\d+ s ago) · \d+ ms/);
    // Said in the header (in full where there is room, else in its title).
    await expect(healthButton).toHaveAttribute('title', /^Public URL reaches this Hookscope/);
    await expect(healthButton).not.toHaveClass(/warn/);
    await page.keyboard.press('Escape');

    // Not reachable: a dead port. The header turns amber, the alert shows and is sent on.
    const dead = await freePort();
    await api('PUT', '/api/tunnel', { tunnel: `manual:http://127.0.0.1:${dead}` });
    await healthButton.click();
    await dialog.getByTestId('probe-now').click();
    await expect(dialog.getByTestId('probe-status')).toContainText('Public URL does not reach this Hookscope');
    await expect(dialog).toContainText('could not be reached');
    await expect(healthButton).toHaveClass(/warn/);
    await expect(dialog.locator('[data-testid="alert"][data-kind="probe"]')).toBeVisible();
    await shot(page, 'health-probe-failing');
    await page.keyboard.press('Escape');
    await expect.poll(() => received().map((a) => a.kind)).toContain('probe');
    // No public URL: its episode ends (the alert stays unread), and loopback targets are
    // no longer taken for it.
    await api('PUT', '/api/tunnel', { tunnel: 'off' });
    await expect(healthButton).toHaveAttribute('title', 'Health');

    // A wrong secret: three deliveries failing verification.
    const endpoint = (await hookscope.api<{ default_endpoint: string }>('/api/status')).default_endpoint;
    await api('PATCH', `/api/endpoints/${endpoint}`, { secret: 'a mistyped secret' });
    const sale = fixture('systeme-settings/sale-new');
    for (let i = 0; i < 3; i++) await hookscope.send(sale);
    await expect(page.getByTestId('alert-notice')).toContainText('failed signature verification');
    await expect.poll(() => received().map((a) => a.kind)).toContain('verification');
    expect(received().find((a) => a.kind === 'verification')!.text).toContain('failed signature verification');

    // A forward target that refuses: three attempts failing in a row.
    await api('PATCH', `/api/endpoints/${endpoint}`, { forward_to: `${refusing.url}/webhooks` });
    await hookscope.send(fixture('systeme-settings/contact-created'));
    await expect.poll(() => received().map((a) => a.kind), { timeout: 20_000 }).toContain('forward');

    // A silence, set in the window for a few seconds: no SALE_NEW.
    await healthButton.click();
    await dialog.getByLabel('Alert kind').selectOption('silence');
    await dialog.getByLabel('Event type').fill('SALE_NEW');
    await dialog.getByLabel(/^Threshold/).fill('0.001');
    await dialog.getByRole('button', { name: 'Add rule' }).click();
    await expect(dialog.getByTestId('alert-rule').filter({ hasText: 'no SALE_NEW' })).toBeVisible();
    await expect(dialog.locator('[data-testid="alert"][data-kind="silence"]')).toBeVisible({ timeout: 20_000 });
    await expect.poll(() => received().map((a) => a.kind)).toContain('silence');

    // Every kind in the window's list; marking all read turns the header back.
    for (const kind of ['probe', 'verification', 'forward', 'silence']) {
      await expect(dialog.locator(`[data-testid="alert"][data-kind="${kind}"]`)).toHaveCount(1);
    }
    await shot(page, 'health-alerts');
    await dialog.getByRole('button', { name: 'Mark all read' }).click();
    await expect(dialog.getByTestId('alert')).toHaveCount(0);
    await expect(page.getByTestId('alert-count')).toHaveCount(0);
  } finally {
    await hookscope.dispose();
    receiver.server.close();
    refusing.server.close();
  }
});

test('a systeme.io webhook left at an old URL is flagged in the health view and fixed from it', async ({ watched: page }) => {
  const systeme = await systemeStandIn();
  const hookscope = await new Hookscope().start({ HOOKSCOPE_SYSTEME_API: systeme.base });
  try {
    const token = hookscope.webhookUrl.split('/h/')[1];
    // The account's webhook still points at last week's tunnel; another service has one too.
    systeme.hooks.push(
      { id: 1, name: 'Hookscope – Default', url: `https://old-name.trycloudflare.com/h/${token}`, secret: 's', subscriptions: ['SALE_NEW'] },
      { id: 2, name: 'CRM', url: 'https://crm.example.com/hook', secret: 's', subscriptions: ['SALE_NEW'] },
    );
    const put = (path: string, body: unknown) =>
      fetch(hookscope.uiBase + path, {
        method: 'PUT',
        headers: { authorization: `Bearer ${hookscope.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await put('/api/tunnel', { tunnel: 'manual:https://hooks-now.example.com' })).status).toBe(200);
    expect((await put('/api/systeme', { api_key: 'sk-browser' })).status).toBe(200);
    await page.goto(hookscope.uiUrl);
    await page.getByTestId('health-button').click();
    const view = page.getByTestId('systeme-health');
    await expect(view).toContainText('old-name.trycloudflare.com');
    await expect(view).toContainText("not Default's public URL https://hooks-now.example.com");
    await expect(view).toContainText("not Hookscope's");
    await view.getByRole('button', { name: 'Fix' }).click();
    await expect(view).toContainText('points here');
    await expect(view.getByRole('button', { name: 'Fix' })).toHaveCount(0);
    expect(systeme.hooks[0]!.url).toBe(`https://hooks-now.example.com/h/${token}`);
    expect(systeme.hooks[1]!.url).toBe('https://crm.example.com/hook');
  } finally {
    await hookscope.dispose();
    systeme.close();
  }
});
