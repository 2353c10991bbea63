import { describe, expect, it } from 'vitest';
import type { Page } from '../api';
import { PagedList } from './paged.svelte';

/** A page answered when the test says so, to make answers cross. */
function deferred(items: string[], next: string | null = null) {
  let answer!: (page: Page<string>) => void;
  const promise = new Promise<Page<string>>((resolve) => (answer = resolve));
  return { promise, answer: () => answer({ items, next }) };
}

const replace = (page: string[]) => page;

describe('PagedList: the latest answer wins', () => {
  it('drops an older answer that arrives after a newer one', async () => {
    const list = new PagedList<string>((s) => s);
    const old = deferred(['old']);
    const fresh = deferred(['fresh']);
    const first = list.first(() => old.promise, replace);
    const second = list.first(() => fresh.promise, replace);
    fresh.answer();
    expect(await second).toBe(true);
    old.answer();
    expect(await first).toBe(false);
    expect(list.items).toEqual(['fresh']);
    expect(list.loading).toBe(false);
  });

  it('shows an older answer for the same query until the newer one comes', async () => {
    const list = new PagedList<string>((s) => s);
    const old = deferred(['old']);
    const fresh = deferred(['fresh']);
    const first = list.first(() => old.promise, replace);
    const second = list.first(() => fresh.promise, replace);
    old.answer();
    await first;
    expect(list.items).toEqual(['old']);
    expect(list.loading).toBe(true);
    fresh.answer();
    await second;
    expect(list.items).toEqual(['fresh']);
    expect(list.loading).toBe(false);
  });

  it('drops every answer to a query that changed, and a page asked for before a reload', async () => {
    const list = new PagedList<string>((s) => s);
    const before = deferred(['a'], 'cursor');
    const loading = list.first(() => before.promise, replace);
    list.restart(true);
    before.answer();
    expect(await loading).toBe(false);
    expect(list.items).toEqual([]);

    await list.first(async () => ({ items: ['b'], next: 'after-b' }), replace);
    const page = deferred(['c']);
    const more = list.more(() => page.promise);
    list.restart(false);
    page.answer();
    await more;
    // A search keeps its last results, without the stale page.
    expect(list.items).toEqual(['b']);
  });

  it('appends the next page once, without repeating what is on screen', async () => {
    const list = new PagedList<string>((s) => s);
    await list.first(async () => ({ items: ['a', 'b'], next: 'b' }), replace);
    let asked = '';
    await list.more(async (before) => {
      asked = before;
      return { items: ['b', 'c'], next: null };
    });
    expect(asked).toBe('b');
    expect(list.items).toEqual(['a', 'b', 'c']);
    let again = false;
    await list.more(async () => {
      again = true;
      return { items: [], next: null };
    });
    expect(again).toBe(false);
  });
});
