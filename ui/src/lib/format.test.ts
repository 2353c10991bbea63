import { describe, expect, it } from 'vitest';
import { byteSize, familyBadge, initials, money, moneyList, relativeTime } from './format';

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
});

describe('money', () => {
  it('shows cents as units with the currency, several side by side', () => {
    expect(money({ amount_cents: 4700, currency: 'EUR' })).toBe('47.00 EUR');
    expect(moneyList([{ amount_cents: 583, currency: 'EUR' }, { amount_cents: 900, currency: 'USD' }])).toBe(
      '5.83 EUR + 9.00 USD',
    );
    expect(moneyList([])).toBe('—');
  });
});
