// Shapes of the Hookscope API (see the README's API section).

export type BodyKind = 'json' | 'text' | 'binary' | 'empty';

export type Family =
  | 'sale'
  | 'sale_canceled'
  | 'tag_added'
  | 'tag_removed'
  | 'optin'
  | 'webinar'
  | 'course'
  | 'campaign'
  | 'page'
  | 'email_click'
  | 'contact'
  | 'unknown';

/** An event without its body: list items and live-stream messages. */
export interface EventSummary {
  id: string;
  received_at: string;
  endpoint: string;
  endpoint_name: string;
  method: string;
  path: string;
  query: string | null;
  headers: [string, string][];
  remote_addr: string | null;
  /** The sender's address: the peer, or behind the tunnel what the tunnel reports. */
  client_ip: string | null;
  via_tunnel: boolean;
  /** `outside` is flagged: not one of systeme.io's sending addresses. */
  sender: Sender | null;
  /** Sent from one of systeme.io's addresses; null when that cannot be told. */
  source_ok: boolean | null;
  signature: SignatureVerdict;
  /** `X-Webhook-Message-Id`: deliveries sharing it are attempts at one message. */
  message_id: string | null;
  /** 1 for the first delivery of a message. */
  attempt: number;
  /** An identical unsigned delivery shortly before: a probable repeat. */
  repeat_of: string | null;
  /** How the payload differed from its type's shape before it; null when it did not. */
  drift: DriftChange[] | null;
  /** Passed on to the endpoint's forward target: how that went. */
  forward: ForwardView | null;
  content_type: string | null;
  content_encoding: string | null;
  size: number;
  body_kind: BodyKind;
  source: string;
  family: Family;
  event_type: string | null;
  label: string;
  summary: string;
  contact_email: string | null;
  contact_key: string | null;
  contact_id: string | null;
  contact_name: string | null;
  occurred_at: string | null;
}

export interface ForwardView {
  target: string;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  status: number | null;
  duration_ms: number | null;
  error: string | null;
}

/** What a forward target last answered (`GET /api/events/{id}/forward`). */
export interface ForwardAnswer {
  status: number | null;
  headers: [string, string][] | null;
  body_text?: string;
  body_base64?: string;
}

/** A stored event sent again, and the answer (`POST /api/events/{id}/replay`). */
export interface ReplayResult {
  event_id: string;
  at: string;
  target: string;
  resigned: boolean;
  edited: boolean;
  status: number | null;
  duration_ms: number;
  error: string | null;
  headers: [string, string][];
  body: string;
}

/** A new delivery made from a sample (`template`) or a captured event (`event`). */
export interface TestEventRequest {
  template?: string;
  event?: string;
  email?: string;
  tag?: string;
  amount?: number;
}

export interface CannedResponse {
  status: number;
  headers: [string, string][];
  body: string;
  delay_ms: number;
}

export interface Endpoint {
  id: string;
  name: string;
  token: string;
  is_default: boolean;
  has_secret: boolean;
  forward_to: string | null;
  /** How deliveries are answered; null: a fast 200. */
  response: CannedResponse | null;
  url: string;
  public_url: string | null;
}

export interface DriftChange {
  path: string;
  change: 'added' | 'dropped' | 'retyped';
  /** Kinds of value seen before (dropped, retyped). */
  was?: string[];
  /** Kinds in this delivery (added, retyped). */
  now?: string[];
}

export type Sender = 'systeme.io' | 'local' | 'unknown' | 'outside';

/** `X-Webhook-Signature` checked against the endpoint's secret, on the stored bytes. */
export type SignatureVerdict = 'valid' | 'invalid' | 'unsigned' | 'no_secret';

export type TunnelState = 'off' | 'starting' | 'up' | 'reconnecting' | 'failed';

/** The public URL through a tunnel (`GET /api/tunnel`, `tunnel` stream events). */
export interface TunnelStatus {
  /** Grows with every change: of two answers, the higher one is current. */
  revision: number;
  /** As `hookscope serve --tunnel` takes it: `cloudflared`, `bore:HOST`, `manual:URL`, `off`. */
  choice: string;
  provider: 'off' | 'cloudflared' | 'ngrok' | 'bore' | 'manual';
  state: TunnelState;
  public_url: string | null;
  reason: string | null;
  hint: string | null;
  previous_url: string | null;
  /** The default endpoint's webhook URL through the tunnel, while it is up. */
  webhook_url: string | null;
  previous_webhook_url: string | null;
  /** Plain HTTP: systeme.io's Settings webhooks need HTTPS. */
  insecure: boolean;
  /** ngrok has an authtoken (the token itself never leaves the server). */
  ngrok_authtoken_set: boolean;
  /** Where a tunnel or proxy of your own connects so the senders it reports are checked
   * (`--proxy` / `HOOKSCOPE_PROXY`); null when Hookscope was started without one. */
  proxy_listener: string | null;
}

