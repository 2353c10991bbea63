// What the user set: retention, the default endpoint's forward target, the systeme.io
// account and the last registration made with it.

import type { Backend } from '../backend';
import type { CannedResponse, Endpoint, PrunePreview, Registration, RetentionPolicy } from '../api';

export class Settings {
  /** How long deliveries are kept, and when pruning last ran. */
  retention = $state<RetentionPolicy | null>(null);
  /** Where the default endpoint forwards its deliveries, if anywhere. */
  forwardTo = $state<string | null>(null);
  /** Whether a systeme.io API key is stored (Settings webhooks can then follow the tunnel). */
  systemeKeySet = $state(false);
  /** What the last "update in systeme.io" did, for the banner. */
  registration = $state<Registration | null>(null);

  constructor(
    private readonly backend: Backend,
    private readonly report: (error: unknown) => void,
  ) {}

  /** Read once at start; failures here are not worth a banner (the lists say enough). */
  loadQuietly(): void {
    void this.backend.systeme().then(
      (account) => (this.systemeKeySet = account.api_key_set),
      () => {},
    );
    void this.loadRetention();
    void this.backend.endpoints().then(
      (endpoints) => (this.forwardTo = endpoints.find((e) => e.is_default)?.forward_to ?? null),
      () => {},
    );
  }

  async loadRetention(): Promise<void> {
    try {
      this.retention = await this.backend.retention();
    } catch (error) {
      this.report(error);
    }
  }

  /** Keeps deliveries `days` days (null: until deleted); the server prunes at once. */
  async setRetention(days: number | null): Promise<void> {
    this.retention = await this.backend.setRetention(days);
  }

  /** How many deliveries keeping `days` days would prune now (nothing changes). */
  previewRetention(days: number | null): Promise<PrunePreview> {
    return this.backend.previewRetention(days);
  }

  async setSystemeKey(key: string | null): Promise<void> {
    this.systemeKeySet = (await this.backend.setSystemeKey(key)).api_key_set;
  }

  /** The endpoint as stored (its forward target and chosen answer), for the forward dialog. */
  async endpoint(id: string): Promise<Endpoint | undefined> {
    return (await this.backend.endpoints()).find((e) => e.id === id);
  }

  /** The default endpoint `id` forwards to `to` (null: not at all); returns the target set. */
  async setForwardTo(id: string, to: string | null): Promise<string | null> {
    this.forwardTo = (await this.backend.setForwardTo(id, to)).forward_to;
    return this.forwardTo;
  }

  /** The endpoint answers every delivery with `response` (null: a fast 200). */
  async setResponse(id: string, response: CannedResponse | null): Promise<CannedResponse | null> {
    return (await this.backend.setResponse(id, response)).response;
  }

  /** The systeme.io account's Settings webhooks, each with the endpoint it points at. */
  systemeWebhooks(): ReturnType<Backend['systemeWebhooks']> {
    return this.backend.systemeWebhooks();
  }

  dismissRegistration(): void {
    this.registration = null;
  }
}
