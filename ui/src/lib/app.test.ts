import { describe, expect, it, vi } from 'vitest';
import { AppModel } from './app.svelte';
import type { Backend, StreamHandlers } from './backend';
import {
  ApiError,
  type Contact,
  type ContactCard,
  type Endpoint,
  type ErasureReport,
  type EventDiff,
  type EventFilter,
  type EventSummary,
  type FollowView,
  type IndexProgress,
  type Page,
  type Previous,
  type Registration,
  type ReplayResult,
  type RetentionPolicy,
  type Shape,
  type StoreTrouble,
  type TunnelStatus,
  type Alert,
  type AlertRule,
  type HealthReport,
  type NewAlertRule,
  type ProbeView,
} from './api';

let revision = 0;
function tunnel(choice: string, state: TunnelStatus['state'], url: string | null = null, previous: string | null = null): TunnelStatus {
  return {
    revision: ++revision,
    choice,
    provider: choice.split(':')[0] as TunnelStatus['provider'],
    state,
    public_url: url,
    reason: null,
    hint: null,
    previous_url: previous,
    webhook_url: url && `${url}/h/t`,
    previous_webhook_url: previous && `${previous}/h/t`,
    insecure: url?.startsWith('http://') ?? false,
    ngrok_authtoken_set: false,
    proxy_listener: null,
  };
}

function event(id: string, key: string | null, name: string | null = null, at = '2026-11-28T07:00:00.000000Z'): EventSummary {
  return {
    id,
    received_at: at,
    endpoint: 'ep',
    endpoint_name: 'Default',
    method: 'POST',
    path: '/h/t',
    query: null,
    headers: [],
    remote_addr: null,
    client_ip: null,
    via_tunnel: false,
    sender: null,
    source_ok: null,
    signature: 'unsigned',
    message_id: null,
    attempt: 1,
    repeat_of: null,
    drift: null,
    forward: null,
    content_type: 'application/json',
    content_encoding: null,
    size: 2,
    body_kind: 'json',
    source: 'systeme_automation',
    family: 'tag_added',
    event_type: 'contact.tag.added',
    label: 'Tag added',
    summary: `Tag added: ${id}`,
    contact_email: key,
    contact_key: key,
    contact_id: null,
    contact_name: name,
    occurred_at: null,
  };
}

function contact(email: string, events: number): Contact {
  return {
    email,
    name: null,
    contact_id: null,
    events,
    first_seen: '2026-11-28T06:00:00.000000Z',
    last_seen: '2026-11-28T06:00:00.000000Z',
    last_event_id: 'x',
    last_event_type: null,
    last_label: 'Opt-in',
    last_summary: 'Opt-in',
  };
}

