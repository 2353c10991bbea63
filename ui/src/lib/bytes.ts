// Payload bytes for the Raw view and for copying as cURL.

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

/** Shell single-quoting: safe for any text. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
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

/** A cURL command that re-sends the delivery with the exact same body bytes. */
export function curlCommand(
  url: string,
  method: string,
  headers: [string, string][],
  body: Uint8Array,
): string {
  const parts = ['curl', '-X', method, shellQuote(url)];
  for (const [name, value] of headers) {
    if (!HOP_BY_HOP.has(name.toLowerCase())) parts.push('-H', shellQuote(`${name}: ${value}`));
  }
  if (body.length === 0) return parts.join(' ');
  const text = utf8(body);
  if (text !== null && !text.includes('\0')) {
    return [...parts, '--data-binary', shellQuote(text)].join(' ');
  }
  // Binary: printf reproduces every byte, piped to curl.
  const escaped = Array.from(body, (b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
  return `printf '%b' '${escaped}' | ${[...parts, '--data-binary', '@-'].join(' ')}`;
}

/** An HTTPie command that re-sends the delivery with the exact same body bytes (piped in,
 * so HTTPie sends them untouched). */
export function httpieCommand(
  url: string,
  method: string,
  headers: [string, string][],
  body: Uint8Array,
): string {
  const parts = ['http', method, shellQuote(url)];
  for (const [name, value] of headers) {
    if (!HOP_BY_HOP.has(name.toLowerCase())) parts.push(shellQuote(`${name}:${value}`));
  }
  if (body.length === 0) return ['http', '--ignore-stdin', ...parts.slice(1)].join(' ');
  const text = utf8(body);
  const feed =
    text !== null && !text.includes('\0')
      ? `printf '%s' ${shellQuote(text)}`
      : `printf '%b' '${Array.from(body, (b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}'`;
  return `${feed} | ${parts.join(' ')}`;
}

/** The text of `bytes` if they are valid UTF-8, else null. */
export function utf8(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}
