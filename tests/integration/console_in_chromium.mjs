// console_in_chromium: drives Vigil's web console in Debian's headless Chromium through
// playwright-core, as a person would: types queries, presses keys, clicks, and checks
// what the page shows. Prints "ok - ..." / "FAIL - ..." lines (console_in_chromium.sh
// counts them) and saves a screenshot of each page to OUT_DIR/console-<page>.png.
//
// Usage: node console_in_chromium.mjs BASE_URL DATA_JSON OUT_DIR
// DATA_JSON is what console_data.py wrote (trace ids, series counts).
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';

const [base, dataFile, outDir] = process.argv.slice(2);
const data = JSON.parse(readFileSync(dataFile, 'utf8'));
let failed = 0;
const ok = (name) => console.log(`ok   - ${name}`);
const bad = (name, detail) => { failed++; console.log(`FAIL - ${name}${detail ? `: ${detail}` : ''}`); };
const check = (name, cond, detail) => (cond ? ok(name) : bad(name, detail));

// Runs one step; a thrown error (a timeout waiting for an element) is one failure, and
// the next step still runs.
async function step(name, fn) {
  try {
    await fn();
  } catch (e) {
    bad(name, String(e && e.message ? e.message.split('\n')[0] : e));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
context.setDefaultTimeout(15000);
const page = await context.newPage();
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error' && !/status of 4\d\d/.test(m.text())) pageErrors.push(m.text()); });

const shot = (name) => page.screenshot({ path: `${outDir}/console-${name}.png`, fullPage: false });
const text = (sel) => page.locator(sel).first().innerText();

// ---- the shell ----
await step('shell', async () => {
  const resp = await page.goto(`${base}/`);
  check('GET / answers 200 with HTML', resp.status() === 200 && /text\/html/.test(resp.headers()['content-type']));
  await page.waitForURL(/\/explore/);
  ok('/ opens the Metrics explorer');
  const nav = await page.locator('nav#nav a').allInnerTexts();
  check('navigation lists the pages', ['Metrics', 'Logs', 'Traces', 'Services', 'Errors', 'Alerts', 'Status'].every((p) => nav.includes(p)), nav.join(','));
  const before = await page.evaluate(() => document.documentElement.dataset.theme);
  await page.click('.theme-toggle');
  const after = await page.evaluate(() => document.documentElement.dataset.theme);
  check('the theme button switches light/dark', before !== after && ['light', 'dark'].includes(after), `${before} -> ${after}`);
  await page.reload();
  const kept = await page.evaluate(() => document.documentElement.dataset.theme);
  check('the theme is kept across a reload', kept === after, kept);
  await page.click('.theme-toggle'); // back to the first theme
  const r404 = await page.goto(`${base}/static/js/nope.js`);
  check('a missing static file is 404', r404.status() === 404);
  const deep = await page.goto(`${base}/status`);
  check('a deep link to a page is served (client-side route)', deep.status() === 200);
  await page.locator('h1', { hasText: 'Status' }).waitFor();
  ok('a deep link shows its page');
});

// ---- metrics explorer ----
await step('metrics explorer', async () => {
  await page.goto(`${base}/explore`);
  const box = page.locator('textarea.query-input');
  await box.click();
  await box.pressSequentially('console_demo_temp', { delay: 20 });
  const sugg = page.locator('.suggest li', { hasText: 'console_demo_temperature_celsius' });
  await sugg.first().waitFor();
  ok('typing a metric name prefix suggests the metric');
  await box.press('Enter'); // takes the suggestion
  check('Enter takes the suggestion', (await box.inputValue()) === 'console_demo_temperature_celsius', await box.inputValue());
  await box.pressSequentially('{ro', { delay: 20 });
  await page.locator('.suggest li', { hasText: 'room' }).first().waitFor();
  ok('label names are suggested inside {}');
  await box.press('Enter');
  await page.locator('.suggest li', { hasText: 'kitchen' }).first().waitFor();
  ok('label values are suggested after label=');
  await box.press('Escape');
  await box.fill('console_demo_temperature_celsius');
  await box.press('Enter');
  const chart = page.locator('.graph.chart');
  await chart.waitFor();
  await page.locator('.graph .uplot').waitFor();
  check('the graph draws one line per series', (await chart.getAttribute('data-series')) === String(data.gauge_series),
    await chart.getAttribute('data-series'));
  const legend = await page.locator('.graph .u-legend .u-series').count();
  check('the legend lists every series (plus time)', legend === data.gauge_series + 1, String(legend));
  check('the query is in the URL', decodeURIComponent(page.url()).includes('q=console_demo_temperature_celsius'), page.url());
  // Hover over the plot: the tooltip shows values.
  const over = page.locator('.graph .u-over');
  const bb = await over.boundingBox();
  await page.mouse.move(bb.x + bb.width * 0.9, bb.y + bb.height / 2);
  await page.locator('.chart-tip').waitFor({ state: 'visible' });
  check('hovering shows a tooltip with the series', /room="/.test(await text('.chart-tip')));
  await page.mouse.move(0, 0);
  await shot('metrics');

  // Stacked, the range picker and a shared link.
  await page.click('button:has-text("Stacked")');
  await page.locator('.graph .uplot').waitFor();
  check('stacking keeps the series', (await page.locator('.graph.chart').getAttribute('data-series')) === '3');
  check('stacking is in the URL', page.url().includes('stacked=1'));
  await page.selectOption('select.range-picker', '6h');
  await page.locator('.graph .uplot').waitFor();
  check('the range is in the URL', page.url().includes('range=6h'));
  const shared = page.url();
  await page.goto('about:blank');
  await page.goto(shared);
  await page.locator('.graph .uplot').waitFor();
  check('a shared link shows the same view', (await page.locator('textarea.query-input').inputValue()) === 'console_demo_temperature_celsius'
    && (await page.locator('select.range-picker').inputValue()) === '6h');

  // Table view.
  await page.click('button[role="tab"]:has-text("Table")');
  await page.locator('table.result-table').waitFor();
  const rows = await page.locator('table.result-table tbody tr').count();
  check('the table lists one row per series', rows === data.gauge_series, String(rows));
  const agg = page.locator('textarea.query-input');
  await agg.fill('sum by (service) (rate(console_demo_requests_total[5m]))');
  await agg.press('Enter');
  await page.waitForFunction(() => document.querySelectorAll('table.result-table tbody tr').length === 2);
  ok('an aggregation shows its two rows');
  await shot('metrics-table');

  // Bad input: a syntax error is shown with its position; the page stays usable.
  await agg.fill('sum(rate(console_demo_requests_total[5m])');
  await agg.press('Enter');
  await page.locator('.result .msg-error').waitFor();
  check('an invalid query shows the parse error', /unclosed left parenthesis/.test(await text('.result .msg-error')));
  await page.locator('.syntax-error').waitFor();
  check('the error is marked under the query with a caret', /\^/.test(await text('.syntax-error')));
  // A huge result: the graph draws a capped number of series and says so.
  await page.click('button[role="tab"]:has-text("Graph")');
  await agg.fill('console_demo_many');
  await agg.press('Enter');
  await page.locator('.result .msg-warn').waitFor();
  check('the cap is explained', (await text('.result .msg-warn')).includes(`Showing 50 of ${data.many_series} series`), await text('.result .msg-warn'));
  check('a huge result is capped at 50 drawn series', (await page.locator('.graph.chart').getAttribute('data-series')) === '50');
  await agg.fill('no_such_metric_at_all');
  await agg.press('Enter');
  await page.locator('.result .msg-empty').waitFor();
  check('an empty result says no data', /no data/i.test(await text('.result .msg-empty')));
  check('the syntax error is gone after a valid query', await page.locator('.syntax-error').isHidden());
});

// ---- logs ----
await step('logs', async () => {
  await page.goto(`${base}/logs`);
  const box = page.locator('textarea.query-input');
  await box.click();
  await box.pressSequentially('{serv', { delay: 20 });
  await page.locator('.suggest li', { hasText: 'service_name' }).first().waitFor();
  ok('stream label names are suggested inside {}');
  await box.press('Enter');
  await page.locator('.suggest li', { hasText: 'frontend' }).first().waitFor();
  await box.press('Enter');
  check('a label value completes the selector', (await box.inputValue()) === '{service_name="frontend"}', await box.inputValue());
  await box.press('Enter');
  await page.locator('.log-lines .log-line').first().waitFor();
  const n = await page.locator('.log-lines .log-line').count();
  check('every demo line is listed', n === data.log_lines, String(n));
  const texts = await page.locator('.log-lines .log-line .text').allInnerTexts();
  check('the newest line comes first', /line 5/.test(texts[0]), texts[0]);
  check('lines are coloured by level', (await page.locator('.log-line.l-error').count()) === 1 && (await page.locator('.log-line.l-warn').count()) === 1);
  await page.locator('.volume .uplot').waitFor();
  const volume = await page.evaluate(() => {
    const u = document.querySelector('.volume');
    return u && u.dataset.total;
  });
  check('the volume histogram counts every line', volume === String(data.log_lines), String(volume));
  await page.locator('.log-line.l-error').click();
  await page.locator('.log-detail a.trace-link').waitFor();
  check('a line with a trace id links to its trace', (await page.locator('.log-detail a.trace-link').getAttribute('href')) === `/traces/${data.trace_err}`);
  check('an opened line shows its parsed fields', /payment failed/.test(await text('.log-detail')));
  await shot('logs');
  await page.locator('.log-detail a.trace-link').click();
  await page.locator('.waterfall .wf-row').first().waitFor();
  ok('the trace link opens the waterfall');

  // From the trace back to the logs with its id.
  await page.locator('a.logs-link').click();
  await page.locator('.log-lines .log-line').first().waitFor();
  check('the trace\'s logs link lists its line', (await page.locator('.log-lines .log-line').count()) === 1 && /payment failed/.test(await text('.log-lines')));

  // Bad input and no match.
  await page.goto(`${base}/logs?q=${encodeURIComponent('{service_name="frontend"')}`);
  await page.locator('.log-out .msg-error').waitFor();
  check('an invalid LogQL query shows the parse error', /parse error/.test(await text('.log-out .msg-error')));
  check('the error is marked under the query', await page.locator('.syntax-error').isVisible());
  await page.goto(`${base}/logs?q=${encodeURIComponent('{service_name="frontend"} |= "no such text"')}`);
  await page.locator('.log-out .msg-empty').waitFor();
  ok('a query without matches says so');

  // Live tail: a line pushed now shows up without reloading.
  await page.goto(`${base}/logs?q=${encodeURIComponent('{service_name="tailtest"}')}`);
  await page.locator('.log-out .msg-empty').waitFor();
  await page.click('button.live-btn');
  await page.locator('.tail-wait').waitFor();
  await page.waitForTimeout(500);
  const ns = `${Date.now()}000000`;
  const push = await fetch(`${base}/loki/api/v1/push`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ streams: [{ stream: { service_name: 'tailtest' }, values: [[ns, 'level=info msg="tailed line"']] }] }) });
  check('a line is pushed while tailing', push.status === 204 || push.status === 200, String(push.status));
  await page.locator('.log-lines .log-line', { hasText: 'tailed line' }).waitFor({ timeout: 20000 });
  ok('live tail shows the new line');
  await page.click('button.live-btn');
});