class FakeBackend implements Backend {
  handlers: StreamHandlers | undefined;
  contactPages: Record<string, Page<Contact>> = {};
  eventPages: Page<EventSummary> = { items: [], next: null };
  async status() {
    return {
      version: '0',
      listening: true,
      ingest: 'http://127.0.0.1:1',
      webhook_url: 'u',
      default_endpoint: 'ep',
      max_body: 1,
      events: 0,
      contacts: 0,
      tunnel: this.tunnelStatus,
      store: this.storeTrouble,
      notices: [],
      sqlite_memory_bytes: 0,
      indexing: this.indexingProgress,
      follow: this.followView,
    };
  }
  followView: FollowView = { relay: null, state: 'off', behind: 0, since: null, reason: null, received: 0 };
  async followRelay(url: string, token: string): Promise<FollowView> {
    if (url.startsWith('http://') && !url.startsWith('http://127.0.0.1')) {
      throw new ApiError('invalid', `the relay URL ${url} is plain http:// to another machine`, 400);
    }
    this.followed.push([url, token]);
    this.followView = { ...this.followView, relay: url, state: 'connecting' };
    return this.followView;
  }
  followed: [string, string][] = [];
  async stopFollowing(): Promise<FollowView> {
    this.followView = { relay: null, state: 'off', behind: 0, since: null, reason: null, received: 0 };
    return this.followView;
  }
  indexingProgress: IndexProgress = { through: 0, behind: 0 };
  forgotten: string[] = [];
  async erasurePreview(email: string): Promise<ErasureReport> {
    return { email, deliveries: 2, mentioning: 1 };
  }
  async forgetContact(email: string): Promise<ErasureReport> {
    this.forgotten.push(email);
    return { email, deliveries: 2, mentioning: 1 };
  }
  policy: RetentionPolicy = { days: null, endpoints: [], last_run: null };
  async retention() {
    return this.policy;
  }
  async setRetention(days: number | null) {
    this.policy = { ...this.policy, days, last_run: { at: '2026-12-01T10:00:00Z', pruned: 3 } };
    return this.policy;
  }
  async previewRetention(days: number | null) {
    return { due_now: 0, after_change: days === null ? 0 : 5 };
  }
  storeTrouble: StoreTrouble | null = null;
  tunnelStatus: TunnelStatus = tunnel('off', 'off');
  chosen: string[] = [];
  secrets: [string, string | null][] = [];
  async setEndpointSecret(endpointId: string, secret: string | null) {
    this.secrets.push([endpointId, secret]);
  }
  async setTunnel(choice: string) {
    this.chosen.push(choice);
    if (choice === 'manual:nope') throw new ApiError('invalid_request', 'not a base URL', 400);
    return tunnel(choice, 'starting');
  }
  queries: EventFilter[] = [];
  async events(filter: EventFilter) {
    this.queries.push(filter);
    return this.eventPages;
  }
  async eventDocument() {
    return '{}';
  }
  async contacts(query: string) {
    return this.contactPages[query] ?? { items: [], next: null };
  }
  compared: [string, string][] = [];
  async diff(a: string, b: string): Promise<EventDiff> {
    this.compared.push([a, b]);
    throw new ApiError('not_found', `no event ${a}`, 404);
  }
  async previousEvent(id: string): Promise<Previous> {
    throw new ApiError('not_found', `no event before ${id}`, 404);
  }
  subscribe(handlers: StreamHandlers) {
    this.handlers = handlers;
    return () => {};
  }
  exportUrl() {
    return '';
  }
  async saveExport() {}
  cards: Record<string, ContactCard> = {};
  async contactCard(email: string) {
    const card = this.cards[email];
    if (!card) throw new ApiError('not_found', 'no contact', 404);
    const contact: Contact = {
      email,
      name: null,
      contact_id: null,
      events: 0,
      first_seen: '',
      last_seen: '',
      last_event_id: '',
      last_event_type: null,
      last_label: '',
      last_summary: '',
    };
    return { card, contact, not_counted: this.notCounted[email] ?? 0 };
  }
  notCounted: Record<string, number> = {};
  async shapes() {
    return [];
  }
  async shape(): Promise<Shape> {
    throw new ApiError('not_found', 'no shape', 404);
  }
  async funnels() {
    return { funnels: [], not_counted: 0 };
  }
  async systeme() {
    return { api_key_set: false, events: [] };
  }
  async setSystemeKey(key: string | null) {
    return { api_key_set: key !== null, events: [] };
  }
  async systemeWebhooks() {
    return [];
  }
  async registerWithSysteme(): Promise<Registration> {
    throw new ApiError('invalid_request', 'no key', 400);
  }
  healthReport: HealthReport = {
    public_url: null,
    probe: null,
    endpoints: [],
    systeme: { key_set: false, webhooks: [], error: null },
    alerts: [],
    rules: [],
  };
  acknowledged: number[][] = [];
  async health() {
    return this.healthReport;
  }
  async unreadAlerts() {
    return this.healthReport.alerts;
  }
  async probeNow(): Promise<ProbeView> {
    throw new ApiError('invalid_request', 'no public URL', 400);
  }
  async acknowledgeAlerts(ids: number[]) {
    this.acknowledged.push(ids);
  }
  async addAlertRule(rule: NewAlertRule): Promise<AlertRule> {
    return { id: 9, kind: rule.kind, endpoint_id: null, event_type: rule.event_type ?? null, threshold: rule.threshold ?? null };
  }
  async deleteAlertRule() {
    return [];
  }
  async endpoints() {
    return [];
  }
  async setForwardTo(): Promise<Endpoint> {
    throw new ApiError('invalid_request', 'no', 400);
  }
  async setResponse(): Promise<Endpoint> {
    throw new ApiError('invalid_request', 'no', 400);
  }
  async replay(): Promise<ReplayResult> {
    throw new ApiError('invalid_request', 'no', 400);
  }
  async replayContact() {
    return [];
  }
  async replays() {
    return [];
  }
  async replaySelection() {
    return [];
  }
  async templates() {
    return [];
  }
  async sendTestEvent() {
    return { id: null, status: 200 };
  }
  async forwardAnswer() {
    return { status: 200, headers: [] };
  }
}

