// The state of the window: contacts, the selected timeline, the selected event, and the
// live stream keeping them current. Views read it; only its methods change it.

import { SvelteSet } from 'svelte/reactivity';
import type { Backend } from './backend';
import {
  ApiError,
  type Contact,
  type ContactCard,
  type ErasureReport,
  type EventFilter,
  type EventSummary,
  type FollowView,
  type ForwardView,
  type IndexProgress,
  type Registration,
  type PrunePreview,
  type RetentionPolicy,
  type SignatureVerdict,
  type Status,
  type StoreTrouble,
  type StreamState,
  type TunnelStatus,
} from './api';
import { ArrivalPacer } from './arrivals';
import { attemptsOf, foldRetries, messageKey, newestFirst, touchedBy } from './lists';

const PAGE = 100;
/** How long a newly arrived event stays highlighted. */
const HIGHLIGHT_MS = 2500;

export class AppModel {
  status = $state<Status | null>(null);
  tunnel = $state<TunnelStatus | null>(null);
  /** Deliveries being refused by the store right now (a full disk), or null. */
  storeTrouble = $state<StoreTrouble | null>(null);
  /** How far indexing has come: while `behind` > 0, lists and searches miss that many. */
  indexing = $state<IndexProgress | null>(null);
  /** How long deliveries are kept, and when pruning last ran. */
  retention = $state<RetentionPolicy | null>(null);
  /** The relay this install follows and how that goes (`state: 'off'` when none). */
  follow = $state<FollowView | null>(null);
  private storeFromStream = false;
  private followFromStream = false;
  /** The URL change the user already acknowledged (they updated systeme.io). */
  acknowledgedChange = $state<string | null>(null);
  stream = $state<StreamState>('connecting');
  /** A problem worth a banner (server gone, a failed request); cleared when it recovers. */
  problem = $state<string | null>(null);
  /** The page was opened without the token cookie. */
  needsLink = $state(false);

  contactQuery = $state('');
  contacts = $state<Contact[]>([]);
  contactsNext = $state<string | null>(null);
  contactsLoading = $state(false);

  /** The contact whose timeline is shown (its lower-case email), or null for every event. */
  selectedContact = $state<string | null>(null);
  events = $state<EventSummary[]>([]);
  eventsNext = $state<string | null>(null);
  eventsLoading = $state(false);
  selectedEventId = $state<string | null>(null);
  /** Where the window is too narrow for three panes, the detail covers the timeline while
   * this is set (a row was opened); elsewhere it does not matter. */
  detailOpen = $state(false);
  signatureFilter = $state<SignatureVerdict | null>(null);
  /** Only deliveries whose shape differed from their type's before them. */
  driftOnly = $state(false);
  /** Where the default endpoint forwards its deliveries, if anywhere. */
  forwardTo = $state<string | null>(null);
  /** Whether a systeme.io API key is stored (Settings webhooks can then follow the tunnel). */
  systemeKeySet = $state(false);
  /** What the last "update in systeme.io" did, for the banner. */
  registration = $state<Registration | null>(null);
  /** The selected contact's card (state derived from its events), once loaded. */
  card = $state<ContactCard | null>(null);
  /** The selected contact's deliveries that failed verification: shown, not counted. */
  cardNotCounted = $state(0);
  /** Events picked (Ctrl/⌘-click) to replay together. */
  picked = new SvelteSet<string>();
  /** Messages whose retries are shown as rows of their own. */
  expandedMessages = new SvelteSet<string>();
  /** Bumped when stored events changed under the same ids (a secret re-checked them). */
  detailRevision = $state(0);

  /** Events that just arrived, highlighted for a moment. */
  fresh = new SvelteSet<string>();
  /** Events that arrived above what the user is reading. */
  newAbove = $state(0);
  /** Set by the timeline: is its top in view? */
  timelineAtTop = $state(true);
  /** True for the update that prepends live events while the user reads further down, so
   * the virtual list keeps what is on screen in place. */
  shift = $state(false);
  /** Ticks so relative times stay true. */
  now = $state(Date.now());