// ---- traces ----
await step('traces', async () => {
  await page.goto(`${base}/traces`);
  await page.locator('.results table').waitFor();
  const n = await page.locator('.results table tbody tr').count();
  check('the trace search lists both demo traces', n === 2, String(n));
  // Search by service: only the payment trace has a payment span.
  await page.locator('select[name="service"] option[value="payment"]').waitFor({ state: 'attached' });
  await page.selectOption('select[name="service"]', 'payment');
  await page.waitForFunction(() => document.querySelectorAll('.results table tbody tr').length === 1);
  check('searching by service narrows the list', (await page.locator('.results table tbody tr').innerText()).includes('POST /pay'));
  check('the search is in the URL', page.url().includes('service=payment'));
  // TraceQL and a bad TraceQL.
  await page.selectOption('select[name="service"]', '');
  await page.fill('input[name="q"]', '{ span.db.system = "postgresql" }');
  await page.press('input[name="q"]', 'Enter');
  await page.waitForFunction(() => /GET \/checkout/.test(document.querySelector('.results')?.innerText || '')
    && document.querySelectorAll('.results table tbody tr').length === 1);
  ok('a TraceQL search finds the trace with the database span');
  await shot('traces');
  await page.fill('input[name="q"]', '{ status = ');
  await page.press('input[name="q"]', 'Enter');
  await page.locator('.results .msg-error').waitFor();
  check('an invalid TraceQL query shows the parse error', /parse error/i.test(await text('.results .msg-error')));
  await page.fill('input[name="q"]', '{ span.http.method = "DELETE" }');
  await page.press('input[name="q"]', 'Enter');
  await page.locator('.results .msg-empty').waitFor();
  ok('a search without matches says so');

  // The waterfall of the four-span trace: parent before child, nesting by depth.
  await page.fill('input[name="q"]', '');
  await page.press('input[name="q"]', 'Enter');
  await page.locator('.results a.trace-link', { hasText: data.trace_ok.slice(0, 16) }).click();
  await page.waitForURL(new RegExp(`/traces/${data.trace_ok}`));
  await page.locator('.waterfall .wf-row').first().waitFor();
  const names = await page.locator('.waterfall .wf-row').evaluateAll((rows) => rows.map((r) => r.dataset.name));
  check('the waterfall lists the spans parent first, in order', JSON.stringify(names) === JSON.stringify(data.trace_ok_spans), JSON.stringify(names));
  const pads = await page.locator('.waterfall .wf-name').evaluateAll((els) => els.map((e) => parseInt(e.style.paddingLeft, 10)));
  check('children are indented under their parents', pads.every((p, i) => i === 0 || p > pads[i - 1]), JSON.stringify(pads));
  await page.locator('.waterfall .wf-row', { hasText: 'SELECT cart' }).click();
  await page.locator('.span-detail').waitFor();
  check('a span opens its attributes', /postgresql/.test(await text('.span-detail')));
  await page.keyboard.press('Enter');
  check('Enter on the focused span closes its details', (await page.locator('.span-detail').count()) === 0);
  await shot('trace');

  // The failed trace: errors marked, the exception's stack trace shown, logs linked.
  await page.goto(`${base}/traces/${data.trace_err}`);
  await page.locator('.waterfall .wf-row').first().waitFor();
  const errs = await page.locator('.waterfall .wf-row[data-error="1"]').count();
  check('failed spans are marked', errs === 3, String(errs));
  await page.locator('.waterfall .wf-row', { hasText: 'charge' }).click();
  await page.locator('.span-detail pre.stack').waitFor();
  check('the exception stack trace is shown', /Payment\.charge/.test(await text('.span-detail pre.stack')));
  const href = await page.locator('a.logs-link').getAttribute('href');
  check('the trace links to its logs', decodeURIComponent(href).includes(data.trace_err), href);
  await page.goto(`${base}/traces/0123456789abcdef0123456789abcdef`);
  await page.locator('.msg-warn').waitFor();
  check('an unknown trace id says it is not stored', /No trace/.test(await text('.msg-warn')));
});

