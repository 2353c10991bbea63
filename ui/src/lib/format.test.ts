import { describe, expect, it } from 'vitest';
import {
  byteSize,
  probeText,
  span,
  dayLabel,
  exactTime,
  familyBadge,
  initials,
  jsonString,
  money,
  moneyList,
  recentAge,
  relativeTime,
  revealInvisible,
  saleText,
  storeTroubleText,
  timeOfDay,
} from './format';

describe('format', () => {
  const now = Date.parse('2026-11-28T12:00:00Z');

  it('says how long ago, coarser as time passes', () => {
    expect(relativeTime('2026-11-28T11:59:58Z', now)).toBe('just now');
    expect(relativeTime('2026-11-28T11:59:18Z', now)).toBe('42 s ago');
    expect(relativeTime('2026-11-28T11:55:00Z', now)).toBe('5 min ago');
    expect(relativeTime('2026-11-28T09:00:00Z', now)).toBe('3 h ago');
    expect(relativeTime('2026-11-26T12:00:00Z', now)).toBe('2 d ago');
    expect(relativeTime('2026-01-01T12:00:00Z', now)).toBe('2026-01-01');
    expect(relativeTime('not a date', now)).toBe('');
  });

  it('sizes bytes', () => {
    expect(byteSize(314)).toBe('314 B');
    expect(byteSize(1536)).toBe('1.5 KiB');
    expect(byteSize(10 * 1024 * 1024)).toBe('10.0 MiB');
  });

  it('labels every family, unknown ones as Other', () => {
    expect(familyBadge('sale')).toBe('Sale');
    expect(familyBadge('tag_removed')).toBe('Tag −');
    expect(familyBadge('unknown')).toBe('Other');
    expect(familyBadge('brand_new' as never)).toBe('Other');
  });

  it('makes initials from a name or an email', () => {
    expect(initials('Marie Dupont', 'm@x.fr')).toBe('MD');
    expect(initials(null, 'temochkaykvlv+test@gmail.com')).toBe('TT');
    expect(initials('  ', '')).toBe('?');
  });

  it('names the days of the timeline as a reader counts them', () => {
    // Local times: the day changes at local midnight, whatever the zone.
    const local = (y: number, m: number, d: number, h: number) => new Date(y, m - 1, d, h).toISOString();
    const noon = Date.parse(local(2026, 11, 28, 12));
    expect(dayLabel(local(2026, 11, 28, 0), noon)).toBe('Today');
    expect(dayLabel(local(2026, 11, 27, 23), noon)).toBe('Yesterday');
    expect(dayLabel(local(2026, 11, 24, 9), noon, 'en-GB')).toBe('Tuesday 24 November');
    expect(dayLabel(local(2025, 6, 15, 9), noon, 'en-GB')).toBe('Sunday, 15 June 2025');
    expect(dayLabel('not a date', noon)).toBe('');
  });

  it('gives a row its time of day, and its age only while recent', () => {
    const at = new Date(2026, 10, 28, 14, 5, 7).toISOString();
    expect(timeOfDay(at, 'en-GB')).toBe('14:05');
    expect(timeOfDay(at, 'en-US')).toBe('2:05 PM');
    const then = Date.parse(at);
    expect(recentAge(at, then + 2_000)).toBe('just now');
    expect(recentAge(at, then + 5 * 60_000)).toBe('5 min ago');
    expect(recentAge(at, then + 60 * 60_000), 'past an hour the time and the day say it').toBe('');
  });
});

