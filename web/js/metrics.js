// metrics: the Metrics explorer. A PromQL box with autocomplete (metric names, label
// names and values from /api/v1/label/.../values and /api/v1/labels) and inline syntax
// errors (/api/v1/parse_query while typing), a Table tab (instant query at the end of
// the range) and a Graph tab (query_range over the picked range, auto step, stacked or
// not). The query, range, tab and stacking live in the URL (?q=&range=&tab=&stacked=1).
import { get, isAbort } from './api.js';
import { h, clear, msg, noData, loading, errorText, fmtNum, labelsEl, labelsText, debounce } from './ui.js';
import { queryEditor, wordBefore, filterItems, matcherContext } from './editor.js';
import { picker, validRange, timeWindow, autoStep } from './timerange.js';
import { lineChart } from './chart.js';

const MAX_SERIES = 50;     // drawn in the graph
const MAX_ROWS = 500;      // rows in the table

const FUNCTIONS = ['abs', 'absent', 'absent_over_time', 'avg_over_time', 'ceil', 'changes', 'clamp',
  'clamp_max', 'clamp_min', 'count_over_time', 'day_of_month', 'day_of_week', 'day_of_year',
  'days_in_month', 'delta', 'deriv', 'exp', 'floor', 'histogram_avg', 'histogram_count',
  'histogram_fraction', 'histogram_quantile', 'histogram_sum', 'holt_winters', 'hour', 'idelta',
  'increase', 'irate', 'label_join', 'label_replace', 'last_over_time', 'ln', 'log10', 'log2',
  'max_over_time', 'min_over_time', 'minute', 'month', 'predict_linear', 'present_over_time',
  'quantile_over_time', 'rate', 'resets', 'round', 'scalar', 'sgn', 'sort', 'sort_desc', 'sqrt',
  'stddev_over_time', 'stdvar_over_time', 'sum_over_time', 'time', 'timestamp', 'vector', 'year'];
const AGGREGATIONS = ['sum', 'avg', 'min', 'max', 'count', 'count_values', 'group', 'stddev',
  'stdvar', 'topk', 'bottomk', 'quantile'];
const KEYWORDS = ['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'and', 'or', 'unless'];

// "invalid parameter "query": 1:16: parse error: ..." -> {line, col, text}
export function parsePosition(message) {
  const m = /(\d+):(\d+): parse error: (.*)$/s.exec(message);
  return m ? { line: Number(m[1]), col: Number(m[2]), text: `parse error: ${m[3]}` } : null;
}

// Autocomplete over the Prometheus API, results cached for the page's life.
function promCompleter(signal) {
  const cache = new Map();
  const cached = (key, fn) => {
    if (!cache.has(key)) cache.set(key, fn().catch((e) => { cache.delete(key); throw e; }));
    return cache.get(key);
  };
  const metricNames = () => cached('__name__', () => get('/api/v1/label/__name__/values', {}, { signal }).then((r) => r.data || []));
  const labelNames = (metric) => cached(`l:${metric}`, () => get('/api/v1/labels', metric ? { 'match[]': metric } : {}, { signal })
    .then((r) => (r.data || []).filter((n) => n !== '__name__')));
  const labelValues = (metric, label) => cached(`v:${metric}:${label}`, () => get(`/api/v1/label/${encodeURIComponent(label)}/values`,
    metric ? { 'match[]': metric } : {}, { signal }).then((r) => r.data || []));

  return async (text, cursor) => {
    const mc = matcherContext(text, cursor);
    if (mc && mc.inValue) {
      if (!mc.label) return null;
      const vals = await labelValues(mc.metric, mc.label);
      const prefix = text.slice(mc.from, cursor);
      const esc = (v) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
      return { from: mc.from, items: filterItems(vals, prefix, (v) => ({ label: v, kind: 'value', insert: esc(v) })) };
    }
    if (mc) {
      const names = await labelNames(mc.metric);
      const close = text.slice(cursor).includes('}') ? '' : '}'; // close the selector too
      return { from: mc.from, items: filterItems(names, mc.word, (n) => ({ label: n, kind: 'label', insert: `${n}=""${close}`, back: 1 + close.length, again: true })) };
    }
    // Label names inside by (...) / without (...) / on (...).
    const before = text.slice(0, cursor);
    const grp = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)$/.exec(before);
    const w = wordBefore(text, cursor);
    if (grp) {
      const names = await labelNames('');
      return { from: w.from, items: filterItems(names, w.word, 'label') };
    }
    if (!w.word || /^[0-9]/.test(w.word) || /\[[^\]]*$/.test(before)) return null;
    const metrics = await metricNames();
    const items = filterItems(metrics, w.word, 'metric', 80)
      .concat(filterItems(AGGREGATIONS.concat(FUNCTIONS), w.word, (n) => ({ label: n, kind: 'function', insert: `${n}(`, again: false }), 30))
      .concat(filterItems(KEYWORDS, w.word, 'keyword', 10));
    return { from: w.from, items };
  };
}