describe('AppModel live updates', () => {
  it('moves the contact of a new delivery to the top with its new count', async () => {
    const backend = new FakeBackend();
    backend.contactPages[''] = { items: [contact('a@x.io', 2), contact('b@x.io', 5)], next: null };
    const model = new AppModel(backend);
    await model.start();
    backend.handlers!.captured(event('e1', 'b@x.io', 'Bea'));
    expect(model.contacts.items.map((c) => [c.email, c.events, c.name])).toEqual([
      ['b@x.io', 6, 'Bea'],
      ['a@x.io', 2, null],
    ]);
    expect(model.contacts.items[0]!.last_summary).toBe('Tag added: e1');
    model.stop();
  });

  it('counts a retry of a message as the store does: not as one more event', async () => {
    const backend = new FakeBackend();
    backend.contactPages[''] = { items: [contact('a@x.io', 2), contact('b@x.io', 5)], next: null };
    const model = new AppModel(backend);
    await model.start();
    backend.handlers!.captured({ ...event('again', 'a@x.io'), message_id: 'm1', attempt: 2 });
    expect(model.contacts.items.map((c) => [c.email, c.events])).toEqual([
      ['a@x.io', 2],
      ['b@x.io', 5],
    ]);
    expect(model.contacts.items[0]!.last_event_id).toBe('again');
    model.stop();
  });

  it('fetches a contact that is not loaded yet instead of guessing its count', async () => {
    const backend = new FakeBackend();
    backend.contactPages['new@x.io'] = { items: [contact('new@x.io', 9)], next: null };
    const model = new AppModel(backend);
    await model.start();
    backend.handlers!.captured(event('e1', 'new@x.io'));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(model.contacts.items.map((c) => [c.email, c.events])).toEqual([['new@x.io', 9]]);
    model.stop();
  });

  it('keeps a contact that arrived live while the contact list was still loading', async () => {
    const backend = new FakeBackend();
    backend.contactPages['late@x.io'] = { items: [contact('late@x.io', 1)], next: null };
    let answer: (page: Page<Contact>) => void = () => {};
    const slow = new Promise<Page<Contact>>((resolve) => (answer = resolve));
    const original = backend.contacts.bind(backend);
    backend.contacts = (query: string) => (query === '' ? slow : original(query));
    const model = new AppModel(backend);
    const started = model.start();
    await new Promise((resolve) => setTimeout(resolve, 0));
    backend.handlers!.captured(event('e1', 'late@x.io'));
    await new Promise((resolve) => setTimeout(resolve, 0));
    answer({ items: [], next: null }); // computed before the delivery was stored
    await started;
    expect(model.contacts.items.map((c) => c.email)).toEqual(['late@x.io']);
    model.stop();
  });

  it('adds deliveries to the timeline on screen only, and counts those above the reader', async () => {
    const backend = new FakeBackend();
    const model = new AppModel(backend);
    await model.start();
    model.selectContact('a@x.io');
    await new Promise((resolve) => setTimeout(resolve, 0));
    backend.handlers!.captured(event('other', 'b@x.io'));
    backend.handlers!.captured(event('mine', 'a@x.io'));
    expect(model.timeline.events.map((e) => e.id)).toEqual(['mine']);
    expect(model.timeline.fresh.has('mine')).toBe(true);
    model.timeline.setAtTop(false);
    backend.handlers!.captured(event('mine2', 'a@x.io'));
    expect(model.timeline.newAbove).toBe(1);
    expect(model.timeline.shift).toBe(true);
    backend.handlers!.captured(event('mine2', 'a@x.io'));
    expect(model.timeline.events.length).toBe(2);
    model.stop();
  });

  it('reloads from the first page on resync, keeping only deliveries newer than it', async () => {
    const at = (second: number) => `2026-11-28T07:00:${String(second).padStart(2, '0')}.000000Z`;
    const backend = new FakeBackend();
    backend.eventPages = { items: [event('e20', null, null, at(20)), event('e19', null, null, at(19))], next: 'p2' };
    const model = new AppModel(backend);
    await model.start();
    backend.eventPages = { items: [event('e18', null, null, at(18))], next: null };
    await model.timeline.more();
    expect(model.timeline.events.map((e) => e.id)).toEqual(['e20', 'e19', 'e18']);

    // The reload answers with what the store held before e22 was streamed to us.
    backend.eventPages = { items: [event('e21', null, null, at(21)), event('e20', null, null, at(20))], next: 'p2' };
    backend.handlers!.captured(event('e22', null, null, at(22)));
    await model.resync();
    expect(model.timeline.events.map((e) => e.id)).toEqual(['e22', 'e21', 'e20']);
    expect(model.timeline.next).toBe('p2');
    model.stop();
  });

  it('steps through events with the keyboard, within bounds', async () => {
    const backend = new FakeBackend();
    backend.eventPages = { items: [event('1', null), event('2', null), event('3', null)], next: null };
    const model = new AppModel(backend);
    await model.start();
    expect(model.timeline.selectedId).toBe('1');
    model.timeline.step(1);
    model.timeline.step(1);
    model.timeline.step(1);
    expect(model.timeline.selectedId).toBe('3');
    model.timeline.step(-1);
    expect(model.timeline.selectedId).toBe('2');
    model.stop();
  });
});

