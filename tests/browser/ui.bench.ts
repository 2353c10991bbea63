// `make bench` (UI part): figures, not pass/fail. Run with `npx playwright test -c bench.config.ts`.
// 1. Time from POST to the row being visible in an open page, over 200 deliveries.
// 2. Page load with 100,000 events in the store (to the first timeline row).
// Uses the release binary when HOOKSCOPE_BIN points at it.

import { spawnSync } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, test, type Browser } from '@playwright/test';
import { BINARY, Hookscope, tagAdded } from './hookscope.ts';

const LAUNCH = {
  headless: true,
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

const percentile = (values: number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)];
};

async function liveLatency(browser: Browser): Promise<number[]> {
  const server = await startServer();
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(server.uiUrl);
  await page.getByTestId('listener-status').getByText('Listening').waitFor();
  await page.evaluate(() => {
    const w = window as unknown as { __seen: Record<string, number> };
    w.__seen = {};
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('[data-testid="event"] .summary')) {
        const marker = /lat-\d{4}/.exec(el.textContent ?? '')?.[0];
        if (marker && !(marker in w.__seen)) w.__seen[marker] = Date.now();
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  const latencies: number[] = [];
  for (let i = 0; i < 200; i++) {
    const marker = `lat-${String(i).padStart(4, '0')}`;
    const sent = Date.now();
    await server.send(tagAdded(`bench${i % 20}@example.com`, marker));
    const seen = await page.waitForFunction(
      (m) => (window as unknown as { __seen: Record<string, number> }).__seen[m],
      marker,
      { polling: 5 },
    );
    latencies.push(((await seen.jsonValue()) as number) - sent);
    await page.waitForTimeout(10);
  }
  await page.close();
  await server.dispose();
  return latencies;
}

/** Deliveries at `perSecond` (in ticks of 10 ms) to `url` until stopped; counts answers. */
function steadyLoad(url: string, perSecond: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const target = new URL(url);
  let sent = 0;
  let answered = 0;
  const tick = setInterval(() => {
    for (let i = 0; i < perSecond / 100; i++) {
      sent++;
      const req = httpRequest(
        { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', () => answered++);
        },
      );
      req.on('error', () => {});
      req.end(tagAdded(`load${sent % 50}@example.com`, `steady ${sent}`).body as string);
    }
  }, 10);
  const started = Date.now();
  return {
    stop() {
      clearInterval(tick);
      agent.destroy();
      return { sent, answered, seconds: (Date.now() - started) / 1000 };
    },
  };
}

/** POST → row visible in the timeline of the contact being watched, while deliveries
 * about other contacts arrive at `perSecond`. (In All events a row arrives in a batch of
 * the indexer's: at 2,000 a second, a hundred rows above it can push it past the rows a
 * virtual list draws before it is ever in the page.) */
async function latencyUnderLoad(browser: Browser, perSecond: number) {
  const server = await startServer();
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  await page.goto(server.uiUrl);
  await page.getByTestId('listener-status').getByText('Listening').waitFor();
  await server.send(tagAdded('watched@example.com', 'first'));
  await page.locator('[data-testid="contact"][data-email="watched@example.com"]').click();
  await page.waitForFunction(() => {
    const title = document.querySelector('[data-testid="timeline-title"]')?.textContent;
    return !!title && title !== 'All events';
  });
  await page.evaluate(() => {
    const w = window as unknown as { __seen: Record<string, number> };
    w.__seen = {};
    new MutationObserver(() => {
      for (const el of document.querySelectorAll('[data-testid="event"] .summary')) {
        const marker = /mark-\d{4}/.exec(el.textContent ?? '')?.[0];
        if (marker && !(marker in w.__seen)) w.__seen[marker] = Date.now();
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  const load = steadyLoad(server.webhookUrl, perSecond);
  await page.waitForTimeout(2000); // the load settles
  const latencies: number[] = [];
  for (let i = 0; i < 100; i++) {
    const marker = `mark-${String(i).padStart(4, '0')}`;
    const sent = Date.now();
    await server.send(tagAdded('watched@example.com', marker));
    const seen = await page.waitForFunction(
      (m) => (window as unknown as { __seen: Record<string, number> }).__seen[m],
      marker,
      { polling: 5, timeout: 30_000 },
    );
    latencies.push(((await seen.jsonValue()) as number) - sent);
    await page.waitForTimeout(20);
  }
  const done = load.stop();
  await page.close();
  await server.dispose();
  return { latencies, rate: done.answered / done.seconds };
}

function bigStore(events: number) {
  const dir = mkdtempSync(join(tmpdir(), 'hookscope-bench-'));
  const file = join(dir, 'events.ndjson');
  const start = Date.parse('2026-01-01T00:00:00Z');
  writeFileSync(file, '');
  // Written a chunk at a time: a million lines joined would pass V8's longest string.
  let lines: string[] = [];
  for (let i = 0; i < events; i++) {
    const contact = i % 5000;
    const body = JSON.stringify({
      type: 'contact.tag.added',
      data: { tag: { id: i, name: `Tag ${i % 97}` }, contact: { id: contact, email: `person${contact}@example.com`, fields: { first_name: 'Person', surname: `${contact}` } } },
      account: { email: 'owner@example.com' },
      created_at: '2026-01-01T00:00:00+00:00',
    });
    const id = `00000000-0000-7000-8000-${String(i).padStart(12, '0')}`;
    const at = new Date(start + i * 1000).toISOString();
    lines.push(`{"id":"${id}","received_at":"${at}","endpoint":"ep_bench","endpoint_name":"Bench","method":"POST","path":"/h/bench","query":null,"headers":[["content-type","application/json"]],"remote_addr":"127.0.0.1:1","body":${body}}`);
    if (lines.length === 50_000 || i === events - 1) {
      appendFileSync(file, lines.join('\n') + '\n');
      lines = [];
    }
  }
  const started = Date.now();
  const imported = spawnSync(BINARY, ['import', file, '--data-dir', dir], { encoding: 'utf8' });
  if (imported.status !== 0) throw new Error(imported.stderr);
  return { dir, importSeconds: (Date.now() - started) / 1000 };
}

async function pageLoad(browser: Browser, events: number) {
  const { dir, importSeconds } = bigStore(events);
  const server = await startServer(dir);
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  // Where the time goes: when the first row and contact appear, in the page's own clock,
  // and when the frame that shows both was painted: the first animation frame after them
  // runs before that frame's paint, the next one after it.
  await page.addInitScript(() => {
    const w = window as unknown as { __first: Record<string, number> };
    w.__first = {};
    new MutationObserver(() => {
      for (const id of ['event', 'contact']) {
        if (!(id in w.__first) && document.querySelector(`[data-testid="${id}"]`)) w.__first[id] = performance.now();
      }
      if ('event' in w.__first && 'contact' in w.__first && !('painted' in w.__first)) {
        w.__first.painted = -1;
        requestAnimationFrame(() => requestAnimationFrame(() => { w.__first.painted = performance.now(); }));
      }
    }).observe(document, { childList: true, subtree: true });
  });
  await page.goto(server.uiUrl); // sets the cookie
  const loads: number[] = [];
  const breakdowns: LoadBreakdown[] = [];
  for (let i = 0; i < LOADS; i++) {
    const started = Date.now();
    await page.goto(`${server.uiBase}/`);
    await page.getByTestId('event').first().waitFor();
    await page.getByTestId('contact').first().waitFor();
    loads.push(Date.now() - started);
    await page.waitForFunction(() => ((window as unknown as { __first: Record<string, number> }).__first.painted ?? -1) > 0);
    breakdowns.push(await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      const api = (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
        .filter((e) => e.name.includes('/api/'))
        .map((e) => ({ request: new URL(e.name).pathname + new URL(e.name).search, start: Math.round(e.startTime), end: Math.round(e.responseEnd) }));
      const first = (window as unknown as { __first: Record<string, number> }).__first;
      return {
        scriptsDone: Math.round(nav.domContentLoadedEventEnd),
        api,
        firstEvent: Math.round(first.event ?? -1),
        firstContact: Math.round(first.contact ?? -1),
        painted: Math.round(first.painted ?? -1),
      };
    }));
  }
  // The run at the median, step by step.
  const median = loads.indexOf(percentile(loads, 0.5));
  const breakdown = breakdowns[median]!;
  // Scrolling deep: fetch pages as the user scrolls the timeline.
  const scrollStarted = Date.now();
  for (let i = 0; i < 20; i++) {
    await page.mouse.move(700, 500);
    await page.mouse.wheel(0, 4000);
    await page.waitForTimeout(50);
  }
  const rows = await page.evaluate(() => document.querySelectorAll('[data-testid="event"]').length);
  const scrollMs = Date.now() - scrollStarted;
  await context.close();
  await server.dispose();
  rmSync(dir, { recursive: true, force: true });
  return { loads, importSeconds, rows, scrollMs, breakdown, breakdowns };
}

interface LoadBreakdown {
  scriptsDone: number;
  api: { request: string; start: number; end: number }[];
  firstEvent: number;
  firstContact: number;
  painted: number;
}

/** Page loads per store size: enough for a p95 (the 19th of 20). */
const LOADS = 20;

/** A page load's figures: the driver's (from `goto` until its polls find the first row
 * and contact; Playwright polls with back-off, ~100 ms after the load event measured),
 * then the page's own clock from navigation start: both in the DOM, then painted. */
function loadRows(load: { loads: number[]; breakdowns: LoadBreakdown[] }) {
  const rows: [string, number[]][] = [
    ['driver: `goto` to first row and contact found', load.loads],
    ['page clock: first row and contact in the DOM', load.breakdowns.map((b) => Math.max(b.firstEvent, b.firstContact))],
    ['page clock: first row and contact painted', load.breakdowns.map((b) => b.painted)],
  ];
  for (const [what, ms] of rows) {
    console.log(`| ${what} | ${percentile(ms, 0.5)} ms | ${percentile(ms, 0.95)} ms | ${Math.max(...ms)} ms |`);
  }
}

test.setTimeout(15 * 60_000);

/** Every server a run starts, stopped at the end even when a figure fails (a failed run
 * left its server holding its ports and files). */
const servers: Hookscope[] = [];
async function startServer(dataDir?: string): Promise<Hookscope> {
  const server = await new Hookscope(dataDir).start();
  servers.push(server);
  return server;
}
test.afterAll(async () => {
  for (const server of servers) await server.dispose();
});

test('UI figures', async () => {
const browser = await chromium.launch(LAUNCH);
const latencies = await liveLatency(browser);
console.log('## UI: POST → row visible in an open page (200 deliveries, one at a time)');
console.log('| p50 | p90 | p99 | max |');
console.log('|---:|---:|---:|---:|');
console.log(`| ${percentile(latencies, 0.5)} ms | ${percentile(latencies, 0.9)} ms | ${percentile(latencies, 0.99)} ms | ${Math.max(...latencies)} ms |`);
const underLoad = await latencyUnderLoad(browser, 2000);
console.log(`\n## UI: POST → row visible in the watched contact's timeline while ${underLoad.rate.toFixed(0)} deliveries a second arrive for others (100 watched)`);
console.log('| p50 | p90 | p99 | max |');
console.log('|---:|---:|---:|---:|');
const l = underLoad.latencies;
console.log(`| ${percentile(l, 0.5)} ms | ${percentile(l, 0.9)} ms | ${percentile(l, 0.99)} ms | ${Math.max(...l)} ms |`);
const events = 100_000;
const load = await pageLoad(browser, events);
console.log(`\n## UI: page load with ${events.toLocaleString('en')} events (import took ${load.importSeconds.toFixed(1)} s), ${LOADS} loads`);
console.log('| | p50 | p95 | max |');
console.log('|---|---:|---:|---:|');
loadRows(load);
console.log(`\nRows in the DOM after scrolling 80,000 px: ${load.rows} (virtualised).`);
console.log('\nThe median load, in ms from navigation start:');
console.log(`- scripts run (DOMContentLoaded): ${load.breakdown.scriptsDone}`);
for (const call of load.breakdown.api) console.log(`- ${call.request}: ${call.start} → ${call.end} (${call.end - call.start} ms)`);
console.log(`- first timeline row in the DOM: ${load.breakdown.firstEvent}; first contact: ${load.breakdown.firstContact}`);
const million = await pageLoad(browser, 1_000_000);
console.log(`\n## UI: page load with 1,000,000 events (import and indexing took ${million.importSeconds.toFixed(1)} s)`);
console.log('| | p50 | p95 | max |');
console.log('|---|---:|---:|---:|');
loadRows(million);
await browser.close();
});
