// A real `hookscope serve` for one test: temporary data folder, its printed URLs, and
// helpers to post deliveries to it exactly as systeme.io would.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = resolve(import.meta.dirname, '../..');
export const BINARY = process.env.HOOKSCOPE_BIN ?? join(ROOT, 'target/debug/hookscope');
export const FIXTURES = join(ROOT, 'fixtures');
export const ARTIFACTS = join(ROOT, 'tests/artifacts');

export interface Delivery {
  body: Uint8Array | string;
  headers?: Record<string, string>;
  method?: string;
  suffix?: string;
}

/** A fixture as on disk: `systeme-automation/sale-completed` → body bytes and headers. */
export function fixture(name: string): Delivery & { body: Uint8Array; text: string } {
  const [folder, stem] = name.split('/') as [string, string];
  const file = readdirSync(join(FIXTURES, folder)).find((f) => f.startsWith(`${stem}.`) && !f.endsWith('.headers'));
  if (!file) throw new Error(`no fixture ${name}`);
  const body = readFileSync(join(FIXTURES, folder, file));
  const headers: Record<string, string> = {};
  for (const line of readFileSync(join(FIXTURES, folder, `${stem}.headers`), 'utf8').split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return { body: new Uint8Array(body), headers, text: body.toString('utf8') };
}

/** Every fixture name, in the order `hookscope send` would post them. */
export function allFixtures(): string[] {
  return ['systeme-automation', 'systeme-settings', 'generic'].flatMap((folder) =>
    readdirSync(join(FIXTURES, folder))
      .filter((f) => f.endsWith('.headers'))
      .map((f) => `${folder}/${f.slice(0, -'.headers'.length)}`)
      .sort(),
  );
}

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => done(port));
    });
  });
}

export class Hookscope {
  webhookUrl = '';
  uiUrl = '';
  /** What it printed, line by line (`Sync URL: …` and `Sync token: …` for a relay). */
  printed: string[] = [];
  private child: ChildProcess | undefined;

  constructor(
    readonly dataDir = mkdtempSync(join(tmpdir(), 'hookscope-ui-')),
    private readonly ingest = '127.0.0.1:0',
    private readonly ui = '127.0.0.1:0',
  ) {}

  get uiBase(): string {
    return new URL(this.uiUrl).origin;
  }

  get token(): string {
    return new URL(this.uiUrl).searchParams.get('token') ?? '';
  }

  /** `env`: more of the server's environment (e.g. a stand-in's address). */
  async start(env: Record<string, string> = {}): Promise<this> {
    const child = spawn(BINARY, ['serve', '--data-dir', this.dataDir, '--ingest', this.ingest, '--ui', this.ui], {
      stdio: ['ignore', 'pipe', 'inherit'],
      // No tunnel unless a test picks one (a real one would need the internet).
      env: { HOOKSCOPE_TUNNEL: 'off', ...process.env, NGROK_AUTHTOKEN: '', HOOKSCOPE_LOG: 'warn', ...env },
    });
    this.child = child;
    const lines = createInterface({ input: child.stdout! });
    this.printed = [];
    const printed = this.printed;
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => fail(new Error(`hookscope printed no URLs: ${printed.join(' | ')}`)), 20_000);
      child.once('exit', (code) => fail(new Error(`hookscope exited with ${code}`)));
      lines.on('line', (line) => {
        printed.push(line);
        if (line.startsWith('Webhook URL: ')) this.webhookUrl = line.slice('Webhook URL: '.length);
        if (line.startsWith('UI: ')) this.uiUrl = line.slice('UI: '.length);
        if (this.webhookUrl && this.uiUrl) {
          clearTimeout(timer);
          done();
        }
      });
    });
    return this;
  }

  /** The value of a line it printed as `NAME: value` (waits for it). */
  async printedValue(name: string): Promise<string> {
    const prefix = `${name}: `;
    for (let waited = 0; waited < 10_000; waited += 50) {
      const line = this.printed.find((l) => l.startsWith(prefix));
      if (line) return line.slice(prefix.length);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`hookscope printed no ${name}: ${this.printed.join(' | ')}`);
  }

  /** Posts a delivery; returns the stored event id. */
  async send(delivery: Delivery): Promise<string> {
    const response = await fetch(this.webhookUrl + (delivery.suffix ?? ''), {
      method: delivery.method ?? 'POST',
      headers: delivery.headers ?? { 'content-type': 'application/json' },
      body: typeof delivery.body === 'string' ? delivery.body : Buffer.from(delivery.body),
    });
    if (response.status !== 200) throw new Error(`delivery answered ${response.status}`);
    return ((await response.json()) as { id: string }).id;
  }

  async api<T>(path: string): Promise<T> {
    const response = await fetch(this.uiBase + path, { headers: { authorization: `Bearer ${this.token}` } });
    if (!response.ok) throw new Error(`${path} answered ${response.status}`);
    return (await response.json()) as T;
  }

  /** Stops the process: SIGTERM drains, SIGKILL is a crash. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((done) => child.once('exit', done));
    child.kill(signal);
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A systeme.io automation delivery for any contact, to build scenarios. */
export function tagAdded(email: string, tag: string, name?: [string, string]): Delivery {
  const fields = name ? { first_name: name[0], surname: name[1] } : [];
  return {
    body: JSON.stringify({
      type: 'contact.tag.added',
      data: { tag: { id: 1, name: tag }, contact: { id: 1, email, fields } },
      account: { email: 'owner@example.com' },
      created_at: '2026-11-28T09:00:00+00:00',
    }),
    headers: { 'content-type': 'application/json', 'user-agent': 'Symfony' },
  };
}

