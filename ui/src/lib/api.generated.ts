// Generated from the Rust types of Hookscope's API by `make api-types`
// (src-tauri/core/tests/api_types.rs). Do not edit: change the Rust types.

/**
 * `POST /api/alerts/acknowledge`: the alerts read.
 */
export type Acknowledge = { ids: Array<number>, };

export type Acknowledged = { acknowledged: number, };

/**
 * A raised alert.
 */
export type Alert = { id: number, rule_id: number, kind: AlertKind, endpoint_id: string | null, event_type: string | null, 
/**
 * What happened, in a sentence.
 */
message: string, 
/**
 * What to do about it.
 */
advice: string, raised_at: string, 
/**
 * When its cause ended (deliveries came again, the target answered, …), or null.
 */
cleared_at: string | null, 
/**
 * When the user read it, or null: unread.
 */
acknowledged_at: string | null, };

/**
 * What a rule watches.
 */
export type AlertKind = "silence" | "verification" | "source" | "forward" | "probe";

/**
 * `GET /api/alerts`: newest first.
 */
export type AlertList = { alerts: Array<Alert>, };

export type AlertRule = { id: number, kind: AlertKind, 
/**
 * The endpoint watched; null: every endpoint.
 */
endpoint_id: string | null, 
/**
 * Silence only: the event type watched; null: any.
 */
event_type: string | null, 
/**
 * Silence: seconds (null: learned from the endpoint's history). Verification and
 * forward: failures in a row. Null for the others.
 */
threshold: number | null, };

/**
 * `GET /api/alert-rules`, and what is left after one is deleted.
 */
export type AlertRuleList = { rules: Array<AlertRule>, };

/**
 * Any JSON value (a value compared).
 */
export type AnyJson = unknown;

/**
 * How an API error crosses to the UI (and to `hookscope` commands): branch on `code`.
 */
export type ApiErrorBody = { code: string, message: string, };

/**
 * Bodies that are not both text: never shown, only told apart.
 */
export type BinaryDiff = { 
/**
 * The bytes compared (decoded, when [`BodyDiff::decoded`]) are the same.
 */
identical: boolean, 
/**
 * Where they first differ (a byte offset; the shorter one's length when one is the
 * start of the other); null when identical.
 */
first_difference: number | null, a_sha256: string, b_sha256: string, };

/**
 * How the bodies were compared, and what differs.
 */
export type BodyChanges = { "kind": "json" } & JsonDiff | { "kind": "text" } & TextDiff | { "kind": "binary" } & BinaryDiff;

/**
 * The bodies compared.
 */
export type BodyDiff = { 
/**
 * The bodies as stored are the same bytes.
 */
identical: boolean, a_size: number, b_size: number, 
/**
 * A side's `Content-Encoding` (gzip, deflate) was undone before comparing.
 */
decoded: boolean, diff: BodyChanges, };

/**
 * How a body is carried in event JSON.
 */
export type BodyKind = "json" | "text" | "binary" | "empty";

/**
 * An answer an endpoint gives every delivery (after storing it), to rehearse how a
 * sender behaves when a handler fails or is slow.
 */
export type CannedResponse = { status: number, headers: Array<[string, string]>, body: string, delay_ms: number, };

export type Contact = { 
/**
 * Lower-cased: the grouping key.
 */
email: string, name: string | null, contact_id: string | null, events: number, first_seen: string, last_seen: string, last_event_id: string, last_event_type: string | null, last_label: string, last_summary: string, };

export type ContactCard = { 
/**
 * The contact's tags: its own list where a payload gave it, then added minus
 * removed, in order.
 */
tags: Array<string>, purchases: Array<Purchase>, enrolments: Array<Enrolment>, webinars: Array<WebinarSeat>, optins: Array<Optin>, campaigns: Array<Dated>, pages: Array<PageVisits>, email_clicks: Array<EmailClicks>, };

