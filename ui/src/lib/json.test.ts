import { describe, expect, it } from 'vitest';
import { member, parseJson, plain, prettyJson, JsonSyntaxError } from './json';

describe('parseJson', () => {
  it('keeps key order, duplicate keys and exact numbers, which JSON.parse loses', () => {
    const text = '{"b":1,"2":2,"a":3,"a":4,"big":12345678901234567890,"f":1.50}';
    const node = parseJson(text);
    expect(node.kind).toBe('object');
    if (node.kind !== 'object') return;
    expect(node.entries.map((e) => e.key)).toEqual(['b', '2', 'a', 'a', 'big', 'f']);
    expect(prettyJson(member(node, 'big')!)).toBe('12345678901234567890');
    expect(prettyJson(member(node, 'f')!)).toBe('1.50');
    expect(plain(member(node, 'a'))).toBe(4);
  });

  it('resolves PHP escapes for display and keeps the source span of every value', () => {
    const text = '{"name":"Comment cr\\u00e9er","page":"Thank You \\/ Download Page"}';
    const node = parseJson(text);
    const name = member(node, 'name')!;
    expect(plain(name)).toBe('Comment créer');
    expect(text.slice(name.start, name.end)).toBe('"Comment cr\\u00e9er"');
    expect(prettyJson(node)).toContain('"Thank You / Download Page"');
    expect(prettyJson(node)).not.toContain('\\u00e9');
  });

  it('refuses what is not JSON, saying where', () => {
    for (const bad of ['{"a":1', '{"a" 1}', '[1,]', 'nul', '{"a":1} x', '"\u0001"']) {
      expect(() => parseJson(bad), bad).toThrow(JsonSyntaxError);
    }
  });

  it('stops at absurd nesting instead of overflowing the stack', () => {
    expect(() => parseJson('['.repeat(100_000))).toThrow(/nesting too deep/);
  });

  it('pretty-prints with two-space indentation', () => {
    expect(prettyJson(parseJson('{"a":[1,{"b":null}],"c":{}}'))).toBe(
      '{\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ],\n  "c": {}\n}',
    );
  });
});
