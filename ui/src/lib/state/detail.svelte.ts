// The event opened in the detail: its document (headers, body, decoded payload), read
// when it is selected, and its forward target's answer when asked for.

import type { Backend } from '../backend';
import { readEventDocument, type EventDocument } from '../event';

export class Detail {
  /** The document of the event shown; null while another is being read. */
  loaded = $state<EventDocument | null>(null);
  failure = $state<string | null>(null);
  /** The forward target's answer, when asked for (for the event it was asked for). */
  answer = $state<{ id: string; text: string } | null>(null);
  /** The latest read wins: a slower answer for an event no longer selected is dropped. */
  private request = 0;

  constructor(private readonly backend: Backend) {}

  /** Reads the event `id` (null: none), or reads it again (a re-checked signature). */
  show(id: string | null): void {
    const mine = ++this.request;
    this.failure = null;
    // Another event: what was shown goes at once, or its actions (Copy as cURL) would act
    // on it until the new one arrives.
    if (!id || this.loaded?.meta.id !== id) this.loaded = null;
    if (!id) return;
    this.backend.eventDocument(id).then(
      (text) => {
        if (mine !== this.request) return;
        try {
          this.loaded = readEventDocument(text);
        } catch (error) {
          this.failure = `This event could not be read: ${error instanceof Error ? error.message : error}`;
        }
      },
      (error) => {
        if (mine === this.request) this.failure = error instanceof Error ? error.message : String(error);
      },
    );
  }

  /** Asks for what the forward target answered the event `id`. */
  async showAnswer(id: string): Promise<void> {
    try {
      const got = await this.backend.forwardAnswer(id);
      const body = got.body_text ?? (got.body_base64 ? `(binary, base64) ${got.body_base64}` : '');
      const headers = (got.headers ?? []).map(([n, v]) => `${n}: ${v}`).join('\n');
      this.answer = { id, text: `HTTP ${got.status ?? '—'}\n${headers}\n\n${body}` };
    } catch (error) {
      this.answer = { id, text: error instanceof Error ? error.message : String(error) };
    }
  }
}
