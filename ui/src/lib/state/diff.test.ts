import { describe, expect, it } from 'vitest';
import { ApiError, type EventDiff, type Previous } from '../api';
import type { Backend } from '../backend';
import { Diff } from './diff.svelte';

function comparison(a: string, b: string, total: [number, number]): EventDiff {
  const side = (id: string) => ({
    id,
    received_at: '2026-11-28T07:00:00Z',
    endpoint_name: 'Default',
    label: 'New sale',
    summary: 'New sale',
    event_type: 'SALE_NEW',
    message_id: null,
    attempt: 1,
  });
  return {
    a: side(a),
    b: side(b),
    headers: { changes: [], unchanged: [] },
    body: {
      identical: false,
      a_size: 10,
      b_size: 10,
      decoded: false,
      diff: {
        kind: 'json',
        changes: [{ path: 'order.totalPrice', change: 'changed', a: total[0], b: total[1] }],
        more: 0,
        unchanged: 3,
        partial: false,
      },
    },
  };
}

/** Answers when the test says so, to make answers cross. */
function deferred<T>() {
  let answer!: (value: T) => void;
  let refuse!: (error: unknown) => void;
  const promise = new Promise<T>((resolve, reject) => ((answer = resolve), (refuse = reject)));
  return { promise, answer, refuse };
}

function backend(parts: Partial<Pick<Backend, 'diff' | 'previousEvent'>>): Backend {
  return parts as Backend;
}

describe('Diff: two events compared', () => {
  it('opens, reads, then shows the comparison of the pair asked for', async () => {
    const asked: [string, string][] = [];
    const answer = deferred<EventDiff>();
    const diff = new Diff(
      backend({
        diff: (a, b) => {
          asked.push([a, b]);
          return answer.promise;
        },
      }),
    );
    const done = diff.compare('old', 'new');
    expect(diff.open).toBe(true);
    expect(diff.loading).toBe(true);
    expect(diff.result).toBeNull();
    answer.answer(comparison('old', 'new', [4700, 2700]));
    await done;
    expect(asked).toEqual([['old', 'new']]);
    expect(diff.loading).toBe(false);
    expect(diff.result?.body.diff.kind).toBe('json');
    expect(diff.reason).toBeNull();
  });

  it('compares with the previous event, older side first, and says why it was chosen', async () => {
    const asked: string[] = [];
    const diff = new Diff(
      backend({
        previousEvent: async (id) => {
          asked.push(`previous ${id}`);
          return { id: 'first-attempt', reason: 'attempt' } satisfies Previous;
        },
        diff: async (a, b) => {
          asked.push(`diff ${a} ${b}`);
          return comparison(a, b, [1, 2]);
        },
      }),
    );
    await diff.compareWithPrevious('retry');
    expect(asked).toEqual(['previous retry', 'diff first-attempt retry']);
    expect(diff.result?.a.id).toBe('first-attempt');
    expect(diff.reason).toBe('attempt');
  });

  it('keeps the latest comparison asked for when answers cross', async () => {
    const first = deferred<EventDiff>();
    const second = deferred<EventDiff>();
    const answers = [first, second];
    const diff = new Diff(backend({ diff: () => answers.shift()!.promise }));
    const one = diff.compare('a', 'b');
    const two = diff.compare('c', 'd');
    second.answer(comparison('c', 'd', [1, 2]));
    await two;
    first.answer(comparison('a', 'b', [3, 4]));
    await one;
    expect(diff.result?.a.id).toBe('c');
    expect(diff.loading).toBe(false);
  });

  it('says why there is nothing to compare, and forgets it all when closed', async () => {
    const diff = new Diff(
      backend({
        previousEvent: async (id) => {
          throw new ApiError('not_found', `no SALE_NEW event before ${id} on its endpoint to compare it with`, 404);
        },
      }),
    );
    await diff.compareWithPrevious('only');
    expect(diff.open).toBe(true);
    expect(diff.failure).toContain('no SALE_NEW event before only');
    expect(diff.result).toBeNull();
    diff.close();
    expect(diff.open).toBe(false);
    expect(diff.failure).toBeNull();
  });

  it('drops an answer that arrives after the dialog was closed', async () => {
    const late = deferred<EventDiff>();
    const diff = new Diff(backend({ diff: () => late.promise }));
    const done = diff.compare('a', 'b');
    diff.close();
    late.answer(comparison('a', 'b', [1, 2]));
    await done;
    expect(diff.open).toBe(false);
    expect(diff.result).toBeNull();
  });
});
