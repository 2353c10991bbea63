import type { Attachment } from 'svelte/attachments';

/**
 * The way out of an open menu or dialog: Esc closes it, before Esc does anything else in
 * the window (closing the detail, clearing the search), and puts focus back on its toggle
 * when focus was inside. With `outside`, a press anywhere outside the element closes it
 * too: attach it to what holds both the toggle and the popover, so that pressing the
 * toggle is not taken for a press outside. Attach it only while open
 * (`{@attach open && dismiss(...)}`), or Esc would be taken from the window for good.
 */
export function dismiss(close: () => void, { outside = false } = {}): Attachment<HTMLElement> {
  return (element) => {
    function onkeydown(event: KeyboardEvent) {
      if (event.key !== 'Escape') return;
      event.stopPropagation();
      const focusWasInside = element.contains(document.activeElement);
      close();
      if (focusWasInside) element.querySelector<HTMLElement>('[aria-expanded]')?.focus();
    }
    function onpointerdown(event: PointerEvent) {
      if (!element.contains(event.target as Node)) close();
    }
    // Capture, on the window: ahead of the window's own Esc handling.
    window.addEventListener('keydown', onkeydown, true);
    if (outside) document.addEventListener('pointerdown', onpointerdown, true);
    return () => {
      window.removeEventListener('keydown', onkeydown, true);
      document.removeEventListener('pointerdown', onpointerdown, true);
    };
  };
}
