// The state of the window, a part per concern: the connection to Hookscope, the contact
// list, the timeline, the event opened, the selected contact's card, the user's settings,
// what Hookscope sends for the user (replays, test events), the insights and two events
// compared. Each part is changed only through its methods; this class starts them, feeds
// them the live stream, and carries what spans several of them (a contact chosen,
// deliveries erased, a resync, the picked pair compared).
// Views get it through Svelte context (`state/context.ts`).

import type { Backend } from './backend';
import {
  ApiError,
  type ErasureReport,
  type EventFilter,
  type EventSummary,
  type ExportFormat,
  type Registration,
} from './api';
import { ArrivalPacer } from './arrivals';
import { Connection } from './state/connection.svelte';
import { Contacts } from './state/contacts.svelte';
import { Detail } from './state/detail.svelte';
import { Health } from './state/health.svelte';
import { Diff } from './state/diff.svelte';
import { Insights } from './state/insights.svelte';
import { Sending } from './state/sending.svelte';
import { Profile } from './state/profile.svelte';
import { Settings } from './state/settings.svelte';
import { Timeline } from './state/timeline.svelte';

export class AppModel {
  readonly connection: Connection;
  readonly contacts: Contacts;
  readonly timeline: Timeline;
  readonly profile: Profile;
  readonly detail: Detail;
  readonly settings: Settings;
  readonly sending: Sending;
  readonly insights: Insights;
  readonly health: Health;
  readonly diff: Diff;