// ---- errors ----
await step('errors', async () => {
  await page.goto(`${base}/errors`);
  await page.locator('tr.error-group').first().waitFor();
  const groups = await page.locator('tr.error-group').allInnerTexts();
  check('the exception is listed as an error group', groups.some((g) => /IllegalStateException/.test(g) && /card declined/.test(g)), groups.join(' | ').slice(0, 300));
  await page.locator('tr.error-group', { hasText: 'IllegalStateException' }).locator('a', { hasText: 'trace' }).waitFor();
  ok('the group links to a sample trace');
  await shot('errors');
  await page.locator('tr.error-group', { hasText: 'IllegalStateException' }).click();
  await page.locator('h1', { hasText: 'IllegalStateException' }).waitFor();
  check('a group opens its details with sample traces', await page.locator(`a[href="/traces/${data.trace_err}"]`).count() >= 1);
});

// ---- services: the map and RED table from span metrics and the service graph ----
await step('services', async () => {
  await page.goto(`${base}/services`);
  await page.locator('.svc-map svg .node[data-service="payment"]').waitFor();
  const nodes = await page.locator('.svc-map svg .node').evaluateAll((els) => els.map((e) => e.dataset.service).sort());
  const want = [...new Set(data.edges.flat())].sort();
  check('the map draws a node per service and endpoint', JSON.stringify(nodes) === JSON.stringify(want), JSON.stringify(nodes));
  const edges = await page.locator('.svc-map svg path.edge').evaluateAll((els) => els.map((e) => `${e.dataset.client}>${e.dataset.server}`));
  check('the map draws an edge per call', data.edges.every(([c, sv]) => edges.includes(`${c}>${sv}`)) && edges.length === data.edges.length, JSON.stringify(edges));
  const xs = await page.locator('.svc-map svg .node').evaluateAll((els) => Object.fromEntries(els.map((e) => [e.dataset.service, e.transform.baseVal[0].matrix.e])));
  check('callers are drawn left of what they call', xs.user < xs.frontend && xs.frontend < xs.cart && xs.cart < xs.shop, JSON.stringify(xs));
  const label = async (c, sv) => page.locator(`.svc-map text.edge-label[data-client="${c}"][data-server="${sv}"]`).textContent();
  const payLabel = await label('frontend', 'payment');
  check('the frontend -> payment edge shows its rate and error ratio', /\d\/(s|min|h) · [1-9][\d.]*% err/.test(payLabel), payLabel);
  const cartLabel = await label('frontend', 'cart');
  check('the frontend -> cart edge shows no errors', /\d\/(s|min|h) · 0% err/.test(cartLabel), cartLabel);
  check('the virtual database node is marked', (await page.locator('.svc-map .node.virtual[data-service="shop"]').count()) === 1);
  const rows = await page.locator('.svc-red tr.svc-row').evaluateAll((els) => els.map((e) => e.dataset.service));
  check('the RED table has a row per traced service', JSON.stringify(rows) === JSON.stringify(data.services), JSON.stringify(rows));
  const cells = async (svc) => page.locator(`.svc-red tr.svc-row[data-service="${svc}"] td`).allInnerTexts();
  const pay = await cells('payment');
  check('payment shows a rate, an error ratio and p50/p95', /\/(s|min|h)/.test(pay[1]) && /[1-9][\d.]*%/.test(pay[2]) && /ms/.test(pay[3]) && /ms/.test(pay[4]), JSON.stringify(pay));
  const cart = await cells('cart');
  check('cart shows no errors', cart[2] === '0%', JSON.stringify(cart));
  check('the calls are listed under the map', (await page.locator('.svc-calls tr.call-row').count()) === data.edges.length);

  // A node opens the Traces search for that service.
  await page.locator('.svc-map .node[data-service="payment"]').click();
  await page.waitForURL(/\/traces\?service=payment/);
  await page.waitForFunction(() => document.querySelectorAll('.results table tbody tr').length === 1);
  check('clicking a service opens its traces', /POST \/pay/.test(await page.locator('.results table tbody tr').innerText()));
  await page.goBack();
  await page.locator('.svc-red tr.svc-row[data-service="cart"]').click();
  await page.waitForURL(/\/traces\?service=cart/);
  ok('a RED table row opens the traces of its service');

  // The range picker: a short range shows the rate over time as sparklines.
  await page.goto(`${base}/services`);
  await page.locator('.svc-red tr.svc-row').first().waitFor();
  await page.selectOption('.range-picker', '5m');
  await page.waitForURL(/range=5m/);
  await page.waitForFunction(() => document.querySelectorAll('.svc-red .sparkline canvas').length === 3);
  ok('each service gets a sparkline of its rate');
  await shot('services');

  // No data and a failing API: clear messages, not a blank page.
  await page.route('**/api/v1/query?*', (r) => r.fulfill({ status: 200, contentType: 'application/json', body: '{"status":"success","data":{"resultType":"vector","result":[]}}' }));
  await page.goto(`${base}/services`);
  await page.locator('.svc-map .msg-empty').waitFor();
  check('no service data says so', /No service data/.test(await text('.svc-map .msg-empty')));
  await page.unroute('**/api/v1/query?*');
  await page.route('**/api/v1/query?*', (r) => r.fulfill({ status: 422, contentType: 'application/json', body: '{"status":"error","errorType":"execution","error":"query timed out"}' }));
  await page.goto(`${base}/services`);
  await page.locator('.svc-map .msg-error').waitFor();
  check('a failing query is shown as an error', /query timed out/.test(await text('.svc-map .msg-error')));
  await page.unroute('**/api/v1/query?*');
});

