// traces: trace search (/api/search: by service, operation, tags, duration or TraceQL)
// with a results list, and a trace's waterfall at /traces/<traceID>
// (/api/traces/<id>) with a link to the logs that carry the same trace id.
// Search state is in the URL: ?service=&op=&tags=&min=&max=&q=&range=
import { get, isAbort } from './api.js';
import { h, clear, msg, noData, loading, errorText, fmtDurMs, fmtTime, table, colourFor } from './ui.js';
import { picker, validRange, timeWindow } from './timerange.js';
import { waterfall } from './waterfall.js';

const LIMIT = 50;

export function logsLink(traceId) {
  const q = `{service_name=~".+"} |= "${traceId}"`;
  return `/logs?q=${encodeURIComponent(q)}&range=24h`;
}

export function mount(root, ctx) {
  const id = ctx.path.split('/')[2];
  if (id) return showTrace(root, ctx, decodeURIComponent(id));
  return showSearch(root, ctx);
}

function showSearch(root, ctx) {
  const p = ctx.params;
  const st = {
    service: p.get('service') || '', op: p.get('op') || '', tags: p.get('tags') || '',
    min: p.get('min') || '', max: p.get('max') || '', q: p.get('q') || '', range: validRange(p.get('range')),
  };
  const signal = ctx.signal;
  const svcSel = h('select', { 'aria-label': 'Service', name: 'service' }, h('option', { value: '' }, 'All services'));
  const opSel = h('select', { 'aria-label': 'Operation', name: 'op' }, h('option', { value: '' }, 'All operations'));
  const tags = h('input', { type: 'text', name: 'tags', placeholder: 'http.status_code=500 db.system=postgresql', value: st.tags, size: 30 });
  const min = h('input', { type: 'text', name: 'min', placeholder: 'e.g. 100ms', value: st.min, size: 8 });
  const max = h('input', { type: 'text', name: 'max', placeholder: 'e.g. 2s', value: st.max, size: 8 });
  const traceql = h('input', { type: 'text', name: 'q', class: 'mono grow', placeholder: 'TraceQL, e.g. { status = error && span.http.method = "POST" } — replaces the fields above', value: st.q });
  const rangeSel = picker(st.range, (r) => { st.range = r; search(); });
  const out = h('div', { class: 'results', 'aria-live': 'polite' });
  const form = h('form', { class: 'panel', onsubmit: (ev) => { ev.preventDefault(); search(); } },
    h('div', { class: 'row' },
      h('label', { class: 'field' }, 'Service', svcSel),
      h('label', { class: 'field' }, 'Operation', opSel),
      h('label', { class: 'field' }, 'Tags (logfmt)', tags),
      h('label', { class: 'field' }, 'Min duration', min),
      h('label', { class: 'field' }, 'Max duration', max),
      h('label', { class: 'field' }, 'Range', rangeSel)),
    h('div', { class: 'row', style: { marginTop: '8px' } },
      h('label', { class: 'field grow' }, 'TraceQL', traceql),
      h('button', { class: 'btn primary', type: 'submit', style: { alignSelf: 'flex-end' } }, 'Search')));
  clear(root, h('h1', {}, 'Traces'), form, h('div', { class: 'panel' }, out));

  let svcLoaded = false;
  let opsLoaded = false;
  const fillOps = async () => {
    const keep = opSel.value || st.op;
    const params = svcSel.value ? { q: `{resource.service.name="${svcSel.value.replace(/"/g, '\\"')}"}` } : {};
    try {
      const r = await get('/api/v2/search/tag/name/values', params, { signal });
      const vals = (r.tagValues || []).map((v) => v.value).sort();
      opSel.replaceChildren(h('option', { value: '' }, 'All operations'), ...vals.map((v) => h('option', { value: v, selected: v === keep }, v)));
      opsLoaded = true;
    } catch (e) { if (!isAbort(e)) opSel.title = errorText(e); }
  };
  svcSel.addEventListener('change', () => { opSel.value = ''; st.op = ''; fillOps(); search(); });
  opSel.addEventListener('change', () => search());
  (async () => {
    try {
      const r = await get('/api/search/tag/service.name/values', {}, { signal });
      for (const v of (r.tagValues || []).sort()) svcSel.append(h('option', { value: v, selected: v === st.service }, v));
      svcLoaded = true;
    } catch (e) { if (!isAbort(e)) svcSel.title = errorText(e); }
    fillOps();
  })();

  let seq = 0;
  async function search() {
    // Before the selects are filled, the URL's service and operation still count.
    Object.assign(st, { service: svcLoaded ? svcSel.value : st.service, op: opsLoaded ? opSel.value : st.op, tags: tags.value.trim(), min: min.value.trim(), max: max.value.trim(), q: traceql.value.trim() });
    ctx.setParams(st);
    const mine = ++seq;
    const { start, end } = timeWindow(st.range);
    const params = { limit: LIMIT, start, end };
    if (st.q) {
      params.q = st.q;
    } else {
      const parts = [];
      const quote = (v) => (/[\s"=]/.test(v) ? `"${v.replace(/"/g, '\\"')}"` : v);
      if (st.service) parts.push(`service.name=${quote(st.service)}`);
      if (st.op) parts.push(`name=${quote(st.op)}`);
      if (st.tags) parts.push(st.tags);
      if (parts.length) params.tags = parts.join(' ');
      if (st.min) params.minDuration = st.min;
      if (st.max) params.maxDuration = st.max;
    }
    clear(out, loading());
    try {
      const r = await get('/api/search', params, { signal });
      if (mine !== seq) return;
      const traces = r.traces || [];
      if (!traces.length) { clear(out, noData('No traces match in this range.')); return; }
      clear(out,
        h('p', { class: 'muted small' }, `${traces.length} trace${traces.length === 1 ? '' : 's'}${traces.length >= LIMIT ? ` (the newest ${LIMIT})` : ''}, newest first. Select one to see its spans.`),
        r.metrics && r.metrics.truncated ? msg('warn', 'The search stopped at its bound on traces read; narrow the range or the query.') : null,
        table([
          { title: 'Trace', cell: (t) => h('a', { href: `/traces/${t.traceID}`, class: 'mono trace-link' }, t.traceID.slice(0, 16)) },
          { title: 'Root service', cell: (t) => h('span', {}, h('span', { style: { color: colourFor(t.rootServiceName) } }, '■ '), t.rootServiceName) },
          { title: 'Root span', cell: (t) => t.rootTraceName || '' },
          { title: 'Started', cell: (t) => fmtTime(Number(BigInt(t.startTimeUnixNano || '0') / 1000000n) / 1000) },
          { title: 'Duration', num: true, cell: (t) => fmtDurMs(t.durationMs || 0) },
          { title: 'Matched spans', num: true, cell: (t) => String((t.spanSets || [t.spanSet]).reduce((n, s) => n + (s && s.matched ? s.matched : 0), 0)) },
        ], traces, { onRow: (t) => ctx.navigate(`/traces/${t.traceID}`) }));
    } catch (e) {
      if (isAbort(e) || mine !== seq) return;
      clear(out, msg('error', errorText(e)));
    }
  }
  search();
}

async function showTrace(root, ctx, id) {
  const out = h('div', {}, loading());
  clear(root,
    h('div', { class: 'row' },
      h('a', { href: '/traces', class: 'small' }, '← Traces'),
      h('h1', { class: 'grow', style: { margin: '0' } }, 'Trace ', h('span', { class: 'mono' }, id)),
      h('a', { href: logsLink(id), class: 'btn logs-link' }, 'Logs with this trace id')),
    h('div', { class: 'panel', style: { marginTop: '10px' } }, out));
  try {
    const r = await get(`/api/traces/${encodeURIComponent(id)}`, {}, { signal: ctx.signal });
    const w = waterfall(r);
    if (!w.spans.length) { clear(out, noData('This trace has no spans.')); return; }
    clear(out, h('p', { class: 'small muted' }, `Started ${fmtTime(w.start / 1000, true)} · select a span for its attributes and events.`), w.el);
  } catch (e) {
    if (isAbort(e)) return;
    clear(out, msg(e.status === 404 ? 'warn' : 'error', e.status === 404 ? `No trace with id ${id} is stored.` : errorText(e)));
  }
}
