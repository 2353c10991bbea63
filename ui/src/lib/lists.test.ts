import { describe, expect, it } from 'vitest';
import type { Contact, EventSummary } from './api';
import { attemptsOf, foldRetries, messageKey, newestFirst, touchedBy } from './lists';

const event = (id: string, fields: Partial<EventSummary> = {}): EventSummary =>
  ({
    id,
    endpoint: 'ep',
    message_id: null,
    attempt: 1,
    size: 100,
    signature: 'valid',
    received_at: '2026-12-01T10:00:00.000000Z',
    contact_key: 'a@example.com',
    contact_name: null,
    event_type: 'contact.tag.added',
    label: 'Tag added',
    summary: 'Tag added: x',
    ...fields,
  }) as EventSummary;

describe('retries', () => {
  // Newest first, as the timeline holds them.
  const retry = event('3', { message_id: 'm', attempt: 2 });
  const tampered = event('2', { message_id: 'm', attempt: 3, size: 101 });
  const first = event('1', { message_id: 'm', attempt: 1 });
  const events = [retry, tampered, first, event('0')];

  it('fold under their first attempt unless their message is expanded; a retry that differs keeps its row', () => {
    expect(foldRetries(events, new Set()).map((e) => e.id)).toEqual(['2', '1', '0']);
    expect(foldRetries(events, new Set([messageKey(first)])).map((e) => e.id)).toEqual(['3', '2', '1', '0']);
  });

  it('list every attempt of a message, first first; the same id on another endpoint is another message', () => {
    const elsewhere = event('4', { message_id: 'm', attempt: 2, endpoint: 'other' });
    expect(attemptsOf([elsewhere, ...events], retry).map((e) => e.attempt)).toEqual([1, 2, 3]);
    expect(attemptsOf(events, events[3]!)).toEqual([events[3]]);
  });
});

describe('contacts', () => {
  const contact = (email: string, last_seen: string, events = 1): Contact =>
    ({ email, name: null, events, last_seen }) as Contact;

  it('a delivery about a contact counts a retry as an attempt, not an event', () => {
    const before = contact('a@example.com', '2026-12-01T09:00:00.000000Z', 3);
    const after = touchedBy(before, event('9', { message_id: 'm', attempt: 2, contact_name: 'Ann' }));
    expect(after).toMatchObject({ events: 3, name: 'Ann', last_event_id: '9', last_seen: '2026-12-01T10:00:00.000000Z' });
    expect(touchedBy(before, event('10')).events).toBe(4);
  });

  it('one entry each, the most up to date, most recent activity first', () => {
    const list = newestFirst([
      contact('a@example.com', '2026-12-01T09:00:00Z', 1),
      contact('b@example.com', '2026-12-01T11:00:00Z'),
      contact('a@example.com', '2026-12-01T12:00:00Z', 2),
    ]);
    expect(list.map((c) => [c.email, c.events])).toEqual([
      ['a@example.com', 2],
      ['b@example.com', 1],
    ]);
  });
});