export type ContactFilter = { q?: string, limit?: number, before?: string, };

export type ContactPage = { contacts: Array<Contact>, next: string | null, };

/**
 * A contact with its card (`GET /api/contacts/{email}`).
 */
export type ContactWithCard = { card: ContactCard, contact: Contact, 
/**
 * The contact's deliveries that failed verification: shown, not counted in the card.
 */
not_counted: number, };

export type Dated = { name: string, at: string, };

/**
 * How a path or a header differs from one side (`a`) to the other (`b`).
 */
export type DiffChange = "added" | "removed" | "changed";

export type DiffLine = { tag: LineTag, 
/**
 * Without its line ending; at most [`LONGEST_LINE`] characters, then `…`.
 */
text: string, };

/**
 * Which event a side is.
 */
export type DiffSide = { id: string, received_at: string, endpoint_name: string, label: string, summary: string, event_type: string | null, message_id: string | null, attempt: number, };

/**
 * One difference between a delivery and the shape before it.
 */
export type DriftChange = { path: string, 
/**
 * `added`, `dropped` or `retyped`.
 */
change: 'added' | 'dropped' | 'retyped', 
/**
 * Kinds seen before (dropped, retyped).
 */
was?: Array<string>, 
/**
 * Kinds in this delivery (added, retyped).
 */
now?: Array<string>, };

export type EmailClicks = { subject: string, clicks: number, last_at: string, };

/**
 * An endpoint with its URLs (`GET /api/endpoints` and the endpoint routes).
 */
export type Endpoint = { url: string, 
/**
 * Through the tunnel, while it is up.
 */
public_url: string | null, id: string, name: string, token: string, created_at: string, is_default: boolean, has_secret: boolean, 
/**
 * Where every delivery is passed on to (the user's own handler), if anywhere.
 */
forward_to: string | null, 
/**
 * How deliveries are answered; `None`: a fast 200.
 */
response: CannedResponse | null, };

export type EndpointHealth = { id: string, name: string, 
/**
 * Its URL through the public URL, or null without one.
 */
public_webhook_url: string | null, last_delivery_at: string | null, 
/**
 * The event types that arrived in the last 90 days, busiest first.
 */
types: Array<TypeCadence>, 
/**
 * Verdicts of the deliveries of the last 24 hours.
 */
signatures_last_day: VerdictCounts, has_secret: boolean, };

export type EndpointList = { endpoints: Array<Endpoint>, };

export type Enrolment = { 
/**
 * `course` or `bundle`.
 */
kind: string, name: string, access?: string | null, at: string, };

/**
 * What forgetting someone removed.
 */
export type ErasureReport = { email: string, 
/**
 * Deliveries about them.
 */
deliveries: number, 
/**
 * Other deliveries that mentioned their email, also removed.
 */
mentioning: number, };

/**
 * Two events compared (`GET /api/diff`, `hookscope diff --json`).
 */
export type EventDiff = { a: DiffSide, b: DiffSide, headers: HeadersDiff, body: BodyDiff, };

/**
 * Filters shared by the event list and the export (query string of both).
 */
export type EventFilter = { email?: string, type?: string, family?: string, 
/**
 * `valid`, `invalid`, `unsigned` or `no_secret`.
 */
signature?: string, 
/**
 * `true`: only deliveries whose shape differed from their type's before them.
 */
drift?: string, q?: string, endpoint?: string, since?: string, until?: string, limit?: number, before?: string, 
/**
 * Exports only: exactly the deliveries forgetting this address would erase, about
 * them and mentioning them (the other filters do not apply).
 */
forget?: string, };

export type EventPage = { events: Array<EventSummary>, 
/**
 * Pass as `before` for the next (older) page; `null` at the end.
 */
next: string | null, };

/**
 * Everything about an event except its body: list items and stream messages.
 */
