// The window's state and its backend, provided once by App.svelte through Svelte context:
// a view takes what it needs with `useApp()` instead of having it passed down.

import { getContext, setContext } from 'svelte';
import type { AppModel } from '../app.svelte';
import type { Backend } from '../backend';

export interface AppContext {
  model: AppModel;
  backend: Backend;
}

const KEY = Symbol('hookscope');

/** Called once, while App.svelte is set up. */
export function provideApp(context: AppContext): void {
  setContext(KEY, context);
}

export function useApp(): AppContext {
  const context = getContext<AppContext | undefined>(KEY);
  if (!context) throw new Error('useApp() outside of the Hookscope window');
  return context;
}
