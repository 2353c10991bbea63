// One event as the detail view shows it: its metadata, the exact payload bytes, and what
// can be shown prettily (a JSON tree, form fields, inflated text).

import { base64ToBytes, utf8 } from './bytes';
import { member, parseJson, plain, type JsonNode } from './json';
import type { BodyKind, EventSummary } from './api';

export interface Payload {
  kind: BodyKind;
  /** Exactly the bytes that arrived. */
  bytes: Uint8Array;
  /** Those bytes as text, when they are UTF-8. */
  text: string | null;
  /** A JSON tree for the Pretty view (of the inflated body when it was compressed). */
  tree: JsonNode | null;
  /** Form fields, for `application/x-www-form-urlencoded` bodies. */
  form: [string, string][] | null;
  /** The inflated text of a compressed body. */
  inflated: string | null;
}

export interface EventDocument {
  meta: EventSummary;
  payload: Payload;
}

const PAYLOAD_FIELDS = new Set([
  'body',
  'body_text',
  'body_base64',
  'decoded_body',
  'decoded_body_text',
  'decoded_body_base64',
]);

function tryTree(text: string | null): JsonNode | null {
  if (text === null || text.trim() === '') return null;
  try {
    return parseJson(text.trim());
  } catch {
    return null;
  }
}

/** Reads `GET /api/events/{id}`'s text. The body is cut out of the document verbatim. */
export function readEventDocument(document: string): EventDocument {
  const root = parseJson(document);
  if (root.kind !== 'object') throw new Error('an event document is a JSON object');
  const meta = plain({
    ...root,
    entries: root.entries.filter((e) => !PAYLOAD_FIELDS.has(e.key)),
  }) as EventSummary;

  const body = member(root, 'body');
  const bodyText = member(root, 'body_text');
  const bodyBase64 = member(root, 'body_base64');
  let bytes: Uint8Array;
  let text: string | null;
  let tree: JsonNode | null = null;
  if (body) {
    text = document.slice(body.start, body.end);
    bytes = new TextEncoder().encode(text);
    tree = body;
  } else if (bodyText?.kind === 'string') {
    text = bodyText.value;
    bytes = new TextEncoder().encode(text);
    tree = tryTree(text);
  } else if (bodyBase64?.kind === 'string') {
    bytes = base64ToBytes(bodyBase64.value);
    text = utf8(bytes);
  } else {
    bytes = new Uint8Array();
    text = '';
  }

  let inflated: string | null = null;
  const decodedBody = member(root, 'decoded_body');
  const decodedText = member(root, 'decoded_body_text');
  if (decodedBody) {
    inflated = document.slice(decodedBody.start, decodedBody.end);
    tree = decodedBody;
  } else if (decodedText?.kind === 'string') {
    inflated = decodedText.value;
    tree = tryTree(inflated);
  }

  const isForm = (meta.content_type ?? '').toLowerCase().startsWith('application/x-www-form-urlencoded');
  const formSource = inflated ?? text;
  const form = isForm && formSource !== null ? [...new URLSearchParams(formSource).entries()] : null;

  return { meta, payload: { kind: meta.body_kind, bytes, text, tree, form, inflated } };
}