describe('AppModel tunnel', () => {
  it('follows the tunnel from the status and the stream, and announces a changed URL until acknowledged', async () => {
    const backend = new FakeBackend();
    backend.tunnelStatus = tunnel('cloudflared', 'starting');
    const model = new AppModel(backend);
    await model.start();
    expect(model.connection.tunnel?.state).toBe('starting');
    backend.handlers!.tunnel(tunnel('cloudflared', 'up', 'https://a.trycloudflare.com'));
    expect(model.connection.tunnel?.webhook_url).toBe('https://a.trycloudflare.com/h/t');
    expect(model.connection.unannouncedChange).toBe(false);
    backend.handlers!.tunnel(tunnel('cloudflared', 'up', 'https://b.trycloudflare.com', 'https://a.trycloudflare.com'));
    expect(model.connection.unannouncedChange).toBe(true);
    model.connection.acknowledgeChange();
    expect(model.connection.unannouncedChange).toBe(false);
    model.stop();
  });

  it('follows store trouble from the status and the stream, the stream outranking an older status', async () => {
    const backend = new FakeBackend();
    const full: StoreTrouble = { since: '2026-11-28T12:00:00.000000Z', refused: 2, code: 'disk_full', message: 'full' };
    backend.storeTrouble = full;
    const model = new AppModel(backend);
    await model.start();
    expect(model.connection.storeTrouble).toEqual(full);
    backend.handlers!.store(null);
    expect(model.connection.storeTrouble).toBeNull();
    backend.handlers!.store({ ...full, refused: 7 });
    expect(model.connection.storeTrouble?.refused).toBe(7);
    // A status read before that change does not undo it.
    await model.resync();
    expect(model.connection.storeTrouble?.refused).toBe(7);
    // Cut off, the status is all there is until the new stream says more.
    backend.handlers!.state('reconnecting');
    backend.storeTrouble = null;
    await model.resync();
    expect(model.connection.storeTrouble).toBeNull();
    model.stop();
  });

  it('switches the tunnel and leaves a refusal to the caller', async () => {
    const backend = new FakeBackend();
    const model = new AppModel(backend);
    await model.start();
    await model.connection.chooseTunnel('bore:bore.pub');
    expect(model.connection.tunnel?.choice).toBe('bore:bore.pub');
    await expect(model.connection.chooseTunnel('manual:nope')).rejects.toMatchObject({ code: 'invalid_request' });
    expect(model.connection.tunnel?.choice).toBe('bore:bore.pub');
    expect(backend.chosen).toEqual(['bore:bore.pub', 'manual:nope']);
    // A stream event newer than a late reply is not undone by it.
    const late = tunnel('manual:https://x.example', 'starting');
    backend.handlers!.tunnel(tunnel('manual:https://x.example', 'up', 'https://x.example'));
    backend.setTunnel = async () => late;
    await model.connection.chooseTunnel('manual:https://x.example');
    expect(model.connection.tunnel?.state).toBe('up');
    model.stop();
  });
});

describe('AppModel signatures', () => {
  it('filters the timeline on a verdict, live deliveries included, and reloads after a secret is set', async () => {
    const backend = new FakeBackend();
    const model = new AppModel(backend);
    await model.start();
    model.timeline.setSignature('invalid');
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(backend.queries.at(-1)).toEqual({ signature: 'invalid', limit: 100 });
    backend.handlers!.captured({ ...event('ok', null), signature: 'valid' });
    backend.handlers!.captured({ ...event('bad', null), signature: 'invalid' });
    expect(model.timeline.events.map((e) => e.id)).toEqual(['bad']);

    const before = backend.queries.length;
    await model.setEndpointSecret('ep', 'whsec');
    expect(backend.secrets).toEqual([['ep', 'whsec']]);
    expect(backend.queries.length).toBeGreaterThan(before);
    expect(model.timeline.revision).toBe(1);
    model.stop();
  });
});