export type EventSummary = { id: string, received_at: string, endpoint: string, endpoint_name: string, method: string, path: string, query: string | null, 
/**
 * `[[name, value], ...]` in arrival order.
 */
headers: Array<[string, string]>, remote_addr: string | null, 
/**
 * The sender's address (see [`crate::capture::sender`]).
 */
client_ip: string | null, via_tunnel: boolean, 
/**
 * `systeme.io`, `local`, `unknown` or `outside` (flagged): see [`Sender`].
 */
sender: Sender | null, 
/**
 * Sent from one of systeme.io's addresses: true, false, or null when unknown.
 */
source_ok: boolean | null, 
/**
 * `valid`, `invalid`, `unsigned` or `no_secret`: see [`crate::capture::signature`].
 */
signature: SignatureVerdict, 
/**
 * `X-Webhook-Message-Id`: deliveries sharing it are attempts at one message.
 */
message_id: string | null, 
/**
 * 1 for the first delivery of a message.
 */
attempt: number, 
/**
 * Id of an identical unsigned delivery shortly before: a probable repeat.
 */
repeat_of: string | null, 
/**
 * How the payload differed from its type's shape before it: `[{path, change, was,
 * now}]`, or null.
 */
drift: Array<DriftChange> | null, 
/**
 * Passed on to the endpoint's forward target: how that went, or null.
 */
forward: ForwardView | null, content_type: string | null, content_encoding: string | null, size: number, body_kind: BodyKind, source: string, family: Family, event_type: string | null, label: string, summary: string, contact_email: string | null, contact_key: string | null, contact_id: string | null, contact_name: string | null, occurred_at: string | null, 
/**
 * A sale's worth (see [`crate::capture::worth`]): what was paid, the list price and
 * the discount, as the card and the funnel figures count it; null for other events.
 */
sale?: Sale, };

/**
 * The badge a delivery wears in the UI.
 */
export type Family = "sale" | "sale_canceled" | "tag_added" | "tag_removed" | "optin" | "webinar" | "course" | "campaign" | "page" | "email_click" | "contact" | "subscription" | "unknown";

/**
 * Where following stands, for the header.
 */
export type FollowView = { 
/**
 * The relay's sync URL; `None`: not following.
 */
relay: string | null, state: 'off' | 'connecting' | 'catching_up' | 'following' | 'unreachable', 
/**
 * Deliveries the relay holds that are not here yet, at most (while catching up).
 */
behind: number, 
/**
 * Unreachable since (RFC 3339), and why.
 */
since: string | null, reason: string | null, 
/**
 * Deliveries pulled since this process started following.
 */
received: number, };

/**
 * What a forward target last answered (`GET /api/events/{id}/forward`).
 */
export type ForwardAnswer = { body_base64?: string, body_text?: string, headers: Array<[string, string]> | null, status: number | null, };

/**
 * A forward changed: for the live stream.
 */
export type ForwardUpdate = { id: string, forward: ForwardView, };

/**
 * The forward of one event, as event JSON shows it.
 */
export type ForwardView = { target: string, 
/**
 * `pending`, `delivered` or `failed`.
 */
state: 'pending' | 'delivered' | 'failed', attempts: number, status: number | null, duration_ms: number | null, error: string | null, };

export type FunnelFilter = { since?: string, until?: string, endpoint?: string, };

export type FunnelReport = { funnels: Array<FunnelRow>, 
/**
 * Sales and opt-ins in the period left out because their signature is invalid.
 */
not_counted: number, };

export type FunnelRow = { funnel_id: string | null, 
/**
 * `null` for sales and opt-ins that name no funnel.
 */
funnel: string | null, 
/**
 * Contacts who opted in.
 */
optins: number, 
/**
 * Of those, contacts who then bought in this funnel.
 */
buyers: number, 
/**
 * `buyers / optins`, null without opt-ins.
 */
conversion: number | null, sales: number, canceled: number, revenue: Array<Money>, offers: Array<OfferRow>, };

