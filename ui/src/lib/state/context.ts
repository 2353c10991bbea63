// The window's state, provided once by App.svelte through Svelte context: a view takes it
// with `useApp()` instead of having it passed down, and reaches Hookscope only through it.

import { getContext, setContext } from 'svelte';
import type { AppModel } from '../app.svelte';

const KEY = Symbol('hookscope');

/** Called once, while App.svelte is set up. */
export function provideApp(model: AppModel): void {
  setContext(KEY, model);
}

export function useApp(): AppModel {
  const model = getContext<AppModel | undefined>(KEY);
  if (!model) throw new Error('useApp() outside of the Hookscope window');
  return model;
}
