// Pacing for deliveries arriving on the live stream, so a burst costs a few list updates
// rather than one per delivery.

import type { EventSummary } from './api';

/** Deliveries shown the moment they arrive in each burst window; the rest of the window's
 * show together at its end. */
export const BURST_SHOWN = 50;
export const BURST_MS = 200;
/** More than this in one window is a flood (an import being indexed): reload instead. */
export const FLOOD = 500;

/** The first deliveries of a burst go to `show` at once; past BURST_SHOWN in BURST_MS the
 * rest wait for the end of the burst window and go together, and a flood goes to `flood`
 * instead: one by one, each new row would copy the whole timeline. */
export class ArrivalPacer {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private shown = 0;
  private waiting: EventSummary[] = [];

  constructor(
    private readonly show: (arrivals: EventSummary[]) => void,
    private readonly flood: () => void,
  ) {}

  arrived(event: EventSummary): void {
    this.timer ??= setTimeout(() => this.endWindow(), BURST_MS);
    if (this.shown < BURST_SHOWN) {
      this.shown += 1;
      this.show([event]);
    } else {
      this.waiting.push(event);
    }
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private endWindow(): void {
    this.timer = undefined;
    this.shown = 0;
    const waiting = this.waiting;
    this.waiting = [];
    if (waiting.length > FLOOD) this.flood();
    else if (waiting.length > 0) {
      // More may follow: the next window starts with these counted.
      this.shown = BURST_SHOWN;
      this.timer = setTimeout(() => this.endWindow(), BURST_MS);
      this.show(waiting);
    }
  }
}