  private contactsRequest = 0;
  /** The newest contacts request whose answer is on screen (an older answer is stale). */
  private contactsShown = 0;
  /** Contacts changed by live deliveries while the contact list was loading. */
  private touchedDuringLoad = new Set<string>();
  private eventsRequest = 0;
  /** Bumped when the timeline's filter changes: answers for an older filter are dropped. */
  private eventsFilterGeneration = 0;
  /** The newest events request whose answer is on screen. */
  private eventsShown = 0;
  private statusTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly arrivals = new ArrivalPacer((events) => this.show(events), () => void this.resync());
  private unsubscribe: (() => void) | undefined;
  private clock: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly backend: Backend) {}

  /** The timeline as shown: a message's retries sit under its first attempt, folded
   * unless expanded, so a message appears once however often systeme.io sent it.
   * Derived once per change: each drawn row reads it (a getter made it again per row). */
  timeline = $derived(foldRetries(this.events, this.expandedMessages));

  /** Every delivery of the event's message on screen, first attempt first. */
  attemptsOf(event: EventSummary): EventSummary[] {
    return attemptsOf(this.events, event);
  }

  attemptsShown(event: EventSummary): boolean {
    return this.expandedMessages.has(messageKey(event));
  }

  toggleAttempts(event: EventSummary): void {
    const key = messageKey(event);
    if (this.expandedMessages.has(key)) this.expandedMessages.delete(key);
    else this.expandedMessages.add(key);
  }

  get selectedEvent(): EventSummary | undefined {
    return this.events.find((e) => e.id === this.selectedEventId);
  }

  get selectedContactInfo(): Contact | undefined {
    return this.contacts.find((c) => c.email === this.selectedContact);
  }

  /** The filter of the timeline on screen (for "export current view"). */
  get currentFilter(): EventFilter {
    const filter: EventFilter = this.selectedContact ? { email: this.selectedContact } : {};
    if (this.signatureFilter) filter.signature = this.signatureFilter;
    if (this.driftOnly) filter.drift = 'true';
    return filter;
  }

  async setSystemeKey(key: string | null): Promise<void> {
    this.systemeKeySet = (await this.backend.setSystemeKey(key)).api_key_set;
  }

  /** Points the default endpoint's systeme.io Settings webhook at the current public URL;
   * a new secret lands on the endpoint, so verdicts are re-read. */
  async registerWithSysteme(events?: string[]): Promise<Registration> {
    const endpoint = this.status?.default_endpoint;
    if (!endpoint) throw new ApiError('not_ready', 'Hookscope is still starting', 0);
    const registration = await this.backend.registerWithSysteme(endpoint, events);
    this.registration = registration;
    if (registration.action !== 'unchanged') this.acknowledgedChange = this.tunnel?.webhook_url ?? null;
    if (registration.secret_stored) {
      this.detailRevision += 1;
      await this.resync();
    }
    return registration;
  }

  /** Shows only deliveries whose shape changed (or all). */
  setDriftOnly(only: boolean): void {
    if (this.driftOnly === only) return;
    this.driftOnly = only;
    this.showNewTimeline();
  }

  /** Loads the selected contact's card; stale answers (another contact by now) are dropped. */
  async loadCard(): Promise<void> {
    const email = this.selectedContact;
    if (!email) {
      this.card = null;
      return;
    }
    try {
      const answer = await this.backend.contactCard(email);
      if (this.selectedContact === email) {
        this.card = answer.card;
        this.cardNotCounted = answer.not_counted;
      }
    } catch (error) {
      if (this.selectedContact === email) this.card = null;
      if (!(error instanceof ApiError && error.status === 404)) this.report(error);
    }
  }

  /** Shows only deliveries with this signature verdict (or all). */
  setSignatureFilter(verdict: SignatureVerdict | null): void {
    if (this.signatureFilter === verdict) return;
    this.signatureFilter = verdict;
    this.showNewTimeline();
  }

  /** Sets the endpoint's secret, then reloads: every verdict of that endpoint may change. */
  async setEndpointSecret(endpointId: string, secret: string | null): Promise<void> {
    await this.backend.setEndpointSecret(endpointId, secret);
    this.detailRevision += 1;
    await this.resync();
  }

  async start(): Promise<void> {
    this.clock = setInterval(() => (this.now = Date.now()), 15_000);
    // The first rows are what the user waits for: the lists are asked for first and at
    // once, beside the status and the stream, not after them. Without the token every one
    // of them fails the same way and needsLink is set.
    const lists = Promise.all([this.loadEvents(), this.loadContacts()]);
    const status = this.backend.status().then(
      (status) => this.setStatus(status),
      (error) => this.report(error),
    );
    await status;
    if (this.needsLink) {
      await lists;
      return;
    }
    void this.backend.systeme().then(
      (account) => (this.systemeKeySet = account.api_key_set),
      () => {},
    );
    void this.loadRetention();
    void this.backend.endpoints().then(
      (endpoints) => (this.forwardTo = endpoints.find((e) => e.is_default)?.forward_to ?? null),
      () => {},
    );
    this.unsubscribe = this.backend.subscribe({
      captured: (event) => this.captured(event),
      forwarded: (id, forward) => this.forwarded(id, forward),
      resync: () => void this.resync(),
      tunnel: (status) => this.setTunnel(status),
      indexing: (progress) => this.setIndexing(progress),
      erased: () => void this.erased(),
      follow: (view) => {
        this.followFromStream = true;
        this.follow = view;
      },
      store: (trouble) => {
        // Each connection's stream starts with the current state: it outranks a status
        // answer that may have been read before the latest change.
        this.storeFromStream = true;
        this.storeTrouble = trouble;
      },
      state: (state) => {
        this.stream = state;
        if (state === 'live') this.problem = null;
        else if (state === 'reconnecting') {
          this.problem = 'Connection to Hookscope lost. Reconnecting…';
          this.storeFromStream = false;
          this.followFromStream = false;
        }
      },
    });
    await lists;
  }

  private setStatus(status: Status): void {
    this.status = status;
    this.setIndexing(status.indexing);
    if (!this.storeFromStream) this.storeTrouble = status.store ?? null;
    if (!this.followFromStream) this.follow = status.follow;
    this.setTunnel(status.tunnel);
  }

  private setIndexing(progress: IndexProgress): void {
    const wasBehind = (this.indexing?.behind ?? 0) > 0;
    this.indexing = progress;
    // What was waiting is in the lists now: show it.
    if (wasBehind && progress.behind === 0) void this.resync();
  }

  async loadRetention(): Promise<void> {
    try {
      this.retention = await this.backend.retention();
    } catch (error) {
      this.report(error);
    }
  }

  /** Keeps deliveries `days` days (null: until deleted); the server prunes at once. */
  async setRetention(days: number | null): Promise<void> {
    this.retention = await this.backend.setRetention(days);
  }

  /** How many deliveries keeping `days` days would prune now (nothing changes). */
  previewRetention(days: number | null): Promise<PrunePreview> {
    return this.backend.previewRetention(days);
  }

  /** Follows a relay from now on; errors (a plain http:// URL to another machine) are for
   * the caller to show. */
  async followRelay(url: string, token: string): Promise<void> {
    this.follow = await this.backend.followRelay(url, token);
  }

  async stopFollowing(): Promise<void> {
    this.follow = await this.backend.stopFollowing();
  }

  /** Forgets a person (everything about them or mentioning them); the timeline goes back
   * to every event. */
  async forget(email: string): Promise<ErasureReport> {
    const report = await this.backend.forgetContact(email);
    const shown = this.events.map((e) => e.id);
    if (this.selectedContact === report.email) this.selectContact(null);
    await this.erased(shown);
    return report;
  }

  /** Deliveries were erased (here, by a prune, or by `hookscope forget`): what is on screen
   * (`shown`) may hold some of them. */
  async erased(shown = this.events.map((e) => e.id)): Promise<void> {
    await Promise.all([this.resync(true), this.loadRetention()]);
    const kept = new Set(this.events.map((e) => e.id));
    // Picked rows that were on screen and are gone were erased.
    for (const id of shown) if (!kept.has(id)) this.picked.delete(id);
    // The contact shown was forgotten: nothing of them is left to show.
    if (this.selectedContact && this.card === null && this.events.length === 0) this.selectContact(null);
  }

  /** Answers can cross (a reply to a switch and a stream event): the newest wins. */
  private setTunnel(status: TunnelStatus): void {
    if (!this.tunnel || status.revision >= this.tunnel.revision) this.tunnel = status;
  }

  /** The public URL changed since systeme.io was set up, and the user has not said they
   * updated it yet. */
  get unannouncedChange(): boolean {
    const t = this.tunnel;
    return !!t?.previous_webhook_url && t.state === 'up' && this.acknowledgedChange !== t.webhook_url;
  }

  /** Switches the tunnel; errors (an invalid URL) are for the caller to show. */
  async chooseTunnel(choice: string, ngrokAuthtoken?: string): Promise<void> {
    this.setTunnel(await this.backend.setTunnel(choice, ngrokAuthtoken));
  }

  stop(): void {
    this.unsubscribe?.();
    clearInterval(this.clock);
    clearTimeout(this.statusTimer);
    this.arrivals.stop();
  }

  private report(error: unknown): void {
    if (error instanceof ApiError && error.code === 'unauthorized') {
      this.needsLink = true;
      return;
    }
    this.problem = error instanceof Error ? error.message : String(error);
  }

  // ---- contacts ---------------------------------------------------------------------

  setContactQuery(query: string): void {
    this.contactQuery = query;
    void this.loadContacts();
  }

  async loadContacts(): Promise<void> {
    const request = ++this.contactsRequest;
    const query = this.contactQuery.trim();
    const touched = (this.touchedDuringLoad = new Set());
    this.contactsLoading = true;
    try {
      const page = await this.backend.contacts(query, null, PAGE);
      // A newer answer is on screen, or the search changed since: this one is stale. An
      // older request for the same search still shows (the first load is not held back
      // by the reload the stream asks for when it connects).
      if (request < this.contactsShown || query !== this.contactQuery.trim()) return;
      this.contactsShown = request;
      // The answer may predate deliveries that arrived meanwhile: keep their news.
      const live = this.contacts.filter((c) => touched.has(c.email));
      this.contacts = newestFirst([...live, ...page.items]);
      this.contactsNext = page.next;
    } catch (error) {
      this.report(error);
    } finally {
      if (request === this.contactsRequest) this.contactsLoading = false;
    }
  }

  async moreContacts(): Promise<void> {
    if (!this.contactsNext || this.contactsLoading) return;
    const request = this.contactsRequest;
    this.contactsLoading = true;
    try {
      const page = await this.backend.contacts(this.contactQuery.trim(), this.contactsNext, PAGE);
      if (request !== this.contactsRequest) return;
      const known = new Set(this.contacts.map((c) => c.email));
      this.contacts = [...this.contacts, ...page.items.filter((c) => !known.has(c.email))];
      this.contactsNext = page.next;
    } catch (error) {
      this.report(error);
    } finally {
      this.contactsLoading = false;
    }
  }

  // ---- timeline ---------------------------------------------------------------------

  selectContact(email: string | null): void {
    if (this.selectedContact === email) return;
    this.selectedContact = email;
    this.card = null;
    this.showNewTimeline();
    void this.loadCard();
  }

  /** The filter changed: start the timeline over. */
  private showNewTimeline(): void {
    this.eventsFilterGeneration += 1;
    this.detailOpen = false;
    this.selectedEventId = null;
    this.events = [];
    this.eventsNext = null;
    this.newAbove = 0;
    void this.loadEvents();
  }

  /** Loads the timeline's first page. `replace`: what is on screen may be gone from the
   * store (erased), so nothing of it is kept. */
  async loadEvents(replace = false): Promise<void> {
    const request = ++this.eventsRequest;
    const generation = this.eventsFilterGeneration;
    this.eventsLoading = true;
    this.shift = false;
    try {
      const page = await this.backend.events({ ...this.currentFilter, limit: PAGE });
      // As for contacts: a newer answer or another filter wins; an older answer for the
      // same filter still shows until the newer one comes.
      if (request < this.eventsShown || generation !== this.eventsFilterGeneration) return;
      this.eventsShown = request;
      // Keep events that arrived live while the page was loading (newer than its newest),
      // not older pages loaded before: the reload starts paging afresh.
      const known = new Set(page.items.map((e) => e.id));
      const newest = page.items[0]?.received_at ?? '';
      const live = replace
        ? []
        : this.events.filter((e) => !known.has(e.id) && e.received_at >= newest && this.belongs(e));
      this.events = [...live, ...page.items];
      this.eventsNext = page.next;
      if (!this.selectedEventId || !this.events.some((e) => e.id === this.selectedEventId)) {
        this.selectedEventId = this.events[0]?.id ?? null;
      }
    } catch (error) {
      this.report(error);
    } finally {
      if (request === this.eventsRequest) this.eventsLoading = false;
    }
  }

  async moreEvents(): Promise<void> {
    if (!this.eventsNext || this.eventsLoading) return;
    const request = this.eventsRequest;
    this.eventsLoading = true;
    this.shift = false;
    try {
      const page = await this.backend.events({ ...this.currentFilter, limit: PAGE, before: this.eventsNext });
      if (request !== this.eventsRequest) return;
      const known = new Set(this.events.map((e) => e.id));
      this.events = [...this.events, ...page.items.filter((e) => !known.has(e.id))];
      this.eventsNext = page.next;
    } catch (error) {
      this.report(error);
    } finally {
      this.eventsLoading = false;
    }
  }

  selectEvent(id: string): void {
    this.selectedEventId = id;
  }

  /** Selects the event and, where the detail covers the timeline, shows it. */
  openEvent(id: string): void {
    this.selectedEventId = id;
    this.detailOpen = true;
  }

  closeDetail(): void {
    this.detailOpen = false;
  }

  /** Adds the event to the picked ones, or takes it out. */
  togglePicked(id: string): void {
    if (this.picked.has(id)) this.picked.delete(id);
    else this.picked.add(id);
  }

  /** The picked events still on screen, oldest first (the order they happened). */
  get pickedInOrder(): string[] {
    return this.events
      .filter((e) => this.picked.has(e.id))
      .sort((a, b) => (a.received_at < b.received_at ? -1 : a.received_at > b.received_at ? 1 : 0))
      .map((e) => e.id);
  }

  /** Moves the selection through the timeline (keyboard). */
  step(delta: number): void {
    const rows = this.timeline;
    if (rows.length === 0) return;
    const index = rows.findIndex((e) => e.id === this.selectedEventId);
    const next = Math.max(0, Math.min(rows.length - 1, (index < 0 ? -1 : index) + delta));
    this.selectedEventId = rows[next]!.id;
    if (next >= rows.length - 10) void this.moreEvents();
  }

  seenTop(): void {
    this.newAbove = 0;
  }

  // ---- live -------------------------------------------------------------------------

  private belongs(event: EventSummary): boolean {
    return (
      (this.selectedContact === null || event.contact_key === this.selectedContact) &&
      (this.signatureFilter === null || event.signature === this.signatureFilter) &&
      (!this.driftOnly || event.drift !== null)
    );
  }

  /** A delivery was indexed: shown at once, or with the rest of its burst, or (a flood: a
   * large import being indexed) by reloading the lists. */
  captured(event: EventSummary): void {
    this.arrivals.arrived(event);
  }

  /** Deliveries, oldest first, into the lists on screen in one change. */
  private show(arrivals: EventSummary[]): void {
    this.refreshStatusSoon();
    for (const event of arrivals) if (event.contact_key) this.touchContact(event);
    if (arrivals.some((e) => e.contact_key && e.contact_key === this.selectedContact)) void this.loadCard();
    const known = new Set(this.events.map((e) => e.id));
    const fresh = arrivals.filter((e) => this.belongs(e) && !known.has(e.id));
    const unique = [...new Map(fresh.map((e) => [e.id, e])).values()];
    if (unique.length === 0) return;
    this.shift = !this.timelineAtTop;
    this.events = [...unique.reverse(), ...this.events];
    if (!this.timelineAtTop) this.newAbove += unique.length;
    if (this.selectedEventId === null) this.selectedEventId = unique[0]!.id;
    for (const { id } of unique) {
      this.fresh.add(id);
      setTimeout(() => this.fresh.delete(id), HIGHLIGHT_MS);
    }
  }

  /** A forward result: the event on screen shows it. */
  forwarded(id: string, forward: ForwardView): void {
    const index = this.events.findIndex((e) => e.id === id);
    if (index < 0) return;
    const events = [...this.events];
    events[index] = { ...events[index]!, forward };
    this.shift = false;
    this.events = events;
  }

  private touchContact(event: EventSummary): void {
    const key = event.contact_key!;
    this.touchedDuringLoad.add(key);
    const index = this.contacts.findIndex((c) => c.email === key);
    if (index >= 0) {
      const updated = touchedBy(this.contacts[index]!, event);
      this.contacts = [updated, ...this.contacts.filter((_, i) => i !== index)];
      return;
    }
    // Not on screen: ask for it (exact counts), unless a search is hiding it anyway.
    const query = this.contactQuery.trim().toLowerCase();
    if (query && !key.includes(query) && !(event.contact_name ?? '').toLowerCase().includes(query)) return;
    void this.backend.contacts(key, null, 5).then(
      (page) => {
        const found = page.items.find((c) => c.email === key);
        if (found) {
          this.touchedDuringLoad.add(key);
          this.contacts = newestFirst([found, ...this.contacts]);
        }
      },
      (error) => this.report(error),
    );
  }

  private refreshStatusSoon(): void {
    if (this.statusTimer) return;
    this.statusTimer = setTimeout(async () => {
      this.statusTimer = undefined;
      try {
        this.setStatus(await this.backend.status());
      } catch (error) {
        this.report(error);
      }
    }, 400);
  }

  async resync(replace = false): Promise<void> {
    try {
      this.setStatus(await this.backend.status());
    } catch (error) {
      this.report(error);
    }
    await Promise.all([this.loadContacts(), this.loadEvents(replace), this.loadCard()]);
  }
}
