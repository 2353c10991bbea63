// Where the UI runs: a plain browser, or the desktop window (Tauri injects its IPC).

export interface TauriIpc {
  invoke<T>(command: string, args?: Record<string, unknown>): Promise<T>;
}

export const tauri: TauriIpc | undefined = (globalThis as { __TAURI_INTERNALS__?: TauriIpc }).__TAURI_INTERNALS__;
