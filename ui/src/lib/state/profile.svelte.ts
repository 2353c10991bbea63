// The selected contact's card: the state derived from their events.

import type { Backend } from '../backend';
import { ApiError, type ContactCard } from '../api';

export class Profile {
  /** The card of `email`, once loaded. */
  card = $state<ContactCard | null>(null);
  /** Their deliveries that failed verification: shown, not counted. */
  notCounted = $state(0);
  private email: string | null = null;

  constructor(
    private readonly backend: Backend,
    private readonly report: (error: unknown) => void,
  ) {}

  /** Another contact (or none): nothing is shown until its card is loaded. */
  show(email: string | null): void {
    this.email = email;
    this.card = null;
    void this.load();
  }

  /** Loads the card again; an answer for a contact no longer shown is dropped. */
  async load(): Promise<void> {
    const email = this.email;
    if (!email) {
      this.card = null;
      return;
    }
    try {
      const answer = await this.backend.contactCard(email);
      if (this.email === email) {
        this.card = answer.card;
        this.notCounted = answer.not_counted;
      }
    } catch (error) {
      if (this.email === email) this.card = null;
      if (!(error instanceof ApiError && error.status === 404)) this.report(error);
    }
  }
}