export interface Page<T> {
  items: T[];
  next: string | null;
}

export interface Contact {
  email: string;
  name: string | null;
  contact_id: string | null;
  events: number;
  first_seen: string;
  last_seen: string;
  last_event_id: string;
  last_event_type: string | null;
  last_label: string;
  last_summary: string;
}

/** A funnel step as systeme.io names it. */
export interface Step {
  funnel_id?: string;
  funnel?: string;
  step_id?: string;
  step?: string;
}

export interface Purchase {
  order_id?: string;
  offer_id?: string;
  offer?: string;
  amount_cents?: number;
  currency?: string;
  step?: Step;
  at: string;
  canceled: boolean;
  canceled_at?: string;
}

/** A contact's state as its events tell it (`GET /api/contacts/{email}`). */
export interface ContactCard {
  tags: string[];
  purchases: Purchase[];
  enrolments: { kind: 'course' | 'bundle'; name: string; access?: string; at: string }[];
  webinars: { step?: Step; scheduled_at?: string; at: string }[];
  optins: { step?: Step; page?: string; at: string }[];
  campaigns: { name: string; at: string }[];
  pages: { step: Step; visits: number; last_at: string }[];
  email_clicks: { subject: string; clicks: number; last_at: string }[];
}

export interface ShapeSummary {
  event_type: string;
  deliveries: number;
  drifted: number;
}

export interface Shape {
  event_type: string;
  deliveries: number;
  paths: { path: string; seen: number; always: boolean; kinds: Record<string, number> }[];
}

export interface Money {
  currency: string;
  amount_cents: number;
}

export interface OfferRow {
  offer_id: string | null;
  offer: string | null;
  sales: number;
  canceled: number;
  revenue: Money[];
  canceled_amount: Money[];
}

export interface FunnelRow {
  funnel_id: string | null;
  funnel: string | null;
  optins: number;
  buyers: number;
  conversion: number | null;
  sales: number;
  canceled: number;
  revenue: Money[];
  offers: OfferRow[];
}

/** The systeme.io account link (`GET /api/systeme`); the key itself is never returned. */
export interface SystemeAccount {
  api_key_set: boolean;
  /** Every Settings-webhook event systeme.io sends. */
  events: string[];
}

export interface SystemeWebhook {
  id: string;
  name: string | null;
  url: string;
  subscriptions: string[];
  active: boolean | null;
  /** The Hookscope endpoint it points at, if any. */
  endpoint: string | null;
}

export interface Registration {
  action: 'created' | 'updated' | 'unchanged';
  webhook: SystemeWebhook;
  previous_url: string | null;
  /** A new webhook's secret was put on the endpoint: signatures are checked at once. */
  secret_stored: boolean;
}

export interface Status {
  version: string;
  listening: boolean;
  ingest: string;
  webhook_url: string;
  default_endpoint: string;
  max_body: number;
  events: number;
  contacts: number;
  tunnel: TunnelStatus;
  /** What the user must know about this start, e.g. a damaged database moved aside. */
  notices?: string[];
  /** Deliveries the store refused since the last one it stored; null while all is well. */
  store?: StoreTrouble | null;
}

/** Deliveries answered 503 because the store could not take them (a full disk). */
export interface StoreTrouble {
  /** When the first was refused (RFC 3339). */
  since: string;
  refused: number;
  code: 'disk_full' | 'storage';
  message: string;
}

export interface EventFilter {
  email?: string;
  type?: string;
  family?: string;
  signature?: SignatureVerdict;
  drift?: boolean;
  q?: string;
  endpoint?: string;
  since?: string;
  until?: string;
  limit?: number;
  before?: string;
}

export type ExportFormat = 'json' | 'ndjson';

/** Where the live stream stands. */
export type StreamState = 'connecting' | 'live' | 'reconnecting';

/** An API error as it crosses the boundary: branch on `code`. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}
