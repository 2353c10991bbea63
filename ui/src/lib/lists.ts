// What the window's lists are made of, as pure functions of what is on screen: retries
// folded under their first attempt, contacts most recent first, a contact touched by a
// new delivery.

import type { Contact, EventSummary } from './api';

/** A message's deliveries share this key (the same message id on another endpoint is
 * another message). */
export function messageKey(event: EventSummary): string {
  return `${event.endpoint}\u0000${event.message_id}`;
}

/** The timeline as shown: a message's retries sit under its first attempt, folded unless
 * their message is `expanded`. A retry that differs from its first attempt (another size
 * or signature verdict: tampered, or re-signed) is news and keeps its own row. */
export function foldRetries(events: EventSummary[], expanded: ReadonlySet<string>): EventSummary[] {
  const firsts = new Map(events.filter((e) => e.message_id && e.attempt === 1).map((e) => [messageKey(e), e]));
  const folded = (e: EventSummary) => {
    const first = firsts.get(messageKey(e));
    return !!first && first.size === e.size && first.signature === e.signature;
  };
  return events.filter((e) => !e.message_id || e.attempt === 1 || !folded(e) || expanded.has(messageKey(e)));
}

/** Every delivery of the event's message among `events`, first attempt first. */
export function attemptsOf(events: EventSummary[], event: EventSummary): EventSummary[] {
  if (!event.message_id) return [event];
  const key = messageKey(event);
  return events.filter((e) => e.message_id && messageKey(e) === key).sort((a, b) => a.attempt - b.attempt);
}

/** The contact as a new delivery about them leaves it. As the store counts: a retry of a
 * message is one more attempt, not one more event. */
export function touchedBy(contact: Contact, event: EventSummary): Contact {
  return {
    ...contact,
    name: event.contact_name ?? contact.name,
    events: contact.events + (event.attempt === 1 ? 1 : 0),
    last_seen: event.received_at,
    last_event_id: event.id,
    last_event_type: event.event_type,
    last_label: event.label,
    last_summary: event.summary,
  };
}

/** One entry per contact (the most up to date), most recent activity first, as the API
 * orders them. */
export function newestFirst(contacts: Contact[]): Contact[] {
  const byEmail = new Map<string, Contact>();
  for (const contact of contacts) {
    const known = byEmail.get(contact.email);
    const newer =
      !known ||
      contact.last_seen > known.last_seen ||
      (contact.last_seen === known.last_seen && contact.events > known.events);
    if (newer) byEmail.set(contact.email, contact);
  }
  return [...byEmail.values()].sort((a, b) =>
    a.last_seen === b.last_seen ? b.email.localeCompare(a.email) : a.last_seen < b.last_seen ? 1 : -1,
  );
}
