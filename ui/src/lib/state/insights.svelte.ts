// What the stored events add up to: funnels (opt-ins, sales, revenue) and the shapes each
// event type has taken.

import type { Backend } from '../backend';

export class Insights {
  constructor(private readonly backend: Backend) {}

  /** Received since `since` (ISO time; null: ever). */
  funnels(since: string | null): ReturnType<Backend['funnels']> {
    return this.backend.funnels(since, null);
  }

  shapes(): ReturnType<Backend['shapes']> {
    return this.backend.shapes();
  }

  shape(eventType: string): ReturnType<Backend['shape']> {
    return this.backend.shape(eventType);
  }
}
