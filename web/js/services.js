// services: the service map and RED table. Both read series the traces pipeline derives
// from ingested spans (server/traces/), through the ordinary PromQL API:
//   map    traces_service_graph_request_total{client, server} and ..._failed_total
//          (calls between services; "user" and database nodes are virtual), and the
//          ..._server_seconds histogram for each call's p95 latency;
//   table  traces_spanmetrics_calls_total and traces_spanmetrics_duration_seconds_bucket
//          by service, for entry spans (span_kind SERVER or CONSUMER) or for all spans:
//          request rate, error ratio (status_code STATUS_CODE_ERROR), p50 and p95, and a
//          sparkline of the rate over the range.
// Rates are averages over the picked range (rate(x[range]) at its end). The map is laid
// out in layers by call depth, left to right; clicking a service (or Enter on it) opens
// the Traces search for it. State in the URL: ?range=&kind=all
import { get, isAbort } from './api.js';
import { h, clear, msg, noData, loading, errorText, fmtNum, fmtDurMs, colourFor, table } from './ui.js';
import { picker, validRange, timeWindow, rangeSeconds, autoStep } from './timerange.js';
import { sparkline } from './chart.js';

const SG = 'traces_service_graph_request';
const SM_CALLS = 'traces_spanmetrics_calls_total';
const SM_BUCKET = 'traces_spanmetrics_duration_seconds_bucket';
const ENTRY_KINDS = 'span_kind=~"SPAN_KIND_SERVER|SPAN_KIND_CONSUMER"';
const ERROR = 'status_code="STATUS_CODE_ERROR"';
const MAX_NODES = 150; // drawn in the map; the table lists every service

const SVG_NS = 'http://www.w3.org/2000/svg';
// s('rect', {x: 1}, child...) -> SVG element (h() makes HTML elements only).
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Requests per second -> "12/s", "3.5/min", "0.8/h": small rates stay readable.
export function fmtRate(v) {
  if (v === undefined || v === null || !Number.isFinite(v)) return '—';
  if (v === 0) return '0/s';
  if (v >= 1) return `${fmtNum(Number(v.toPrecision(3)))}/s`;
  if (v * 60 >= 1) return `${Number((v * 60).toPrecision(3))}/min`;
  return `${Number((v * 3600).toPrecision(3))}/h`;
}

export function fmtRatio(errs, total) {
  if (!Number.isFinite(total) || total <= 0) return '—';
  const r = (Number.isFinite(errs) ? errs : 0) / total;
  if (r === 0) return '0%';
  return `${r < 0.001 ? '<0.1' : Number((r * 100).toPrecision(r < 0.1 ? 2 : 3))}%`;
}

const fmtSec = (v) => (v === undefined || !Number.isFinite(v) ? '—' : fmtDurMs(v * 1000));

// An instant vector -> Map(key(metric) -> number).
function byKey(result, key) {
  const m = new Map();
  for (const r of result || []) m.set(key(r.metric), Number(r.value[1]));
  return m;
}

// Layers: depth of each node = its longest path from a node nobody calls, ignoring the
// edges that close a cycle (found by a depth-first walk), so the map reads left to right.
export function layers(names, edges) {
  const out = new Map(names.map((n) => [n, []]));
  const indeg = new Map(names.map((n) => [n, 0]));
  for (const e of edges) {
    if (e.client === e.server) continue;
    out.get(e.client).push(e.server);
    indeg.set(e.server, indeg.get(e.server) + 1);
  }
  const state = new Map(); // 1 on the walk's stack, 2 done
  const back = new Set();
  const order = [];
  const visit = (n) => {
    state.set(n, 1);
    for (const m of out.get(n)) {
      if (state.get(m) === 1) back.add(`${n}\u0000${m}`);
      else if (!state.get(m)) visit(m);
    }
    state.set(n, 2);
    order.push(n);
  };
  const roots = names.filter((n) => indeg.get(n) === 0);
  for (const n of [...roots, ...names]) if (!state.get(n)) visit(n);
  const depth = new Map(names.map((n) => [n, 0]));
  for (const n of order.reverse()) {
    for (const m of out.get(n)) {
      if (!back.has(`${n}\u0000${m}`) && depth.get(m) < depth.get(n) + 1) depth.set(m, depth.get(n) + 1);
    }
  }
  return { depth, back };
}

