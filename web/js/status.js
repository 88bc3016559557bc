// status: is Vigil healthy and what is it taking in? Build and runtime info
// (/api/v1/status/buildinfo, runtimeinfo), ingestion per receiver and rejected data by
// reason (the vigil_ingest_* counters of /metrics, read every 5 s; rates are the change
// between two reads), storage and process figures (/metrics), top series cardinality
// (/api/v1/status/tsdb) and the running configuration as YAML (/api/v1/status/config,
// where the server has already replaced every secret with "<secret>"), one collapsible
// block per top-level section. status/flags still feeds the retention card.
import { get, isAbort } from './api.js';
import { h, clear, msg, noData, loading, errorText, fmtNum, fmtBytes, fmtAgo, table } from './ui.js';

const REFRESH_MS = 5000;
const MASK = '<secret>';

// The YAML of /api/v1/status/config -> [{name, text}], one per top-level section (a line
// starting in column 0 that is not a comment); leading comments are returned as head.
export function splitSections(yaml) {
  const sections = [];
  const head = [];
  for (const line of yaml.replace(/\n$/, '').split('\n')) {
    const m = /^([^\s#-][^:]*):/.exec(line);
    if (m) sections.push({ name: m[1].replace(/^['"]|['"]$/g, ''), lines: [line] });
    else if (sections.length) sections[sections.length - 1].lines.push(line);
    else head.push(line);
  }
  return { head: head.join('\n'), sections: sections.map((x) => ({ name: x.name, text: x.lines.join('\n') })) };
}

// Text with each <secret> marked, as text nodes and spans (never parsed as HTML).
function withMasks(text) {
  const parts = text.split(MASK);
  const out = [];
  parts.forEach((p, i) => {
    if (i) out.push(h('span', { class: 'cfg-secret', title: 'masked by the server', style: { color: 'var(--muted)', fontStyle: 'italic' } }, MASK));
    if (p) out.push(p);
  });
  return out;
}

// Prometheus text exposition -> [{name, labels, value}]. Comments, blank lines and
// malformed lines are skipped.
export function parseExposition(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3]))) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

const KINDS = [
  { kind: 'samples', accepted: 'vigil_ingest_samples_accepted_total', rejected: 'vigil_ingest_samples_rejected_total' },
  { kind: 'spans', accepted: 'vigil_ingest_spans_accepted_total', rejected: 'vigil_ingest_spans_rejected_total' },
  { kind: 'log lines', accepted: 'vigil_ingest_lines_accepted_total', rejected: 'vigil_ingest_lines_rejected_total' },
];

function sumBy(samples, name, keyFn) {
  const m = new Map();
  for (const s of samples) {
    if (s.name !== name) continue;
    const k = keyFn(s.labels);
    m.set(k, (m.get(k) || 0) + s.value);
  }
  return m;
}

function one(samples, name) {
  const s = samples.find((x) => x.name === name);
  return s ? s.value : undefined;
}

export function mount(root, ctx) {
  const cards = h('div', { class: 'cards' });
  const ingest = h('div', { class: 'ingest' }, loading());
  const rejected = h('div', { class: 'rejected' });
  const card = h('div', { class: 'cardinality' }, loading());
  const config = h('div', { class: 'config' }, loading());
  const errBox = h('div');
  const stamp = h('span', { class: 'muted small' });
  clear(root,
    h('div', { class: 'row' }, h('h1', { class: 'grow' }, 'Status'), stamp),
    errBox, cards,
    h('div', { class: 'panel' }, h('h2', {}, 'Ingestion by receiver'), ingest),
    h('div', { class: 'panel' }, h('h2', {}, 'Rejected data by reason'), rejected),
    h('div', { class: 'panel' }, h('h2', {}, 'Top series cardinality'), card),
    h('div', { class: 'panel' },
      h('div', { class: 'row' }, h('h2', { class: 'grow' }, 'Configuration'),
        h('button', { class: 'btn cfg-expand', type: 'button', onclick: () => toggleAll(true) }, 'Expand all'),
        h('button', { class: 'btn cfg-collapse', type: 'button', onclick: () => toggleAll(false) }, 'Collapse all'),
        h('a', { href: '/api/v1/status/config', class: 'small', target: '_blank', rel: 'noopener' }, 'raw')),
      config));

  function toggleAll(open) {
    for (const d of config.querySelectorAll('details.cfg-section')) d.open = open;
  }

  let prev = null; // {t, samples}
  let info = {};
  let timer = null;

  const signal = ctx.signal;
  async function loadStatic() {
    const [build, runtime, tsdb, flags, yaml] = await Promise.allSettled([
      get('/api/v1/status/buildinfo', {}, { signal }),
      get('/api/v1/status/runtimeinfo', {}, { signal }),
      get('/api/v1/status/tsdb', { limit: 10 }, { signal }),
      get('/api/v1/status/flags', {}, { signal }),
      get('/api/v1/status/config', {}, { signal }),
    ]);
    if (signal.aborted) return;
    info = {
      build: build.status === 'fulfilled' ? build.value.data : null,
      runtime: runtime.status === 'fulfilled' ? runtime.value.data : null,
      flags: flags.status === 'fulfilled' ? flags.value.data : null,
    };
    if (tsdb.status === 'fulfilled') renderCardinality(tsdb.value.data);
    else clear(card, msg('error', errorText(tsdb.reason)));
    const y = yaml.status === 'fulfilled' && yaml.value && yaml.value.data ? yaml.value.data.yaml : null;
    if (typeof y === 'string') renderConfig(y);
    else clear(config, msg('error', `Cannot load the configuration: ${yaml.status === 'rejected' ? errorText(yaml.reason) : 'the answer holds no YAML'}`));
  }

  function renderCardinality(d) {
    const sub = (title, rows, unit) => h('div', { class: 'grow', style: { minWidth: '260px' } }, h('h3', {}, title),
      rows && rows.length ? table([
        { title: 'name', cell: (r) => h('span', { class: 'mono' }, r.name) },
        { title: unit, num: true, cell: (r) => fmtNum(r.value) },
      ], rows) : noData());
    const hs = d.headStats || {};
    clear(card,
      h('p', { class: 'muted small' }, `${fmtNum(hs.numSeries)} series, ${fmtNum(hs.numLabelPairs)} label pairs, ${fmtNum(hs.chunkCount)} chunks.`),
      h('div', { class: 'row', style: { alignItems: 'flex-start' } },
        sub('Series by metric name', d.seriesCountByMetricName, 'series'),
        sub('Values by label name', d.labelValueCountByLabelName, 'values'),
        sub('Series by label pair', d.seriesCountByLabelValuePair, 'series')));
  }

  // The key sections (server, storage, ...) start folded: they are long and mostly
  // defaults; the structured sections the file sets (scrape_configs, ...) start open.
  const lines = (n) => `${n} line${n === 1 ? '' : 's'}`;
  const FOLDED = new Set(['server', 'storage', 'limits', 'otlp', 'syslog', 'logs', 'query', 'traces']);
  function renderConfig(yaml) {
    const { head, sections } = splitSections(yaml);
    if (!sections.length) { clear(config, noData('The configuration is empty.')); return; }
    const src = /^# source: (.*)$/m.exec(head);
    clear(config,
      h('p', { class: 'muted small' }, `Loaded from ${src ? src[1] : 'an unknown source'}, with command-line flags applied. Secrets are shown as ${MASK}.`),
      sections.map((s) => h('details', { class: 'cfg-section', 'data-section': s.name, open: !FOLDED.has(s.name), style: { margin: '4px 0' } },
        h('summary', { class: 'mono', style: { cursor: 'pointer', padding: '2px 0' } }, s.name,
          h('span', { class: 'muted small' }, ` · ${lines(s.text.split('\n').length - 1)}`)),
        h('pre', { class: 'cfg-yaml mono', style: { background: 'var(--code-bg)', padding: '8px', borderRadius: '6px', overflowX: 'auto', margin: '4px 0 8px' } },
          withMasks(s.text)))));
  }

  async function refresh() {
    let text;
    try {
      text = await get('/metrics', {}, { signal });
      clear(errBox);
    } catch (e) {
      if (isAbort(e)) return;
      clear(errBox, msg('error', `Cannot read /metrics: ${errorText(e)}`));
      return;
    } finally {
      // The second read comes soon so the rates show without a long wait.
      if (!signal.aborted) timer = setTimeout(refresh, prev ? REFRESH_MS : 1500);
    }
    const now = { t: Date.now() / 1000, samples: parseExposition(typeof text === 'string' ? text : '') };
    render(now, prev);
    prev = now;
    stamp.textContent = `updated ${new Date().toLocaleTimeString()} · every ${REFRESH_MS / 1000} s`;
  }

  function render(now, before) {
    const s = now.samples;
    const dt = before ? now.t - before.t : 0;
    const rt = info.runtime || {};
    const start = one(s, 'process_start_time_seconds');
    const flags = info.flags || {};
    const days = (ms) => (ms ? `${Math.round(Number(String(ms).replace('ms', '')) / 86400000)}d` : '—');
    const diskBytes = s.filter((x) => /^vigil_\w+_disk_bytes$/.test(x.name));
    clear(cards,
      cardEl('Version', info.build ? info.build.revision || info.build.version : '—'),
      cardEl('Up since', start ? fmtAgo(start) : '—'),
      cardEl('Series', fmtNum(one(s, 'vigil_tsdb_series'))),
      ...diskBytes.map((x) => cardEl(`${x.name.replace(/^vigil_|_disk_bytes$/g, '').toUpperCase()} on disk`, fmtBytes(x.value))),
      cardEl('Resident memory', fmtBytes(one(s, 'process_resident_memory_bytes'))),
      cardEl('Heap in use', fmtBytes(one(s, 'vigil_heap_live_bytes'))),
      cardEl('Retention (metrics / logs / traces)', `${rt.storageRetention || days(flags['storage.retention'])} / ${days(flags['storage.log_retention'])} / ${days(flags['storage.trace_retention'])}`));

    // Per receiver: accepted totals and rates for each kind of data.
    const rows = new Map();
    for (const k of KINDS) {
      const cur = sumBy(s, k.accepted, (l) => l.receiver || '?');
      const old = before ? sumBy(before.samples, k.accepted, (l) => l.receiver || '?') : new Map();
      const rej = sumBy(s, k.rejected, (l) => l.receiver || '?');
      for (const [recv, v] of cur) {
        const key = `${recv}|${k.kind}`;
        rows.set(key, { receiver: recv, kind: k.kind, total: v, rejected: rej.get(recv) || 0,
          rate: dt > 0 && old.has(recv) ? Math.max(0, (v - old.get(recv)) / dt) : null });
      }
      for (const [recv, v] of rej) {
        const key = `${recv}|${k.kind}`;
        if (!rows.has(key)) rows.set(key, { receiver: recv, kind: k.kind, total: 0, rejected: v, rate: dt > 0 ? 0 : null });
      }
    }
    const list = Array.from(rows.values()).sort((a, b) => a.receiver.localeCompare(b.receiver) || a.kind.localeCompare(b.kind));
    clear(ingest, list.length ? table([
      { title: 'receiver', cell: (r) => h('span', { class: 'mono' }, r.receiver) },
      { title: 'data', cell: (r) => r.kind },
      { title: 'per second', num: true, cell: (r) => (r.rate === null ? '…' : fmtNum(Math.round(r.rate * 100) / 100)) },
      { title: 'accepted since start', num: true, cell: (r) => fmtNum(r.total) },
      { title: 'rejected since start', num: true, cell: (r) => (r.rejected ? h('span', { class: 'badge err' }, fmtNum(r.rejected)) : '0') },
    ], list) : noData('Nothing received yet. Point an OpenTelemetry SDK or Prometheus remote write at this server.'));

    const rej = [];
    for (const k of KINDS) for (const x of s) if (x.name === k.rejected && x.value > 0) rej.push({ kind: k.kind, receiver: x.labels.receiver || '?', reason: x.labels.reason || '?', v: x.value });
    rej.sort((a, b) => b.v - a.v);
    clear(rejected, rej.length ? table([
      { title: 'receiver', cell: (r) => h('span', { class: 'mono' }, r.receiver) },
      { title: 'data', cell: (r) => r.kind },
      { title: 'reason', cell: (r) => h('span', { class: 'mono' }, r.reason) },
      { title: 'since start', num: true, cell: (r) => fmtNum(r.v) },
    ], rej) : noData('Nothing rejected since start.'));
  }

  function cardEl(k, v) {
    return h('div', { class: 'card' }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v));
  }

  loadStatic().catch(() => {}).then(refresh);
  return () => clearTimeout(timer);
}
