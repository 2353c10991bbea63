import { describe, expect, it } from 'vitest';
import { curlCommand, hexDump, httpieCommand, shellQuote, utf8 } from './bytes';

describe('curlCommand', () => {
  it('re-sends text bodies byte for byte, piped in and quoted for any shell', () => {
    const body = new TextEncoder().encode(`{"name":"it's \\u00e9","x":"$(rm -rf /)"}`);
    const command = curlCommand(
      'http://127.0.0.1:4747/h/abc',
      'POST',
      [
        ['Content-Type', 'application/json'],
        ['Host', 'example.trycloudflare.com'],
        ['Content-Length', '40'],
        ['X-Webhook-Signature', 'abc'],
      ],
      body,
    );
    expect(command).toBe(
      `printf '%s' '{"name":"it'"'"'s '"\\\\"'u00e9","x":"$(rm -rf /)"}' | ` +
        `curl -g -X 'POST' 'http://127.0.0.1:4747/h/abc' -H 'Content-Type: application/json' ` +
        `-H 'X-Webhook-Signature: abc' --data-binary @-`,
    );
  });

  it('quotes the method, which a sender chooses', () => {
    expect(curlCommand('http://h/x', "X`touch$IFS'f'`|id&", [], new Uint8Array())).toBe(
      `curl -g -X 'X\`touch$IFS'"'"'f'"'"'\`|id&' 'http://h/x'`,
    );
  });

  it('pipes binary bodies through printf', () => {
    const command = curlCommand('http://h/x', 'PUT', [], new Uint8Array([0x1f, 0x8b, 0x00, 0xff]));
    expect(command).toBe(`printf '%b' '\\x1f\\x8b\\x00\\xff' | curl -g -X 'PUT' 'http://h/x' --data-binary @-`);
  });

  it('writes control characters as escapes, never as they are', () => {
    const body = new TextEncoder().encode("a\u0015b'\\\tc");
    const command = curlCommand('http://h/x', 'POST', [['X-A', 'v\u001bw']], body);
    expect(command).toBe(
      `printf '%b' 'a\\x15b\\x27\\x5c\\x09c' | curl -g -X 'POST' 'http://h/x' ` +
        `-H "$(printf '%b' 'X-A: v\\x1bw')" --data-binary @-`,
    );
    expect(command).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it('leaves out header names that are not HTTP tokens', () => {
    expect(curlCommand('http://h/x', 'GET', [['@/etc/passwd', 'x'], ['Ok', 'y']], new Uint8Array())).toBe(
      `curl -g -X 'GET' 'http://h/x' -H 'Ok: y'`,
    );
  });

  it('sends no body flag for an empty body', () => {
    expect(curlCommand('http://h/x', 'GET', [], new Uint8Array())).toBe(`curl -g -X 'GET' 'http://h/x'`);
  });
});

describe('byte helpers', () => {
  it('quotes for POSIX shells and fish alike', () => {
    expect(shellQuote(`a'b`)).toBe(`'a'"'"'b'`);
    expect(shellQuote(`a\\'`)).toBe(`'a'"\\\\""'"`);
    expect(shellQuote('')).toBe(`''`);
  });

  it('tells UTF-8 from binary', () => {
    expect(utf8(new TextEncoder().encode('créer'))).toBe('créer');
    expect(utf8(new Uint8Array([0xff, 0xfe]))).toBeNull();
  });

  it('dumps hex with offsets and printable text', () => {
    const dump = hexDump(new TextEncoder().encode('Hello, world! 123'));
    expect(dump.split('\n')[0]).toBe('00000000  48 65 6c 6c 6f 2c 20 77 6f 72 6c 64 21 20 31 32  Hello, world! 12');
    expect(dump.split('\n')[1]).toMatch(/^00000010  33 +3$/);
  });
});

describe('httpieCommand', () => {
  it('pipes the exact body and passes every header but the hop-by-hop ones', () => {
    const body = new TextEncoder().encode(`{"name":"O'Brien"}`);
    expect(
      httpieCommand('http://127.0.0.1:4747/h/abc', 'POST', [['Content-Type', 'application/json'], ['Host', 'x']], body),
    ).toBe(
      `printf '%s' '{"name":"O'"'"'Brien"}' | http 'POST' 'http://127.0.0.1:4747/h/abc' 'Content-Type:application/json'`,
    );
    expect(httpieCommand('http://h/x', 'PUT', [], new Uint8Array([0x1f, 0x8b]))).toBe(
      `printf '%b' '\\x1f\\x8b' | http 'PUT' 'http://h/x'`,
    );
    expect(httpieCommand('http://h/x', 'GET', [], new Uint8Array())).toBe(`http --ignore-stdin 'GET' 'http://h/x'`);
  });

  it('escapes what HTTPie reads as separators, so no value names a file', () => {
    expect(httpieCommand('http://h/x', 'GET', [['X-A', '=@/etc/passwd'], ['X-B', '']], new Uint8Array())).toBe(
      `http --ignore-stdin 'GET' 'http://h/x' 'X-A:'"\\\\"'='"\\\\"'@/etc/passwd' 'X-B;'`,
    );
  });
});