describe('AppModel systeme.io state', () => {
  function retry(id: string, message: string, attempt: number, at: string): EventSummary {
    return { ...event(id, 'a@x.io', null, at), message_id: message, attempt };
  }

  it('folds retries under their first attempt until asked to show them', async () => {
    const backend = new FakeBackend();
    backend.eventPages = {
      items: [
        retry('r3', 'm1', 3, '2026-11-28T07:00:03.000000Z'),
        event('other', 'b@x.io', null, '2026-11-28T07:00:02.500000Z'),
        retry('r2', 'm1', 2, '2026-11-28T07:00:02.000000Z'),
        retry('r1', 'm1', 1, '2026-11-28T07:00:01.000000Z'),
        // A retry whose first attempt is not loaded stays visible.
        retry('lone', 'm2', 2, '2026-11-28T07:00:00.000000Z'),
      ],
      next: null,
    };
    const model = new AppModel(backend);
    await model.start();
    expect(model.timeline.rows.map((e) => e.id)).toEqual(['other', 'r1', 'lone']);
    // A retry whose bytes differ is not hidden.
    backend.handlers!.captured({ ...retry('tampered', 'm1', 4, '2026-11-28T07:00:04.000000Z'), signature: 'invalid' });
    expect(model.timeline.rows.map((e) => e.id)).toEqual(['tampered', 'other', 'r1', 'lone']);
    const first = model.timeline.events.find((e) => e.id === 'r1')!;
    expect(model.timeline.attemptsOf(first).map((e) => e.attempt)).toEqual([1, 2, 3, 4]);
    model.timeline.toggleAttempts(first);
    expect(model.timeline.attemptsShown(first)).toBe(true);
    expect(model.timeline.rows.map((e) => e.id)).toEqual(['tampered', 'r3', 'other', 'r2', 'r1', 'lone']);
    model.timeline.select('other');
    model.timeline.toggleAttempts(first);
    model.timeline.step(1);
    expect(model.timeline.selectedId).toBe('r1');
    model.stop();
  });

  it('loads the selected contact card and reloads it when the contact gets an event', async () => {
    const backend = new FakeBackend();
    const empty: ContactCard = {
      tags: [],
      purchases: [],
      enrolments: [],
      webinars: [],
      optins: [],
      campaigns: [],
      pages: [],
      email_clicks: [],
    };
    backend.cards['a@x.io'] = { ...empty, tags: ['Lead'] };
    const model = new AppModel(backend);
    await model.start();
    model.selectContact('a@x.io');
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(model.profile.card?.tags).toEqual(['Lead']);
    backend.cards['a@x.io'] = { ...empty, tags: ['Lead', 'VIP'] };
    backend.handlers!.captured(event('e9', 'b@x.io'));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(model.profile.card?.tags, 'another contact changes nothing').toEqual(['Lead']);
    backend.handlers!.captured(event('e10', 'a@x.io'));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(model.profile.card?.tags).toEqual(['Lead', 'VIP']);
    model.selectContact('nobody@x.io');
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(model.profile.card).toBeNull();
    expect(model.connection.problem).toBeNull();
    model.stop();
  });

  it('filters on drift and keeps only drifted live events', async () => {
    const backend = new FakeBackend();
    const model = new AppModel(backend);
    await model.start();
    model.timeline.setDriftOnly(true);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(backend.queries.at(-1)?.drift).toBe('true');
    backend.handlers!.captured(event('plain', 'a@x.io'));
    backend.handlers!.captured({ ...event('drifted', 'a@x.io'), drift: [{ path: 'x', change: 'added', now: ['string'] }] });
    expect(model.timeline.events.map((e) => e.id)).toEqual(['drifted']);
    model.stop();
  });
});

