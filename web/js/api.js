// api: every request the console makes goes through here. It adds a timeout, turns
// Prometheus-style JSON errors, Tempo's plain-text errors and network failures into one
// ApiError with a message a person can read, and never throws anything else.
const TIMEOUT_MS = 30000;

export class ApiError extends Error {
  constructor(message, status = 0, type = '') {
    super(message);
    this.status = status; // HTTP status, 0 when the server was not reached
    this.type = type;     // Prometheus errorType ("bad_data", "execution", ...) when given
  }
}

function buildURL(path, params) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.searchParams.append(k, x));
    else u.searchParams.set(k, String(v));
  }
  return u.pathname + u.search;
}

// GET (or POST form when opts.post) path with params; resolves to parsed JSON, or the
// text for non-JSON answers. opts.json sends that value as a JSON body (POST unless
// opts.method says otherwise); opts.method alone (e.g. 'DELETE') sends no body.
// opts.signal aborts it (the caller moved on).
export async function request(path, params, opts = {}) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(new ApiError(`no answer from ${path} within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
  if (opts.signal) {
    if (opts.signal.aborted) ctl.abort(opts.signal.reason);
    else opts.signal.addEventListener('abort', () => ctl.abort(opts.signal.reason), { once: true });
  }
  let resp;
  try {
    const init = { signal: ctl.signal, headers: { Accept: 'application/json' } };
    let url = buildURL(path, params);
    if (opts.post) {
      init.method = 'POST';
      init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
      init.body = new URL(url, location.origin).searchParams.toString();
      url = path;
    } else if (opts.json !== undefined) {
      init.method = opts.method || 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.json);
    } else if (opts.method) {
      init.method = opts.method;
    }
    resp = await fetch(url, init);
  } catch (e) {
    clearTimeout(timer);
    if (ctl.signal.aborted) {
      if (ctl.signal.reason instanceof ApiError) throw ctl.signal.reason; // our timeout
      throw new DOMException('aborted', 'AbortError');                    // the caller's
    }
    throw new ApiError(`cannot reach Vigil (${e && e.message ? e.message : e})`);
  }
  let text;
  try {
    text = await resp.text();
  } catch (e) {
    clearTimeout(timer);
    if (ctl.signal.aborted && ctl.signal.reason instanceof ApiError) throw ctl.signal.reason;
    if (ctl.signal.aborted) throw new DOMException('aborted', 'AbortError');
    throw new ApiError(`the answer from ${path} was cut off`, resp.status);
  }
  clearTimeout(timer);
  let body = text;
  const ct = resp.headers.get('Content-Type') || '';
  if (ct.includes('json') || /^\s*[{[]/.test(text)) {
    try { body = JSON.parse(text); } catch { /* keep the text */ }
  }
  if (!resp.ok || (body && body.status === 'error')) {
    let msg;
    if (body && typeof body === 'object' && body.error) msg = body.error;
    else if (typeof body === 'string' && body.trim()) msg = body.trim();
    else msg = `${resp.status} ${resp.statusText}`;
    throw new ApiError(msg, resp.status, body && body.errorType ? body.errorType : '');
  }
  return body;
}

export const get = (path, params, opts) => request(path, params, opts);

// True for errors the caller asked for (navigation away, a newer query).
export const isAbort = (e) => Boolean(e) && e.name === 'AbortError';
