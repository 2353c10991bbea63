// Two events compared, for the diff dialog: a picked pair, or an event and the one before
// it (its previous attempt, or the previous event of its type). Open while the dialog
// shows; the latest comparison asked for wins.

import type { Backend } from '../backend';
import type { EventDiff, PreviousReason } from '../api';

export class Diff {
  /** The dialog shows (reading, the comparison, or why there is none). */
  open = $state(false);
  loading = $state(false);
  result = $state<EventDiff | null>(null);
  /** Why `a` was compared with the event asked about, when it was found, not picked. */
  reason = $state<PreviousReason | null>(null);
  failure = $state<string | null>(null);
  private request = 0;

  constructor(private readonly backend: Backend) {}

  /** Compares `a` (the older, usually) with `b`. */
  compare(a: string, b: string): Promise<void> {
    return this.run(async () => ({ diff: await this.backend.diff(a, b), reason: null }));
  }

  /** Compares the event `id` with the one before it. */
  compareWithPrevious(id: string): Promise<void> {
    return this.run(async () => {
      const previous = await this.backend.previousEvent(id);
      return { diff: await this.backend.diff(previous.id, id), reason: previous.reason };
    });
  }

  close(): void {
    this.request += 1;
    this.open = false;
    this.loading = false;
    this.result = null;
    this.reason = null;
    this.failure = null;
  }

  private async run(work: () => Promise<{ diff: EventDiff; reason: PreviousReason | null }>): Promise<void> {
    const mine = ++this.request;
    this.open = true;
    this.loading = true;
    this.result = null;
    this.reason = null;
    this.failure = null;
    try {
      const { diff, reason } = await work();
      if (mine !== this.request) return;
      this.result = diff;
      this.reason = reason;
    } catch (error) {
      if (mine === this.request) this.failure = error instanceof Error ? error.message : String(error);
    } finally {
      if (mine === this.request) this.loading = false;
    }
  }
}
