import { mount } from 'svelte';
import App from './App.svelte';
import { HttpBackend } from './lib/backend';
import './app.css';

mount(App, {
  target: document.getElementById('app')!,
  props: { backend: new HttpBackend() },
});
