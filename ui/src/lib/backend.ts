// The one door from the UI to Hookscope. The browser talks HTTP to the UI port (the token
// travels in an HttpOnly cookie set when the UI link was opened); another implementation
// of `Backend` can slot in for the desktop window.

import type { TauriIpc } from './platform';
import {
  ApiError,
  type CannedResponse,
  type Contact,
  type ContactWithCard,
  type Endpoint,
  type EventDiff,
  type EventFilter,
  type ErasureReport,
  type EventSummary,
  type ExportFormat,
  type ForwardAnswer,
  type ForwardView,
  type FunnelReport,
  type IndexProgress,
  type Page,
  type Registration,
  type ReplayResult,
  type FollowView,
  type Previous,
  type PrunePreview,
  type RetentionPolicy,
  type Shape,
  type ShapeSummary,
  type Status,
  type StoreTrouble,
  type StreamEvent,
  type Alert,
  type AlertRule,
  type HealthReport,
  type NewAlertRule,
  type ProbeView,
  type StreamState,
  type TestEventRequest,
  type SystemeAccount,
  type SystemeWebhook,
  type TunnelStatus,
} from './api';

/** Every kind of event the live stream sends, listened for by name. */
const STREAM_KINDS = [
  'ready',
  'captured',
  'resync',
  'tunnel',
  'forwarded',
  'store',
  'indexing',
  'erased',
  'follow',
  'alert',
  'probe',
] as const satisfies readonly StreamEvent['kind'][];
/** Fails to compile while a kind of `StreamEvent` is missing from `STREAM_KINDS`. */
export type EveryStreamKindListed = [Exclude<StreamEvent['kind'], (typeof STREAM_KINDS)[number]>] extends [never]
  ? true
  : never;
const everyStreamKindListed: EveryStreamKindListed = true;
void everyStreamKindListed;

/** An SSE event as the one type the server's `StreamEvent` is (named by its kind, its data
 * the event's data). */
function streamEvent(kind: StreamEvent['kind'], data: string): StreamEvent {
  return { kind, data: JSON.parse(data) } as StreamEvent;
}

/** Reached only if `StreamEvent` has a kind the switch does not handle: a compile error. */
function unknownKind(event: never): void {
  console.warn('unknown stream event', event);
}

export interface StreamHandlers {
  /** A delivery was stored. */
  captured(event: EventSummary): void;
  /** A delivery's forward to the endpoint's target went through, failed or will retry. */
  forwarded(id: string, forward: ForwardView): void;
  /** Events may have been missed (slow client, reconnect): reload what is shown. */
  resync(): void;
  state(state: StreamState): void;
  /** The tunnel changed (state or public URL). */
  tunnel(status: TunnelStatus): void;
  /** Deliveries began to be refused by the store (a full disk), or are stored again (null). */
  store(trouble: StoreTrouble | null): void;
  /** How far indexing has come while deliveries wait to be indexed (and once none wait). */
  indexing(progress: IndexProgress): void;
  /** Deliveries were forgotten or pruned: what is shown may hold some. */
  erased(): void;
  /** Following a relay changed: connecting, catching up, following, unreachable, off. */
  follow(view: FollowView): void;
  /** An alert was raised. */
  alert(alert: Alert): void;
  /** The public URL was checked (null: there is none). */
  probe(view: ProbeView | null): void;
}

