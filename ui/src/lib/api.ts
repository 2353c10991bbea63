// The API's types, generated from its Rust types (api.generated.ts, `make api-types`), and
// the few that only the UI has.

export type * from './api.generated';

export interface Page<T> {
  items: T[];
  next: string | null;
}

export type ExportFormat = 'json' | 'ndjson';

/** Where the live stream stands. */
export type StreamState = 'connecting' | 'live' | 'reconnecting';

/** An API error as it crosses the boundary: branch on `code`. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}
