import { tauri } from './platform';

/** Copies text: through the desktop app's clipboard when in its window, else the Clipboard
 * API, else a hidden textarea. */
export async function copyText(text: string): Promise<void> {
  if (tauri) {
    await tauri.invoke('copy_text', { text });
    return;
  }
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      // fall through: permission refused or not a secure context
    }
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.className = 'visually-hidden';
  document.body.append(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}
