// alerts: what the rule engine and the notifier are doing.
//   firing and pending alerts   GET /api/v1/alerts (labels, annotations, active since,
//                               value; marked when an active silence matches them)
//   silences                    GET /api/v1/silences (a bare JSON array of Alertmanager's
//                               GettableSilence), POST /api/v1/silences with a
//                               PostableSilence {matchers, startsAt, endsAt, createdBy,
//                               comment} -> {silenceID}, DELETE /api/v1/silence/<id>
//   rule groups                 GET /api/v1/rules (state, health, last evaluation, errors)
//   notification history        GET /api/v1/notifications ({attempts, queues, ...})
// Every section loads on its own (one failing API does not blank the others) and the
// whole page refreshes every REFRESH_MS; the silence form is outside what refreshes, so
// typing in it is never disturbed. "Silence" on an alert fills the form with its labels.
import { get, request, isAbort } from './api.js';
import { h, clear, msg, noData, loading, errorText, fmtNum, fmtTime, fmtAgo, table } from './ui.js';

const REFRESH_MS = 10000;
const MAX_ALERTS = 500; // rows listed; the counts cover all
const AUTHOR_KEY = 'vigil-silence-author';
const OPS = [['=', true, false], ['!=', false, false], ['=~', true, true], ['!~', false, true]];

const secs = (rfc) => Date.parse(rfc) / 1000;
const never = (rfc) => !rfc || rfc.startsWith('0001-');

// "2h", "1h30m", "90s", "1d", "1w" -> seconds; NaN when it is not a duration.
export function parseDuration(text) {
  const t = String(text).trim();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/.test(t)) return NaN;
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  let total = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)) total += Number(m[1]) * unit[m[2]];
  return total;
}