describe('AppModel forwarding', () => {
  it('shows a forward result on the event it belongs to', async () => {
    const backend = new FakeBackend();
    backend.eventPages = { items: [event('a', 'a@x.io'), event('b', 'a@x.io')], next: null };
    const model = new AppModel(backend);
    await model.start();
    const forward = { target: 'http://localhost:3000/', state: 'delivered' as const, attempts: 1, status: 200, duration_ms: 12, error: null };
    backend.handlers!.forwarded('b', forward);
    expect(model.timeline.events.find((e) => e.id === 'b')?.forward).toEqual(forward);
    expect(model.timeline.events.find((e) => e.id === 'a')?.forward).toBeNull();
    backend.handlers!.forwarded('not-on-screen', forward);
    expect(model.timeline.events).toHaveLength(2);
    model.stop();
  });

  it('keeps a forward result that came before its event, unless the event carries a newer one', async () => {
    const backend = new FakeBackend();
    backend.eventPages = { items: [], next: null };
    const model = new AppModel(backend);
    await model.start();
    const pending = { target: 'http://localhost:3000/', state: 'pending' as const, attempts: 0, status: null, duration_ms: null, error: null };
    const delivered = { ...pending, state: 'delivered' as const, attempts: 1, status: 202, duration_ms: 9 };
    const retried = { ...pending, state: 'delivered' as const, attempts: 2, status: 200, duration_ms: 7 };
    // The forwarder sent both before the indexer showed them; each event was derived
    // while its forward was pending, and `late` again after a second attempt.
    backend.handlers!.forwarded('early', delivered);
    backend.handlers!.forwarded('late', delivered);
    backend.handlers!.captured({ ...event('early', 'a@x.io'), forward: pending });
    backend.handlers!.captured({ ...event('late', 'a@x.io'), forward: retried });
    const shown = (id: string) => model.timeline.events.find((e) => e.id === id)?.forward;
    expect(shown('early')).toEqual(delivered);
    expect(shown('late')).toEqual(retried);
    model.stop();
  });
});

describe('AppModel picking', () => {
  it('replays picked events in the order they happened', async () => {
    const backend = new FakeBackend();
    backend.eventPages = {
      items: [
        event('new', 'a@x.io', null, '2026-11-28T07:00:03.000000Z'),
        event('mid', 'a@x.io', null, '2026-11-28T07:00:02.000000Z'),
        event('old', 'a@x.io', null, '2026-11-28T07:00:01.000000Z'),
      ],
      next: null,
    };
    const model = new AppModel(backend);
    await model.start();
    model.timeline.togglePicked('new');
    model.timeline.togglePicked('old');
    model.timeline.togglePicked('mid');
    model.timeline.togglePicked('mid');
    expect(model.timeline.pickedInOrder).toEqual(['old', 'new']);
    model.stop();
  });
});

/** A backend whose events answers wait until the test releases them, one by one. */
class HeldEventsBackend extends FakeBackend {
  held: { filter: EventFilter; release: (page: Page<EventSummary>) => void }[] = [];
  statusAsked = false;
  override async events(filter: EventFilter) {
    this.queries.push(filter);
    return new Promise<Page<EventSummary>>((release) => this.held.push({ filter, release }));
  }
  override async status() {
    this.statusAsked = true;
    return new Promise<Awaited<ReturnType<FakeBackend['status']>>>(() => {});
  }
}

describe('the first rows', () => {
  const flush = () => new Promise((done) => setTimeout(done, 0));

  it('are asked for at once, without waiting for the status', async () => {
    const backend = new HeldEventsBackend();
    void new AppModel(backend).start();
    await flush();
    // The status never answers here: the timeline was asked for all the same.
    expect(backend.statusAsked).toBe(true);
    expect(backend.queries).toHaveLength(1);
  });

  it('show when they come, even if the reload the stream asks for on connect is still out', async () => {
    const backend = new HeldEventsBackend();
    const model = new AppModel(backend);
    void model.timeline.load();
    void model.timeline.load(); // what resync() does when the stream connects
    backend.held[0]!.release({ items: [event('first', null)], next: null });
    await flush();
    expect(model.timeline.events.map((e) => e.id), 'the older answer shows until the newer one comes').toEqual(['first']);
    backend.held[1]!.release({ items: [event('newer', null), event('first', null)], next: null });
    await flush();
    expect(model.timeline.events.map((e) => e.id)).toEqual(['newer', 'first']);
  });

  it('are not replaced by an older answer, nor by one for another filter', async () => {
    const backend = new HeldEventsBackend();
    const model = new AppModel(backend);
    void model.timeline.load();
    void model.timeline.load();
    backend.held[1]!.release({ items: [event('newer', null)], next: null });
    await flush();
    backend.held[0]!.release({ items: [event('older', null)], next: null });
    await flush();
    expect(model.timeline.events.map((e) => e.id), 'the older answer came last and is dropped').toEqual(['newer']);

    model.selectContact('someone@example.com'); // asks: held[2]
    model.selectContact(null); // asks again: held[3]
    backend.held[2]!.release({ items: [event('stale', 'someone@example.com')], next: null });
    await flush();
    expect(model.timeline.events.map((e) => e.id), "another contact's answer does not land on All events").not.toContain('stale');
  });
});

