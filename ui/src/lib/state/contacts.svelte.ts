// The contact list: a search, its pages, and contacts brought up as their deliveries
// arrive.

import type { Backend } from '../backend';
import type { Contact, EventSummary } from '../api';
import { newestFirst, touchedBy } from '../lists';
import { PagedList } from './paged.svelte';

const PAGE = 100;

export class Contacts {
  query = $state('');
  private readonly list = new PagedList<Contact>((c) => c.email);
  /** Contacts changed by live deliveries while the list was loading. */
  private touchedDuringLoad = new Set<string>();

  constructor(
    private readonly backend: Backend,
    private readonly report: (error: unknown) => void,
  ) {}

  get items(): Contact[] {
    return this.list.items;
  }

  get loading(): boolean {
    return this.list.loading;
  }

  find(email: string | null): Contact | undefined {
    return this.list.items.find((c) => c.email === email);
  }

  setQuery(query: string): void {
    if (query.trim() !== this.query.trim()) this.list.restart(false);
    this.query = query;
    void this.load();
  }

  async load(): Promise<void> {
    const query = this.query.trim();
    const touched = (this.touchedDuringLoad = new Set());
    try {
      await this.list.first(
        () => this.backend.contacts(query, null, PAGE),
        // The answer may predate deliveries that arrived meanwhile: keep their news.
        (page, onScreen) => newestFirst([...onScreen.filter((c) => touched.has(c.email)), ...page]),
      );
    } catch (error) {
      this.report(error);
    }
  }

  async more(): Promise<void> {
    const query = this.query.trim();
    try {
      await this.list.more((before) => this.backend.contacts(query, before, PAGE));
    } catch (error) {
      this.report(error);
    }
  }

  /** A delivery about a contact arrived: it moves to the top, with its news. */
  touch(event: EventSummary): void {
    const key = event.contact_key!;
    this.touchedDuringLoad.add(key);
    const contacts = this.list.items;
    const index = contacts.findIndex((c) => c.email === key);
    if (index >= 0) {
      const updated = touchedBy(contacts[index]!, event);
      this.list.items = [updated, ...contacts.filter((_, i) => i !== index)];
      return;
    }
    // Not on screen: ask for it (exact counts), unless a search is hiding it anyway.
    const query = this.query.trim().toLowerCase();
    if (query && !key.includes(query) && !(event.contact_name ?? '').toLowerCase().includes(query)) return;
    void this.backend.contacts(key, null, 5).then(
      (page) => {
        const found = page.items.find((c) => c.email === key);
        if (found) {
          this.touchedDuringLoad.add(key);
          this.list.items = newestFirst([found, ...this.list.items]);
        }
      },
      (error) => this.report(error),
    );
  }
}