const NODE_W = 168;
const NODE_H = 46;
const COL_W = 320;
const ROW_H = 76;
const PAD = 24;

// The node-link diagram as an SVG element. nodes: [{name, virtual, rate, errors}],
// edges: [{client, server, rate, failed, p95}].
function serviceMap(nodes, edges, open) {
  const names = nodes.map((n) => n.name);
  const { depth, back } = layers(names, edges);
  const cols = [];
  for (const n of nodes) (cols[depth.get(n.name)] ||= []).push(n);
  // Order each column by where its callers sit (one barycentre pass), then by name.
  const pos = new Map();
  cols.forEach((col, ci) => {
    const bary = (n) => {
      const ys = edges.filter((e) => e.server === n.name && pos.has(e.client)).map((e) => pos.get(e.client).y);
      return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : Infinity;
    };
    col.sort((a, b) => bary(a) - bary(b) || a.name.localeCompare(b.name));
    col.forEach((n, ri) => pos.set(n.name, { x: PAD + ci * COL_W, y: PAD + ri * ROW_H }));
  });
  const rows = Math.max(1, ...cols.map((c) => (c ? c.length : 0)));
  const width = PAD * 2 + (cols.length - 1) * COL_W + NODE_W;
  const height = PAD * 2 + (rows - 1) * ROW_H + NODE_H + 40; // room for arcs under the nodes
  const maxRate = Math.max(0, ...edges.map((e) => e.rate || 0));

  const edgeEls = [];
  const labelEls = [];
  for (const e of edges) {
    const a = pos.get(e.client);
    const b = pos.get(e.server);
    if (!a || !b) continue;
    let d;
    let lx;
    let ly;
    if (e.client === e.server) {
      const x = a.x + NODE_W - 30;
      d = `M${x},${a.y} C${x},${a.y - 34} ${x + 40},${a.y - 34} ${x + 30},${a.y}`;
      lx = x + 18;
      ly = a.y - 30;
    } else if (back.has(`${e.client}\u0000${e.server}`) || b.x <= a.x) {
      // A call back to an earlier layer: an arc under both nodes.
      const x1 = a.x + NODE_W / 2;
      const x2 = b.x + NODE_W / 2;
      const y1 = a.y + NODE_H;
      const y2 = b.y + NODE_H;
      const low = Math.max(y1, y2) + 36;
      d = `M${x1},${y1} C${x1},${low} ${x2},${low} ${x2},${y2 + 2}`;
      lx = (x1 + x2) / 2;
      ly = low - 4;
    } else {
      const x1 = a.x + NODE_W;
      const y1 = a.y + NODE_H / 2;
      const x2 = b.x - 2;
      const y2 = b.y + NODE_H / 2;
      const mx = (x1 + x2) / 2;
      d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
      // Above the line where it leaves the client, so it never sits on a node.
      lx = x1 + (x2 - x1) / 2;
      ly = (y1 + y2) / 2 - 7;
    }
    const ratio = e.rate > 0 ? (e.failed || 0) / e.rate : 0;
    const label = `${fmtRate(e.rate)} · ${fmtRatio(e.failed, e.rate)} err`;
    const title = `${e.client} → ${e.server}: ${fmtRate(e.rate)}, error ratio ${fmtRatio(e.failed, e.rate)}, p95 ${fmtSec(e.p95)}`;
    edgeEls.push(s('path', {
      class: `edge${ratio > 0 ? ' err' : ''}`, d, 'marker-end': `url(#arrow${ratio > 0 ? '-err' : ''})`,
      'stroke-width': (1.2 + (maxRate > 0 ? 2.8 * (e.rate || 0) / maxRate : 0)).toFixed(2),
      'data-client': e.client, 'data-server': e.server,
    }, s('title', {}, title)));
    labelEls.push(s('text', { class: 'edge-label', x: lx, y: ly, 'text-anchor': 'middle', 'data-client': e.client, 'data-server': e.server }, label));
  }

  const nodeEls = nodes.map((n) => {
    const p = pos.get(n.name);
    const short = n.name.length > 22 ? `${n.name.slice(0, 21)}…` : n.name;
    const sub = n.virtual ? (n.kind || 'external') : `${fmtRate(n.rate)} · ${fmtRatio(n.errors, n.rate)} err`;
    const g = s('g', {
      class: `node${n.virtual ? ' virtual' : ''}${n.errors > 0 ? ' err' : ''}`,
      transform: `translate(${p.x},${p.y})`, 'data-service': n.name,
    },
    s('title', {}, n.virtual ? `${n.name} (${n.kind || 'not a traced service'})` : `${n.name}: open its traces`),
    s('rect', { class: 'box', width: NODE_W, height: NODE_H, rx: 7 }),
    n.virtual ? null : s('rect', { class: 'chip', width: 5, height: NODE_H - 12, x: 6, y: 6, rx: 2, style: `fill:${colourFor(n.name)}` }),
    s('text', { class: 'name', x: 18, y: 19 }, short),
    s('text', { class: 'sub', x: 18, y: 36 }, sub));
    if (!n.virtual) {
      g.setAttribute('tabindex', '0');
      g.setAttribute('role', 'link');
      g.setAttribute('aria-label', `${n.name}: ${sub}; open its traces`);
      g.addEventListener('click', () => open(n.name));
      g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') open(n.name); });
    }
    return g;
  });

  return s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `Service map: ${nodes.length} services, ${edges.length} calls` },
    s('defs', {},
      s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 9, markerHeight: 9, orient: 'auto-start-reverse' },
        s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' })),
      s('marker', { id: 'arrow-err', viewBox: '0 0 10 10', refX: 9, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 9, markerHeight: 9, orient: 'auto-start-reverse' },
        s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow err' }))),
    s('g', { class: 'edges' }, edgeEls),
    s('g', { class: 'nodes' }, nodeEls),
    s('g', { class: 'labels' }, labelEls));
}