describe('the detail over the timeline', () => {
  it('opens with a row and closes with another contact', () => {
    const model = new AppModel(new FakeBackend());
    model.timeline.open('e1');
    expect([model.timeline.selectedId, model.timeline.detailOpen]).toEqual(['e1', true]);
    model.selectContact('other@example.com');
    expect(model.timeline.detailOpen, 'a new timeline shows the timeline').toBe(false);
    model.timeline.open('e2');
    model.timeline.closeDetail();
    expect([model.timeline.selectedId, model.timeline.detailOpen]).toEqual(['e2', false]);
  });
});

describe('erasure and retention', () => {
  it('forgets the contact shown: its rows leave at once, even the newest, and every event shows', async () => {
    const backend = new FakeBackend();
    backend.contactPages[''] = { items: [contact('marie@x.io', 2), contact('bob@x.io', 1)], next: null };
    backend.cards['marie@x.io'] = { tags: [] } as unknown as ContactCard;
    backend.eventPages = { items: [event('m2', 'marie@x.io', null, '2026-11-28T08:00:00.000000Z'), event('m1', 'marie@x.io')], next: null };
    const model = new AppModel(backend);
    await model.start();
    model.selectContact('marie@x.io');
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(model.timeline.events.map((e) => e.id)).toEqual(['m2', 'm1']);
    model.timeline.picked.add('m2');
    // What the store holds after the forget.
    delete backend.cards['marie@x.io'];
    backend.contactPages[''] = { items: [contact('bob@x.io', 1)], next: null };
    backend.eventPages = { items: [event('b1', 'bob@x.io')], next: null };
    const report = await model.forget('marie@x.io');
    expect(report).toEqual({ email: 'marie@x.io', deliveries: 2, mentioning: 1 });
    expect(backend.forgotten).toEqual(['marie@x.io']);
    expect(model.timeline.contact).toBeNull();
    expect(model.timeline.events.map((e) => e.id)).toEqual(['b1']);
    expect(model.contacts.items.map((c) => c.email)).toEqual(['bob@x.io']);
    expect(model.timeline.picked.size).toBe(0);
    model.stop();
  });

  it('drops erased rows when the stream says deliveries were erased elsewhere', async () => {
    const backend = new FakeBackend();
    backend.eventPages = { items: [event('new', 'a@x.io', null, '2026-11-28T09:00:00.000000Z'), event('old', 'b@x.io')], next: null };
    const model = new AppModel(backend);
    await model.start();
    // `hookscope forget a@x.io` ran: the newest row is gone from the store.
    backend.eventPages = { items: [event('old', 'b@x.io')], next: null };
    backend.handlers!.erased();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(model.timeline.events.map((e) => e.id)).toEqual(['old']);
    model.stop();
  });

  it('says how many deliveries wait to be indexed, and shows them once indexed', async () => {
    const backend = new FakeBackend();
    backend.indexingProgress = { through: 10, behind: 5000 };
    const model = new AppModel(backend);
    await model.start();
    expect(model.connection.indexing).toEqual({ through: 10, behind: 5000 });
    backend.handlers!.indexing({ through: 2010, behind: 3000 });
    expect(model.connection.indexing?.behind).toBe(3000);
    const asked = backend.queries.length;
    backend.indexingProgress = { through: 5010, behind: 0 };
    backend.handlers!.indexing({ through: 5010, behind: 0 });
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(model.connection.indexing?.behind).toBe(0);
    expect(backend.queries.length).toBeGreaterThan(asked);
    model.stop();
  });

  it('loads the retention policy and sets it', async () => {
    const backend = new FakeBackend();
    const model = new AppModel(backend);
    await model.start();
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(model.settings.retention?.days).toBeNull();
    await model.settings.setRetention(30);
    expect(model.settings.retention).toEqual({ days: 30, endpoints: [], last_run: { at: '2026-12-01T10:00:00Z', pruned: 3 } });
    model.stop();
  });
});

