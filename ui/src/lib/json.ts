// An exact JSON reader for payloads. `JSON.parse` would reorder integer-like keys, merge
// duplicate keys and round large numbers; a debugging tool must show what was sent. Each
// node keeps its source span, so the verbatim bytes of any value can be cut out.

export type JsonNode =
  | { kind: 'object'; entries: { key: string; value: JsonNode }[]; start: number; end: number }
  | { kind: 'array'; items: JsonNode[]; start: number; end: number }
  | { kind: 'string'; value: string; start: number; end: number }
  | { kind: 'number'; raw: string; start: number; end: number }
  | { kind: 'boolean'; value: boolean; start: number; end: number }
  | { kind: 'null'; start: number; end: number };

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
  }
}

const MAX_DEPTH = 512;

export function parseJson(text: string): JsonNode {
  let at = 0;
  const fail = (message: string): never => {
    throw new JsonSyntaxError(message, at);
  };
  const space = () => {
    while (at < text.length) {
      const c = text.charCodeAt(at);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) at++;
      else break;
    }
  };
  const stringToken = (): { value: string; start: number; end: number } => {
    const start = at;
    at++; // opening quote
    while (at < text.length) {
      const c = text.charCodeAt(at);
      if (c === 0x22) {
        at++;
        const raw = text.slice(start, at);
        try {
          return { value: JSON.parse(raw) as string, start, end: at };
        } catch {
          return fail('invalid string');
        }
      }
      if (c === 0x5c) at += 2;
      else if (c < 0x20) fail('control character in string');
      else at++;
    }
    return fail('unterminated string');
  };
  const value = (depth: number): JsonNode => {
    if (depth > MAX_DEPTH) fail('nesting too deep');
    space();
    const start = at;
    const c = text[at];
    if (c === '{') {
      at++;
      const entries: { key: string; value: JsonNode }[] = [];
      space();
      if (text[at] === '}') {
        at++;
        return { kind: 'object', entries, start, end: at };
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail('expected a key');
        const key = stringToken().value;
        space();
        if (text[at] !== ':') fail("expected ':'");
        at++;
        entries.push({ key, value: value(depth + 1) });
        space();
        if (text[at] === ',') {
          at++;
          continue;
        }
        if (text[at] === '}') {
          at++;
          return { kind: 'object', entries, start, end: at };
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      at++;
      const items: JsonNode[] = [];
      space();
      if (text[at] === ']') {
        at++;
        return { kind: 'array', items, start, end: at };
      }
      for (;;) {
        items.push(value(depth + 1));
        space();
        if (text[at] === ',') {
          at++;
          continue;
        }
        if (text[at] === ']') {
          at++;
          return { kind: 'array', items, start, end: at };
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') {
      const token = stringToken();
      return { kind: 'string', ...token };
    }
    const number = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(at, at + 400));
    if (number) {
      at += number[0].length;
      return { kind: 'number', raw: number[0], start, end: at };
    }
    for (const [word, node] of [
      ['true', { kind: 'boolean', value: true }],
      ['false', { kind: 'boolean', value: false }],
      ['null', { kind: 'null' }],
    ] as const) {
      if (text.startsWith(word, at)) {
        at += word.length;
        return { ...node, start, end: at } as JsonNode;
      }
    }
    return fail('unexpected character');
  };
  const root = value(0);
  space();
  if (at !== text.length) fail('unexpected text after the value');
  return root;
}

/** A member of an object node, by key (the last one wins, as most readers do). */
export function member(node: JsonNode | undefined, key: string): JsonNode | undefined {
  if (node?.kind !== 'object') return undefined;
  for (let i = node.entries.length - 1; i >= 0; i--) {
    if (node.entries[i]!.key === key) return node.entries[i]!.value;
  }
  return undefined;
}

/** Pretty JSON text: two-space indent, strings shown decoded (`\u00e9` → `é`, `\/` → `/`),
 * numbers exactly as sent. */
export function prettyJson(node: JsonNode, indent = ''): string {
  const inner = `${indent}  `;
  switch (node.kind) {
    case 'object':
      if (node.entries.length === 0) return '{}';
      return `{\n${node.entries
        .map((e) => `${inner}${JSON.stringify(e.key)}: ${prettyJson(e.value, inner)}`)
        .join(',\n')}\n${indent}}`;
    case 'array':
      if (node.items.length === 0) return '[]';
      return `[\n${node.items.map((v) => `${inner}${prettyJson(v, inner)}`).join(',\n')}\n${indent}]`;
    case 'string':
      return JSON.stringify(node.value);
    case 'number':
      return node.raw;
    case 'boolean':
      return String(node.value);
    case 'null':
      return 'null';
  }
}

/** A plain JS value of a node (for fields the UI reads, never for display of payloads). */
export function plain(node: JsonNode | undefined): unknown {
  if (!node) return undefined;
  switch (node.kind) {
    case 'object':
      return Object.fromEntries(node.entries.map((e) => [e.key, plain(e.value)]));
    case 'array':
      return node.items.map(plain);
    case 'string':
      return node.value;
    case 'number':
      return Number(node.raw);
    case 'boolean':
      return node.value;
    case 'null':
      return null;
  }
}
