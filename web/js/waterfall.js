// waterfall: one trace (Tempo's /api/traces/<id> answer, OTLP/JSON batches) drawn as
// span bars on a shared time axis, children under their parent in start order, one
// colour per service, failed spans marked. A row opens its details: attributes
// (span and resource), events with exception stack traces, status, ids.
// Keys: Up/Down move between rows, Enter or Space opens and closes the details.
import { h, fmtDurMs, fmtTime, colourFor } from './ui.js';

const MAX_SPANS = 2000; // rows drawn; a larger trace says how many were left out

// An OTLP/JSON AnyValue as text.
export function anyValue(v) {
  if (!v || typeof v !== 'object') return String(v ?? '');
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return String(v.intValue);
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('boolValue' in v) return String(v.boolValue);
  if ('bytesValue' in v) return v.bytesValue;
  if (v.arrayValue) return `[${(v.arrayValue.values || []).map(anyValue).join(', ')}]`;
  if (v.kvlistValue) return `{${(v.kvlistValue.values || []).map((kv) => `${kv.key}=${anyValue(kv.value)}`).join(', ')}}`;
  return '';
}

const attrMap = (list) => Object.fromEntries((list || []).map((kv) => [kv.key, anyValue(kv.value)]));
const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

// Batches -> spans in waterfall order: [{span fields, service, depth, startMs, endMs}].
export function flatten(trace) {
  const spans = [];
  for (const rs of trace.batches || trace.resourceSpans || []) {
    const res = attrMap(rs.resource && rs.resource.attributes);
    const service = res['service.name'] || 'unknown';
    for (const ss of rs.scopeSpans || rs.instrumentationLibrarySpans || []) {
      for (const s of ss.spans || []) {
        const start = Number(BigInt(s.startTimeUnixNano || '0') / 1000n) / 1000; // ms
        const end = Number(BigInt(s.endTimeUnixNano || s.startTimeUnixNano || '0') / 1000n) / 1000;
        spans.push({ ...s, service, resource: res, scope: ss.scope, startMs: start, endMs: Math.max(end, start),
          error: s.status && (s.status.code === 2 || s.status.code === 'STATUS_CODE_ERROR') });
      }
    }
  }
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const children = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parentSpanId && byId.has(s.parentSpanId) && s.parentSpanId !== s.spanId) {
      if (!children.has(s.parentSpanId)) children.set(s.parentSpanId, []);
      children.get(s.parentSpanId).push(s);
    } else {
      roots.push(s);
    }
  }
  const order = [];
  const seen = new Set();
  const visit = (s, depth) => {
    if (seen.has(s.spanId)) return; // a cycle in bad data must not hang the page
    seen.add(s.spanId);
    s.depth = depth;
    order.push(s);
    for (const c of (children.get(s.spanId) || []).sort((a, b) => a.startMs - b.startMs)) visit(c, depth + 1);
  };
  roots.sort((a, b) => a.startMs - b.startMs).forEach((r) => visit(r, 0));
  return order;
}

function kvList(obj) {
  const keys = Object.keys(obj);
  if (!keys.length) return h('p', { class: 'muted small' }, 'none');
  return h('dl', { class: 'kv' }, keys.sort().flatMap((k) => [h('dt', {}, k), h('dd', {}, obj[k])]));
}

function details(s, t0) {
  const attrs = attrMap(s.attributes);
  const events = (s.events || []).map((e) => {
    const a = attrMap(e.attributes);
    const at = Number(BigInt(e.timeUnixNano || '0') / 1000n) / 1000;
    const stack = a['exception.stacktrace'];
    delete a['exception.stacktrace'];
    return h('div', { class: 'event' },
      h('div', {}, h('b', {}, e.name || 'event'), h('span', { class: 'muted small' }, ` at +${fmtDurMs(at - t0)}`)),
      kvList(a),
      stack ? h('pre', { class: 'stack' }, stack) : null);
  });
  return h('div', { class: 'span-detail', 'data-span': s.spanId },
    h('div', { class: 'row' },
      h('b', {}, s.name), h('span', { class: 'badge' }, s.service), h('span', { class: 'badge' }, KINDS[s.kind] || String(s.kind || '')),
      s.error ? h('span', { class: 'badge err' }, `error${s.status.message ? `: ${s.status.message}` : ''}`) : h('span', { class: 'badge ok' }, 'ok')),
    h('p', { class: 'small muted' }, `span ${s.spanId}${s.parentSpanId ? ` · parent ${s.parentSpanId}` : ''} · starts +${fmtDurMs(s.startMs - t0)} · lasts ${fmtDurMs(s.endMs - s.startMs)} · ${fmtTime(s.startMs / 1000, true)}`),
    h('h3', {}, 'Attributes'), kvList(attrs),
    h('h3', {}, 'Resource'), kvList(s.resource),
    events.length ? [h('h3', {}, `Events (${events.length})`), events] : null);
}