/** Stored deliveries with the times they were received, as `hookscope import` reads them
 * (for a store with history: deliveries posted now are all received now). The server must
 * not be running on `dataDir` yet. */
export function importEvents(
  dataDir: string,
  events: { receivedAt: Date; body: unknown; headers?: [string, string][]; id: string }[],
): void {
  const lines = events.map((e) =>
    JSON.stringify({
      id: e.id,
      received_at: e.receivedAt.toISOString(),
      endpoint: 'ep_history',
      endpoint_name: 'History',
      method: 'POST',
      path: '/h/history',
      query: null,
      headers: e.headers ?? [['content-type', 'application/json']],
      remote_addr: '127.0.0.1:1',
      body: e.body,
    }),
  );
  const file = join(dataDir, 'history.ndjson');
  writeFileSync(file, lines.join('\n') + '\n');
  const imported = spawnSync(BINARY, ['import', file, '--data-dir', dataDir], { encoding: 'utf8' });
  if (imported.status !== 0) throw new Error(`hookscope import failed: ${imported.stderr}`);
}

/** A systeme.io automation tag-added body (for importEvents). */
export function tagAddedBody(email: string, tag: string, name?: [string, string]): unknown {
  return JSON.parse(tagAdded(email, tag, name).body as string);
}

/** A stand-in for systeme.io's webhook API (list, create, merge-patch update); the real
 * one needs the internet and an account. */
export async function systemeStandIn() {
  const hooks: { id: number; name: string; url: string; secret: string; subscriptions: string[] }[] = [];
  const server = createHttpServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const answer = (status: number, value: unknown) => {
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(value));
      };
      if (request.headers['x-api-key'] !== 'sk-browser') return answer(401, { message: 'Invalid API key' });
      const view = ({ secret: _secret, ...rest }: (typeof hooks)[number]) => ({ ...rest, active: true });
      if (request.method === 'GET') return answer(200, { items: hooks.map(view), hasMore: false });
      const data = JSON.parse(body);
      if (request.method === 'POST') {
        if (hooks.some((h) => h.url === data.url)) return answer(422, { detail: 'url: This value is already used.' });
        hooks.push({ id: hooks.length + 1, ...data });
        return answer(201, view(hooks.at(-1)!));
      }
      const hook = hooks.find((h) => request.url === `/api/webhooks/${h.id}`);
      if (!hook) return answer(404, { detail: 'Not Found' });
      hook.url = data.url;
      return answer(200, view(hook));
    });
  });
  const port = await new Promise<number>((done) => server.listen(0, '127.0.0.1', () => done((server.address() as { port: number }).port)));
  return { base: `http://127.0.0.1:${port}`, hooks, close: () => server.close() };
}
