import { mount } from 'svelte';
import App from './App.svelte';
import { HttpBackend, TauriBackend } from './lib/backend';
import { tauri } from './lib/platform';
import './app.css';

mount(App, {
  target: document.getElementById('app')!,
  props: { backend: tauri ? new TauriBackend(tauri) : new HttpBackend() },
});