export function fmtDuration(sec) {
  sec = Math.round(sec);
  if (!(sec > 0)) return '0s';
  const parts = [];
  for (const [u, n] of [['w', 604800], ['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
    if (sec >= n) { parts.push(`${Math.floor(sec / n)}${u}`); sec %= n; }
  }
  return parts.join('');
}

// Whether a silence's matcher list matches a label set (as the notifier decides: every
// matcher must match; regexes are anchored). JavaScript's regex dialect is close enough
// to RE2 for display; the server's own decision is what mutes.
export function silenceMatches(sil, labels) {
  return (sil.matchers || []).every((m) => {
    const v = labels[m.name] ?? '';
    let ok;
    if (m.isRegex) {
      try { ok = new RegExp(`^(?:${m.value})$`).test(v); } catch { ok = false; }
    } else {
      ok = v === m.value;
    }
    return m.isEqual === false ? !ok : ok;
  });
}

const opOf = (m) => OPS.find(([, eq, re]) => eq === (m.isEqual !== false) && re === Boolean(m.isRegex))[0];
const matcherText = (m) => `${m.name}${opOf(m)}"${m.value}"`;

// datetime-local's "YYYY-MM-DDTHH:MM" for a Date, in local time.
function localInput(d) {
  const p = (x) => String(x).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function stateBadge(state) {
  const cls = { firing: 'firing', pending: 'pending', inactive: 'ok', active: 'ok', expired: 'muted', success: 'ok', retry: 'warn', failed: 'err', dropped: 'muted', ok: 'ok', err: 'err', unknown: 'muted' }[state] || '';
  return h('span', { class: `badge ${cls}` }, state);
}

function labelChips(labels, skip = []) {
  return h('span', { class: 'chips' }, Object.keys(labels).filter((k) => !skip.includes(k)).sort()
    .map((k) => h('span', { class: 'chip-m' }, `${k}="${labels[k]}"`)));
}

function when(rfc) {
  if (never(rfc)) return h('span', { class: 'muted' }, 'never');
  const t = secs(rfc);
  const d = t - Date.now() / 1000;
  return h('span', { title: rfc }, fmtTime(t), h('div', { class: 'small muted' }, d > 1 ? `in ${fmtDuration(d)}` : fmtAgo(t)));
}

export function mount(root, ctx) {
  const signal = ctx.signal;
  const cards = h('div', { class: 'cards' });
  const stamp = h('span', { class: 'muted small' });
  const alertsBox = h('div', { class: 'alerts-list', 'aria-live': 'polite' }, loading());
  const silencesBox = h('div', { class: 'silences-list' }, loading());
  const rulesBox = h('div', { class: 'rules-list' }, loading());
  const notifBox = h('div', { class: 'notif-list' }, loading());
  const form = silenceForm(() => { loadSilences(); });
  const showExpired = h('input', { type: 'checkbox', name: 'show-expired' });
  showExpired.addEventListener('change', () => renderSilences());
  clear(root,
    h('div', { class: 'row' }, h('h1', { class: 'grow' }, 'Alerts'), stamp,
      h('button', { class: 'btn', type: 'button', onclick: () => refresh() }, 'Refresh')),
    cards,
    h('div', { class: 'panel' }, h('h2', {}, 'Firing and pending alerts'), alertsBox),
    h('div', { class: 'panel', id: 'silences' },
      h('div', { class: 'row' }, h('h2', { class: 'grow', style: { margin: '0' } }, 'Silences'),
        h('label', { class: 'small' }, showExpired, ' show expired')),
      silencesBox, h('h3', {}, 'New silence'), form.el),
    h('div', { class: 'panel' }, h('h2', {}, 'Rule groups'), rulesBox),
    h('div', { class: 'panel' }, h('h2', {}, 'Notification history'), notifBox));

  let alerts = null;   // last /api/v1/alerts data, null until loaded
  let silences = null; // last /api/v1/silences array
  let groups = null;
  const counts = {};

  function renderCards() {
    const card = (k, v, cls) => h('div', { class: `card ${cls || ''}` }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v));
    const n = (x) => (x === undefined ? '—' : fmtNum(x));
    clear(cards,
      card('Firing', n(counts.firing), 'card-firing'),
      card('Pending', n(counts.pending), 'card-pending'),
      card('Active silences', n(counts.silences), 'card-silences'),
      card('Rules', n(counts.rules), 'card-rules'));
  }

  async function loadAlerts() {
    try {
      alerts = (await get('/api/v1/alerts', {}, { signal })).data.alerts || [];
    } catch (e) {
      if (!isAbort(e)) clear(alertsBox, msg('error', `Alerts could not be read: ${errorText(e)}`));
      return;
    }
    counts.firing = alerts.filter((a) => a.state === 'firing').length;
    counts.pending = alerts.filter((a) => a.state === 'pending').length;
    renderAlerts();
  }

  function renderAlerts() {
    if (!alerts) return;
    if (!alerts.length) {
      clear(alertsBox, noData(groups && !groups.length ? 'No alerts: no rules are configured.' : 'No alerts are firing or pending.'));
      return;
    }
    const active = (silences || []).filter((x) => x.status && x.status.state === 'active');
    const rows = alerts.slice().sort((a, b) => (a.state === b.state ? 0 : a.state === 'firing' ? -1 : 1)
      || (a.labels.alertname || '').localeCompare(b.labels.alertname || '')).slice(0, MAX_ALERTS);
    clear(alertsBox, alerts.length > MAX_ALERTS ? msg('warn', `Showing ${MAX_ALERTS} of ${alerts.length} alerts, firing first.`) : null, table([
      { title: 'State', cell: (a) => stateBadge(a.state) },
      { title: 'Alert', cell: (a) => h('div', {}, h('b', {}, a.labels.alertname || '(no name)'), h('div', {}, labelChips(a.labels, ['alertname']))) },
      { title: 'Annotations', cell: (a) => annotationsEl(a.annotations || {}) },
      { title: 'Active since', cell: (a) => when(a.activeAt) },
      { title: 'Value', num: true, cell: (a) => fmtNum(Number(a.value)) },
      { title: '', cell: (a) => {
        const by = active.filter((x) => silenceMatches(x, a.labels));
        return h('div', { class: 'row' },
          by.length ? h('span', { class: 'badge muted silenced', title: by.map((x) => x.id).join(', ') }, 'silenced') : null,
          h('button', { class: 'btn small silence-btn', type: 'button', onclick: () => form.fill(a.labels) }, 'Silence'));
      } },
    ], rows));
    alertsBox.querySelectorAll('tbody tr').forEach((tr, i) => {
      tr.classList.add('alert-row');
      tr.dataset.alertname = rows[i].labels.alertname || '';
      tr.dataset.state = rows[i].state;
    });
  }

  async function loadSilences() {
    try {
      const r = await get('/api/v1/silences', {}, { signal });
      silences = Array.isArray(r) ? r : [];
    } catch (e) {
      if (!isAbort(e)) clear(silencesBox, msg('error', `Silences could not be read: ${errorText(e)}`));
      return;
    }
    counts.silences = silences.filter((x) => x.status && x.status.state === 'active').length;
    renderSilences();
    renderAlerts();
    renderCards();
  }

  function renderSilences() {
    if (!silences) return;
    const rank = { active: 0, pending: 1, expired: 2 };
    const all = silences.slice().sort((a, b) => (rank[a.status.state] ?? 3) - (rank[b.status.state] ?? 3));
    const shown = showExpired.checked ? all : all.filter((x) => x.status.state !== 'expired');
    const expired = all.length - all.filter((x) => x.status.state !== 'expired').length;
    if (!shown.length) {
      clear(silencesBox, noData(expired ? `No active or pending silences (${expired} expired).` : 'No silences. Create one below to mute matching alerts for a while.'));
      return;
    }
    clear(silencesBox, table([
      { title: 'State', cell: (x) => stateBadge(x.status.state) },
      { title: 'Matchers', cell: (x) => h('span', { class: 'chips' }, (x.matchers || []).map((m) => h('span', { class: 'chip-m' }, matcherText(m)))) },
      { title: 'Starts', cell: (x) => when(x.startsAt) },
      { title: 'Ends', cell: (x) => when(x.endsAt) },
      { title: 'Created by', cell: (x) => x.createdBy || '' },
      { title: 'Comment', cell: (x) => x.comment || '' },
      { title: 'Id', cell: (x) => h('span', { class: 'mono small', title: x.id }, x.id.slice(0, 8)) },
      { title: '', cell: (x) => (x.status.state === 'expired' ? null
        : h('button', { class: 'btn expire-btn', type: 'button', onclick: (ev) => expire(x, ev.currentTarget) }, 'Expire')) },
    ], shown));
    silencesBox.querySelectorAll('tbody tr').forEach((tr, i) => {
      tr.classList.add('silence-row');
      tr.dataset.id = shown[i].id;
      tr.dataset.state = shown[i].status.state;
    });
  }

  async function expire(x, btn) {
    btn.disabled = true;
    try {
      await request(`/api/v1/silence/${encodeURIComponent(x.id)}`, {}, { method: 'DELETE', signal });
    } catch (e) {
      if (isAbort(e)) return;
      btn.disabled = false;
      silencesBox.prepend(msg('error', `Silence ${x.id} could not be expired: ${errorText(e)}`));
      return;
    }
    await loadSilences();
  }

  async function loadRules() {
    try {
      groups = (await get('/api/v1/rules', {}, { signal })).data.groups || [];
    } catch (e) {
      if (!isAbort(e)) clear(rulesBox, msg('error', `Rules could not be read: ${errorText(e)}`));
      return;
    }
    counts.rules = groups.reduce((n, g) => n + (g.rules || []).length, 0);
    if (!groups.length) {
      clear(rulesBox, noData('No rules configured. Name rule files (Prometheus\'s format) under rule_files: in the config, then restart or POST /-/reload.'));
      renderAlerts();
      return;
    }
    clear(rulesBox, groups.map((g) => {
      const rules = g.rules || [];
      const bad = rules.filter((r) => r.health === 'err').length;
      const el = h('div', { class: 'rule-group', 'data-group': g.name },
        h('div', { class: 'row' },
          h('h3', { class: 'grow' }, g.name, bad ? h('span', { class: 'badge err', style: { marginLeft: '8px' } }, `${bad} failing`) : null),
          h('span', { class: 'small muted' }, `${g.file} · every ${fmtDuration(g.interval)} · last evaluation `,
            never(g.lastEvaluation) ? 'never' : `${fmtAgo(secs(g.lastEvaluation))} (took ${fmtSec(g.evaluationTime)})`)),
        rules.length ? table([
          { title: 'Rule', cell: (r) => h('div', {},
            h('span', { class: 'badge muted', style: { marginRight: '6px' } }, r.type === 'alerting' ? 'alert' : 'record'),
            h('b', {}, r.name),
            h('div', {}, h('a', { href: `/explore?q=${encodeURIComponent(r.query)}`, class: 'mono small', title: 'Open in the Metrics explorer' }, r.query)),
            r.labels && Object.keys(r.labels).length ? labelChips(r.labels) : null) },
          { title: 'State', cell: (r) => (r.type === 'alerting'
            ? h('span', {}, stateBadge(r.state), (r.alerts || []).length ? h('span', { class: 'small muted' }, ` ${r.alerts.length} alert${r.alerts.length === 1 ? '' : 's'}`) : null)
            : h('span', { class: 'muted' }, '—')) },
          { title: 'Health', cell: (r) => stateBadge(r.health) },
          { title: 'Last evaluation', cell: (r) => (never(r.lastEvaluation) ? h('span', { class: 'muted' }, 'never') : h('span', { title: r.lastEvaluation }, fmtAgo(secs(r.lastEvaluation)))) },
          { title: 'Took', num: true, cell: (r) => fmtSec(r.evaluationTime) },
          { title: 'Error', cell: (r) => (r.lastError ? h('div', { class: 'rule-error' }, r.lastError) : '') },
        ], rules) : noData('This group has no rules.'));
      el.querySelectorAll('tbody tr').forEach((tr, i) => {
        tr.classList.add('rule-row');
        tr.dataset.rule = rules[i].name;
        tr.dataset.health = rules[i].health;
        if (rules[i].state) tr.dataset.state = rules[i].state;
      });
      return el;
    }));
    renderAlerts();
  }

  async function loadNotifications() {
    let d;
    try {
      d = (await get('/api/v1/notifications', { limit: 50 }, { signal })).data;
    } catch (e) {
      if (!isAbort(e)) clear(notifBox, msg('error', `The notification history could not be read: ${errorText(e)}`));
      return;
    }
    const queues = d.queues || [];
    const attempts = d.attempts || [];
    const attemptsEl = attempts.length ? table([
      { title: 'Time', cell: (a) => when(a.time) },
      { title: 'Receiver', cell: (a) => a.receiver },
      { title: 'Integration', cell: (a) => a.integration },
      { title: 'Status', cell: (a) => stateBadge(a.status) },
      { title: 'Attempt', num: true, cell: (a) => fmtNum(a.attempt) },
      { title: 'Alerts', num: true, cell: (a) => fmtNum((a.fingerprints || []).length) },
      { title: 'Group', cell: (a) => h('span', { class: 'mono small' }, a.groupKey || '') },
      { title: 'Error', cell: (a) => (a.error ? h('div', { class: 'rule-error' }, a.error) : '') },
    ], attempts) : noData('No notifications sent yet.');
    attemptsEl.querySelectorAll('tbody tr').forEach((tr, i) => {
      tr.classList.add('attempt-row');
      tr.dataset.status = attempts[i].status;
      tr.dataset.receiver = attempts[i].receiver;
    });
    clear(notifBox,
      queues.length
        ? [h('h3', {}, 'Receivers'), table([
          { title: 'Receiver', cell: (q) => q.receiver },
          { title: 'Integration', cell: (q) => q.integration },
          { title: 'Queued', num: true, cell: (q) => fmtNum(q.queued) },
          { title: 'In flight', num: true, cell: (q) => fmtNum(q.inflight) },
          { title: 'Next attempt', cell: (q) => (q.nextAttempt ? when(q.nextAttempt) : h('span', { class: 'muted' }, '—')) },
        ], queues)]
        : msg('info', 'No receivers are configured: add receivers (webhook, slack, email) under notifications:, or alerting.alertmanagers, to the config.'),
      h('h3', {}, 'Attempts, newest first'), attemptsEl);
  }

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    await Promise.allSettled([loadRules(), loadAlerts(), loadSilences(), loadNotifications()]);
    if (signal.aborted) return;
    renderCards();
    stamp.textContent = `updated ${fmtTime(Date.now() / 1000)} `;
    timer = setTimeout(refresh, REFRESH_MS);
  }
  renderCards();
  refresh();
  if (location.hash === '#silences') form.focus();
  return () => clearTimeout(timer);

  function fmtSec(v) {
    v = Number(v);
    if (!Number.isFinite(v)) return '—';
    return v >= 1 ? `${v.toFixed(2)} s` : v >= 0.001 ? `${(v * 1000).toFixed(1)} ms` : `${(v * 1e6).toFixed(0)} µs`;
  }

  function annotationsEl(ann) {
    const keys = Object.keys(ann).sort((a, b) => (a === 'summary' ? -1 : b === 'summary' ? 1 : a.localeCompare(b)));
    if (!keys.length) return h('span', { class: 'muted' }, '—');
    return h('dl', { class: 'kv annotations' }, keys.map((k) => [h('dt', {}, k), h('dd', { style: { fontFamily: 'var(--font)' } }, ann[k])]));
  }

  // The form that creates a silence. onDone() runs after one is created.
  function silenceForm(onDone) {
    const rows = h('div', { class: 'matchers' });
    const addRow = (name = '', op = '=', value = '') => {
      const row = h('div', { class: 'matcher-row' },
        h('input', { type: 'text', name: 'm-name', placeholder: 'label', 'aria-label': 'Label name', value: name, size: 14 }),
        h('select', { name: 'm-op', 'aria-label': 'Operator' }, OPS.map(([o]) => h('option', { value: o, selected: o === op }, o))),
        h('input', { type: 'text', name: 'm-value', placeholder: 'value', 'aria-label': 'Label value', value, size: 24 }),
        h('button', { class: 'btn', type: 'button', title: 'Remove this matcher', 'aria-label': 'Remove this matcher', onclick: () => { row.remove(); if (!rows.children.length) addRow(); } }, '×'));
      rows.append(row);
      return row;
    };
    addRow();
    const starts = h('input', { type: 'datetime-local', name: 'starts', 'aria-label': 'Starts' });
    const duration = h('input', { type: 'text', name: 'duration', value: '2h', size: 8, 'aria-label': 'Duration' });
    const ends = h('input', { type: 'datetime-local', name: 'ends', 'aria-label': 'Ends' });
    const author = h('input', { type: 'text', name: 'createdBy', required: true, size: 14, value: localStorage.getItem(AUTHOR_KEY) || '', 'aria-label': 'Created by' });
    const comment = h('input', { type: 'text', name: 'comment', required: true, class: 'grow', placeholder: 'why, and for how long', 'aria-label': 'Comment' });
    const out = h('div', { 'aria-live': 'polite' });
    const startDate = () => (starts.value ? new Date(starts.value) : new Date());
    // Duration and end follow each other, as in Alertmanager's form. The end field has
    // minute precision, so unless it was edited the end sent is start + duration.
    let endEdited = false;
    const syncEnd = () => {
      endEdited = false;
      const d = parseDuration(duration.value);
      duration.classList.toggle('invalid', !(d > 0));
      if (d > 0) ends.value = localInput(new Date(startDate().getTime() + d * 1000));
    };
    const syncDuration = () => {
      endEdited = true;
      if (!ends.value) return;
      const d = (new Date(ends.value).getTime() - startDate().getTime()) / 1000;
      duration.value = d > 0 ? fmtDuration(d) : '';
    };
    duration.addEventListener('input', syncEnd);
    starts.addEventListener('change', syncEnd);
    ends.addEventListener('change', syncDuration);
    syncEnd();

    const el = h('form', { class: 'silence-form', onsubmit: (ev) => { ev.preventDefault(); submit(); } },
      h('div', { class: 'small muted' }, 'Matchers (alerts whose labels match all of them are muted)'),
      rows,
      h('button', { class: 'btn', type: 'button', onclick: () => addRow().querySelector('input').focus() }, '+ Matcher'),
      h('div', { class: 'row', style: { marginTop: '8px' } },
        h('label', { class: 'field' }, 'Starts (empty: now)', starts),
        h('label', { class: 'field' }, 'Duration', duration),
        h('label', { class: 'field' }, 'Ends', ends),
        h('label', { class: 'field' }, 'Created by', author),
        h('label', { class: 'field grow' }, 'Comment', comment),
        h('button', { class: 'btn primary', type: 'submit' }, 'Create silence')),
      out);

    async function submit() {
      const matchers = [];
      for (const row of rows.querySelectorAll('.matcher-row')) {
        const name = row.querySelector('[name="m-name"]').value.trim();
        const value = row.querySelector('[name="m-value"]').value;
        const op = row.querySelector('[name="m-op"]').value;
        if (!name && !value) continue;
        const [, isEqual, isRegex] = OPS.find(([o]) => o === op);
        matchers.push({ name, value, isEqual, isRegex });
      }
      if (!matchers.length) { clear(out, msg('error', 'Add at least one matcher.')); return; }
      if (!ends.value) { clear(out, msg('error', 'Give a duration such as 2h or an end time.')); return; }
      const d = parseDuration(duration.value);
      const end = endEdited || !(d > 0) ? new Date(ends.value) : new Date(startDate().getTime() + d * 1000);
      const body = { matchers, endsAt: end.toISOString(), createdBy: author.value.trim(), comment: comment.value.trim() };
      if (starts.value) body.startsAt = new Date(starts.value).toISOString();
      localStorage.setItem(AUTHOR_KEY, body.createdBy);
      clear(out, loading('Creating…'));
      try {
        const r = await request('/api/v1/silences', {}, { json: body, signal });
        clear(out, msg('info', `Silence ${r.silenceID} created.`));
        rows.replaceChildren();
        addRow();
        comment.value = '';
        starts.value = '';
        syncEnd();
        onDone();
      } catch (e) {
        if (!isAbort(e)) clear(out, msg('error', `The silence was not created: ${errorText(e)}`));
      }
    }

    return {
      el,
      focus: () => rows.querySelector('input').focus(),
      // Fills the matchers with an alert's labels and brings the form into view.
      fill(labels) {
        rows.replaceChildren();
        const keys = Object.keys(labels).sort((a, b) => (a === 'alertname' ? -1 : b === 'alertname' ? 1 : a.localeCompare(b)));
        for (const k of keys) addRow(k, '=', labels[k]);
        clear(out);
        el.scrollIntoView({ block: 'center' });
        comment.focus();
      },
    };
  }
}
