// app: the console's shell. Client-side routing over the History API (the server answers
// every page path with index.html), the navigation bar, the light/dark theme, and the
// mounting of one page module at a time. A page module exports
//   mount(root, ctx) -> optional cleanup function
// where ctx = { path, params (URLSearchParams), setParams(obj), navigate(url), signal }.
// Page state lives in the URL (setParams replaces the query string), so a view can be
// shared by copying the address.
import { h, clear, msg, errorText } from './ui.js';

const PAGES = [
  { seg: 'explore', title: 'Metrics', load: () => import('./metrics.js') },
  { seg: 'logs', title: 'Logs', load: () => import('./logs.js') },
  { seg: 'traces', title: 'Traces', load: () => import('./traces.js') },
  { seg: 'services', title: 'Services', load: () => import('./services.js') },
  { seg: 'errors', title: 'Errors', load: () => import('./errors.js') },
  { seg: 'alerts', title: 'Alerts', load: () => import('./alerts.js') },
  { seg: 'status', title: 'Status', load: () => import('./status.js') },
];
const HOME = 'explore';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let current = null; // { seg, cleanup, ctl }

// ---- theme ----
const THEME_KEY = 'vigil-theme';
function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  window.dispatchEvent(new CustomEvent('vigil-theme', { detail: t }));
}
function initialTheme() {
  const saved = localStorage.getItem(THEME_KEY);
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}
applyTheme(initialTheme());
document.querySelector('.theme-toggle').addEventListener('click', () => {
  const t = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  localStorage.setItem(THEME_KEY, t);
  applyTheme(t);
});

// ---- navigation ----
for (const p of PAGES) nav.append(h('a', { href: `/${p.seg}`, 'data-link': '', 'data-page': p.seg }, p.title));
const navToggle = document.querySelector('.nav-toggle');
navToggle.addEventListener('click', () => {
  const open = nav.classList.toggle('open');
  navToggle.setAttribute('aria-expanded', String(open));
});

export function navigate(url, replace = false) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
}

// Same-origin links to console pages are handled here; API links and new-tab clicks are not.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[href]');
  if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || a.target) return;
  const u = new URL(a.href, location.href);
  if (u.origin !== location.origin) return;
  const seg = u.pathname.split('/')[1];
  if (u.pathname !== '/' && !PAGES.some((p) => p.seg === seg)) return;
  ev.preventDefault();
  nav.classList.remove('open');
  navigate(u.pathname + u.search + u.hash);
});
window.addEventListener('popstate', () => route());

async function route() {
  let path = location.pathname;
  if (path === '/' || path === '') {
    history.replaceState(null, '', `/${HOME}${location.search}`);
    path = `/${HOME}`;
  }
  const seg = path.split('/')[1];
  const page = PAGES.find((p) => p.seg === seg);
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.page === seg) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // Every navigation remounts the page; a page's own state changes go through setParams,
  // which rewrites the address without navigating.
  if (current) {
    current.ctl.abort('superseded');
    if (current.cleanup) try { current.cleanup(); } catch (e) { console.error(e); }
    current = null;
  }
  const ctl = new AbortController();
  const mine = { seg, cleanup: null, ctl };
  current = mine;
  if (!page) {
    clear(main, h('h1', {}, 'Not found'), msg('warn', `The console has no page at ${path}.`));
    document.title = 'Vigil';
    return;
  }
  document.title = `${page.title} · Vigil`;
  const root = h('div', { class: `page page-${seg}`, 'data-page': seg });
  clear(main, root);
  const ctx = {
    path,
    params: new URLSearchParams(location.search),
    signal: ctl.signal,
    navigate,
    setParams(obj) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(obj)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
      const s = q.toString();
      history.replaceState(null, '', `${location.pathname}${s ? `?${s}` : ''}`);
      ctx.params = q;
    },
  };
  try {
    const mod = await page.load();
    if (current !== mine) return;
    mine.cleanup = (await mod.mount(root, ctx)) || null;
  } catch (e) {
    if (current !== mine) return;
    console.error(e);
    clear(root, msg('error', `This page failed: ${errorText(e)}`));
  }
}

route();