// Renders the trace into a new element.
export function waterfall(trace) {
  const all = flatten(trace);
  const spans = all.slice(0, MAX_SPANS);
  const t0 = Math.min(...spans.map((s) => s.startMs));
  const t1 = Math.max(...spans.map((s) => s.endMs));
  const total = Math.max(t1 - t0, 0.001);
  const pct = (ms) => `${((ms - t0) / total) * 100}%`;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => h('span', { style: { left: `${f * 100}%` } }, fmtDurMs(f * total)));
  ticks[0].style.transform = 'none';
  ticks[4].style.transform = 'translateX(-100%)';
  const rows = [];
  for (const s of spans) {
    const bar = h('div', { class: `wf-bar${s.error ? ' error' : ''}`, style: {
      left: pct(s.startMs), width: `${Math.max(((s.endMs - s.startMs) / total) * 100, 0.2)}%`, background: colourFor(s.service) } });
    const right = (s.endMs - t0) / total > 0.8;
    const dur = h('span', { class: 'wf-dur', style: right ? { right: `${100 - ((s.startMs - t0) / total) * 100}%`, marginRight: '4px' } : { left: pct(s.endMs), marginLeft: '4px' } }, fmtDurMs(s.endMs - s.startMs));
    const row = h('div', { class: 'wf-row', role: 'row', tabindex: '0', 'aria-selected': 'false', 'data-span': s.spanId, 'data-name': s.name, 'data-error': s.error ? '1' : '0' },
      h('div', { class: 'wf-name', style: { paddingLeft: `${s.depth * 14}px` }, title: `${s.service}: ${s.name}` },
        h('span', { class: 'svc', style: { background: colourFor(s.service) } }),
        h('span', { class: 'muted' }, `${s.service} `), s.name, s.error ? h('span', { class: 'err', title: 'error' }, '!') : null),
      h('div', { class: 'wf-track' }, bar, dur));
    let open = null;
    const toggle = () => {
      if (open) { open.remove(); open = null; row.setAttribute('aria-selected', 'false'); return; }
      open = details(s, t0);
      row.after(open);
      row.setAttribute('aria-selected', 'true');
    };
    row.addEventListener('click', toggle);
    row.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggle(); }
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        const list = Array.from(row.parentElement.querySelectorAll('.wf-row'));
        const next = list[list.indexOf(row) + (ev.key === 'ArrowDown' ? 1 : -1)];
        if (next) next.focus();
      }
    });
    rows.push(row);
  }
  const services = Array.from(new Set(all.map((s) => s.service)));
  const errors = all.filter((s) => s.error).length;
  return {
    spans: all,
    start: t0,
    el: h('div', { class: 'waterfall', role: 'grid', 'aria-label': 'Spans of the trace' },
      h('div', { class: 'row small', style: { marginBottom: '6px' } },
        services.map((sv) => h('span', { class: 'badge' }, h('span', { style: { color: colourFor(sv) } }, '■ '), sv)),
        h('span', { class: 'muted' }, `${all.length} spans · ${fmtDurMs(total)}`),
        errors ? h('span', { class: 'badge err' }, `${errors} with errors`) : null),
      all.length > MAX_SPANS ? h('div', { class: 'msg msg-warn' }, `Showing the first ${MAX_SPANS} of ${all.length} spans.`) : null,
      h('div', { class: 'wf-head' }, h('div', {}, 'Service and span'), h('div', { class: 'wf-ticks' }, ticks)),
      rows),
  };
}