export interface Backend {
  status(): Promise<Status>;
  events(filter: EventFilter): Promise<Page<EventSummary>>;
  /** One event as the API's JSON text: the payload is embedded verbatim, so it is parsed
   * with `parseJson` (exact) rather than `JSON.parse`. */
  eventDocument(id: string): Promise<string>;
  contacts(query: string, before?: string | null, limit?: number): Promise<Page<Contact>>;
  /** Two events compared: headers by name, the body by JSON path, by line or by hash. */
  diff(a: string, b: string): Promise<EventDiff>;
  /** The event `id` is best compared with: its previous attempt, or the previous of its type. */
  previousEvent(id: string): Promise<Previous>;
  subscribe(handlers: StreamHandlers): () => void;
  exportUrl(filter: EventFilter, format: ExportFormat): string;
  /** Saves an export; resolves when handed to the browser (or a save dialog). */
  saveExport(filter: EventFilter, format: ExportFormat): Promise<void>;
  /** Switches the tunnel (`cloudflared`, `ngrok[:DOMAIN]`, `bore:HOST`, `manual:URL`, `off`);
   * remembered. A given ngrok authtoken is stored on this machine. */
  setTunnel(choice: string, ngrokAuthtoken?: string): Promise<TunnelStatus>;
  /** Sets (or with null clears) an endpoint's signing secret; past deliveries are re-checked. */
  setEndpointSecret(endpointId: string, secret: string | null): Promise<void>;
  /** A contact's card, and how many of its deliveries failed verification (not counted). */
  contactCard(email: string): Promise<ContactWithCard>;
  shapes(): Promise<ShapeSummary[]>;
  shape(eventType: string): Promise<Shape>;
  /** Opt-ins, sales and revenue per funnel received in [since, until). */
  funnels(since: string | null, until: string | null): Promise<FunnelReport>;
  systeme(): Promise<SystemeAccount>;
  /** Stores (or with null forgets) the systeme.io API key. */
  setSystemeKey(key: string | null): Promise<SystemeAccount>;
  systemeWebhooks(): Promise<SystemeWebhook[]>;
  /** Points the endpoint's Settings webhook at the current public URL. */
  registerWithSysteme(endpointId: string, events?: string[]): Promise<Registration>;
  endpoints(): Promise<Endpoint[]>;
  /** Forwards the endpoint's deliveries to `target` (or, with null, stops). */
  setForwardTo(endpointId: string, target: string | null): Promise<Endpoint>;
  forwardAnswer(eventId: string): Promise<ForwardAnswer>;
  /** How the endpoint answers deliveries (null: a fast 200). */
  setResponse(endpointId: string, response: CannedResponse | null): Promise<Endpoint>;
  /** Sends a stored event again (to `url`, else the forward target), maybe edited or re-signed. */
  replay(eventId: string, request: { url?: string; resign?: boolean; body?: string }): Promise<ReplayResult>;
  /** A contact's whole timeline sent again, oldest first. */
  replayContact(email: string, request: { url?: string; resign?: boolean }): Promise<(ReplayResult | { event_id: string; error: string })[]>;
  /** Events sent again in the order given. */
  replaySelection(ids: string[], request: { url?: string; resign?: boolean }): Promise<(ReplayResult | { event_id: string; error: string })[]>;
  /** An event's earlier replays, oldest first. */
  replays(eventId: string): Promise<ReplayResult[]>;
  /** The bundled sample deliveries. */
  templates(): Promise<{ name: string; event_type: string | null }[]>;
  /** Sends a new delivery through the webhook listener; resolves with its id. */
  sendTestEvent(request: TestEventRequest): Promise<{ id: string | null; status: number }>;
  /** What forgetting this person would remove (nothing is removed). */
  erasurePreview(email: string): Promise<ErasureReport>;
  /** Forgets this person: every delivery about them or mentioning their email. */
  forgetContact(email: string): Promise<ErasureReport>;
  retention(): Promise<RetentionPolicy>;
  /** Keeps deliveries `days` days (null: until deleted); pruning starts at once. */
  setRetention(days: number | null): Promise<RetentionPolicy>;
  /** How many deliveries are past the retention now, and would be with `days` (nothing changes). */
  previewRetention(days: number | null): Promise<PrunePreview>;
  /** Follows the relay at `url` with its sync token from now on (remembered). */
  followRelay(url: string, token: string): Promise<FollowView>;
  /** Stops following; what was pulled stays. */
  stopFollowing(): Promise<FollowView>;
  /** Is it reaching me: the probe, each endpoint's cadence and verdicts, systeme.io's
   * webhooks, unread alerts and the rules. */
  health(): Promise<HealthReport>;
  /** Probes the public URL now. */
  probeNow(): Promise<ProbeView>;
  /** The alerts not read yet, newest first. */
  unreadAlerts(): Promise<Alert[]>;
  /** Marks alerts read. */
  acknowledgeAlerts(ids: number[]): Promise<void>;
  addAlertRule(rule: NewAlertRule): Promise<AlertRule>;
  /** Deletes a rule; resolves with the rules left. */
  deleteAlertRule(id: number): Promise<AlertRule[]>;
}

