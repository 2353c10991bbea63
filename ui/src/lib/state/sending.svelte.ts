// What Hookscope sends on the user's behalf: stored events replayed (one, a selection, a
// contact's timeline) and test deliveries made from samples. What they cause in the
// store (a test delivery, a replay's history) comes back like any other change.

import type { Backend } from '../backend';

type ReplayRequest = Parameters<Backend['replay']>[1];
type TimelineReplayRequest = Parameters<Backend['replayContact']>[1];

export class Sending {
  constructor(private readonly backend: Backend) {}

  replay(eventId: string, request: ReplayRequest): ReturnType<Backend['replay']> {
    return this.backend.replay(eventId, request);
  }

  /** The events picked, in the order given, or (no pick) the contact's whole timeline. */
  replayMany(picked: string[] | null, email: string | null, request: TimelineReplayRequest): ReturnType<Backend['replayContact']> {
    if (picked) return this.backend.replaySelection(picked, request);
    if (!email) return Promise.reject(new Error('pick events to replay, or a contact'));
    return this.backend.replayContact(email, request);
  }

  history(eventId: string): ReturnType<Backend['replays']> {
    return this.backend.replays(eventId);
  }

  templates(): ReturnType<Backend['templates']> {
    return this.backend.templates();
  }

  sendTestEvent(request: Parameters<Backend['sendTestEvent']>[0]): ReturnType<Backend['sendTestEvent']> {
    return this.backend.sendTestEvent(request);
  }
}