// ---- alerts: rules, firing alerts, silences, notification history ----
await step('alerts', async () => {
  await page.goto(`${base}/alerts`);
  const row = page.locator('tr.alert-row[data-alertname="ConsoleAlwaysFiring"][data-state="firing"]');
  await row.waitFor({ timeout: 25000 });
  const at = await row.innerText();
  check('the firing alert is listed with its labels', /severity="page"/.test(at) && /team="web"/.test(at), at);
  check('the alert shows its annotations', /the console test alert/.test(at), at);
  check('the alert shows since when it is active', /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(at), at);
  check('the firing count is shown', (await text('.card-firing .v')) === '1');
  const rec = page.locator('tr.rule-row[data-rule="console:demo_requests:rate1m"]');
  check('the recording rule is listed and healthy', (await rec.getAttribute('data-health')) === 'ok' && /ago/.test(await rec.innerText()));
  check('the alerting rule shows its state', (await page.locator('tr.rule-row[data-rule="ConsoleAlwaysFiring"]').getAttribute('data-state')) === 'firing');
  const broken = page.locator('tr.rule-row[data-rule="console:two_series"]');
  check('a failing rule shows its health and error', (await broken.getAttribute('data-health')) === 'err' && /exceeded limit/.test(await broken.locator('.rule-error').innerText()));
  await page.locator('.rule-group[data-group="console"]').waitFor();
  ok('rule groups are listed by name');
  await page.locator('tr.attempt-row[data-receiver="hook"][data-status="success"]').first().waitFor({ timeout: 25000 });
  ok('the notification history lists the webhook delivery');

  // Silence the alert from its row: the form is filled with its labels.
  await row.locator('button.silence-btn').click();
  const names = await page.locator('.silence-form [name="m-name"]').evaluateAll((els) => els.map((e) => e.value));
  check('"Silence" fills the matchers with the alert\'s labels', JSON.stringify(names) === JSON.stringify(['alertname', 'severity', 'team']), JSON.stringify(names));
  await page.fill('.silence-form [name="duration"]', '1h');
  check('the duration sets the end', (await page.inputValue('.silence-form [name="ends"]')) !== '');
  await page.fill('.silence-form [name="createdBy"]', 'console-test');
  await page.fill('.silence-form [name="comment"]', 'muted by the console test');
  await page.click('.silence-form button[type="submit"]');
  const srow = page.locator('tr.silence-row[data-state="active"]', { hasText: 'muted by the console test' });
  await srow.waitFor();
  const st = await srow.innerText();
  check('the new silence is listed as active with its matchers', /alertname="ConsoleAlwaysFiring"/.test(st) && /console-test/.test(st), st);
  const id = await srow.getAttribute('data-id');
  const api = await (await fetch(`${base}/api/v1/silences`)).json();
  check('the silence exists in the API', api.some((x) => x.id === id && x.status.state === 'active' && x.comment === 'muted by the console test'));
  await row.locator('.silenced').waitFor();
  ok('the alert is marked as silenced');
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('alerts');

  await srow.locator('button.expire-btn').click();
  await page.locator(`tr.silence-row[data-id="${id}"]`).waitFor({ state: 'detached' });
  const api2 = await (await fetch(`${base}/api/v1/silences`)).json();
  check('expiring the silence ends it', api2.some((x) => x.id === id && x.status.state === 'expired'));
  await page.check('input[name="show-expired"]');
  await page.locator(`tr.silence-row[data-id="${id}"][data-state="expired"]`).waitFor();
  ok('expired silences are listed on request');

  // A silence the server refuses: its reason is shown.
  await page.fill('.silence-form [name="m-name"]', 'alertname');
  await page.selectOption('.silence-form [name="m-op"]', '=~');
  await page.fill('.silence-form [name="m-value"]', '.*');
  await page.fill('.silence-form [name="comment"]', 'matches everything');
  await page.click('.silence-form button[type="submit"]');
  await page.locator('.silence-form .msg-error').waitFor();
  check('a refused silence shows the server\'s reason', /empty/.test(await text('.silence-form .msg-error')), await text('.silence-form .msg-error'));

  // No rules configured and a failing API.
  await page.route('**/api/v1/rules', (r) => r.fulfill({ status: 200, contentType: 'application/json', body: '{"status":"success","data":{"groups":[]}}' }));
  await page.route('**/api/v1/alerts', (r) => r.fulfill({ status: 200, contentType: 'application/json', body: '{"status":"success","data":{"alerts":[]}}' }));
  await page.route('**/api/v1/notifications?*', (r) => r.fulfill({ status: 400, contentType: 'application/json', body: '{"status":"error","errorType":"bad_data","error":"the notifier is not running"}' }));
  await page.goto(`${base}/alerts`);
  await page.locator('.rules-list .msg-empty').waitFor();
  check('no rules says so', /No rules configured/.test(await text('.rules-list .msg-empty')));
  check('no alerts says why', /no rules are configured/.test(await text('.alerts-list .msg-empty')));
  await page.locator('.notif-list .msg-error').waitFor();
  check('a failing API is shown in its section', /notifier is not running/.test(await text('.notif-list .msg-error')));
  await page.unrouteAll();
});

