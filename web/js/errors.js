// errors: grouped exceptions and error log lines from error tracking (/api/v1/errors),
// with counts, first and last seen, a sparkline of occurrences over the range
// (/api/v1/errors/<fingerprint>) and a link to a sample trace; /errors/<fingerprint>
// shows one group: its frames, occurrences per hour and its sample traces.
import { get, isAbort } from './api.js';
import { h, clear, msg, noData, loading, errorText, fmtNum, fmtAgo, fmtTime } from './ui.js';
import { picker, validRange, timeWindow } from './timerange.js';
import { sparkline, barChart } from './chart.js';

const MAX_GROUPS = 200;   // rows listed
const MAX_SPARKS = 30;    // rows that get a sparkline (one request each)

const secs = (rfc) => Date.parse(rfc) / 1000;

export function mount(root, ctx) {
  const fp = ctx.path.split('/')[2];
  return fp ? showGroup(root, ctx, decodeURIComponent(fp)) : showList(root, ctx);
}

function showList(root, ctx) {
  const st = { range: validRange(ctx.params.get('range'), '24h'), service: ctx.params.get('service') || '' };
  const out = h('div', { 'aria-live': 'polite' });
  const svc = h('input', { type: 'search', placeholder: 'service', 'aria-label': 'Service', value: st.service, size: 16 });
  svc.addEventListener('change', () => { st.service = svc.value.trim(); load(); });
  clear(root, h('h1', {}, 'Errors'),
    h('div', { class: 'panel' }, h('div', { class: 'row' }, picker(st.range, (r) => { st.range = r; load(); }), svc)),
    h('div', { class: 'panel' }, out));
  const charts = [];
  const dropCharts = () => { while (charts.length) charts.pop().destroy(); };

  async function load() {
    ctx.setParams({ range: st.range, service: st.service });
    dropCharts();
    clear(out, loading());
    const { start, end } = timeWindow(st.range);
    let groups;
    try {
      groups = (await get('/api/v1/errors', { start, end, service: st.service }, { signal: ctx.signal })).data || [];
    } catch (e) {
      if (!isAbort(e)) clear(out, msg(e.status === 404 ? 'warn' : 'error', errorText(e)));
      return;
    }
    if (!groups.length) { clear(out, noData('No errors recorded in this range. Exceptions on spans and error log lines show up here.')); return; }
    const shown = groups.slice(0, MAX_GROUPS);
    const step = end - start > 172800 ? 21600 : 3600;
    const rows = shown.map((g, i) => {
      const spark = h('div', { class: 'spark' });
      if (i < MAX_SPARKS) {
        get(`/api/v1/errors/${g.fingerprint}`, { start, end, step: `${step / 3600}h` }, { signal: ctx.signal }).then((d) => {
          const occ = (d.data && d.data.occurrences) || [];
          if (occ.length > 1) charts.push(sparkline(spark, { xs: occ.map((o) => o[0]), values: occ.map((o) => o[1]), colour: '#c62828' }));
        }).catch(() => {});
      }
      const tr = h('tr', { class: 'clickable error-group', tabindex: '0', 'data-fingerprint': g.fingerprint },
        h('td', {}, h('a', { href: `/errors/${g.fingerprint}` }, h('b', {}, g.type || 'error')),
          h('div', { class: 'small mono', style: { maxWidth: '520px', overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' }, title: g.message }, g.message)),
        h('td', { class: 'num' }, fmtNum(g.count)),
        h('td', {}, spark),
        h('td', { class: 'small' }, (g.services || []).join(', ')),
        h('td', { class: 'small', title: g.firstSeen }, fmtAgo(secs(g.firstSeen))),
        h('td', { class: 'small', title: g.lastSeen }, fmtAgo(secs(g.lastSeen))),
        h('td', {}, g.sampleTraceId ? h('a', { href: `/traces/${g.sampleTraceId}`, class: 'mono small' }, 'trace') : h('span', { class: 'muted' }, '—')));
      const go = (ev) => { if (!ev.target.closest('a')) ctx.navigate(`/errors/${g.fingerprint}`); };
      tr.addEventListener('click', go);
      tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') go(ev); });
      return tr;
    });
    clear(out,
      groups.length > MAX_GROUPS ? msg('warn', `Showing the ${MAX_GROUPS} most frequent of ${groups.length} groups.`) : null,
      h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
        h('thead', {}, h('tr', {}, ['Error', 'Count', 'Occurrences', 'Services', 'First seen', 'Last seen', 'Sample'].map((t, i) => h('th', { class: i === 1 ? 'num' : '' }, t)))),
        h('tbody', {}, rows))));
  }
  load();
  return dropCharts;
}

function showGroup(root, ctx, fp) {
  const out = h('div', {}, loading());
  clear(root, h('a', { href: '/errors', class: 'small' }, '← Errors'), out);
  let chart = null;
  (async () => {
    try {
      const g = (await get(`/api/v1/errors/${encodeURIComponent(fp)}`, {}, { signal: ctx.signal })).data;
      const occ = g.occurrences || [];
      const box = h('div', { class: 'occurrences' });
      clear(out,
        h('h1', {}, g.type || 'error'),
        h('div', { class: 'panel' },
          h('p', { class: 'mono', style: { whiteSpace: 'pre-wrap' } }, g.message),
          h('p', { class: 'small muted' }, `${fmtNum(g.count)} occurrences · first ${fmtTime(secs(g.firstSeen))} · last ${fmtTime(secs(g.lastSeen))} · services: ${(g.services || []).join(', ')}`),
          g.frames ? [h('h3', {}, 'Top frames'), h('pre', { class: 'stack' }, g.frames)] : null,
          h('h3', {}, 'Occurrences per hour'), box,
          h('h3', {}, 'Sample traces'),
          (g.sampleTraceIds || []).length
            ? h('ul', {}, g.sampleTraceIds.map((t) => h('li', {}, h('a', { href: `/traces/${t}`, class: 'mono' }, t))))
            : h('p', { class: 'muted' }, 'none')));
      if (occ.length) chart = barChart(box, { xs: occ.map((o) => o[0]), values: occ.map((o) => o[1]), label: 'occurrences', colour: '#c62828' });
    } catch (e) {
      if (!isAbort(e)) clear(out, msg(e.status === 404 ? 'warn' : 'error', e.status === 404 ? `No error group ${fp}.` : errorText(e)));
    }
  })();
  return () => { if (chart) chart.destroy(); };
}