export function mount(root, ctx) {
  const p = ctx.params;
  const state = {
    q: p.get('q') || '',
    range: validRange(p.get('range')),
    tab: p.get('tab') === 'table' ? 'table' : 'graph',
    stacked: p.get('stacked') === '1',
  };
  let chart = null;
  let runCtl = null;

  const save = () => ctx.setParams({ q: state.q, range: state.range, tab: state.tab, stacked: state.stacked ? '1' : '' });

  const editor = queryEditor({
    value: state.q,
    label: 'PromQL query',
    placeholder: 'PromQL, e.g. sum by (job) (rate(http_requests_total[5m]))  — Enter runs, Shift+Enter adds a line',
    complete: promCompleter(ctx.signal),
    onRun: (q) => { state.q = q; run(); },
    onChange: debounce((q) => check(q), 400),
  });
  const runBtn = h('button', { class: 'btn primary', type: 'button', onclick: () => { state.q = editor.value; run(); } }, 'Run query');
  const rangeSel = picker(state.range, (r) => { state.range = r; run(); });
  const stackBtn = h('button', {
    class: 'btn', type: 'button', 'aria-pressed': String(state.stacked), title: 'Stack the series',
    onclick: () => { state.stacked = !state.stacked; stackBtn.setAttribute('aria-pressed', String(state.stacked)); run(); },
  }, 'Stacked');
  const tabBtn = (id, title) => h('button', {
    role: 'tab', type: 'button', 'aria-selected': String(state.tab === id), 'data-tab': id,
    onclick: () => { state.tab = id; tabs.querySelectorAll('button').forEach((b) => b.setAttribute('aria-selected', String(b.dataset.tab === id))); run(); },
  }, title);
  const tabs = h('div', { class: 'tabs', role: 'tablist' }, tabBtn('graph', 'Graph'), tabBtn('table', 'Table'));
  const out = h('div', { class: 'result', 'aria-live': 'polite' });
  const info = h('div', { class: 'muted small result-info' });

  clear(root,
    h('h1', {}, 'Metrics explorer'),
    h('div', { class: 'panel' },
      editor.el,
      h('div', { class: 'row', style: { marginTop: '8px' } }, runBtn, rangeSel, stackBtn, h('span', { class: 'spacer' }), info)),
    h('div', { class: 'panel' }, tabs, out));

  // Syntax check while typing: a parse error shows under the box with a caret.
  let checkSeq = 0;
  async function check(q) {
    const mine = ++checkSeq;
    if (!q.trim()) { editor.clearError(); return; }
    try {
      await get('/api/v1/parse_query', { query: q }, { signal: ctx.signal });
      if (mine === checkSeq) editor.clearError();
    } catch (e) {
      if (mine !== checkSeq || isAbort(e)) return;
      if (e.status === 400) {
        const pos = parsePosition(e.message);
        if (pos) editor.showError(pos.text, pos.line, pos.col);
        else editor.showError(e.message);
      }
    }
  }

  function destroyChart() {
    if (chart) chart.destroy();
    chart = null;
  }

  async function run() {
    save();
    destroyChart();
    if (runCtl) runCtl.abort('superseded');
    runCtl = new AbortController();
    const signal = AbortSignal.any([ctx.signal, runCtl.signal]);
    info.textContent = '';
    stackBtn.hidden = state.tab !== 'graph';
    const q = state.q.trim();
    if (!q) {
      clear(out, msg('info', 'Type a PromQL expression and press Enter. Start typing a metric name for suggestions.'));
      return;
    }
    clear(out, loading());
    const { start, end } = timeWindow(state.range);
    const t0 = performance.now();
    try {
      if (state.tab === 'table') {
        const r = await get('/api/v1/query', { query: q, time: end }, { signal });
        editor.clearError();
        renderTable(r.data, r.warnings);
      } else {
        const step = autoStep(end - start, out.clientWidth || 1000);
        const r = await get('/api/v1/query_range', { query: q, start, end, step }, { signal });
        editor.clearError();
        renderGraph(r.data, start, end, step, r.warnings);
        info.textContent += ` · step ${step}s`;
      }
      info.textContent = `${Math.round(performance.now() - t0)} ms${info.textContent}`;
    } catch (e) {
      if (isAbort(e)) return;
      const pos = e.status === 400 ? parsePosition(e.message) : null;
      if (pos) editor.showError(pos.text, pos.line, pos.col);
      clear(out, msg('error', errorText(e)));
    }
  }

  function warningsEl(warnings) {
    return (warnings || []).map((w) => msg('warn', w));
  }

  function renderTable(data, warnings) {
    const rows = [];
    if (data.resultType === 'scalar' || data.resultType === 'string') {
      rows.push({ labels: null, value: data.result[1] });
    } else if (data.resultType === 'vector') {
      for (const s of data.result) rows.push({ labels: s.metric, value: s.value ? s.value[1] : (s.histogram ? `histogram count ${s.histogram[1].count}` : '') });
    } else if (data.resultType === 'matrix') {
      for (const s of data.result) rows.push({ labels: s.metric, value: (s.values || []).map((v) => `${v[1]} @${v[0]}`).join('\n') });
    }
    if (!rows.length) { clear(out, ...warningsEl(warnings), noData('No data: the query matched no series at this time.')); return; }
    const shown = rows.slice(0, MAX_ROWS);
    const tbl = h('table', { class: 'data result-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Series'), h('th', { class: 'num' }, 'Value'))),
      h('tbody', {}, shown.map((r) => h('tr', {},
        h('td', {}, r.labels ? labelsEl(r.labels) : h('span', { class: 'muted' }, data.resultType)),
        h('td', { class: 'num mono', style: { whiteSpace: 'pre' } }, /^[-+0-9.eE]+$/.test(r.value) ? fmtNum(Number(r.value)) : String(r.value))))));
    clear(out, ...warningsEl(warnings),
      rows.length > MAX_ROWS ? msg('warn', `Showing the first ${MAX_ROWS} of ${rows.length} series; narrow the query to see the rest.`) : null,
      h('div', { class: 'table-wrap' }, tbl));
    info.textContent = ` · ${rows.length} series`;
  }

  function renderGraph(data, start, end, step, warnings) {
    if (data.resultType === 'scalar') {
      data = { resultType: 'matrix', result: [{ metric: {}, values: [[start, data.result[1]], [end, data.result[1]]] }] };
    }
    const result = data.result || [];
    if (!result.length) { clear(out, ...warningsEl(warnings), noData('No data: the query matched no series in this range.')); return; }
    const shown = result.slice(0, MAX_SERIES);
    // One shared x axis: every step from the first to the last timestamp seen.
    const xsSet = new Set();
    for (const s of shown) for (const v of s.values || []) xsSet.add(Number(v[0]));
    const xs = Array.from(xsSet).sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const series = shown.map((s) => {
      const vals = new Array(xs.length).fill(null);
      for (const v of s.values || []) {
        const n = Number(v[1]);
        vals[index.get(Number(v[0]))] = Number.isFinite(n) ? n : null;
      }
      return { label: Object.keys(s.metric).length ? labelsText(s.metric) : state.q, values: vals };
    });
    const box = h('div', { class: 'graph' });
    clear(out, ...warningsEl(warnings),
      result.length > MAX_SERIES ? msg('warn', `Showing ${MAX_SERIES} of ${result.length} series; aggregate (e.g. sum by (...)) or filter to see fewer.`) : null,
      box);
    chart = lineChart(box, { xs, series, stacked: state.stacked });
    info.textContent = ` · ${result.length} series`;
  }

  run();
  if (!state.q) editor.focus();
  return () => { destroyChart(); if (runCtl) runCtl.abort('superseded'); };
}
