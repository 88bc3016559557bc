// logs: the Logs explorer. A LogQL box with stream-label autocomplete
// (/loki/api/v1/labels, /loki/api/v1/label/<name>/values), a volume histogram over the
// range (sum(count_over_time(<query>[step])) through /loki/api/v1/query_range), the
// newest lines first with level colours, lines that open to show their labels,
// structured metadata and parsed fields, a link to the trace of any line that carries a
// trace id, and live tail (WebSocket /loki/api/v1/tail; polling when that fails).
// A metric query (rate(...), count_over_time(...)) is drawn as a graph instead.
// URL: ?q=&range=&limit=
import { get, isAbort } from './api.js';
import { h, clear, msg, noData, loading, errorText, fmtTime, labelsText } from './ui.js';
import { queryEditor, filterItems, matcherContext } from './editor.js';
import { picker, validRange, timeWindow, autoStep } from './timerange.js';
import { barChart, lineChart } from './chart.js';

const MAX_LINES = 1000;       // rendered; the query limit is at most this
const TAIL_KEEP = 1000;
const POLL_MS = 2000;
const LEVEL_KEYS = ['level', 'detected_level', 'severity', 'severity_text', 'lvl'];
const TRACE_RE = /\btrace_?id["']?\s*[=:]\s*["']?([0-9a-fA-F]{32}|[0-9a-fA-F]{16})\b/i;

// Fields of a line: JSON objects' top-level keys, else logfmt key=value pairs.
export function parseFields(line) {
  const t = line.trim();
  if (t.startsWith('{')) {
    try {
      const o = JSON.parse(t);
      if (o && typeof o === 'object') return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)]));
    } catch { /* not JSON: try logfmt */ }
  }
  const out = {};
  const re = /([A-Za-z_][\w.-]*)=("((?:[^"\\]|\\.)*)"|[^\s"]*)/g;
  let m;
  while ((m = re.exec(line))) out[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2];
  return out;
}

export function levelOf(labels, fields) {
  for (const k of LEVEL_KEYS) {
    const v = labels[k] || fields[k];
    if (v) {
      const l = v.toLowerCase();
      if (l.startsWith('err') || l === 'e') return 'error';
      if (l.startsWith('warn') || l === 'w') return 'warn';
      if (l.startsWith('crit') || l.startsWith('fatal') || l.startsWith('emerg') || l.startsWith('alert')) return 'critical';
      if (l.startsWith('info') || l === 'i' || l === 'notice') return 'info';
      if (l.startsWith('debug') || l === 'd') return 'debug';
      if (l.startsWith('trace')) return 'trace';
      return l;
    }
  }
  return 'unknown';
}

export function traceIdOf(labels, fields, line) {
  const v = labels.trace_id || labels.traceid || labels.traceID || fields.trace_id || fields.traceid || fields.traceID;
  if (v && /^[0-9a-fA-F]{16,32}$/.test(v)) return v.toLowerCase();
  const m = TRACE_RE.exec(line);
  return m ? m[1].toLowerCase() : '';
}

function lokiCompleter(signal) {
  const cache = new Map();
  const cached = (key, fn) => {
    if (!cache.has(key)) cache.set(key, fn().catch((e) => { cache.delete(key); throw e; }));
    return cache.get(key);
  };
  return async (text, cursor) => {
    const mc = matcherContext(text, cursor);
    if (!mc) return null;
    if (mc.inValue) {
      if (!mc.label) return null;
      const vals = await cached(`v:${mc.label}`, () => get(`/loki/api/v1/label/${encodeURIComponent(mc.label)}/values`, {}, { signal }).then((r) => r.data || []));
      const esc = (v) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
      return { from: mc.from, items: filterItems(vals, text.slice(mc.from, cursor), (v) => ({ label: v, kind: 'value', insert: esc(v) })) };
    }
    const names = await cached('labels', () => get('/loki/api/v1/labels', {}, { signal }).then((r) => r.data || []));
    const close = text.slice(cursor).includes('}') ? '' : '}'; // close the selector too
    return { from: mc.from, items: filterItems(names, mc.word, (n) => ({ label: n, kind: 'label', insert: `${n}=""${close}`, back: 1 + close.length, again: true })) };
  };
}