// ---- status ----
await step('status', async () => {
  await page.goto(`${base}/status`);
  await page.locator('.ingest table').waitFor();
  const recv = await page.locator('.ingest table').innerText();
  check('ingestion lists the receivers that got data', /otlp/i.test(recv) && /loki/i.test(recv), recv.slice(0, 200));
  await page.locator('.cardinality table').first().waitFor();
  check('top cardinality lists the demo metrics', /console_demo/.test(await page.locator('.cardinality').innerText()));
  check('build info is shown', /vigil/i.test(await page.locator('.cards').innerText()));

  // The configuration: the YAML of /api/v1/status/config, one collapsible block per
  // section, secrets shown as <secret> and their values nowhere in the page.
  await page.locator('.config details.cfg-section[data-section="scrape_configs"]').waitFor();
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot('status');
  const sections = await page.locator('.config details.cfg-section').evaluateAll((ds) => ds.map((d) => d.dataset.section));
  check('the configuration lists its sections', ['server', 'storage', 'notifications', 'scrape_configs'].every((x) => sections.includes(x)), sections.join(','));
  const scrape = await page.locator('.config details[data-section="scrape_configs"] pre').innerText();
  check('a scrape job\'s basic_auth password reads <secret>', /job_name: console_secret_job/.test(scrape) && /password: <secret>/.test(scrape) && /username: scraper/.test(scrape), scrape.slice(0, 300));
  const notif = await page.locator('.config details[data-section="notifications"] pre').innerText();
  check('the Slack api_url and SMTP password read <secret>', /api_url: <secret>/.test(notif) && /auth_password: <secret>/.test(notif), notif.slice(0, 300));
  check('masked values are marked', (await page.locator('.config .cfg-secret').count()) >= 3);
  check('the key sections start folded', !(await page.locator('.config details[data-section="server"]').evaluate((d) => d.open)));
  await page.click('.cfg-expand');
  check('expand all opens every section', /retention: /.test(await page.locator('.config details[data-section="storage"] pre').innerText()));
  const html = await page.content();
  check('no secret value anywhere in the page', !/SECRET-VALUE/.test(html) && !/SECRET-VALUE/.test(await page.locator('body').innerText()));
  await page.click('.cfg-collapse');
  check('collapse all folds them', await page.locator('.config details[open]').count() === 0);
  await page.locator('.config').scrollIntoViewIfNeeded();
  await page.click('.cfg-expand');
  await page.locator('.config details[data-section="notifications"]').scrollIntoViewIfNeeded();
  await shot('status-config');

  // An API error is shown in the section, with the server's reason. The browser logs the
  // mocked 500 itself; that one line is not a page error.
  const errsBefore = pageErrors.length;
  await page.route('**/api/v1/status/config', (r) => r.fulfill({ status: 500, contentType: 'application/json', body: '{"status":"error","errorType":"internal","error":"status/config: a value is not valid UTF-8"}' }));
  await page.goto(`${base}/status`);
  await page.locator('.config .msg-error').waitFor();
  check('a failing status/config shows its reason', /not valid UTF-8/.test(await text('.config .msg-error')), await text('.config .msg-error'));
  await page.unrouteAll();
  pageErrors.push(...pageErrors.splice(errsBefore).filter((e) => !/status of 500/.test(e)));
});

// ---- narrow screen and errors in the page itself ----
await step('narrow screen', async () => {
  await page.setViewportSize({ width: 390, height: 800 });
  await page.goto(`${base}/explore?q=console_demo_temperature_celsius`);
  await page.locator('.graph .uplot').waitFor();
  await page.click('.nav-toggle');
  await page.locator('nav#nav.open a', { hasText: 'Status' }).click();
  await page.locator('h1', { hasText: 'Status' }).waitFor();
  ok('on a narrow screen the menu opens and navigates');
  const wide = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
  check('nothing overflows sideways on a narrow screen', wide);
  for (const [path, sel] of [['/services', '.svc-red tr.svc-row'], ['/alerts', 'tr.alert-row']]) {
    await page.goto(`${base}${path}`);
    await page.locator(sel).first().waitFor();
    const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
    check(`${path} does not overflow sideways on a narrow screen`, fits);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
});

check('no JavaScript errors in the page', pageErrors.length === 0, pageErrors.slice(0, 3).join(' | '));
await browser.close();
process.exit(failed ? 1 : 0);