export function mount(root, ctx) {
  const st = { range: validRange(ctx.params.get('range')), kind: ctx.params.get('kind') === 'all' ? 'all' : 'entry' };
  const kindSel = h('select', { 'aria-label': 'Spans counted', name: 'kind' },
    h('option', { value: 'entry', selected: st.kind === 'entry' }, 'Entry spans (server, consumer)'),
    h('option', { value: 'all', selected: st.kind === 'all' }, 'All spans'));
  kindSel.addEventListener('change', () => { st.kind = kindSel.value; load(); });
  const mapBox = h('div', { class: 'svc-map', 'aria-live': 'polite' });
  const callsBox = h('div', { class: 'svc-calls' });
  const redBox = h('div', { class: 'svc-red', 'aria-live': 'polite' });
  clear(root,
    h('div', { class: 'row' }, h('h1', { class: 'grow' }, 'Services')),
    h('div', { class: 'panel' }, h('div', { class: 'row' },
      h('label', { class: 'field' }, 'Range', picker(st.range, (r) => { st.range = r; load(); })),
      h('label', { class: 'field' }, 'RED from', kindSel),
      h('span', { class: 'spacer' }),
      h('button', { class: 'btn', type: 'button', onclick: () => load() }, 'Refresh'))),
    h('div', { class: 'panel' }, h('h2', {}, 'Service map'), mapBox),
    h('div', { class: 'panel' }, h('h2', {}, 'Rate, errors and duration by service'), redBox),
    h('div', { class: 'panel' }, h('h2', {}, 'Calls between services'), callsBox));

  const charts = [];
  const dropCharts = () => { while (charts.length) charts.pop().destroy(); };
  const openTraces = (svc) => ctx.navigate(`/traces?service=${encodeURIComponent(svc)}&range=${st.range}`);
  let seq = 0;

  async function load() {
    ctx.setParams({ range: st.range, kind: st.kind === 'all' ? 'all' : '' });
    const mine = ++seq;
    dropCharts();
    clear(mapBox, loading());
    clear(callsBox);
    clear(redBox);
    const { start, end } = timeWindow(st.range);
    const R = `${rangeSeconds(st.range)}s`;
    const sel = st.kind === 'all' ? '' : ENTRY_KINDS;
    const errSel = sel ? `${sel},${ERROR}` : ERROR;
    const q = (query) => get('/api/v1/query', { query, time: end }, { signal: ctx.signal }).then((r) => r.data.result);
    const queries = [
      q(`sum by (client, server, connection_type) (rate(${SG}_total[${R}]))`),
      q(`sum by (client, server) (rate(${SG}_failed_total[${R}]))`),
      q(`histogram_quantile(0.95, sum by (client, server, le) (rate(${SG}_server_seconds_bucket[${R}])))`),
      q(`histogram_quantile(0.95, sum by (client, server, le) (rate(${SG}_client_seconds_bucket[${R}])))`),
      q(`sum by (service) (rate(${SM_CALLS}{${sel}}[${R}]))`),
      q(`sum by (service) (rate(${SM_CALLS}{${errSel}}[${R}]))`),
      q(`histogram_quantile(0.5, sum by (service, le) (rate(${SM_BUCKET}{${sel}}[${R}])))`),
      q(`histogram_quantile(0.95, sum by (service, le) (rate(${SM_BUCKET}{${sel}}[${R}])))`),
    ];
    let res;
    try {
      res = await Promise.all(queries);
    } catch (e) {
      if (isAbort(e) || mine !== seq) return;
      clear(mapBox, msg('error', `The service metrics could not be read: ${errorText(e)}`));
      return;
    }
    if (mine !== seq) return;
    const [sgRate, sgFailed, sgP95, sgClientP95, smRate, smErr, smP50, smP95] = res;
    const ek = (m) => `${m.client || ''}\u0000${m.server || ''}`;
    const failed = byKey(sgFailed, ek);
    // The server side's latency; edges to a database or peer have only the client's.
    const p95 = byKey(sgP95, ek);
    const clientP95 = byKey(sgClientP95, ek);
    const edgeMap = new Map();
    for (const r of sgRate) {
      const k = ek(r.metric);
      const prev = edgeMap.get(k);
      const rate = Number(r.value[1]);
      if (prev) { prev.rate += rate; continue; } // same pair, another connection_type
      edgeMap.set(k, { client: r.metric.client || '', server: r.metric.server || '', type: r.metric.connection_type || '', rate, failed: failed.get(k) || 0, p95: Number.isFinite(p95.get(k)) ? p95.get(k) : clientP95.get(k) });
    }
    const edges = [...edgeMap.values()].filter((e) => e.client && e.server);
    const svc = (m) => m.service || '';
    const red = { rate: byKey(smRate, svc), errors: byKey(smErr, svc), p50: byKey(smP50, svc), p95: byKey(smP95, svc) };
    const traced = new Set([...red.rate.keys()].filter(Boolean));

    const nodes = new Map();
    for (const n of traced) nodes.set(n, { name: n, virtual: false, rate: red.rate.get(n), errors: red.errors.get(n) || 0 });
    for (const e of edges) {
      for (const [name, other] of [[e.client, 'client'], [e.server, 'server']]) {
        if (nodes.has(name)) continue;
        // A name only the service graph knows: the virtual "user" behind root spans, a
        // database or a peer.service, unless it is a traced service outside this filter.
        const virtual = e.type !== '' || name === 'user';
        const kind = e.type === 'database' ? 'database' : (name === 'user' && other === 'client' ? 'external callers' : (virtual ? 'external' : ''));
        nodes.set(name, { name, virtual, kind, rate: undefined, errors: 0 });
      }
    }
    if (!nodes.size) {
      clear(mapBox, noData('No service data in this range. Vigil derives the service map and RED metrics from the spans it receives (traces.service_graph_enabled, traces.span_metrics_enabled): send traces whose client and server spans share a trace.'));
      clear(redBox, noData('No span metrics in this range.'));
      clear(callsBox, noData('No calls between services in this range.'));
      return;
    }
    const nodeList = [...nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (!edges.length) {
      clear(mapBox, msg('info', 'No calls between services in this range: the service graph pairs a client span with the server span it called in the same trace.'));
    } else if (nodeList.length > MAX_NODES) {
      clear(mapBox, msg('warn', `${nodeList.length} services and endpoints: too many to draw; the calls are listed below.`));
    } else {
      clear(mapBox, serviceMap(nodeList, edges, openTraces));
    }
    if (edges.length) {
      const sorted = edges.slice().sort((a, b) => a.client.localeCompare(b.client) || a.server.localeCompare(b.server));
      clear(callsBox, table([
        { title: 'Client', cell: (e) => e.client },
        { title: 'Server', cell: (e) => e.server },
        { title: 'Rate', num: true, cell: (e) => fmtRate(e.rate) },
        { title: 'Error ratio', num: true, cell: (e) => h('span', { class: e.failed > 0 ? 'err-text' : '' }, fmtRatio(e.failed, e.rate)) },
        { title: 'p95', num: true, cell: (e) => fmtSec(e.p95) },
      ], sorted));
      callsBox.querySelectorAll('tbody tr').forEach((tr, i) => { tr.classList.add('call-row'); tr.dataset.client = sorted[i].client; tr.dataset.server = sorted[i].server; });
    } else {
      clear(callsBox, noData('No calls between services in this range.'));
    }
    renderRed([...traced].sort(), red, start, end);
  }

  function renderRed(services, red, start, end) {
    if (!services.length) {
      clear(redBox, noData(st.kind === 'all' ? 'No span metrics in this range.' : 'No server or consumer spans in this range; choose "All spans" to count every span.'));
      return;
    }
    const sparks = new Map(services.map((n) => [n, h('div', { class: 'spark' })]));
    const rows = services.map((n) => ({ n, rate: red.rate.get(n), errors: red.errors.get(n) || 0, p50: red.p50.get(n), p95: red.p95.get(n) }));
    clear(redBox, table([
      { title: 'Service', cell: (r) => h('span', {}, h('span', { style: { color: colourFor(r.n) } }, '■ '), h('b', {}, r.n)) },
      { title: 'Rate', num: true, cell: (r) => fmtRate(r.rate) },
      { title: 'Error ratio', num: true, cell: (r) => h('span', { class: r.errors > 0 ? 'err-text' : '' }, fmtRatio(r.errors, r.rate)) },
      { title: 'p50', num: true, cell: (r) => fmtSec(r.p50) },
      { title: 'p95', num: true, cell: (r) => fmtSec(r.p95) },
      { title: 'Rate over the range', cell: (r) => sparks.get(r.n) },
      { title: '', cell: (r) => h('a', { href: `/traces?service=${encodeURIComponent(r.n)}&range=${st.range}`, class: 'small' }, 'Traces') },
    ], rows, { onRow: (r) => openTraces(r.n) }));
    redBox.querySelectorAll('tbody tr').forEach((tr, i) => { tr.classList.add('svc-row'); tr.dataset.service = rows[i].n; });
    // One range query for every service's sparkline.
    const step = autoStep(end - start, 280);
    const sel = st.kind === 'all' ? '' : ENTRY_KINDS;
    const mine = seq;
    get('/api/v1/query_range', { query: `sum by (service) (rate(${SM_CALLS}{${sel}}[${Math.max(4 * step, 60)}s]))`, start, end, step }, { signal: ctx.signal })
      .then((r) => {
        if (mine !== seq) return;
        for (const ser of r.data.result || []) {
          const el = sparks.get(ser.metric.service);
          if (!el || (ser.values || []).length < 2) continue;
          charts.push(sparkline(el, { xs: ser.values.map((v) => Number(v[0])), values: ser.values.map((v) => Number(v[1])), colour: colourFor(ser.metric.service) }));
        }
      })
      .catch((e) => { if (!isAbort(e)) for (const el of sparks.values()) el.title = errorText(e); });
  }

  load();
  return dropCharts;
}
