// Payload bytes for the Raw view and for copying as cURL or HTTPie.

export function base64ToBytes(b64: string): Uint8Array {
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Classic hex dump: offset, 16 bytes in hex, printable ASCII. */
export function hexDump(bytes: Uint8Array, max = 4096): string {
  const lines: string[] = [];
  const end = Math.min(bytes.length, max);
  for (let offset = 0; offset < end; offset += 16) {
    const row = bytes.subarray(offset, Math.min(offset + 16, end));
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${offset.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`);
  }
  if (bytes.length > max) lines.push(`… ${bytes.length - max} more bytes`);
  return lines.join('\n');
}

// Copied commands are pasted into a shell, and a sender chose most of what is in them (the
// method, the path, header names and values, the body). Every part is quoted so that bash,
// zsh, sh and fish all read it as one literal word:
// - runs of text go in single quotes; a `'` or `\` stands outside them, in double quotes
//   (fish reads `\'` and `\\` inside single quotes as escapes, POSIX shells do not);
// - text with control characters (which a terminal or line editor would act on as they
//   are pasted: Ctrl-U erases the line, a newline runs it) is written as printf escapes.

/** Control characters, C0 and C1, and DEL; tab too (a line editor completes on it). */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** One literal shell word for `text`, which has no control characters. */
export function shellQuote(text: string): string {
  if (text === '') return "''";
  return text.replace(/[^'\\]+|'|\\/g, (part) => (part === "'" ? `"'"` : part === '\\' ? `"\\\\"` : `'${part}'`));
}

/** `bytes` as printf `%b` escapes inside single quotes: only printable ASCII other than `'`
 * and `\` stays as it is. */
function printfEscapes(bytes: Uint8Array): string {
  const escaped = Array.from(bytes, (b) =>
    b >= 0x20 && b < 0x7f && b !== 0x27 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`,
  ).join('');
  return `'${escaped}'`;
}

/** One shell word for any text: quoted, or printed by printf when it holds control characters. */
export function shellWord(text: string): string {
  if (!CONTROL.test(text)) return shellQuote(text);
  return `"$(printf '%b' ${printfEscapes(new TextEncoder().encode(text))})"`;
}

/** A command that writes `body` to standard output, byte for byte. */
function bodyFeed(body: Uint8Array): string {
  const text = utf8(body);
  return text !== null && !CONTROL.test(text.replace(/\n/g, ''))
    ? `printf '%s' ${shellQuote(text)}`
    : `printf '%b' ${printfEscapes(body)}`;
}

/** Headers a client sets by itself; copying them would break the replay. */
const HOP_BY_HOP = new Set([
  'host',
  'content-length',
  'connection',
  'transfer-encoding',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'proxy-connection',
]);

/** Header names that can be sent: HTTP tokens (an import may hold others). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function sendable(headers: [string, string][]): [string, string][] {
  return headers.filter(([name]) => TOKEN.test(name) && !HOP_BY_HOP.has(name.toLowerCase()));
}

/** A cURL command that re-sends the delivery with the exact same body bytes (piped in, so
 * a body starting with `@` is not read as a file name). `-g`: brackets and braces in the URL
 * are not globs. */
export function curlCommand(
  url: string,
  method: string,
  headers: [string, string][],
  body: Uint8Array,
): string {
  const parts = ['curl', '-g', '-X', shellWord(method), shellWord(url)];
  for (const [name, value] of sendable(headers)) parts.push('-H', shellWord(`${name}: ${value}`));
  if (body.length === 0) return parts.join(' ');
  return `${bodyFeed(body)} | ${[...parts, '--data-binary', '@-'].join(' ')}`;
}

/** HTTPie reads `:`, `=`, `@`, `;` and `\` in a request item as separators; escaped, they
 * are text (a header value starting with `@` would otherwise name a file to send). */
function httpieItemText(text: string): string {
  return text.replace(/[\\:=@;]/g, (c) => `\\${c}`);
}

/** An HTTPie command that re-sends the delivery with the exact same body bytes (piped in,
 * so HTTPie sends them untouched). */
export function httpieCommand(
  url: string,
  method: string,
  headers: [string, string][],
  body: Uint8Array,
): string {
  const parts = ['http', shellWord(method), shellWord(url)];
  for (const [name, value] of sendable(headers)) {
    // `Name:` would remove the header; `Name;` sends it empty.
    const item = value === '' ? `${httpieItemText(name)};` : `${httpieItemText(name)}:${httpieItemText(value)}`;
    parts.push(shellWord(item));
  }
  if (body.length === 0) return ['http', '--ignore-stdin', ...parts.slice(1)].join(' ');
  return `${bodyFeed(body)} | ${parts.join(' ')}`;
}

/** The text of `bytes` if they are valid UTF-8, else null. */
export function utf8(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}