// Streams -> [{ts (ns string), sec, line, labels}] newest first.
function entriesOf(streams) {
  const out = [];
  for (const s of streams || []) {
    for (const v of s.values || []) {
      const labels = { ...(s.stream || {}), ...(v[2] && typeof v[2] === 'object' ? flatMeta(v[2]) : {}) };
      out.push({ ts: v[0], sec: Number(BigInt(v[0]) / 1000000n) / 1000, line: v[1], labels, meta: v[2] ? flatMeta(v[2]) : null });
    }
  }
  out.sort((a, b) => (BigInt(b.ts) > BigInt(a.ts) ? 1 : BigInt(b.ts) < BigInt(a.ts) ? -1 : 0));
  return out;
}

// Structured metadata comes as {k: v} or, with categorized labels, {structuredMetadata: {..}, parsed: {..}}.
function flatMeta(m) {
  if (m.structuredMetadata || m.parsed) return { ...(m.structuredMetadata || {}), ...(m.parsed || {}) };
  return m;
}

export function mount(root, ctx) {
  const p = ctx.params;
  const st = { q: p.get('q') || '', range: validRange(p.get('range')), limit: Math.min(Number(p.get('limit')) || 500, MAX_LINES) };
  let runCtl = null;
  let chart = null;
  let tail = null;

  const editor = queryEditor({
    value: st.q, label: 'LogQL query',
    placeholder: '{service_name="api"} |= "error"  — Enter runs; type { for stream labels',
    complete: lokiCompleter(ctx.signal),
    onRun: (q) => { st.q = q; run(); },
  });
  const limitSel = h('select', { 'aria-label': 'Line limit', class: 'limit-picker' },
    [100, 500, 1000].map((n) => h('option', { value: n, selected: n === st.limit }, `${n} lines`)));
  limitSel.addEventListener('change', () => { st.limit = Number(limitSel.value); run(); });
  const liveBtn = h('button', { class: 'btn live-btn', type: 'button', 'aria-pressed': 'false', onclick: () => (tail ? stopTail() : startTail()) }, '▶ Live');
  const volume = h('div', { class: 'volume' });
  const out = h('div', { class: 'log-out', 'aria-live': 'polite' });
  const info = h('span', { class: 'muted small result-info' });
  clear(root, h('h1', {}, 'Logs'),
    h('div', { class: 'panel' }, editor.el,
      h('div', { class: 'row', style: { marginTop: '8px' } },
        h('button', { class: 'btn primary', type: 'button', onclick: () => { st.q = editor.value; run(); } }, 'Run query'),
        picker(st.range, (r) => { st.range = r; run(); }), limitSel, liveBtn, h('span', { class: 'spacer' }), info)),
    h('div', { class: 'panel' }, volume, out));

  const isLogQuery = (q) => q.trim().startsWith('{');

  function lineEl(e) {
    const fields = parseFields(e.line);
    const lvl = levelOf(e.labels, fields);
    const row = h('div', { class: `log-line l-${lvl}`, tabindex: '0', role: 'button', 'aria-expanded': 'false', 'data-level': lvl },
      h('span', { class: 'lvl', title: lvl }), h('span', { class: 'ts' }, fmtTime(e.sec, true)), h('span', { class: 'text' }, e.line));
    let open = null;
    const toggle = () => {
      if (open) { open.remove(); open = null; row.setAttribute('aria-expanded', 'false'); return; }
      const traceId = traceIdOf(e.labels, fields, e.line);
      const kv = (obj) => {
        const keys = Object.keys(obj || {});
        return keys.length ? h('dl', { class: 'kv' }, keys.sort().flatMap((k) => [h('dt', {}, k), h('dd', {}, obj[k])])) : h('p', { class: 'muted small' }, 'none');
      };
      open = h('div', { class: 'log-detail' },
        traceId ? h('p', {}, h('a', { href: `/traces/${traceId}`, class: 'trace-link' }, `View trace ${traceId}`)) : null,
        h('h3', {}, 'Labels'), kv(e.labels),
        e.meta ? [h('h3', {}, 'Structured metadata'), kv(e.meta)] : null,
        h('h3', {}, 'Parsed fields'), kv(fields));
      open.addEventListener('click', (ev) => ev.stopPropagation());
      row.append(open);
      row.setAttribute('aria-expanded', 'true');
    };
    row.addEventListener('click', (ev) => { if (!ev.target.closest('a')) toggle(); });
    row.addEventListener('keydown', (ev) => { if ((ev.key === 'Enter' || ev.key === ' ') && ev.target === row) { ev.preventDefault(); toggle(); } });
    return row;
  }

  function dropChart() { if (chart) chart.destroy(); chart = null; }

  async function run() {
    stopTail();
    ctx.setParams({ q: st.q, range: st.range, limit: st.limit === 500 ? '' : st.limit });
    dropChart();
    clear(volume);
    if (runCtl) runCtl.abort('superseded');
    runCtl = new AbortController();
    const signal = AbortSignal.any([ctx.signal, runCtl.signal]);
    info.textContent = '';
    const q = st.q.trim();
    if (!q) { clear(out, msg('info', 'Type a LogQL query, e.g. {service_name="api"}, and press Enter. Type { for label suggestions.')); return; }
    clear(out, loading());
    editor.clearError();
    const { start, end } = timeWindow(st.range);
    const step = autoStep(end - start, (out.clientWidth || 1000) / 3);
    const ns = (s) => `${s}000000000`;
    try {
      if (!isLogQuery(q)) {
        const r = await get('/loki/api/v1/query_range', { query: q, start: ns(start), end: ns(end), step }, { signal });
        const res = (r.data && r.data.result) || [];
        if (!res.length) { clear(out, noData('No data in this range.')); return; }
        const xs = Array.from(new Set(res.flatMap((s) => s.values.map((v) => Number(v[0]))))).sort((a, b) => a - b);
        const idx = new Map(xs.map((x, i) => [x, i]));
        const series = res.slice(0, 50).map((s) => {
          const vals = new Array(xs.length).fill(null);
          for (const v of s.values) vals[idx.get(Number(v[0]))] = Number(v[1]);
          return { label: labelsText(s.metric || {}), values: vals };
        });
        const box = h('div', { class: 'graph' });
        clear(out, res.length > 50 ? msg('warn', `Showing 50 of ${res.length} series.`) : null, box);
        chart = lineChart(box, { xs, series });
        info.textContent = `${res.length} series`;
        return;
      }
      const [lines, vol] = await Promise.allSettled([
        get('/loki/api/v1/query_range', { query: q, start: ns(start), end: ns(end), limit: st.limit, direction: 'backward' }, { signal }),
        get('/loki/api/v1/query_range', { query: `sum(count_over_time(${q} [${step}s]))`, start: ns(start), end: ns(end), step }, { signal }),
      ]);
      if (lines.status === 'rejected') throw lines.reason;
      const entries = entriesOf(lines.value.data && lines.value.data.result);
      if (vol.status === 'fulfilled') {
        const res = (vol.value.data && vol.value.data.result) || [];
        if (res.length) {
          // Every step of the range, zeros included, so the bars sit on a true time axis.
          // The grid is anchored on a returned timestamp: the server picks the alignment.
          const counts = new Map(res[0].values.map((v) => [Math.round(Number(v[0])), Number(v[1])]));
          const anchor = Math.round(Number(res[0].values[0][0]));
          const first = anchor - Math.floor((anchor - start) / step) * step;
          const xs = [];
          for (let t = first; t <= end; t += step) xs.push(t);
          chart = barChart(volume, { xs, values: xs.map((t) => counts.get(t) || 0), label: 'lines' });
        }
      }
      if (!entries.length) { clear(out, noData('No log lines match in this range.')); return; }
      const shown = entries.slice(0, MAX_LINES);
      clear(out,
        entries.length >= st.limit ? h('p', { class: 'muted small' }, `The newest ${st.limit} lines; raise the limit or narrow the query for more.`) : null,
        h('div', { class: 'log-lines' }, shown.map(lineEl)));
      info.textContent = `${entries.length} lines`;
    } catch (e) {
      if (isAbort(e)) return;
      const m = /parse error at line (\d+), col (\d+): (.*)$/s.exec(e.message);
      if (m) editor.showError(m[3], Number(m[1]), Number(m[2]));
      clear(out, msg('error', errorText(e)));
    }
  }

  // ---- live tail ----
  function addTailed(entries) {
    let list = out.querySelector('.log-lines');
    if (!list) { clear(out, list = h('div', { class: 'log-lines' })); }
    for (const e of entries.reverse()) list.prepend(lineEl(e));
    while (list.children.length > TAIL_KEEP) list.lastChild.remove();
    info.textContent = `live · ${list.children.length} lines`;
  }

  function startTail() {
    const q = (st.q = editor.value).trim();
    if (!isLogQuery(q)) { clear(out, msg('warn', 'Live tail needs a log query that starts with a stream selector, e.g. {service_name="api"}.')); return; }
    stopTail();
    dropChart();
    clear(volume);
    liveBtn.setAttribute('aria-pressed', 'true');
    liveBtn.textContent = '■ Stop';
    clear(out, h('div', { class: 'log-lines' }), h('p', { class: 'muted small tail-wait' }, 'Waiting for new lines…'));
    const t = { ws: null, timer: null, since: BigInt(Date.now() - 60000) * 1000000n, seen: new Set() };
    tail = t;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${proto}//${location.host}/loki/api/v1/tail?query=${encodeURIComponent(q)}&start=${t.since}&limit=100`;
    let opened = false;
    try {
      t.ws = new WebSocket(url);
    } catch {
      t.ws = null;
    }
    const poll = async () => {
      if (tail !== t) return;
      try {
        const r = await get('/loki/api/v1/query_range', { query: q, start: String(t.since + 1n), end: `${Date.now()}000000`, limit: 500, direction: 'forward' }, { signal: ctx.signal });
        const es = entriesOf(r.data && r.data.result).filter((e) => !t.seen.has(e.ts + e.line));
        es.forEach((e) => { t.seen.add(e.ts + e.line); if (BigInt(e.ts) > t.since) t.since = BigInt(e.ts); });
        if (es.length && tail === t) { out.querySelector('.tail-wait')?.remove(); addTailed(es); }
      } catch (e) {
        if (isAbort(e)) return;
        info.textContent = `live (polling) · ${errorText(e)}`;
      }
      if (tail === t) t.timer = setTimeout(poll, POLL_MS);
    };
    if (!t.ws) { poll(); return; }
    t.ws.onopen = () => { opened = true; info.textContent = 'live'; };
    t.ws.onmessage = (ev) => {
      if (tail !== t) return;
      try {
        const m = JSON.parse(ev.data);
        const es = entriesOf(m.streams);
        if (es.length) { out.querySelector('.tail-wait')?.remove(); addTailed(es); }
      } catch { /* a frame we do not understand */ }
    };
    t.ws.onclose = () => {
      if (tail !== t) return;
      t.ws = null;
      info.textContent = opened ? 'live (polling, the WebSocket closed)' : 'live (polling)';
      poll();
    };
  }

  function stopTail() {
    if (!tail) return;
    const t = tail;
    tail = null;
    if (t.ws) { t.ws.onclose = null; t.ws.close(); }
    clearTimeout(t.timer);
    liveBtn.setAttribute('aria-pressed', 'false');
    liveBtn.textContent = '▶ Live';
  }

  run();
  if (!st.q) editor.focus();
  return () => { stopTail(); dropChart(); if (runCtl) runCtl.abort('superseded'); };
}