describe('money', () => {
  it('shows cents as units with the currency, several side by side', () => {
    expect(money({ amount_cents: 4700, currency: 'EUR' })).toBe('47.00 EUR');
    expect(moneyList([{ amount_cents: 583, currency: 'EUR' }, { amount_cents: 900, currency: 'USD' }])).toBe(
      '5.83 EUR + 9.00 USD',
    );
    expect(moneyList([])).toBe('—');
  });

  it('writes out characters that reorder text or draw nothing', () => {
    expect(revealInvisible('Ann\u202Egpj.exe')).toBe('Ann⟨U+202E⟩gpj.exe');
    expect(revealInvisible('a\u2066b\u2069\u200Bc\uFEFF\u0000\u0085')).toBe(
      'a⟨U+2066⟩b⟨U+2069⟩⟨U+200B⟩c⟨U+FEFF⟩⟨U+0000⟩⟨U+0085⟩',
    );
    expect(revealInvisible('soft\u00ADhy\u2028x\u3164y\u{E0041}z')).toBe('soft⟨U+00AD⟩hy⟨U+2028⟩x⟨U+3164⟩y⟨U+E0041⟩z');
    // Hebrew, Arabic, emoji joined by ZWJ, and Persian's ZWNJ are text, not tricks.
    for (const honest of ['שרה כהן', 'محمد', '👩\u200D💻', 'می\u200Cخواهم', 'tab\tnew\nline']) {
      expect(revealInvisible(honest)).toBe(honest);
    }
  });

  it('shows JSON strings with invisible characters escaped, still parsing to the same value', () => {
    const value = 'x\u202Ey\u200Fz\u0001"\\\u0085';
    const text = jsonString(value);
    expect(text).toBe('"x\\u202ey\\u200fz\\u0001\\"\\\\\\u0085"');
    expect(JSON.parse(text)).toBe(value);
    expect(jsonString('plain é 👩\u200D💻')).toBe(JSON.stringify('plain é 👩\u200D💻'));
    // Beyond the BMP: two surrogate escapes, the only way JSON can write it.
    expect(jsonString('tag\u{E0041}')).toBe('"tag\\udb40\\udc41"');
    expect(JSON.parse(jsonString('tag\u{E0041}'))).toBe('tag\u{E0041}');
  });

  it('says why deliveries are refused, how many since when, and what to do', () => {
    const since = '2026-11-28T12:00:05.000000Z';
    const full = storeTroubleText({ since, refused: 20, code: 'disk_full', message: 'database or disk is full' });
    expect(full).toContain('The disk is full: 20 deliveries refused since ');
    expect(full).toContain(exactTime(since));
    expect(full).toContain('503');
    expect(full).toContain('Free some space');
    const other = storeTroubleText({ since, refused: 1, code: 'storage', message: 'database error: disk I/O error' });
    expect(other).toContain('Deliveries are not being stored: 1 delivery refused');
    expect(other).toContain('disk I/O error');
  });

  it('says what a sale was worth: paid, and the list price and discount beside it', () => {
    expect(saleText({ amount_cents: 2700, list_cents: 4700, discount_cents: 2000, currency: 'EUR' })).toBe(
      '27.00 EUR paid · list 47.00 · discount 20.00',
    );
    expect(saleText({ amount_cents: 583, list_cents: 583, currency: 'EUR' })).toBe('5.83 EUR paid');
    expect(saleText({ currency: 'EUR' })).toBe('—');
  });

  it('says when a thread of the store failed, and when Hookscope stopped storing', () => {
    const since = '2026-11-28T12:00:05.000000Z';
    const fault = storeTroubleText({ since, refused: 0, code: 'fault', message: "the store's indexer failed (boom) and was started again" });
    expect(fault).toContain("the store's indexer failed (boom)");
    expect(fault).toContain('stored again');
    expect(fault).not.toContain('refused');
    const stopped = storeTroubleText({ since, refused: 0, code: 'stopped', message: "the store's writer failed 3 times" });
    expect(stopped).toContain('stopped storing deliveries');
    expect(stopped).toContain('Restart Hookscope');
  });
});

describe('the probe and spans in words', () => {
  const now = Date.parse('2026-12-06T12:00:40Z');
  it('says where the probe stands, when and how fast', () => {
    expect(probeText({ reaches: true, checked_at: '2026-12-06T12:00:00Z', duration_ms: 180 }, now)).toBe(
      'Public URL reaches this Hookscope · checked 40 s ago · 180 ms',
    );
    expect(probeText({ reaches: false, checked_at: '2026-12-06T11:55:40Z', duration_ms: 3 }, now)).toBe(
      'Public URL does not reach this Hookscope · checked 5 min ago',
    );
  });
  it('puts spans in the unit a person reads', () => {
    expect([span(59), span(600), span(3 * 3600), span(3 * 86400)]).toEqual(['59 s', '10 min', '3 h', '3 d']);
  });
});