  private statusTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly arrivals = new ArrivalPacer((events) => this.show(events), () => void this.resync());
  private unsubscribe: (() => void) | undefined;
  private clock: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly backend: Backend) {
    this.connection = new Connection(backend);
    const report = (error: unknown) => this.connection.report(error);
    this.contacts = new Contacts(backend, report);
    this.timeline = new Timeline(backend, report);
    this.profile = new Profile(backend, report);
    this.detail = new Detail(backend);
    this.settings = new Settings(backend, report);
    this.sending = new Sending(backend);
    this.insights = new Insights(backend);
    this.health = new Health(backend);
    this.diff = new Diff(backend);
  }

  async start(): Promise<void> {
    const connection = this.connection;
    this.clock = setInterval(() => (connection.now = Date.now()), 15_000);
    // The first rows are what the user waits for: the lists are asked for first and at
    // once, beside the status and the stream, not after them. Without the token every one
    // of them fails the same way and needsLink is set.
    const lists = Promise.all([this.timeline.load(), this.contacts.load()]);
    await this.refreshStatus();
    if (connection.needsLink) {
      await lists;
      return;
    }
    this.settings.loadQuietly();
    void this.health.loadAlerts();
    this.unsubscribe = this.backend.subscribe({
      captured: (event) => this.captured(event),
      forwarded: (id, forward) => this.timeline.forwarded(id, forward),
      resync: () => void this.resync(),
      tunnel: (status) => connection.setTunnel(status),
      indexing: (progress) => {
        if (connection.setIndexing(progress)) void this.resync();
      },
      erased: () => void this.erased(),
      follow: (view) => connection.followFromStreamSaid(view),
      alert: (alert) => this.health.raised(alert),
      probe: (view) => this.health.probed(view),
      store: (trouble) => connection.storeFromStreamSaid(trouble),
      state: (state) => connection.streamIs(state),
    });
    await lists;
  }

  stop(): void {
    this.unsubscribe?.();
    clearInterval(this.clock);
    clearTimeout(this.statusTimer);
    this.arrivals.stop();
  }

  /** Shows a contact's timeline and card (null: every event). */
  selectContact(email: string | null): void {
    if (this.timeline.contact === email) return;
    this.timeline.showContact(email);
    this.profile.show(email);
  }

  /** Sets the endpoint's secret, then reloads: every verdict of that endpoint may change. */
  async setEndpointSecret(endpointId: string, secret: string | null): Promise<void> {
    await this.backend.setEndpointSecret(endpointId, secret);
    this.timeline.revision += 1;
    await this.resync();
  }

  /** Points the default endpoint's systeme.io Settings webhook at the current public URL;
   * a new secret lands on the endpoint, so verdicts are re-read. */
  async registerWithSysteme(events?: string[], endpointId?: string): Promise<Registration> {
    const endpoint = endpointId ?? this.connection.status?.default_endpoint;
    if (!endpoint) throw new ApiError('not_ready', 'Hookscope is still starting', 0);
    const registration = await this.backend.registerWithSysteme(endpoint, events);
    this.settings.registration = registration;
    if (registration.action !== 'unchanged') this.connection.acknowledgeChange();
    if (registration.secret_stored) {
      this.timeline.revision += 1;
      await this.resync();
    }
    return registration;
  }

  /** Points a systeme.io webhook that points elsewhere back at its endpoint's public URL
   * (from the health view), then reads the health report again. */
  async fixSystemeWebhook(endpointId: string): Promise<Registration> {
    const registration = await this.registerWithSysteme(undefined, endpointId);
    await this.health.load();
    return registration;
  }

  /** Compares the two events picked in the timeline, the older first. */
  comparePicked(): Promise<void> {
    const picked = this.timeline.pickedInOrder;
    if (picked.length !== 2) return Promise.resolve();
    return this.diff.compare(picked[0]!, picked[1]!);
  }

  /** Saves an export (a download, or the window's save dialog). */
  saveExport(filter: EventFilter, format: ExportFormat): Promise<void> {
    return this.backend.saveExport(filter, format);
  }

  /** What forgetting `email` would remove (nothing is removed). */
  erasurePreview(email: string): Promise<ErasureReport> {
    return this.backend.erasurePreview(email);
  }

  /** Forgets a person (everything about them or mentioning them); the timeline goes back
   * to every event. */
  async forget(email: string): Promise<ErasureReport> {
    const report = await this.backend.forgetContact(email);
    const shown = this.timeline.events.map((e) => e.id);
    if (this.timeline.contact === report.email) this.selectContact(null);
    await this.erased(shown);
    return report;
  }

  /** Deliveries were erased (here, by a prune, or by `hookscope forget`): what is on screen
   * (`shown`) may hold some of them. */
  async erased(shown = this.timeline.events.map((e) => e.id)): Promise<void> {
    await Promise.all([this.resync(true), this.settings.loadRetention()]);
    this.timeline.unpickErased(shown);
    // The contact shown was forgotten: nothing of them is left to show.
    if (this.timeline.contact && this.profile.card === null && this.timeline.events.length === 0) {
      this.selectContact(null);
    }
  }

  /** A delivery was indexed: shown at once, or with the rest of its burst, or (a flood: a
   * large import being indexed) by reloading the lists. */
  captured(event: EventSummary): void {
    this.arrivals.arrived(event);
  }

  /** Deliveries, oldest first, into the lists on screen in one change. */
  private show(arrivals: EventSummary[]): void {
    this.refreshStatusSoon();
    for (const event of arrivals) if (event.contact_key) this.contacts.touch(event);
    const contact = this.timeline.contact;
    if (contact && arrivals.some((e) => e.contact_key === contact)) void this.profile.load();
    this.timeline.show(arrivals);
  }

  private async refreshStatus(): Promise<void> {
    if (await this.connection.refresh()) void this.resync();
  }

  private refreshStatusSoon(): void {
    if (this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = undefined;
      void this.refreshStatus();
    }, 400);
  }

  /** Everything read again (the stream reconnected or fell behind, indexing caught up).
   * `replace`: what is on screen may be gone from the store. */
  async resync(replace = false): Promise<void> {
    await this.refreshStatus();
    await Promise.all([this.contacts.load(), this.timeline.load(replace), this.profile.load()]);
  }
}
