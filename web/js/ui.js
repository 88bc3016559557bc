// ui: small DOM and formatting helpers shared by the pages.

// h('div', {class: 'x', onclick: f}, child, 'text', [more]) -> element. Text is always
// set as text (never parsed as HTML), so data from the stores cannot inject markup.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A message box: kind is error, warn, info or empty.
export function msg(kind, text) {
  return h('div', { class: `msg msg-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}
export const noData = (text = 'No data') => msg('empty', text);
export const loading = (text = 'Loading…') => h('div', { class: 'loading' }, text);

export function errorText(e) {
  if (!e) return 'unknown error';
  return e.message || String(e);
}

// ---- formatting ----

export function fmtNum(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (typeof v === 'string') v = Number(v);
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e12 || a < 1e-3)) return v.toExponential(3);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return Number(v.toPrecision(6)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

export function fmtBytes(n) {
  n = Number(n);
  if (!Number.isFinite(n)) return '—';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

// Milliseconds -> "1.25 s", "340 ms", "12.5 µs".
export function fmtDurMs(ms) {
  ms = Number(ms);
  if (!Number.isFinite(ms)) return '—';
  if (ms === 0) return '0';
  if (ms >= 60000) return `${(ms / 60000).toFixed(ms >= 600000 ? 0 : 1)} min`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 1) return `${ms.toFixed(ms >= 100 ? 0 : 1)} ms`;
  return `${(ms * 1000).toFixed(1)} µs`;
}

// Seconds since the epoch -> local "2024-05-01 12:00:03".
export function fmtTime(sec, withMs = false) {
  const d = new Date(sec * 1000);
  const p = (x, n = 2) => String(x).padStart(n, '0');
  let s = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  if (withMs) s += `.${p(d.getMilliseconds(), 3)}`;
  return s;
}

export function fmtAgo(sec) {
  const d = Date.now() / 1000 - sec;
  if (d < 60) return `${Math.max(0, Math.round(d))} s ago`;
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 86400) return `${(d / 3600).toFixed(1)} h ago`;
  return `${(d / 86400).toFixed(1)} d ago`;
}

// {__name__: "up", job: "a"} -> element  up{job="a"}
export function labelsEl(labels) {
  const name = labels.__name__;
  const keys = Object.keys(labels).filter((k) => k !== '__name__').sort();
  const parts = [];
  if (name) parts.push(h('span', { class: 'mn' }, name));
  parts.push('{');
  keys.forEach((k, i) => {
    if (i) parts.push(', ');
    parts.push(h('span', { class: 'ln' }, k), `="${labels[k]}"`);
  });
  parts.push('}');
  return h('span', { class: 'labels' }, parts);
}

export function labelsText(labels) {
  const name = labels.__name__ || '';
  const keys = Object.keys(labels).filter((k) => k !== '__name__').sort();
  return `${name}{${keys.map((k) => `${k}="${labels[k]}"`).join(', ')}}`;
}

// A stable colour per name (services, series): hue from a string hash.
export function colourFor(name, i) {
  const palette = ['#2563eb', '#e8590c', '#2f9e44', '#ae3ec9', '#0c8599', '#d6336c', '#f59f00',
    '#5c7cfa', '#66a80f', '#c2255c', '#1098ad', '#7950f2', '#e67700', '#37b24d', '#f03e3e'];
  if (typeof i === 'number') return palette[i % palette.length];
  let x = 0;
  for (const c of String(name)) x = (x * 31 + c.charCodeAt(0)) >>> 0;
  return palette[x % palette.length];
}

export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// A table from column specs [{title, num, cell: row => node|text}] and rows.
export function table(cols, rows, opts = {}) {
  const thead = h('thead', {}, h('tr', {}, cols.map((c) => h('th', { class: c.num ? 'num' : '', scope: 'col' }, c.title))));
  const tbody = h('tbody', {}, rows.map((r) => {
    const tr = h('tr', {}, cols.map((c) => h('td', { class: c.num ? 'num' : '' }, c.cell(r))));
    if (opts.onRow) {
      tr.classList.add('clickable');
      tr.tabIndex = 0;
      tr.addEventListener('click', (ev) => { if (!ev.target.closest('a,button')) opts.onRow(r, ev); });
      tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') opts.onRow(r, ev); });
    }
    return tr;
  }));
  return h('div', { class: 'table-wrap' }, h('table', { class: 'data' }, thead, tbody));
}

export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}
