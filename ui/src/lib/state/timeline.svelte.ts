// The timeline: the events of one contact (or all), filtered, a page at a time, with the
// selection, picked rows, folded retries and what just arrived.

import { SvelteSet } from 'svelte/reactivity';
import type { Backend } from '../backend';
import type { EventFilter, EventSummary, ForwardView, SignatureVerdict } from '../api';
import { attemptsOf, foldRetries, messageKey } from '../lists';
import { PagedList } from './paged.svelte';

const PAGE = 100;
/** How long a newly arrived event stays highlighted. */
const HIGHLIGHT_MS = 2500;

/** Forward results kept for events not shown yet: a few seconds of a busy forwarder. */
const EARLY_FORWARDS_KEPT = 500;

export class Timeline {
  /** The contact whose timeline is shown (its lower-case email), or null for every event. */
  contact = $state<string | null>(null);
  signature = $state<SignatureVerdict | null>(null);
  /** Only deliveries whose shape differed from their type's before them. */
  driftOnly = $state(false);
  selectedId = $state<string | null>(null);
  /** Where the window is too narrow for three panes, the detail covers the timeline while
   * this is set (a row was opened); elsewhere it does not matter. */
  detailOpen = $state(false);
  /** Events picked (Ctrl/⌘-click) to replay together. */
  picked = new SvelteSet<string>();
  /** Messages whose retries are shown as rows of their own. */
  private readonly expanded = new SvelteSet<string>();
  /** Bumped when stored events changed under the same ids (a secret re-checked them). */
  revision = $state(0);
  /** Events that just arrived, highlighted for a moment. */
  fresh = new SvelteSet<string>();
  /** Events that arrived above what the user is reading. */
  newAbove = $state(0);
  /** Set by the timeline's view: is its top in view? */
  atTop = $state(true);
  /** True for the update that prepends live events while the user reads further down, so
   * the virtual list keeps what is on screen in place. */
  shift = $state(false);

  private readonly list = new PagedList<EventSummary>((e) => e.id);
  /** Forward results that came before their event (the forwarder may send a delivery
   * before the indexer shows it): applied when it arrives. The newest few only. */
  private readonly earlyForwards = new Map<string, ForwardView>();

  constructor(
    private readonly backend: Backend,
    private readonly report: (error: unknown) => void,
  ) {}

  get events(): EventSummary[] {
    return this.list.items;
  }

  get next(): string | null {
    return this.list.next;
  }

  get loading(): boolean {
    return this.list.loading;
  }

  /** The timeline as shown: a message's retries sit under its first attempt, folded
   * unless expanded, so a message appears once however often systeme.io sent it.
   * Derived once per change: each drawn row reads it (a getter made it again per row). */
  rows = $derived(foldRetries(this.list.items, this.expanded));

  /** The filter on screen (for "export current view"). */
  get filter(): EventFilter {
    const filter: EventFilter = this.contact ? { email: this.contact } : {};
    if (this.signature) filter.signature = this.signature;
    if (this.driftOnly) filter.drift = 'true';
    return filter;
  }

  get selected(): EventSummary | undefined {
    return this.list.items.find((e) => e.id === this.selectedId);
  }

  /** Every delivery of the event's message on screen, first attempt first. */
  attemptsOf(event: EventSummary): EventSummary[] {
    return attemptsOf(this.list.items, event);
  }

  attemptsShown(event: EventSummary): boolean {
    return this.expanded.has(messageKey(event));
  }

  toggleAttempts(event: EventSummary): void {
    const key = messageKey(event);
    if (this.expanded.has(key)) this.expanded.delete(key);
    else this.expanded.add(key);
  }

  showContact(email: string | null): void {
    this.contact = email;
    this.restart();
  }

  /** Shows only deliveries with this signature verdict (or all). */
  setSignature(verdict: SignatureVerdict | null): void {
    if (this.signature === verdict) return;
    this.signature = verdict;
    this.restart();
  }

  /** Shows only deliveries whose shape changed (or all). */
  setDriftOnly(only: boolean): void {
    if (this.driftOnly === only) return;
    this.driftOnly = only;
    this.restart();
  }

  /** The filter changed: start over. */
  private restart(): void {
    this.list.restart(true);
    this.detailOpen = false;
    this.selectedId = null;
    this.newAbove = 0;
    void this.load();
  }