export type HeaderChange = { 
/**
 * As the side that has it spelled it (`a`'s when both do).
 */
name: string, change: DiffChange, a: string | null, b: string | null, };

/**
 * Headers by name in any case; a name sent more than once is compared as its values
 * joined by `, `.
 */
export type HeadersDiff = { 
/**
 * In `a`'s order, then what only `b` has in its order.
 */
changes: Array<HeaderChange>, 
/**
 * Headers with the same value on both sides (`[name, value]`, in `a`'s order).
 */
unchanged: Array<[string, string]>, };

export type HealthReport = { 
/**
 * The public base URL while a tunnel (or a URL of yours) is up, else null.
 */
public_url: string | null, 
/**
 * The last check of the public URL, or null (no public URL, or not checked yet).
 */
probe: ProbeView | null, endpoints: Array<EndpointHealth>, systeme: SystemeHealth, 
/**
 * Unread alerts, newest first.
 */
alerts: Array<Alert>, rules: Array<AlertRule>, };

export type Hunk = { 
/**
 * The first line's number in `a` and in `b` (from 1).
 */
a_line: number, b_line: number, 
/**
 * Unchanged lines left out before this hunk.
 */
folded_before: number, lines: Array<DiffLine>, };

/**
 * How far the indexer has come: the last delivery indexed, and how many wait.
 */
export type IndexProgress = { through: number, behind: number, };

/**
 * Two JSON documents by path; objects by key, arrays by index.
 */
export type JsonDiff = { 
/**
 * At most [`MOST_CHANGES`], by path.
 */
changes: Array<PathChange>, 
/**
 * Changes not listed.
 */
more: number, 
/**
 * Values (leaves: strings, numbers, booleans, nulls, empty arrays and objects) the
 * same on both sides, at the same path.
 */
unchanged: number, 
/**
 * A document is too large to be held whole (more than 20,000 values): only its first
 * part was compared.
 */
partial: boolean, };

/**
 * Any JSON value (a field set in a test event).
 */
export type Jsonish = unknown;

export type LastRun = { 
/**
 * When it ended (RFC 3339).
 */
at: string, pruned: number, };

export type LineTag = "same" | "removed" | "added";

export type Money = { currency: string, amount_cents: number, };

/**
 * A rule as the user asks for it (`POST /api/alert-rules`).
 */
export type NewAlertRule = { kind: AlertKind, endpoint_id?: string, event_type?: string, threshold?: number, };

export type OfferRow = { offer_id: string | null, offer: string | null, sales: number, canceled: number, 
/**
 * Sales in the period, per currency.
 */
revenue: Array<Money>, 
/**
 * Cancellations in the period, per currency.
 */
canceled_amount: Array<Money>, };

export type Optin = { step?: Step | null, page?: string | null, at: string, };

export type PageVisits = { step: Step, visits: number, last_at: string, };

/**
 * One path that differs: an added or removed path carries its whole value.
 */
export type PathChange = { 
/**
 * `order.totalPrice`, `orderItem.resources[0]`; `""` for the whole document.
 */
path: string, change: DiffChange, 
/**
 * The value in `a` (absent when added).
 */
a?: AnyJson, 
/**
 * The value in `b` (absent when removed).
 */
b?: AnyJson, };

/**
 * A change to the policy, to see what it would prune before it applies.
 */
export type PolicyChange = { 
/**
 * Days to keep; null: keep everything (or, with `endpoint`, the install's).
 */
days: number | null, 
/**
 * An endpoint's own retention instead of the install's.
 */
endpoint?: string, };

/**
 * The event another is best compared with (`GET /api/events/{id}/previous`).
 */
export type Previous = { id: string, reason: PreviousReason, };

export type PreviousReason = "attempt" | "repeat" | "same_type";

/**
 * The last check of the public URL.
 */
