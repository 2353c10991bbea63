// Hookscope as the window sees it: its status, the tunnel, the store's trouble, indexing,
// the relay followed, the live stream's state, and the problem worth a banner.

import type { Backend } from '../backend';
import {
  ApiError,
  type FollowView,
  type IndexProgress,
  type Status,
  type StoreTrouble,
  type StreamState,
  type TunnelStatus,
} from '../api';

export class Connection {
  status = $state<Status | null>(null);
  tunnel = $state<TunnelStatus | null>(null);
  /** Deliveries being refused by the store right now (a full disk), or null. */
  storeTrouble = $state<StoreTrouble | null>(null);
  /** How far indexing has come: while `behind` > 0, lists and searches miss that many. */
  indexing = $state<IndexProgress | null>(null);
  /** The relay this install follows and how that goes (`state: 'off'` when none). */
  follow = $state<FollowView | null>(null);
  /** The URL change the user already acknowledged (they updated systeme.io). */
  acknowledgedChange = $state<string | null>(null);
  stream = $state<StreamState>('connecting');
  /** A problem worth a banner (server gone, a failed request); cleared when it recovers. */
  problem = $state<string | null>(null);
  /** The page was opened without the token cookie. */
  needsLink = $state(false);
  /** Ticks so relative times stay true. */
  now = $state(Date.now());

  /** Each connection's stream starts with the current state: it outranks a status answer
   * that may have been read before the latest change. */
  private storeFromStream = false;
  private followFromStream = false;

  constructor(private readonly backend: Backend) {}

  /** A status answer. True when indexing has just caught up: what waited is in the lists
   * now, and they should be read again. */
  setStatus(status: Status): boolean {
    this.status = status;
    const caughtUp = this.setIndexing(status.indexing);
    if (!this.storeFromStream) this.storeTrouble = status.store ?? null;
    if (!this.followFromStream) this.follow = status.follow;
    this.setTunnel(status.tunnel);
    return caughtUp;
  }

  /** Reads the status again. True as for [`setStatus`]. */
  async refresh(): Promise<boolean> {
    try {
      return this.setStatus(await this.backend.status());
    } catch (error) {
      this.report(error);
      return false;
    }
  }

  /** True when indexing has just caught up. */
  setIndexing(progress: IndexProgress): boolean {
    const wasBehind = (this.indexing?.behind ?? 0) > 0;
    this.indexing = progress;
    return wasBehind && progress.behind === 0;
  }

  storeFromStreamSaid(trouble: StoreTrouble | null): void {
    this.storeFromStream = true;
    this.storeTrouble = trouble;
  }

  followFromStreamSaid(view: FollowView): void {
    this.followFromStream = true;
    this.follow = view;
  }

  streamIs(state: StreamState): void {
    this.stream = state;
    if (state === 'live') this.problem = null;
    else if (state === 'reconnecting') {
      this.problem = 'Connection to Hookscope lost. Reconnecting…';
      this.storeFromStream = false;
      this.followFromStream = false;
    }
  }

  /** Answers can cross (a reply to a switch and a stream event): the newest wins. */
  setTunnel(status: TunnelStatus): void {
    if (!this.tunnel || status.revision >= this.tunnel.revision) this.tunnel = status;
  }

  /** The public URL changed since systeme.io was set up, and the user has not said they
   * updated it yet. */
  get unannouncedChange(): boolean {
    const t = this.tunnel;
    return !!t?.previous_webhook_url && t.state === 'up' && this.acknowledgedChange !== t.webhook_url;
  }

  /** The user updated systeme.io for the URL on screen. */
  acknowledgeChange(): void {
    this.acknowledgedChange = this.tunnel?.webhook_url ?? null;
  }

  /** Switches the tunnel; errors (an invalid URL) are for the caller to show. */
  async chooseTunnel(choice: string, ngrokAuthtoken?: string): Promise<void> {
    this.setTunnel(await this.backend.setTunnel(choice, ngrokAuthtoken));
  }

  /** Follows a relay from now on; errors (a plain http:// URL to another machine) are for
   * the caller to show. */
  async followRelay(url: string, token: string): Promise<void> {
    this.follow = await this.backend.followRelay(url, token);
  }

  async stopFollowing(): Promise<void> {
    this.follow = await this.backend.stopFollowing();
  }

  /** A failed request: a banner, or (no token) the page asking for the link. */
  report(error: unknown): void {
    if (error instanceof ApiError && error.code === 'unauthorized') {
      this.needsLink = true;
      return;
    }
    this.problem = error instanceof Error ? error.message : String(error);
  }
}
