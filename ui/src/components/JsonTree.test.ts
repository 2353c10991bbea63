import { fireEvent, render } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import { parseJson } from '../lib/json';
import JsonTree from './JsonTree.svelte';

describe('JsonTree', () => {
  it('shows decoded strings as text, never as markup', () => {
    const node = parseJson('{"name":"<img src=x onerror=alert(1)>","t":"cr\\u00e9er \\/ ok","n":12345678901234567890}');
    const { container } = render(JsonTree, { node });
    expect(container.querySelector('img')).toBeNull();
    expect(container.textContent).toContain('"<img src=x onerror=alert(1)>"');
    expect(container.textContent).toContain('"créer / ok"');
    expect(container.textContent).toContain('12345678901234567890');
  });

  it('writes out characters that would reorder or hide text, in keys and values', () => {
    const node = parseJson('{"first_name":"Ann\\u202egpj.exe","k\\u200b":"\\u2066x\\u2069"}');
    const { container } = render(JsonTree, { node });
    expect(container.textContent).toContain('"first_name": "Ann\\u202egpj.exe"');
    expect(container.textContent).toContain('"k\\u200b": "\\u2066x\\u2069"');
    expect(container.textContent).not.toMatch(/[\u202e\u200b\u2066\u2069]/);
  });

  it('folds and unfolds objects, saying how many keys are hidden', async () => {
    const node = parseJson('{"a":{"b":1,"c":2}}');
    const { container, getAllByRole } = render(JsonTree, { node });
    const toggles = getAllByRole('button');
    expect(toggles[1]!.getAttribute('aria-expanded')).toBe('true');
    await fireEvent.click(toggles[1]!);
    expect(toggles[1]!.textContent).toContain('2 keys');
    expect(container.textContent).not.toContain('"b"');
    await fireEvent.click(toggles[1]!);
    expect(container.textContent).toContain('"b": 1');
  });

  it('opens deep levels folded and large arrays a page at a time', async () => {
    const deep = parseJson('{"1":{"2":{"3":{"4":{"5":"deep"}}}}}');
    const folded = render(JsonTree, { node: deep });
    expect(folded.container.textContent).not.toContain('deep');
    const many = parseJson(`[${Array.from({ length: 450 }, (_, i) => i).join(',')}]`);
    const big = render(JsonTree, { node: many });
    expect(big.container.querySelectorAll('.leaf').length).toBe(200);
    await fireEvent.click(big.getByText(/Show 200 more of 250/));
    expect(big.container.querySelectorAll('.leaf').length).toBe(400);
  });
});

describe('JsonTree empty containers', () => {
  it('shows empty objects and arrays inline', () => {
    const { container } = render(JsonTree, { node: parseJson('{"fields":[],"meta":{}}') });
    expect(container.textContent?.replace(/\s+/g, ' ')).toContain('"fields": [],');
    expect(container.textContent?.replace(/\s+/g, ' ')).toContain('"meta": {}');
  });
});