export type ProbeView = { 
/**
 * The probe came back to this Hookscope's listener.
 */
reaches: boolean, 
/**
 * The public base URL checked.
 */
url: string, checked_at: string, 
/**
 * From sending the probe to its answer.
 */
duration_ms: number, 
/**
 * Why it did not reach, or null.
 */
error: string | null, 
/**
 * What to do about it, or null.
 */
advice: string | null, };

/**
 * How many deliveries a policy prunes: now, and with the change applied.
 */
export type PrunePreview = { 
/**
 * Past the retention as it stands (the next run prunes them).
 */
due_now: number, 
/**
 * Past it once the change applies.
 */
after_change: number, };

export type Purchase = { at: string, canceled: boolean, canceled_at?: string | null, order_id?: string | null, offer_id?: string | null, offer?: string | null, 
/**
 * What was paid, after any discount.
 */
amount_cents?: number | null, 
/**
 * The price plan's amount, before any discount.
 */
list_cents?: number | null, discount_cents?: number | null, 
/**
 * When the order was made, as the payload says (RFC 3339).
 */
ordered_at?: string | null, 
/**
 * Upper case (`EUR`).
 */
currency?: string | null, step?: Step | null, };

/**
 * What registering with systeme.io did (`POST /api/endpoints/{id}/systeme`).
 */
export type Registration = { action: 'created' | 'updated' | 'unchanged', previous_url: string | null, 
/**
 * A new webhook's secret was put on the endpoint: signatures are checked at once.
 */
secret_stored: boolean, webhook: RemoteWebhook, };

/**
 * A Settings webhook as the API lists it (its secret is never read back).
 */
export type RemoteWebhook = { active: boolean | null, id: string, name: string | null, subscriptions: Array<string>, url: string, };

/**
 * Every replay of one event (`GET /api/events/{id}/replays`).
 */
export type ReplayHistory = { replays: Array<ReplayResult>, };

/**
 * One event of a replayed selection or timeline: its answer, or why it was not sent.
 */
export type ReplayOutcome = ReplayResult | { error: string, event_id: string, };

export type ReplayOutcomes = { replays: Array<ReplayOutcome>, };

/**
 * A replay and the target's answer.
 */
export type ReplayResult = { event_id: string, at: string, target: string, resigned: boolean, edited: boolean, status: number | null, duration_ms: number, error: string | null, headers: Array<[string, string]>, 
/**
 * The answer's first 64 KiB, as text (lossy for binary answers).
 */
body: string, };

/**
 * What the window and `hookscope retention` show.
 */
export type RetentionPolicy = { 
/**
 * Days deliveries are kept; null: kept until you delete them.
 */
days: number | null, 
/**
 * Endpoints that keep theirs for another number of days: `[id, days]`.
 */
endpoints: Array<[string, number]>, last_run: LastRun | null, };

/**
 * A sale or its cancellation. Amounts are in cents, as systeme.io sends them; what they
 * mean is [`Worth`]'s to say.
 */
export type Sale = { order_id?: string | null, offer_id?: string | null, offer?: string | null, 
/**
 * What was paid, after any discount.
 */
amount_cents?: number | null, 
/**
 * The price plan's amount, before any discount.
 */
list_cents?: number | null, discount_cents?: number | null, 
/**
 * When the order was made, as the payload says (RFC 3339).
 */
ordered_at?: string | null, 
/**
 * Upper case (`EUR`).
 */
currency?: string | null, step?: Step | null, };

/**
 * What the client address says about the sender.
 */
export type Sender = "systeme.io" | "local" | "unknown" | "outside";

/**
 * One type's shape (`GET /api/shapes/{event_type}`).
 */
export type Shape = { deliveries: number, event_type: string, paths: Array<ShapePath>, };

export type ShapeList = { shapes: Array<ShapeSummary>, };

