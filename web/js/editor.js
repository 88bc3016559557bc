// editor: a query box (textarea) with autocomplete and an inline syntax-error line.
// Keys: Enter runs the query (Shift+Enter adds a line), Ctrl+Space asks for
// suggestions, arrows move in the list, Enter or Tab take a suggestion, Escape closes it.
//
// complete(text, cursor) resolves to null or {from, items: [{label, kind, insert}]}: the
// text from `from` to the cursor is replaced by `insert` (default label).
import { h, debounce } from './ui.js';

let nextId = 0;

export function queryEditor({ value = '', placeholder = '', label = 'Query', complete, onRun, onChange }) {
  const id = `ed${++nextId}`;
  const ta = h('textarea', {
    rows: 1, spellcheck: false, autocomplete: 'off', placeholder, 'aria-label': label,
    'aria-autocomplete': 'list', 'aria-controls': `${id}-list`, class: 'query-input',
  });
  ta.value = value;
  const list = h('ul', { class: 'suggest', id: `${id}-list`, role: 'listbox', hidden: true });
  const err = h('div', { class: 'syntax-error', hidden: true, role: 'alert' });
  const el = h('div', { class: 'editor' }, ta, list, err);
  let items = [];
  let sel = 0;
  let from = 0;
  let seq = 0;

  const fit = () => { ta.style.height = 'auto'; ta.style.height = `${Math.min(ta.scrollHeight + 2, 240)}px`; };
  const close = () => { list.hidden = true; items = []; ta.setAttribute('aria-expanded', 'false'); };
  const render = () => {
    list.replaceChildren(...items.map((it, i) => {
      const li = h('li', { role: 'option', 'aria-selected': String(i === sel), id: `${id}-o${i}` },
        h('span', {}, it.label), it.kind ? h('span', { class: 'kind' }, it.kind) : null);
      li.addEventListener('mousedown', (ev) => { ev.preventDefault(); accept(i); });
      return li;
    }));
    list.hidden = items.length === 0;
    ta.setAttribute('aria-expanded', String(!list.hidden));
    if (!list.hidden) {
      ta.setAttribute('aria-activedescendant', `${id}-o${sel}`);
      const li = list.children[sel];
      if (li) li.scrollIntoView({ block: 'nearest' });
    }
  };
  const accept = (i) => {
    const it = items[i];
    if (!it) return;
    const cur = ta.selectionStart;
    const ins = it.insert !== undefined ? it.insert : it.label;
    ta.value = ta.value.slice(0, from) + ins + ta.value.slice(cur);
    const pos = from + ins.length - (it.back || 0);
    ta.setSelectionRange(pos, pos);
    close();
    fit();
    if (onChange) onChange(ta.value);
    if (it.again) suggest();
  };
  const suggest = async () => {
    if (!complete) return;
    const mine = ++seq;
    let r = null;
    try { r = await complete(ta.value, ta.selectionStart); } catch { r = null; }
    if (mine !== seq || document.activeElement !== ta) return;
    if (!r || !r.items.length) { close(); return; }
    items = r.items.slice(0, 200);
    from = r.from;
    sel = 0;
    render();
  };
  const later = debounce(suggest, 120);

  ta.addEventListener('keydown', (ev) => {
    if (!list.hidden && items.length) {
      if (ev.key === 'ArrowDown') { ev.preventDefault(); sel = (sel + 1) % items.length; render(); return; }
      if (ev.key === 'ArrowUp') { ev.preventDefault(); sel = (sel - 1 + items.length) % items.length; render(); return; }
      if (ev.key === 'Enter' || ev.key === 'Tab') { ev.preventDefault(); accept(sel); return; }
      if (ev.key === 'Escape') { ev.preventDefault(); close(); return; }
    }
    if (ev.key === ' ' && ev.ctrlKey) { ev.preventDefault(); suggest(); return; }
    if (ev.key === 'Enter' && !ev.shiftKey) {
      ev.preventDefault();
      close();
      seq++;
      if (onRun) onRun(ta.value);
    }
  });
  ta.addEventListener('input', (ev) => {
    fit();
    if (onChange) onChange(ta.value);
    if (ev.inputType && ev.inputType.startsWith('delete')) { close(); return; }
    later();
  });
  ta.addEventListener('blur', () => setTimeout(close, 150));
  requestAnimationFrame(fit);

  return {
    el,
    textarea: ta,
    get value() { return ta.value; },
    set value(v) { ta.value = v; fit(); },
    focus() { ta.focus(); },
    // Shows msg under the box; col (1-based, on line `line`) puts a caret under the spot.
    showError(text, line, col) {
      ta.classList.add('invalid');
      ta.setAttribute('aria-invalid', 'true');
      const lines = ta.value.split('\n');
      if (line && col && lines[line - 1] !== undefined) {
        err.textContent = `${lines[line - 1]}\n${' '.repeat(Math.max(0, col - 1))}^ ${text}`;
      } else {
        err.textContent = text;
      }
      err.hidden = false;
    },
    clearError() {
      ta.classList.remove('invalid');
      ta.removeAttribute('aria-invalid');
      err.hidden = true;
      err.textContent = '';
    },
  };
}

// The identifier-like word that ends at cursor: {word, from}.
export function wordBefore(text, cursor, re = /[A-Za-z0-9_:.]/) {
  let i = cursor;
  while (i > 0 && re.test(text[i - 1])) i--;
  return { word: text.slice(i, cursor), from: i };
}

// Items among names that start with (or, after those, contain) prefix.
export function filterItems(names, prefix, kind, max = 100) {
  const p = prefix.toLowerCase();
  const starts = [];
  const has = [];
  for (const n of names) {
    const l = n.toLowerCase();
    if (l === p) continue;
    if (l.startsWith(p)) starts.push(n);
    else if (p && l.includes(p)) has.push(n);
    if (starts.length >= max) break;
  }
  return starts.concat(has).slice(0, max).map((n) => (typeof kind === 'function' ? kind(n) : { label: n, kind }));
}

// Where the cursor is inside a label matcher block {a="x", b=~"y"}: null outside one,
// else {metric, inValue: bool, label, from} with from where the current token starts.
export function matcherContext(text, cursor) {
  const before = text.slice(0, cursor);
  const open = before.lastIndexOf('{');
  if (open < 0 || before.lastIndexOf('}') > open) return null;
  const inside = before.slice(open + 1);
  // Inside a quoted value? Count unescaped quotes.
  let q = false;
  let qStart = -1;
  for (let i = 0; i < inside.length; i++) {
    if (inside[i] === '\\') { i++; continue; }
    if (inside[i] === '"') { q = !q; if (q) qStart = i; }
  }
  const m = /([A-Za-z_][A-Za-z0-9_.]*)\s*$/.exec(before.slice(0, open));
  const metric = m ? m[1] : '';
  if (q) {
    const lm = /([A-Za-z_][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*$/.exec(inside.slice(0, qStart));
    return { metric, inValue: true, label: lm ? lm[1] : '', from: open + 1 + qStart + 1 };
  }
  const w = wordBefore(text, cursor, /[A-Za-z0-9_.]/);
  // Only at the start of a matcher: after {, a comma, or spaces following them.
  const pre = text.slice(open + 1, w.from).trimEnd();
  if (pre !== '' && !pre.endsWith(',')) return null;
  return { metric, inValue: false, label: '', from: w.from, word: w.word };
}
