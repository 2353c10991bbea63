// A list read a page at a time, where the latest answer wins. Contacts and the timeline
// are both this: answers can cross (a search typed on, a filter changed, the reload the
// stream asks for), and an old answer must never replace a newer one on screen.

import type { Page } from '../api';

export class PagedList<T> {
  items = $state<T[]>([]);
  next = $state<string | null>(null);
  loading = $state(false);

  private request = 0;
  /** The newest first-page request whose answer is on screen. */
  private shown = 0;
  /** Bumped when the query changes: answers for an older query are dropped. */
  private generation = 0;

  constructor(private readonly key: (item: T) => string) {}

  /** The query changed: answers to it are dropped from now on. `clear` also empties the
   * list (a timeline for another filter starts blank; a search keeps showing the last
   * results until the new ones come). */
  restart(clear: boolean): void {
    this.generation += 1;
    if (clear) {
      this.items = [];
      this.next = null;
    }
  }

  /** Loads the first page. A newer answer, or another query, wins; an older answer for the
   * same query still shows until the newer one comes (the first load is not held back by
   * a reload asked for meanwhile). `merge` makes the list from the page and what is on
   * screen (live arrivals kept). False when the answer was dropped. */
  async first(fetch: () => Promise<Page<T>>, merge: (page: T[], onScreen: T[]) => T[]): Promise<boolean> {
    const request = ++this.request;
    const generation = this.generation;
    this.loading = true;
    try {
      const page = await fetch();
      if (request < this.shown || generation !== this.generation) return false;
      this.shown = request;
      this.items = merge(page.items, this.items);
      this.next = page.next;
      return true;
    } finally {
      if (request === this.request) this.loading = false;
    }
  }

  /** Appends the next page, unless the list was reloaded or its query changed meanwhile. */
  async more(fetch: (before: string) => Promise<Page<T>>): Promise<void> {
    if (!this.next || this.loading) return;
    const request = this.request;
    const generation = this.generation;
    this.loading = true;
    try {
      const page = await fetch(this.next);
      if (request !== this.request || generation !== this.generation) return;
      const known = new Set(this.items.map(this.key));
      this.items = [...this.items, ...page.items.filter((item) => !known.has(this.key(item)))];
      this.next = page.next;
    } finally {
      this.loading = false;
    }
  }
}