describe('bursts of deliveries', () => {
  const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('shows the first of a burst at once and the rest together, newest first', async () => {
    const backend = new FakeBackend();
    const model = new AppModel(backend);
    await model.start();
    const at = (n: number) => `2026-11-28T07:${String(Math.floor(n / 60)).padStart(2, '0')}:${String(n % 60).padStart(2, '0')}.000000Z`;
    for (let n = 0; n < 120; n++) backend.handlers!.captured(event(`e${n}`, null, null, at(n)));
    expect(model.timeline.events.length).toBe(50);
    await wait(250);
    expect(model.timeline.events.length).toBe(120);
    expect(model.timeline.events.slice(0, 3).map((e) => e.id)).toEqual(['e119', 'e118', 'e117']);
    expect(model.timeline.events.at(-1)!.id).toBe('e0');
    model.stop();
  });

  it('reloads the lists instead of adding a flood one by one', async () => {
    const backend = new FakeBackend();
    const model = new AppModel(backend);
    await model.start();
    const asked = backend.queries.length;
    backend.eventPages = { items: [event('newest', null)], next: 'more' };
    for (let n = 0; n < 2000; n++) backend.handlers!.captured(event(`bulk${n}`, null, null, '2026-11-28T06:00:00.000000Z'));
    await wait(250);
    expect(backend.queries.length).toBe(asked + 1);
    expect(model.timeline.events[0]!.id).toBe('newest');
    expect(model.timeline.events.length).toBeLessThan(100);
    model.stop();
  });
});

describe('following a relay', () => {
  it('shows the state the server reports, then each change the stream brings', async () => {
    const backend = new FakeBackend();
    backend.followView = { relay: 'https://relay.example.com', state: 'unreachable', behind: 0, since: '2026-12-01T10:00:00.000000Z', reason: 'cannot reach the relay', received: 0 };
    const model = new AppModel(backend);
    await model.start();
    expect(model.connection.follow?.state, 'as the status said at start').toBe('unreachable');
    backend.handlers!.follow({ relay: 'https://relay.example.com', state: 'catching_up', behind: 1200, since: null, reason: null, received: 300 });
    expect([model.connection.follow?.state, model.connection.follow?.behind]).toEqual(['catching_up', 1200]);
    model.stop();
  });

  it('follows and stops following; a refused URL is the caller\'s to show', async () => {
    const backend = new FakeBackend();
    const model = new AppModel(backend);
    await model.start();
    await expect(model.connection.followRelay('http://relay.example.com', 't')).rejects.toThrow('plain http://');
    expect(backend.followed, 'nothing was followed').toEqual([]);
    await model.connection.followRelay('https://relay.example.com', 'sync-token');
    expect(backend.followed).toEqual([['https://relay.example.com', 'sync-token']]);
    expect(model.connection.follow?.state).toBe('connecting');
    await model.connection.stopFollowing();
    expect(model.connection.follow?.state).toBe('off');
    model.stop();
  });
});

describe('health and alerts', () => {
  const alert = (id: number, kind: Alert['kind']): Alert => ({
    id,
    rule_id: 1,
    kind,
    endpoint_id: 'ep',
    event_type: null,
    message: `alert ${id}`,
    advice: 'do this',
    raised_at: '2026-12-06T12:00:00.000000Z',
    cleared_at: null,
    acknowledged_at: null,
  });

  it('shows alerts the stream raises, once each, and turns amber until they are read', async () => {
    const backend = new FakeBackend();
    backend.healthReport = { ...backend.healthReport, alerts: [alert(1, 'forward')] };
    const model = new AppModel(backend);
    await model.start();
    await vi.waitFor(() => expect(model.health.alerts.map((a) => a.id)).toEqual([1]));
    expect(model.health.troubled).toBe(true);
    expect(model.health.fresh).toEqual([]);
    backend.handlers!.alert(alert(2, 'verification'));
    backend.handlers!.alert(alert(2, 'verification'));
    expect(model.health.alerts.map((a) => a.id)).toEqual([2, 1]);
    expect(model.health.fresh.map((a) => a.id)).toEqual([2]);
    await model.health.acknowledge([2]);
    expect(backend.acknowledged).toEqual([[2]]);
    expect(model.health.fresh).toEqual([]);
    await model.health.acknowledge();
    expect(backend.acknowledged).toEqual([[2], [1]]);
    expect(model.health.troubled).toBe(false);
    model.stop();
  });

  it('follows the probe the stream reports: a failing public URL is trouble', async () => {
    const backend = new FakeBackend();
    const model = new AppModel(backend);
    await model.start();
    backend.handlers!.probe({ reaches: false, url: 'https://x', checked_at: '2026-12-06T12:00:00Z', duration_ms: 3, error: 'refused', advice: 'restart' });
    expect(model.health.troubled).toBe(true);
    backend.handlers!.probe({ reaches: true, url: 'https://x', checked_at: '2026-12-06T12:01:00Z', duration_ms: 90, error: null, advice: null });
    expect(model.health.troubled).toBe(false);
    await model.health.checkNow();
    expect(model.health.error).toBe('no public URL');
    model.stop();
  });
});