export type ShapePath = { 
/**
 * In every delivery of the type.
 */
always: boolean, 
/**
 * Kind of value → deliveries that had it there.
 */
kinds: { [key in string]: number }, path: string, seen: number, };

/**
 * A learned event type (`GET /api/shapes`).
 */
export type ShapeSummary = { deliveries: number, 
/**
 * Deliveries whose shape differed from their type's before them.
 */
drifted: number, event_type: string, };

export type SignatureVerdict = "valid" | "invalid" | "unsigned" | "no_secret";

/**
 * The install at a glance (`GET /api/status`).
 */
export type Status = { contacts: number, default_endpoint: string, events: number, 
/**
 * The relay this install follows and how that goes (`state: 'off'` when none).
 */
follow: FollowView, 
/**
 * How far deliveries are indexed: `behind` of them are not in lists and searches yet.
 */
indexing: IndexProgress, 
/**
 * `http://127.0.0.1:PORT`: where webhook URLs point on this machine.
 */
ingest: string, listening: boolean, max_body: number, 
/**
 * What the user must know about this start (a database moved aside, a shared folder).
 */
notices: Array<string>, 
/**
 * SQLite's own allocations (page caches, statements).
 */
sqlite_memory_bytes: number, 
/**
 * Deliveries the store refused since the last one it stored; null while all is well.
 */
store: StoreTrouble | null, tunnel: TunnelStatus, version: string, webhook_url: string, };

/**
 * A funnel step as the payload names it.
 */
export type Step = { funnel_id?: string | null, funnel?: string | null, step_id?: string | null, step?: string | null, };

/**
 * Deliveries the store could not take since the last one it could. Senders only see a
 * 503, so the user is told: a full disk otherwise goes unnoticed until data is missing.
 */
export type StoreTrouble = { 
/**
 * When the first of them was refused.
 */
since: string, refused: number, 
/**
 * `disk_full` or `storage`: deliveries refused (what the user can do differs);
 * `fault`: a thread of the store failed and was started again; `stopped`: the
 * writer failed again and again and Hookscope stops (its supervisor restarts it).
 */
code: 'disk_full' | 'storage' | 'fault' | 'stopped', 
/**
 * The last error.
 */
message: string, };

export type StoredEndpoint = { id: string, name: string, token: string, created_at: string, is_default: boolean, has_secret: boolean, 
/**
 * Where every delivery is passed on to (the user's own handler), if anywhere.
 */
forward_to: string | null, 
/**
 * How deliveries are answered; `None`: a fast 200.
 */
response: CannedResponse | null, };

/**
 * What the live stream (`GET /api/stream`, server-sent events) says. Each is sent as an
 * SSE event named by its `kind`, with `data` as the event's data (`{}` when it has none),
 * so a client may listen by name; the UI decodes them into this one type and switches
 * on `kind`.
 */
export type StreamEvent = { "kind": "ready" } | { "kind": "captured", "data": EventSummary } | { "kind": "resync", "data": { missed?: number, } } | { "kind": "tunnel", "data": TunnelStatus } | { "kind": "forwarded", "data": ForwardUpdate } | { "kind": "store", "data": StoreTrouble | null } | { "kind": "indexing", "data": IndexProgress } | { "kind": "erased", "data": { generation: number, } } | { "kind": "follow", "data": FollowView } | { "kind": "alert", "data": Alert } | { "kind": "probe", "data": ProbeView | null };

/**
 * The systeme.io account link (`GET /api/systeme`); the key itself is never returned.
 */
export type SystemeAccount = { api_key_set: boolean, 
/**
 * Every Settings-webhook event systeme.io sends.
 */
events: Array<string>, };

export type SystemeHealth = { 
/**
 * An API key is stored: the webhooks below were asked for.
 */
key_set: boolean, webhooks: Array<SystemeWebhookHealth>, 
/**
 * Why systeme.io could not be asked, or null.
 */
error: string | null, };

/**
 * A Settings webhook of the account, with the endpoint it points at.
 */
