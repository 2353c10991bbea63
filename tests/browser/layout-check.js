// What a user would call a broken layout, measured in the page: run as a function body
// (`return` at the end) by the browser tests (page.evaluate) and by the desktop window
// test (WebDriver's execute, src-tauri/tests/window.rs), so both judge the same way.
//
// Interactive elements (buttons, links, fields, tabs, summaries, menu items) and the texts a
// user reads first (status, webhook URL, counts, the timeline's title and email, the
// event's badge and title) that are drawn are checked:
// - none lies outside the viewport;
// - none is cut by an ancestor that hides overflow without scrolling (a scrolling one may
//   hold it out of view: it can be scrolled to);
// - no two overlap (an element inside a layer that covers the timeline, marked
//   data-layer, hides what is under it: what is under it is not checked);
// - the timeline's title and the event's title show enough to be read.

const INTERACTIVE =
  'button, a[href], input, select, textarea, [role=tab], summary, [role=menuitem], [role=separator]';
const READ_FIRST =
  '[data-testid=listener-status], [data-testid=webhook-url], [data-testid=public-url], [data-testid=counts], ' +
  '[data-testid=timeline-title], [data-testid=timeline-email], [data-testid=detail-summary], [data-testid=detail-badge]';
const EPSILON = 1;

const describe = (el) => {
  const text = (el.getAttribute('aria-label') || el.textContent || el.getAttribute('placeholder') || '').trim();
  const id = el.getAttribute('data-testid');
  return `${el.tagName.toLowerCase()}${id ? `[${id}]` : ''} "${text.slice(0, 40)}"`;
};
const drawn = (el) => {
  for (let e = el; e; e = e.parentElement) {
    const style = getComputedStyle(e);
    if (style.display === 'none' || style.visibility === 'hidden' || style.opacity === '0') return false;
  }
  const rect = el.getBoundingClientRect();
  // Visually hidden (1 px, clipped) labels and radios are for screen readers.
  return rect.width > 2 && rect.height > 2;
};
const layers = [...document.querySelectorAll('[data-layer]')].filter(drawn);
const covered = (el, box) =>
  layers.some((layer) => {
    if (layer.contains(el)) return false;
    const l = layer.getBoundingClientRect();
    return box.left >= l.left - EPSILON && box.right <= l.right + EPSILON && box.top >= l.top - EPSILON && box.bottom <= l.bottom + EPSILON;
  });
const problems = [];
const boxes = [];
const seen = new Set();

for (const el of document.querySelectorAll(`${INTERACTIVE}, ${READ_FIRST}`)) {
  if (seen.has(el) || !drawn(el)) continue;
  seen.add(el);
  const rect = el.getBoundingClientRect();
  // What of it is in view, going out through the ancestors that clip.
  let box = { left: rect.left, top: rect.top, right: rect.right, bottom: rect.bottom };
  let hidden = false;
  for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
    const style = getComputedStyle(a);
    if (style.overflowX === 'visible' && style.overflowY === 'visible') continue;
    const r = a.getBoundingClientRect();
    const scrolls = (o) => o === 'auto' || o === 'scroll';
    for (const [axis, low, high, overflow] of [
      ['x', 'left', 'right', style.overflowX],
      ['y', 'top', 'bottom', style.overflowY],
    ]) {
      if (overflow === 'visible') continue;
      if (scrolls(overflow)) {
        box[low] = Math.max(box[low], r[low]);
        box[high] = Math.min(box[high], r[high]);
        if (box[high] - box[low] <= EPSILON) hidden = true;
      } else if (box[low] < r[low] - EPSILON || box[high] > r[high] + EPSILON) {
        problems.push(`${describe(el)} is cut (${axis}) by ${describe(a).slice(0, 30)}`);
        box[low] = Math.max(box[low], r[low]);
        box[high] = Math.min(box[high], r[high]);
      }
    }
    if (hidden) break;
  }
  if (hidden || covered(el, box)) continue;
  if (box.left < -EPSILON || box.top < -EPSILON || box.right > innerWidth + EPSILON || box.bottom > innerHeight + EPSILON) {
    problems.push(`${describe(el)} is outside the ${innerWidth}×${innerHeight} viewport`);
  }
  boxes.push({ el, box });
}

for (let i = 0; i < boxes.length; i++) {
  for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i];
    const b = boxes[j];
    if (a.el.contains(b.el) || b.el.contains(a.el)) continue;
    const width = Math.min(a.box.right, b.box.right) - Math.max(a.box.left, b.box.left);
    const height = Math.min(a.box.bottom, b.box.bottom) - Math.max(a.box.top, b.box.top);
    if (width > EPSILON && height > EPSILON) problems.push(`${describe(a.el)} overlaps ${describe(b.el)}`);
  }
}

// Readable: whole, or at least this wide, and on top where it is drawn.
const READABLE_PX = 150;
const readable = (testid) => {
  const el = document.querySelector(`[data-testid=${testid}]`);
  // Whether it should be there at all is for the test to say.
  if (!el) return null;
  if (!drawn(el)) return `${testid} is not shown`;
  const rect = el.getBoundingClientRect();
  if (rect.width < Math.min(el.scrollWidth, READABLE_PX) - EPSILON) return `${testid} shows ${Math.round(rect.width)} px`;
  const top = document.elementFromPoint(rect.left + Math.min(rect.width, 40) / 2, rect.top + rect.height / 2);
  if (top && layers.some((layer) => layer.contains(top) && !layer.contains(el))) return null; // under a layer on purpose
  if (!top || !(el.contains(top) || top.contains(el))) return `${testid} is covered by ${top ? describe(top) : 'nothing'}`;
  return null;
};
for (const testid of ['timeline-title', 'detail-summary']) {
  const problem = readable(testid);
  if (problem) problems.push(problem);
}

return { problems, checked: boxes.length };
