// Small pure formatting helpers for the views.

import type { Family, StoreTrouble } from './api';

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago", then the date. */
export function relativeTime(iso: string, now: number): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) return '';
  const seconds = Math.max(0, Math.round((now - then) / 1000));
  if (seconds < 5) return 'just now';
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.floor(hours / 24);
  if (days < 30) return `${days} d ago`;
  return iso.slice(0, 10);
}

/** The local calendar day of a time, `2026-11-28`: rows of one day share it. */
export function localDay(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

// Intl formatters are costly to make and rows are drawn often (every live delivery, every
// tick of the clock): one per locale and options.
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(locale: string | undefined, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = JSON.stringify([locale ?? '', options]);
  let made = formatters.get(key);
  if (!made) formatters.set(key, (made = new Intl.DateTimeFormat(locale, options)));
  return made;
}

/** A day header of the timeline: "Today", "Yesterday", else weekday and date ("Monday,
 * November 24", with the year when it is not this year's). */
export function dayLabel(iso: string, now: number, locale?: string): string {
  const day = localDay(iso);
  if (!day) return '';
  const today = new Date(now);
  if (day === localDay(today.toISOString())) return 'Today';
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1, 12);
  if (day === localDay(yesterday.toISOString())) return 'Yesterday';
  const date = new Date(iso);
  const options: Intl.DateTimeFormatOptions = { weekday: 'long', day: 'numeric', month: 'long' };
  if (date.getFullYear() !== today.getFullYear()) options.year = 'numeric';
  return formatter(locale, options).format(date);
}

/** The local time of day of a row, `14:05` or `2:05 PM` as the locale writes it. */
export function timeOfDay(iso: string, locale?: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  return formatter(locale, { hour: 'numeric', minute: '2-digit' }).format(date);
}

/** The age of a recent row ("just now", "5 min ago") where the time of day alone says
 * little: within the last hour. Older rows: '' (their time and day header say it). */
export function recentAge(iso: string, now: number): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then) || now - then >= 3_600_000) return '';
  return relativeTime(iso, now);
}

/** `2026-11-28 07:08:26.123` in local time, for precise reading. */
export function exactTime(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.` +
    pad(date.getMilliseconds(), 3)
  );
}

export function byteSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The badge text of an event family. */
export function familyBadge(family: Family): string {
  const badges: Record<Family, string> = {
    sale: 'Sale',
    sale_canceled: 'Canceled',
    tag_added: 'Tag +',
    tag_removed: 'Tag −',
    optin: 'Opt-in',
    webinar: 'Webinar',
    course: 'Course',
    campaign: 'Campaign',
    page: 'Page',
    email_click: 'Email click',
    contact: 'Contact',
    subscription: 'Subscription',
    unknown: 'Other',
  };
  return badges[family] ?? 'Other';
}

/** Initials for a contact's avatar. */
export function initials(name: string | null, email: string): string {
  const source = (name ?? '').trim() || email;
  const words = source.split(/[\s.@_+-]+/).filter(Boolean);
  return ((words[0]?.[0] ?? '?') + (words[1]?.[0] ?? '')).toUpperCase();
}

/** `4,700` cents + `EUR` → `47.00 EUR` (systeme.io amounts are in cents). */
export function money(amount: { amount_cents: number; currency: string }): string {
  return `${(amount.amount_cents / 100).toFixed(2)} ${amount.currency}`.trim();
}

/** A sale's worth: what was paid, and beside it the list price and discount when they
 * differ (`27.00 EUR paid · list 47.00 · discount 20.00`). */
export function saleText(sale: {
  amount_cents?: number | null;
  list_cents?: number | null;
  discount_cents?: number | null;
  currency?: string | null;
}): string {
  const cents = (n: number) => (n / 100).toFixed(2);
  if (sale.amount_cents == null) return '—';
  const parts = [`${money({ amount_cents: sale.amount_cents, currency: sale.currency ?? '' })} paid`];
  if (sale.list_cents != null && sale.list_cents !== sale.amount_cents) parts.push(`list ${cents(sale.list_cents)}`);
  if (sale.discount_cents) parts.push(`discount ${cents(sale.discount_cents)}`);
  return parts.join(' · ');
}

/** Several currencies side by side: `47.00 EUR + 9.00 USD`, or `—`. */
export function moneyList(amounts: { amount_cents: number; currency: string }[]): string {
  return amounts.length ? amounts.map(money).join(' + ') : '—';
}

// Characters that change how text around them is drawn, or draw nothing: controls, format
// characters (bidi embeddings, overrides, isolates and marks, zero-width space, soft hyphen,
// word joiner, BOM, tag characters), line and paragraph separators, and the Hangul fillers
// that render blank. Tab and newline are text; ZWJ and ZWNJ too (emoji and scripts need
// them). A U+202E before "gpj.exe" in a name makes it read "exe.jpg": an inspector shows them.
const INVISIBLE = /(?![\t\n\u200c\u200d])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u115f\u1160\u3164\uffa0]/gu;

const codePoint = (c: string) => c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');

/** A name or label with its invisible characters written out: `x⟨U+202E⟩gpj.exe`. */
export function revealInvisible(text: string): string {
  return text.replace(INVISIBLE, (c) => `⟨U+${codePoint(c)}⟩`);
}

/** A payload's text as a block (the Raw and text views): the same, but line breaks stay
 * line breaks (a CRLF body reads as lines, not as ⟨U+000D⟩ at each end). */
export function revealInvisibleBlock(text: string): string {
  return text.replace(INVISIBLE, (c) => (c === '\r' ? c : `⟨U+${codePoint(c)}⟩`));
}

/** JSON text of a string, with invisible characters as `\uXXXX` escapes (still valid JSON;
 * a character beyond the BMP as its two surrogates). */
export function jsonString(value: string): string {
  const escape = (unit: number) => `\\u${unit.toString(16).padStart(4, '0')}`;
  return JSON.stringify(value).replace(INVISIBLE, (c) =>
    c.length === 1 ? escape(c.charCodeAt(0)) : escape(c.charCodeAt(0)) + escape(c.charCodeAt(1)),
  );
}

/** What the window says while the store refuses deliveries (they were answered 503). */
export function storeTroubleText(trouble: StoreTrouble): string {
  if (trouble.code === 'stopped') {
    return `Hookscope has stopped storing deliveries since ${exactTime(trouble.since)}: ${trouble.message}. Restart Hookscope; senders retry what they could not deliver.`;
  }
  if (trouble.code === 'fault') {
    return `At ${exactTime(trouble.since)} ${trouble.message}. Deliveries are stored again; the log has the details, please report it.`;
  }
  const count = trouble.refused === 1 ? '1 delivery' : `${trouble.refused} deliveries`;
  const refused = `${count} refused since ${exactTime(trouble.since)}; their senders got 503 and retry later.`;
  return trouble.code === 'disk_full'
    ? `The disk is full: ${refused} Free some space: Hookscope stores deliveries again by itself.`
    : `Deliveries are not being stored: ${refused} ${trouble.message}`;
}

/** "90 s", "12 min", "5 h", "3 d": a span of seconds. */
export function span(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 2 * 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 2 * 86400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

/** The probe in a sentence: "Public URL reaches this Hookscope · checked 40 s ago · 180 ms". */
export function probeText(probe: { reaches: boolean; checked_at: string; duration_ms: number }, now: number): string {
  const checked = relativeTime(probe.checked_at, now);
  return probe.reaches
    ? `Public URL reaches this Hookscope · checked ${checked} · ${probe.duration_ms} ms`
    : `Public URL does not reach this Hookscope · checked ${checked}`;
}
