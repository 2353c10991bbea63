import { afterEach, describe, expect, it, vi } from 'vitest';
import { HttpBackend, queryString, TauriBackend } from './backend';
import { ApiError } from './api';

function fakeFetch(responses: Record<string, Response>, seen: string[]): typeof fetch {
  return async (input) => {
    const url = String(input);
    seen.push(url);
    const response = responses[url];
    if (!response) throw new TypeError('network down');
    return response;
  };
}

describe('HttpBackend', () => {
  it('builds filter queries and maps pages', async () => {
    const seen: string[] = [];
    const backend = new HttpBackend(
      '',
      fakeFetch(
        {
          '/api/events?email=Marie%40Example.fr&limit=50': Response.json({ events: [{ id: 'a' }], next: '1:2' }),
        },
        seen,
      ),
    );
    const page = await backend.events({ email: 'Marie@Example.fr', q: '', limit: 50 });
    expect(page.items.map((e) => e.id)).toEqual(['a']);
    expect(page.next).toBe('1:2');
  });

  it('turns API errors into coded errors the UI can branch on', async () => {
    const backend = new HttpBackend(
      '',
      fakeFetch(
        {
          '/api/status': Response.json({ code: 'unauthorized', message: 'missing API token' }, { status: 401 }),
        },
        [],
      ),
    );
    await expect(backend.status()).rejects.toMatchObject({ code: 'unauthorized', status: 401 });
  });

  it('reports a server that is gone as offline', async () => {
    const backend = new HttpBackend('', fakeFetch({}, []));
    const error = await backend.status().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('offline');
  });

  it('exports with the filter but without paging', () => {
    const backend = new HttpBackend('http://127.0.0.1:9');
    expect(backend.exportUrl({ email: 'a@b.c', limit: 10, before: 'x' }, 'ndjson')).toBe(
      'http://127.0.0.1:9/api/export?email=a%40b.c&format=ndjson',
    );
  });

  it('leaves empty parameters out', () => {
    expect(queryString({ a: '', b: undefined, c: null, d: 0, e: 'x y' })).toBe('?d=0&e=x+y');
  });
});

/** Just enough of EventSource to play the server's side of the stream. */
class FakeEventSource {
  static opened: FakeEventSource[] = [];
  onerror: (() => void) | null = null;
  closed = false;
  private listeners = new Map<string, ((message: MessageEvent<string>) => void)[]>();
  constructor(readonly url: string) {
    FakeEventSource.opened.push(this);
  }
  addEventListener(name: string, listener: (message: MessageEvent<string>) => void) {
    this.listeners.set(name, [...(this.listeners.get(name) ?? []), listener]);
  }
  emit(name: string, data = '{}') {
    for (const listener of this.listeners.get(name) ?? []) listener(new MessageEvent(name, { data }));
  }
  close() {
    this.closed = true;
  }
}

describe('HttpBackend stream', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
    FakeEventSource.opened = [];
  });

  it('asks for a reload on every (re)connect, since deliveries before it were not streamed', () => {
    vi.useFakeTimers();
    vi.stubGlobal('EventSource', FakeEventSource);
    const seen: string[] = [];
    const stop = new HttpBackend('').subscribe({
      captured: (event) => seen.push(`captured ${event.id}`),
      forwarded: (id, forward) => seen.push(`forwarded ${id} ${forward.status}`),
      resync: () => seen.push('resync'),
      state: (state) => seen.push(state),
      tunnel: (status) => seen.push(`tunnel ${status.state}`),
      store: (trouble) => seen.push(`store ${trouble ? trouble.refused : 'ok'}`),
      indexing: (progress) => seen.push(`indexing ${progress.behind}`),
      erased: () => seen.push('erased'),
      follow: (view) => seen.push(`follow ${view.state} ${view.behind}`),
      alert: (alert) => seen.push(`alert ${alert.kind}`),
      probe: (view) => seen.push(`probe ${view ? view.reaches : 'none'}`),
    });
    const first = FakeEventSource.opened[0]!;
    first.emit('ready');
    first.emit('captured', '{"id":"e1"}');
    first.emit('tunnel', '{"state":"up"}');
    first.emit('forwarded', '{"id":"e1","forward":{"status":200}}');
    first.emit('store', '{"since":"2026-11-28T12:00:00.000000Z","refused":3,"code":"disk_full","message":"full"}');
    first.emit('store', 'null');
    first.emit('indexing', '{"through":5,"behind":12}');
    first.emit('erased', '{"generation":1}');
    first.emit('follow', '{"relay":"https://relay","state":"catching_up","behind":40,"since":null,"reason":null,"received":10}');
    first.emit('alert', '{"id":1,"kind":"probe"}');
    first.emit('probe', 'null');
    first.onerror!();
    expect(first.closed).toBe(true);
    vi.advanceTimersByTime(500);
    FakeEventSource.opened[1]!.emit('ready');
    expect(seen).toEqual(['connecting', 'live', 'resync', 'captured e1', 'tunnel up', 'forwarded e1 200', 'store 3', 'store ok', 'indexing 12', 'erased', 'follow catching_up 40', 'alert probe', 'probe none', 'reconnecting', 'reconnecting', 'live', 'resync']);
    stop();
    expect(FakeEventSource.opened[1]!.closed).toBe(true);
  });
});

describe('TauriBackend', () => {
  it('saves exports through the app, without paging, and reports its errors by code', async () => {
    const calls: [string, unknown][] = [];
    const backend = new TauriBackend({
      async invoke<T>(command: string, args?: Record<string, unknown>): Promise<T> {
        calls.push([command, args]);
        if ((args?.filter as { email?: string }).email === 'bad') throw { code: 'invalid_request', message: 'nope' };
        return null as T;
      },
    });
    await backend.saveExport({ email: 'a@b.c', limit: 5, before: 'x' }, 'ndjson');
    expect(calls).toEqual([['save_export', { filter: { email: 'a@b.c' }, format: 'ndjson' }]]);
    await expect(backend.saveExport({ email: 'bad' }, 'json')).rejects.toMatchObject({ code: 'invalid_request' });
  });
});
