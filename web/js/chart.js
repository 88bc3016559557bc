// chart: the one place that knows uPlot (vendored from npm at build time; see
// web/meson.build). Time-series lines (stacked or not) with a legend and a hover
// tooltip, bars for log volume, and sparklines. Charts follow their container's width
// and are redrawn in the colours of the theme when it changes.
import uPlot from '/static/vendor/uplot-__UPLOT_VERSION__/uPlot.esm.js';
import { h, colourFor, cssVar, fmtNum, fmtTime } from './ui.js';

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

function axes(yfmt) {
  const stroke = cssVar('--axis');
  const grid = { stroke: cssVar('--grid'), width: 1 };
  return [
    { stroke, grid, ticks: grid },
    { stroke, grid, ticks: grid, size: 64, values: (u, vals) => vals.map((v) => (yfmt ? yfmt(v) : fmtNum(v))) },
  ];
}

// A floating tooltip listing the values under the cursor (largest first, at most 10).
function tooltipPlugin(getRows) {
  let tip;
  return {
    hooks: {
      init: (u) => {
        tip = h('div', { class: 'chart-tip' });
        u.over.append(tip);
        u.over.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
      },
      setCursor: (u) => {
        const { idx, left, top } = u.cursor;
        if (idx === null || idx === undefined || left < 0) { tip.style.display = 'none'; return; }
        const rows = getRows(u, idx);
        if (!rows) { tip.style.display = 'none'; return; }
        tip.replaceChildren(h('div', { class: 't' }, fmtTime(u.data[0][idx])), ...rows);
        tip.style.display = 'block';
        const w = tip.offsetWidth;
        const x = left + 14 + w > u.over.clientWidth ? left - w - 10 : left + 14;
        tip.style.left = `${Math.max(0, x)}px`;
        tip.style.top = `${Math.max(0, top - 10)}px`;
      },
    },
  };
}

// Wraps creation so the chart can be rebuilt on resize-to-zero or theme change.
class Chart {
  constructor(el, build) {
    this.el = el;
    this.build = build;
    this.u = null;
    this.draw();
    this.ro = new ResizeObserver(() => {
      if (this.u && el.clientWidth > 0) this.u.setSize({ width: el.clientWidth, height: this.u.height });
    });
    this.ro.observe(el);
    this.onTheme = () => this.draw();
    window.addEventListener('vigil-theme', this.onTheme);
  }
  draw() {
    if (this.u) this.u.destroy();
    this.el.replaceChildren();
    const { opts, data } = this.build(Math.max(this.el.clientWidth, 300));
    this.u = new uPlot(opts, data, this.el);
  }
  destroy() {
    this.ro.disconnect();
    window.removeEventListener('vigil-theme', this.onTheme);
    if (this.u) this.u.destroy();
    this.u = null;
  }
}

// lineChart(el, {xs: [sec...], series: [{label, values: [num|null...]}], stacked, height})
export function lineChart(el, { xs, series, stacked = false, height = 300, yfmt }) {
  el.dataset.series = String(series.length);
  el.classList.add('chart');
  const orig = series.map((s) => s.values);
  let ys = orig;
  if (stacked) {
    const acc = new Array(xs.length).fill(0);
    ys = orig.map((vals) => vals.map((v, j) => {
      if (v === null || v === undefined) return null;
      acc[j] += v;
      return acc[j];
    }));
  }
  const fmt = yfmt || fmtNum;
  return new Chart(el, (width) => {
    const colours = series.map((s, i) => colourFor(s.label, i));
    const opts = {
      width,
      height,
      scales: { x: { time: true } },
      axes: axes(yfmt),
      legend: { show: true, live: true },
      cursor: { focus: { prox: 24 }, drag: { x: true, y: false } },
      focus: { alpha: 0.35 },
      series: [
        { value: (u, v) => (v === null || v === undefined ? '—' : fmtTime(v)) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: colours[i],
          width: 1.5,
          fill: stacked ? alpha(colours[i], 0.35) : undefined,
          spanGaps: false,
          points: { show: xs.length < 60 },
          value: (u, v, si, idx) => (idx === null || idx === undefined ? '—' : fmt(orig[si - 1][idx])),
        })),
      ],
      bands: stacked ? series.slice(1).map((s, i) => ({ series: [i + 2, i + 1] })) : undefined,
      plugins: [tooltipPlugin((u, idx) => {
        const rows = series.map((s, i) => ({ i, v: orig[i][idx] })).filter((r) => r.v !== null && r.v !== undefined);
        if (!rows.length) return null;
        rows.sort((a, b) => b.v - a.v);
        const shown = rows.slice(0, 10).map((r) => h('div', {},
          h('span', { style: { color: colours[r.i] } }, '■ '), `${series[r.i].label}: `, h('b', {}, fmt(r.v))));
        if (rows.length > 10) shown.push(h('div', { class: 't' }, `… ${rows.length - 10} more`));
        return shown;
      })],
    };
    return { opts, data: [xs, ...ys] };
  });
}

// barChart(el, {xs, values, label, height, colour}): one series as bars (log volume).
export function barChart(el, { xs, values, label = 'count', height = 120, colour }) {
  el.classList.add('chart');
  el.dataset.series = '1';
  el.dataset.total = String(values.reduce((a, b) => a + (b || 0), 0));
  return new Chart(el, (width) => {
    const c = colour || cssVar('--accent');
    return {
      opts: {
        width,
        height,
        scales: { x: { time: true } },
        axes: axes(),
        legend: { show: false },
        cursor: { drag: { x: true, y: false } },
        series: [{}, {
          label, stroke: c, fill: alpha(c.startsWith('#') ? c : '#2563eb', 0.6),
          paths: uPlot.paths.bars({ size: [0.85, 40] }), points: { show: false },
        }],
        plugins: [tooltipPlugin((u, idx) => [h('div', {}, `${label}: `, h('b', {}, fmtNum(values[idx])))])],
      },
      data: [xs, values],
    };
  });
}

// sparkline(el, {xs, values}): a small line, no axes.
export function sparkline(el, { xs, values, colour }) {
  el.classList.add('sparkline');
  return new Chart(el, () => {
    const c = colour || cssVar('--accent');
    return {
      opts: {
        width: 140,
        height: 28,
        legend: { show: false },
        cursor: { show: false },
        // Room under zero so an all-zero stretch stays visible as a flat line.
        scales: { x: { time: true }, y: { range: (u, lo, hi) => [-Math.max(hi, 1) * 0.1, Math.max(hi, 1) * 1.1] } },
        axes: [{ show: false }, { show: false }],
        series: [{}, { stroke: c, width: 1.25, fill: alpha(c.startsWith('#') ? c : '#2563eb', 0.2), points: { show: false } }],
      },
      data: [xs, values],
    };
  });
}
