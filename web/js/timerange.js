// timerange: the relative time picker shared by the pages ("last 1h", ending now) and
// the step a range query should use for it.
import { h } from './ui.js';

export const RANGES = [
  ['5m', 300], ['15m', 900], ['30m', 1800], ['1h', 3600], ['3h', 10800], ['6h', 21600],
  ['12h', 43200], ['24h', 86400], ['2d', 172800], ['7d', 604800],
];
const SECONDS = Object.fromEntries(RANGES);

export function rangeSeconds(name) {
  return SECONDS[name] || 3600;
}

export function validRange(name, dflt = '1h') {
  return SECONDS[name] ? name : dflt;
}

// {start, end} in Unix seconds for a range ending now.
export function timeWindow(name) {
  const end = Math.floor(Date.now() / 1000);
  return { start: end - rangeSeconds(name), end };
}

const NICE = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

// About one point per 4 pixels of chart width, rounded up to a readable step, never
// more than Prometheus's 11,000 points.
export function autoStep(rangeSec, widthPx = 1000) {
  const points = Math.max(50, Math.min(Math.floor(widthPx / 4), 1000));
  const raw = Math.max(rangeSec / points, rangeSec / 11000, 1);
  return NICE.find((s) => s >= raw) || Math.ceil(raw);
}

// A <select> of the ranges; onChange(name).
export function picker(value, onChange) {
  const sel = h('select', { 'aria-label': 'Time range', class: 'range-picker' },
    RANGES.map(([n]) => h('option', { value: n, selected: n === value }, `Last ${n}`)));
  sel.addEventListener('change', () => onChange(sel.value));
  return sel;
}