export function queryString(params: Record<string, string | number | boolean | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

async function failure(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as { code?: string; message?: string };
    return new ApiError(body.code ?? 'http', body.message ?? response.statusText, response.status);
  } catch {
    return new ApiError('http', `${response.status} ${response.statusText}`, response.status);
  }
}

export class HttpBackend implements Backend {
  constructor(
    private readonly base = '',
    private readonly fetcher: typeof fetch = (...args) => fetch(...args),
  ) {}

  private async get(path: string): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetcher(`${this.base}${path}`, {
        credentials: 'same-origin',
        headers: { accept: 'application/json' },
      });
    } catch {
      throw new ApiError('offline', 'Hookscope is not answering. Is it still running?', 0);
    }
    if (!response.ok) throw await failure(response);
    return response;
  }

  /** A request with a JSON body (the API refuses other origins; the cookie authenticates). */
  private async send(method: string, path: string, body: unknown): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetcher(`${this.base}${path}`, {
        method,
        credentials: 'same-origin',
        headers: { accept: 'application/json', 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    } catch {
      throw new ApiError('offline', 'Hookscope is not answering. Is it still running?', 0);
    }
    if (!response.ok) throw await failure(response);
    return response;
  }

  async setTunnel(choice: string, ngrokAuthtoken?: string): Promise<TunnelStatus> {
    const body = { tunnel: choice, ngrok_authtoken: ngrokAuthtoken || undefined };
    return (await this.send('PUT', '/api/tunnel', body)).json();
  }

  async setEndpointSecret(endpointId: string, secret: string | null): Promise<void> {
    await this.send('PATCH', `/api/endpoints/${encodeURIComponent(endpointId)}`, { secret });
  }

  async contactCard(email: string): Promise<ContactWithCard> {
    return (await this.get(`/api/contacts/${encodeURIComponent(email)}`)).json();
  }

  async shapes(): Promise<ShapeSummary[]> {
    return (await (await this.get('/api/shapes')).json()).shapes;
  }

  async shape(eventType: string): Promise<Shape> {
    return (await this.get(`/api/shapes/${encodeURIComponent(eventType)}`)).json();
  }

  async funnels(since: string | null, until: string | null): Promise<FunnelReport> {
    return (await this.get(`/api/funnels${queryString({ since, until })}`)).json();
  }

  async systeme(): Promise<SystemeAccount> {
    return (await this.get('/api/systeme')).json();
  }

  async setSystemeKey(key: string | null): Promise<SystemeAccount> {
    return (await this.send('PUT', '/api/systeme', { api_key: key })).json();
  }

  async systemeWebhooks(): Promise<SystemeWebhook[]> {
    return (await (await this.get('/api/systeme/webhooks')).json()).webhooks;
  }

  async registerWithSysteme(endpointId: string, events?: string[]): Promise<Registration> {
    return (await this.send('POST', `/api/endpoints/${encodeURIComponent(endpointId)}/systeme`, { events })).json();
  }

  async endpoints(): Promise<Endpoint[]> {
    return (await (await this.get('/api/endpoints')).json()).endpoints;
  }

  async setForwardTo(endpointId: string, target: string | null): Promise<Endpoint> {
    return (await this.send('PATCH', `/api/endpoints/${encodeURIComponent(endpointId)}`, { forward_to: target })).json();
  }

  async setResponse(endpointId: string, response: CannedResponse | null): Promise<Endpoint> {
    return (await this.send('PATCH', `/api/endpoints/${encodeURIComponent(endpointId)}`, { response })).json();
  }

  async replay(eventId: string, request: { url?: string; resign?: boolean; body?: string }): Promise<ReplayResult> {
    return (await this.send('POST', `/api/events/${encodeURIComponent(eventId)}/replay`, request)).json();
  }

  async replayContact(
    email: string,
    request: { url?: string; resign?: boolean },
  ): Promise<(ReplayResult | { event_id: string; error: string })[]> {
    return (await (await this.send('POST', `/api/contacts/${encodeURIComponent(email)}/replay`, request)).json())
      .replays;
  }

  async replaySelection(
    ids: string[],
    request: { url?: string; resign?: boolean },
  ): Promise<(ReplayResult | { event_id: string; error: string })[]> {
    return (await (await this.send('POST', '/api/replays', { ids, ...request })).json()).replays;
  }

  async replays(eventId: string): Promise<ReplayResult[]> {
    return (await (await this.get(`/api/events/${encodeURIComponent(eventId)}/replays`)).json()).replays;
  }

  async templates(): Promise<{ name: string; event_type: string | null }[]> {
    return (await (await this.get('/api/templates')).json()).templates;
  }

  async sendTestEvent(request: TestEventRequest): Promise<{ id: string | null; status: number }> {
    return (await this.send('POST', '/api/test-events', request)).json();
  }

  async erasurePreview(email: string): Promise<ErasureReport> {
    return (await this.get(`/api/contacts/${encodeURIComponent(email)}/erasure`)).json();
  }

  async forgetContact(email: string): Promise<ErasureReport> {
    return (await this.send('DELETE', `/api/contacts/${encodeURIComponent(email)}`, {})).json();
  }

  async retention(): Promise<RetentionPolicy> {
    return (await this.get('/api/retention')).json();
  }

  async setRetention(days: number | null): Promise<RetentionPolicy> {
    return (await this.send('PUT', '/api/retention', { days })).json();
  }

  async previewRetention(days: number | null): Promise<PrunePreview> {
    return (await this.send('POST', '/api/retention/preview', { days })).json();
  }

  async followRelay(url: string, token: string): Promise<FollowView> {
    return (await this.send('PUT', '/api/follow', { url, token })).json();
  }

  async stopFollowing(): Promise<FollowView> {
    return (await this.send('DELETE', '/api/follow', {})).json();
  }

  async health(): Promise<HealthReport> {
    return (await this.get('/api/health')).json();
  }

  async probeNow(): Promise<ProbeView> {
    return (await this.send('POST', '/api/health/probe', {})).json();
  }

  async unreadAlerts(): Promise<Alert[]> {
    return (await (await this.get('/api/alerts?unread=true')).json()).alerts;
  }

  async acknowledgeAlerts(ids: number[]): Promise<void> {
    await this.send('POST', '/api/alerts/acknowledge', { ids });
  }

  async addAlertRule(rule: NewAlertRule): Promise<AlertRule> {
    return (await this.send('POST', '/api/alert-rules', rule)).json();
  }

  async deleteAlertRule(id: number): Promise<AlertRule[]> {
    return (await (await this.send('DELETE', `/api/alert-rules/${id}`, {})).json()).rules;
  }

  async forwardAnswer(eventId: string): Promise<ForwardAnswer> {
    return (await this.get(`/api/events/${encodeURIComponent(eventId)}/forward`)).json();
  }

  async status(): Promise<Status> {
    return (await this.get('/api/status')).json();
  }

  async events(filter: EventFilter): Promise<Page<EventSummary>> {
    const body = await (await this.get(`/api/events${queryString({ ...filter })}`)).json();
    return { items: body.events, next: body.next };
  }

  async eventDocument(id: string): Promise<string> {
    return (await this.get(`/api/events/${encodeURIComponent(id)}`)).text();
  }

  async diff(a: string, b: string): Promise<EventDiff> {
    return (await this.get(`/api/diff${queryString({ a, b })}`)).json();
  }

  async previousEvent(id: string): Promise<Previous> {
    return (await this.get(`/api/events/${encodeURIComponent(id)}/previous`)).json();
  }

  async contacts(query: string, before?: string | null, limit = 100): Promise<Page<Contact>> {
    const body = await (
      await this.get(`/api/contacts${queryString({ q: query, before, limit })}`)
    ).json();
    return { items: body.contacts, next: body.next };
  }

  exportUrl(filter: EventFilter, format: ExportFormat): string {
    const { limit: _limit, before: _before, ...rest } = filter;
    return `${this.base}/api/export${queryString({ ...rest, format })}`;
  }

  async saveExport(filter: EventFilter, format: ExportFormat): Promise<void> {
    const link = document.createElement('a');
    link.href = this.exportUrl(filter, format);
    link.download = '';
    link.rel = 'noopener';
    document.body.append(link);
    link.click();
    link.remove();
  }

  subscribe(handlers: StreamHandlers): () => void {
    let source: EventSource | null = null;
    let stopped = false;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let delay = 500;
    let connectedBefore = false;

    const open = () => {
      if (stopped) return;
      handlers.state(connectedBefore ? 'reconnecting' : 'connecting');
      source = new EventSource(`${this.base}/api/stream`, { withCredentials: true });
      const on = (event: StreamEvent): void => {
        switch (event.kind) {
          case 'ready':
            delay = 500;
            handlers.state('live');
            // Deliveries committed before the server subscribed us were never streamed: on
            // a reconnect, and also on the first connect (the first lists may have been
            // read before some of them landed).
            handlers.resync();
            connectedBefore = true;
            return;
          case 'captured':
            return handlers.captured(event.data);
          case 'forwarded':
            return handlers.forwarded(event.data.id, event.data.forward);
          case 'resync':
            return handlers.resync();
          case 'tunnel':
            return handlers.tunnel(event.data);
          case 'store':
            return handlers.store(event.data);
          case 'indexing':
            return handlers.indexing(event.data);
          case 'erased':
            return handlers.erased();
          case 'follow':
            return handlers.follow(event.data);
          case 'alert':
            return handlers.alert(event.data);
          case 'probe':
            return handlers.probe(event.data);
          default:
            return unknownKind(event);
        }
      };
      for (const kind of STREAM_KINDS) {
        source.addEventListener(kind, (message) => on(streamEvent(kind, (message as MessageEvent<string>).data)));
      }
      source.onerror = () => {
        // EventSource retries by itself unless the server refused outright; either way
        // we take over so the delay grows and the state is shown.
        source?.close();
        source = null;
        handlers.state('reconnecting');
        connectedBefore = true;
        retry = setTimeout(open, delay);
        delay = Math.min(delay * 2, 10_000);
      };
    };
    open();
    return () => {
      stopped = true;
      clearTimeout(retry);
      source?.close();
    };
  }
}

/** The desktop window: same HTTP API, but exports go through the native save dialog and
 * are written by the app straight from the store. */
export class TauriBackend extends HttpBackend {
  constructor(private readonly ipc: TauriIpc) {
    super();
  }

  override async saveExport(filter: EventFilter, format: ExportFormat): Promise<void> {
    const { limit: _limit, before: _before, ...rest } = filter;
    try {
      await this.ipc.invoke<string | null>('save_export', { filter: rest, format });
    } catch (error) {
      const { code, message } = (error ?? {}) as { code?: string; message?: string };
      throw new ApiError(code ?? 'export', message ?? String(error), 0);
    }
  }
}
