import { describe, expect, it } from 'vitest';
import { readEventDocument } from './event';

const META =
  '"id":"e1","received_at":"2026-11-28T07:00:00.000000Z","endpoint":"ep","endpoint_name":"Default",' +
  '"method":"POST","path":"/h/t","query":null,"headers":[["content-type","application/json"]],' +
  '"remote_addr":"127.0.0.1:5","content_encoding":null,"size":10,"source":"json","family":"unknown",' +
  '"event_type":null,"label":"JSON","summary":"JSON","contact_email":null,"contact_key":null,' +
  '"contact_id":null,"contact_name":null,"occurred_at":null';

describe('readEventDocument', () => {
  it('cuts the embedded JSON body out verbatim', () => {
    const body = '{"n":"cr\\u00e9er","u":"a\\/b","x":1.0}';
    const doc = readEventDocument(`{${META},"content_type":"application/json","body_kind":"json","body":${body}}`);
    expect(doc.payload.text).toBe(body);
    expect(new TextDecoder().decode(doc.payload.bytes)).toBe(body);
    expect(doc.payload.tree?.kind).toBe('object');
    expect(doc.meta.headers).toEqual([['content-type', 'application/json']]);
    expect('body' in doc.meta).toBe(false);
  });

  it('reads text bodies and form fields', () => {
    const doc = readEventDocument(
      `{${META},"content_type":"application/x-www-form-urlencoded","body_kind":"text","body_text":"email=a%40b.co&name=A+B"}`,
    );
    expect(doc.payload.text).toBe('email=a%40b.co&name=A+B');
    expect(doc.payload.form).toEqual([
      ['email', 'a@b.co'],
      ['name', 'A B'],
    ]);
    expect(doc.payload.tree).toBeNull();
  });

  it('keeps compressed bytes and shows the inflated JSON', () => {
    const doc = readEventDocument(
      `{${META},"content_type":"application/json","body_kind":"binary","body_base64":"H4sIAA==","decoded_body":{"a":1}}`,
    );
    expect(Array.from(doc.payload.bytes)).toEqual([0x1f, 0x8b, 0x08, 0x00]);
    expect(doc.payload.text).toBeNull();
    expect(doc.payload.inflated).toBe('{"a":1}');
    expect(doc.payload.tree?.kind).toBe('object');
  });
});