  /** Loads the first page. `replace`: what is on screen may be gone from the store
   * (erased), so nothing of it is kept. */
  async load(replace = false): Promise<void> {
    this.shift = false;
    try {
      const shown = await this.list.first(
        () => this.backend.events({ ...this.filter, limit: PAGE }),
        (page, onScreen) => {
          if (replace) return page;
          // Keep events that arrived live while the page was loading (newer than its
          // newest), not older pages loaded before: the reload starts paging afresh.
          const known = new Set(page.map((e) => e.id));
          const newest = page[0]?.received_at ?? '';
          const live = onScreen.filter((e) => !known.has(e.id) && e.received_at >= newest && this.belongs(e));
          return [...live, ...page];
        },
      );
      if (shown && (!this.selectedId || !this.list.items.some((e) => e.id === this.selectedId))) {
        this.selectedId = this.list.items[0]?.id ?? null;
      }
    } catch (error) {
      this.report(error);
    }
  }

  async more(): Promise<void> {
    this.shift = false;
    try {
      await this.list.more((before) => this.backend.events({ ...this.filter, limit: PAGE, before }));
    } catch (error) {
      this.report(error);
    }
  }

  select(id: string): void {
    this.selectedId = id;
  }

  /** Selects the event and, where the detail covers the timeline, shows it. */
  open(id: string): void {
    this.selectedId = id;
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
    return this.list.items
      .filter((e) => this.picked.has(e.id))
      .sort((a, b) => (a.received_at < b.received_at ? -1 : a.received_at > b.received_at ? 1 : 0))
      .map((e) => e.id);
  }

  /** Picked rows that were on screen (`shown`) and are gone were erased. */
  unpickErased(shown: string[]): void {
    const kept = new Set(this.list.items.map((e) => e.id));
    for (const id of shown) if (!kept.has(id)) this.picked.delete(id);
  }

  /** Moves the selection (keyboard). */
  step(delta: number): void {
    const rows = this.rows;
    if (rows.length === 0) return;
    const index = rows.findIndex((e) => e.id === this.selectedId);
    const next = Math.max(0, Math.min(rows.length - 1, (index < 0 ? -1 : index) + delta));
    this.selectedId = rows[next]!.id;
    if (next >= rows.length - 10) void this.more();
  }

  /** Set by the view as it scrolls. */
  setAtTop(atTop: boolean): void {
    if (this.atTop !== atTop) this.atTop = atTop;
  }

  seenTop(): void {
    this.newAbove = 0;
  }

  belongs(event: EventSummary): boolean {
    return (
      (this.contact === null || event.contact_key === this.contact) &&
      (this.signature === null || event.signature === this.signature) &&
      (!this.driftOnly || event.drift !== null)
    );
  }

  /** Deliveries, oldest first, into the timeline in one change. */
  show(arrivals: EventSummary[]): void {
    const known = new Set(this.list.items.map((e) => e.id));
    const fresh = arrivals.filter((e) => this.belongs(e) && !known.has(e.id));
    const unique = [...new Map(fresh.map((e) => [e.id, this.withEarlyForward(e)])).values()];
    if (unique.length === 0) return;
    this.shift = !this.atTop;
    this.list.items = [...unique.reverse(), ...this.list.items];
    if (!this.atTop) this.newAbove += unique.length;
    if (this.selectedId === null) this.selectedId = unique[0]!.id;
    for (const { id } of unique) {
      this.fresh.add(id);
      setTimeout(() => this.fresh.delete(id), HIGHLIGHT_MS);
    }
  }

  /** The event with a forward result that came before it, unless what it carries is newer
   * (its own view was read while it was derived, maybe before that result). */
  private withEarlyForward(event: EventSummary): EventSummary {
    const early = this.earlyForwards.get(event.id);
    if (early === undefined) return event;
    this.earlyForwards.delete(event.id);
    if (event.forward !== null && event.forward.attempts > early.attempts) return event;
    return { ...event, forward: early };
  }

  /** A forward result: the event on screen shows it, or shows it when it arrives. */
  forwarded(id: string, forward: ForwardView): void {
    const index = this.list.items.findIndex((e) => e.id === id);
    if (index < 0) {
      this.earlyForwards.delete(id);
      this.earlyForwards.set(id, forward);
      if (this.earlyForwards.size > EARLY_FORWARDS_KEPT) {
        this.earlyForwards.delete(this.earlyForwards.keys().next().value!);
      }
      return;
    }
    const events = [...this.list.items];
    events[index] = { ...events[index]!, forward };
    this.shift = false;
    this.list.items = events;
  }
}