export type SystemeWebhook = { active: boolean | null, 
/**
 * The Hookscope endpoint it points at, if any.
 */
endpoint: string | null, id: string, name: string | null, subscriptions: Array<string>, url: string, };

export type SystemeWebhookHealth = { id: string, name: string | null, url: string, subscriptions: Array<string>, 
/**
 * The Hookscope endpoint whose path it carries, or null (not Hookscope's).
 */
endpoint_id: string | null, 
/**
 * It points at the endpoint's current public URL.
 */
points_here: boolean, 
/**
 * What is wrong, when it points elsewhere: fixed by registering the endpoint again.
 */
problem: string | null, };

export type SystemeWebhookList = { webhooks: Array<SystemeWebhook>, };

/**
 * A bundled sample a test event can be made from (`GET /api/templates`).
 */
export type Template = { event_type: string | null, name: string, };

export type TemplateList = { templates: Array<Template>, };

/**
 * What the webhook listener answered a test event (`POST /api/test-events`).
 */
export type TestEventAnswer = { 
/**
 * The stored event, when it was stored.
 */
id: string | null, status: number, };

/**
 * A new delivery made from a sample (`template`) or a captured event (`event`), with the
 * contact's email, a tag, an amount or any JSON path changed (`POST /api/test-events`).
 */
export type TestEventRequest = { template?: string, event?: string, endpoint?: string, email?: string, tag?: string, amount?: number, 
/**
 * JSON path → new value.
 */
set?: { [key in string]: Jsonish }, };

/**
 * Two texts line by line, in hunks with [`CONTEXT_LINES`] of context; the unchanged
 * lines between hunks are only counted.
 */
export type TextDiff = { hunks: Array<Hunk>, 
/**
 * Changed lines (removed or added) not listed.
 */
more: number, 
/**
 * Lines the same on both sides (listed as context or not).
 */
unchanged: number, };

export type TunnelState = "off" | "starting" | "up" | "reconnecting" | "failed";

/**
 * The public URL through a tunnel (`GET /api/tunnel`, `tunnel` stream events).
 */
export type TunnelStatus = { 
/**
 * As `hookscope serve --tunnel` takes it: `cloudflared`, `bore:HOST`, `manual:URL`, `off`.
 */
choice: string, hint: string | null, 
/**
 * Plain HTTP: systeme.io's Settings webhooks need HTTPS.
 */
insecure: boolean, 
/**
 * ngrok has an authtoken (the token itself never leaves the server).
 */
ngrok_authtoken_set: boolean, previous_url: string | null, previous_webhook_url: string | null, provider: 'off' | 'cloudflared' | 'ngrok' | 'bore' | 'manual', 
/**
 * Where a tunnel or proxy of your own connects so the senders it reports are checked
 * (`--proxy`); null without one.
 */
proxy_listener: string | null, public_url: string | null, reason: string | null, 
/**
 * Grows with every change: of two answers, the higher one is current.
 */
revision: number, state: TunnelState, 
/**
 * The default endpoint's webhook URL through the tunnel, while it is up.
 */
webhook_url: string | null, };

/**
 * One event type's cadence on an endpoint.
 */
export type TypeCadence = { 
/**
 * The event type, or null for deliveries no decoder named.
 */
event_type: string | null, last_at: string, 
/**
 * Median seconds between arrivals (of the last 50), or null with fewer than two.
 */
usual_gap_secs: number | null, 
/**
 * How long a silence must last to be news, learned the same way a silence rule
 * without a threshold learns it; null until 10 have arrived.
 */
learned_silence_secs: number | null, };

/**
 * Signature verdicts of an endpoint's deliveries since `since` (unix µs).
 */
export type VerdictCounts = { valid: number, invalid: number, unsigned: number, no_secret: number, };

export type WebinarSeat = { step?: Step | null, scheduled_at?: string | null, at: string, };
