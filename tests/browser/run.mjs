// Browser tests of the web app: the real server (target/debug/pipeproof) on loopback with a
// fresh data dir, runs ingested over HTTP from generated CSV, and Debian's Chromium driven by
// playwright-core. Then the offline verify page served by a plain static server with no API,
// and the main paths again in Firefox (tests/browser/firefox.mjs). Screenshots of each page go
// to tests/artifacts/screenshots/. Exits non-zero on any failure.
//
// Needs: `cargo build -p pipeproof-server` and `cd web && trunk build --release --offline --locked`.
// Usage: node tests/browser/run.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { createRequire } from 'node:module';
import { firefoxChecks } from './firefox.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(join(root, 'package.json'));
const { chromium } = require('playwright-core');

const bin = process.env.PIPEPROOF_BIN ?? join(root, 'target', 'debug', 'pipeproof');
// PIPEPROOF_DIST: another build of the app (an earlier one, to see a new check fail).
const dist = process.env.PIPEPROOF_DIST ?? join(root, 'web', 'dist');
const shots = join(root, 'tests', 'artifacts', 'screenshots');
const fixtures = join(root, 'tests', 'browser', 'fixtures');
for (const [what, path, fix] of [
  ['the server binary', bin, 'cargo build -p pipeproof-server'],
  ['the built web app', join(dist, 'index.html'), 'cd web && trunk build --release --offline --locked'],
]) {
  if (!existsSync(path)) {
    console.error(`browser tests: ${what} is missing at ${path}; build it with: ${fix}`);
    process.exit(2);
  }
}
mkdirSync(shots, { recursive: true });

const failures = [];
const children = [];
const tmp = mkdtempSync(join(tmpdir(), 'pipeproof-browser-'));
let browser;
let currentPage;

function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

// BROWSER_ONLY=REGEX runs only the steps whose names match (and the sign-in the others
// start from), to try one check quickly; the whole suite is what counts.
const only = process.env.BROWSER_ONLY ? new RegExp(process.env.BROWSER_ONLY) : null;

async function step(name, fn) {
  if (only && name !== 'sign in' && !only.test(name)) return;
  try {
    await fn();
  } catch (e) {
    check(false, `${name}: ${e.message.split('\n')[0]}`);
    if (currentPage) await currentPage.screenshot({ path: join(shots, `failed-${name.replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function start(cmd, args, env, name) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  child.on('exit', (code) => {
    if (code !== null && code !== 0 && !child.stopping) console.error(`${name} exited with ${code}:\n${log}`);
  });
  children.push(child);
  child.log = () => log;
  return child;
}

async function waitFor(url, what) {
  for (let i = 0; i < 600; i++) {
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not answer at ${url} within 60 s`);
}

// Generated data: `n` orders with an id key; the next steps change, drop and add rows.
function csv(rows, columns) {
  return [columns.join(','), ...rows.map((r) => columns.map((c) => r[c] ?? '').join(','))].join('\n') + '\n';
}
function orders(n) {
  const rows = [];
  for (let id = 1; id <= n; id++) {
    rows.push({ id, customer: `c${(id * 7) % 41}`, amount: ((id * 37) % 1000) / 4, status: id % 3 ? 'open' : 'paid' });
  }
  return rows;
}

async function main() {
  const token = randomBytes(16).toString('hex');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = start(bin, ['serve', '--data-dir', join(tmp, 'data'), '--bind', `127.0.0.1:${port}`, '--static-dir', dist, '--demo'],
    { PIPEPROOF_ADMIN_TOKEN: token }, 'server');
  await waitFor(`${base}/healthz`, 'the server');
  const api = async (method, path, body, type = 'application/json') => {
    const r = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { 'Content-Type': type } : {}) },
      body,
    });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return r;
  };

  // A run of three steps: load 300 orders; clean (change 40 amounts, drop ids 1-10, add 301-320);
  // enrich (a new column: a schema change).
  const cols = ['id', 'customer', 'amount', 'status'];
  const s0 = orders(300);
  const s1 = s0.filter((r) => r.id > 10).map((r) => (r.id % 3 === 0 ? { ...r, amount: r.amount + 1 } : r));
  for (let id = 301; id <= 320; id++) s1.push({ id, customer: 'new', amount: id, status: 'open' });
  const s2 = s1.map((r) => ({ ...r, region: r.id % 2 ? 'north' : 'south' }));
  const run = await (await api('POST', '/runs', JSON.stringify({ pipeline: 'orders', labels: { env: 'test' }, code_version: 'v1.2.3' }))).json();
  await api('POST', `/runs/${run.id}/steps?step=load&key=id`, csv(s0, cols), 'text/csv');
  await api('POST', `/runs/${run.id}/steps?step=clean&key=id`, csv(s1, cols), 'text/csv');
  await api('POST', `/runs/${run.id}/steps?step=enrich&key=id`, csv(s2, [...cols, 'region']), 'text/csv');
  await api('POST', `/runs/${run.id}/seal`);
  const changedRows = s1.filter((r) => r.id <= 300 && r.id % 3 === 0).length;
  const detail = await (await api('GET', `/runs/${run.id}`)).json();
  check(detail.steps[1].diff.changed === changedRows, `server counted ${changedRows} changed rows in step 1`);
  const bundle = Buffer.from(await (await api('GET', `/runs/${run.id}/bundle`)).arrayBuffer());
  const serverKey = (await (await api('GET', '/keys')).json()).keys[0].public_key;
  const good = join(tmp, `${run.id}.bundle.zip`);
  writeFileSync(good, bundle);
  const bad = join(tmp, `${run.id}.tampered.zip`);
  writeFileSync(bad, tamper(bundle, 'steps/00001/rows.arrow'));
  const dataFile = join(tmp, 'clean.csv');
  writeFileSync(dataFile, csv(s1, cols));
  const otherFile = join(tmp, 'other.csv');
  writeFileSync(otherFile, csv(orders(5), cols));

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await context.newPage();
  currentPage = page;
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.setDefaultTimeout(20000);
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  await step('sign in', async () => {
    const t0 = Date.now();
    await page.goto(`${base}/`);
    await page.getByLabel('Access token').waitFor();
    console.log(`     first page interactive after ${Date.now() - t0} ms`);
    await page.getByLabel('Access token').fill('not-a-real-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const text = await alert.innerText();
    check(/does not accept this token/.test(text), `a wrong token is refused in words: "${text.trim()}"`);
    check(!/pipeproof token create|`/.test(text), `a wrong token is refused in the app's words, not the API's: "${text.trim()}"`);
    await alert.getByText("The server's answer").click();
    check(/401 unauthorized\s+the token is not known to this server/.test(await alert.innerText()),
      "the server's own answer to a wrong token is at hand, folded away");
    await shot('01-signin-wrong-token');
    await page.getByLabel('Access token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Runs' }).waitFor();
    check(await page.getByText('Signed in as').isVisible(), 'signed in: the name is shown');
    check(await page.evaluate(() => document.activeElement?.id === 'main'), "after signing in the focus is on the page's content");
    const url = page.url();
    check(!url.includes(token), 'the token is not in the URL');
  });

  await step('runs list', async () => {
    await page.locator('table.runs').waitFor();
    check(await page.getByRole('link', { name: run.id }).isVisible(), 'the new run is listed');
    await page.getByLabel('Pipeline').selectOption('orders');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForFunction(() => document.querySelectorAll('table.runs tbody tr').length === 1);
    check(await page.locator('table.runs tbody tr').count() === 1, 'the pipeline filter leaves one run');
    await page.getByLabel('Label').fill('env=nope');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No runs match').waitFor();
    check(true, 'a label filter with no match says so');
    await page.getByLabel('Label').fill('env=test');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByRole('link', { name: run.id }).waitFor();
    await page.reload();
    await page.getByRole('link', { name: run.id }).waitFor();
    check(await page.getByLabel('Label').inputValue() === 'env=test' && await page.locator('table.runs tbody tr').count() === 1,
      `the filters are in the address and outlive a reload (${page.url()})`);
    await shot('02-runs');
    await page.setViewportSize({ width: 375, height: 800 });
    const narrow = await page.evaluate(() => document.documentElement.scrollWidth);
    check(narrow <= 375, `at 375 px wide the runs page fits the screen (${narrow} px)`);
    await shot('02b-runs-narrow');
    await page.setViewportSize({ width: 1366, height: 900 });
  });

  await step('run page', async () => {
    await page.getByRole('link', { name: run.id }).click();
    await page.getByRole('heading', { name: /^Run / }).waitFor();
    const status = await page.locator('ul.status').innerText();
    check(/✔ Chain: 3 records/.test(status), 'the chain is checked in the browser');
    check(/✔ Seal: signed/.test(status), 'the seal signature is valid');
    await page.locator('ul.status li', { hasText: 'Log:' }).filter({ hasNotText: 'proving' }).waitFor();
    const withLog = await page.locator('ul.status').innerText();
    check(/✔ Log: the seal is entry \d+ of the server's log of \d+ seals?, proved in the browser/.test(withLog),
      "the run's seal is proved in the browser to be in the server's log");
    check(status.includes("and the run's labels, parameters and status"),
      "the run's description, as the server shows it, is the one the seal signs");
    check(await page.locator('figure.chart svg rect').count() >= 7, 'the steps chart is drawn');
    check(await page.locator('table.steps .badge.warn').count() === 1, 'the schema change at step 2 is marked');
    check(await page.locator('.actions').getByRole('link', { name: 'Trace a row' }).isVisible() && await page.locator('#no-trace').count() === 0,
      'a keyed run offers a row trace');
    const here = page.url();
    await page.locator('a.skip').focus();
    await page.keyboard.press('Enter');
    check(page.url() === here && await page.evaluate(() => document.activeElement?.id === 'main'),
      "'Skip to content' moves the focus to the page's content and stays on the page");
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Download the bundle' }).click();
    await download;
    await page.waitForFunction(() => /^Saved /.test(document.querySelector('#action-status')?.textContent ?? ''));
    check(await page.locator('#action-status .spinner').count() === 0,
      'a finished download is said without a spinner');
    await shot('03-run');
    await page.setViewportSize({ width: 375, height: 800 });
    const narrow = await page.evaluate(() => document.documentElement.scrollWidth);
    check(narrow <= 375, `at 375 px wide the run page fits the screen (${narrow} px)`);
    await page.setViewportSize({ width: 1366, height: 900 });
  });

  await step('a run that failed before its first step: its seal covers no records', async () => {
    const empty = await (await api('POST', '/runs', JSON.stringify({ pipeline: 'failed-first-step' }))).json();
    await api('POST', `/runs/${empty.id}/fail`, JSON.stringify({ error: 'the first step was refused' }));
    await page.goto(`${base}/#/runs/${empty.id}`);
    await page.locator('ul.status li', { hasText: 'Seal:' }).waitFor();
    const status = await page.locator('ul.status').innerText();
    check(/✔ Seal: signed/.test(status) && !status.includes('✘'),
      `the seal of a run with no steps is checked as valid: ${status.replace(/\s+/g, ' ')}`);
    // The next steps go on from the first run's page.
    await page.goto(`${base}/#/runs/${run.id}`);
    await page.getByRole('link', { name: 'load', exact: true }).waitFor();
  });

  await step('first step: schema and statistics', async () => {
    await page.getByRole('link', { name: 'load', exact: true }).click();
    await page.getByRole('heading', { name: 'Step 0 · load' }).waitFor();
    check((await page.locator('dl.facts').innerText()).includes('Rows\n300'), 'the first step shows its row count');
    const columns = await page.locator('table.columns tbody tr').allInnerTexts();
    check(columns.length === 4 && cols.every((c, i) => columns[i].startsWith(c)) && columns.every((r) => /\t\S+\t(yes|no)$/.test(r)),
      `the first step lists its columns with their types: ${columns.map((r) => r.replace(/\t/g, ' ')).join(' | ')}`);
    const stats = await page.locator('table.stats tbody tr').allInnerTexts();
    const cells = (name) => (stats.find((r) => r.startsWith(`${name}\t`)) ?? '').split('\t');
    const [, nulls, distinct, min, max, mean] = cells('id');
    check(stats.length === 4 && nulls === '0' && Math.abs(Number(distinct) - 300) <= 6 && min === '1' && max === '300' && mean === '150.5000',
      `the first step shows each column's statistics (id: nulls ${nulls}, distinct ${distinct}, min ${min}, max ${max}, mean ${mean})`);
    const status = cells('status');
    check(status[1] === '0' && status[2] === '2' && status[3] === 'open' && status[4] === 'paid',
      `a text column's statistics too (status: ${status.slice(1).join(', ')})`);
    await shot('03b-first-step');
    await page.setViewportSize({ width: 375, height: 800 });
    const narrow = await page.evaluate(() => document.documentElement.scrollWidth);
    check(narrow <= 375, `at 375 px wide the first step's page fits the screen (${narrow} px)`);
    await shot('03c-first-step-narrow');
    await page.setViewportSize({ width: 1366, height: 900 });
    await page.goBack();
    await page.getByRole('heading', { name: /^Run / }).waitFor();
  });

  await step('narrow screens keep numbers whole', async () => {
    // Long numbers and times in the statistics: a value broken over two lines reads as two.
    const w = await (await api('POST', '/runs', JSON.stringify({ pipeline: 'wide-numbers' }))).json();
    const wide = (k) => ['id,amount,big,at', ...[1, 2, 3].map((i) =>
      `${i},${(1234567.891234 * i * k).toFixed(6)},${9007199254740000 + i * k},2026-11-2${i}T12:3${k}:00`)].join('\n') + '\n';
    await api('POST', `/runs/${w.id}/steps?step=first&key=id`, wide(1), 'text/csv');
    await api('POST', `/runs/${w.id}/steps?step=second&key=id`, wide(2), 'text/csv');
    await page.setViewportSize({ width: 375, height: 800 });
    for (const [index, name] of [[0, 'first'], [1, 'second']]) {
      await page.goto(`${base}/#/runs/${w.id}/steps/${index}`);
      await page.getByRole('heading', { name: `Step ${index} · ${name}` }).waitFor();
      const broken = await page.evaluate(() => [...document.querySelectorAll('table.stats tbody td')].filter((td) => {
        const r = document.createRange();
        r.selectNodeContents(td);
        return new Set([...r.getClientRects()].map((b) => Math.round(b.top))).size > 1;
      }).map((td) => td.textContent));
      check(broken.length === 0, `at 375 px wide no statistic of step ${index} is broken over lines (${broken.join(' | ')})`);
      if (index === 1) {
        await page.getByText('Rows 1–9 of 9').waitFor();
        const cut = await page.evaluate(() => [...document.querySelectorAll('table.details td bdi')].filter((b) =>
          new Set([...b.getClientRects()].map((r) => Math.round(r.top))).size > 1).map((b) => b.textContent));
        check(cut.length === 0, `at 375 px wide no changed value of step 1 is broken over lines (${cut.join(' | ')})`);
      }
      await shot(`03d-wide-numbers-step-${index}-narrow`);
    }
    await page.setViewportSize({ width: 1366, height: 900 });
    await page.goto(`${base}/#/runs/${run.id}`);
    await page.getByRole('heading', { name: /^Run / }).waitFor();
  });

  await step('step diff and details', async () => {
    await page.getByRole('link', { name: 'clean' }).click();
    await page.getByRole('heading', { name: 'Step 1 · clean' }).waitFor();
    const counts = await page.locator('dl.counts').innerText();
    check(counts.includes(`Changed\n${changedRows}`) && counts.includes('Added\n20') && counts.includes('Removed\n10'),
      'the summary counts are shown');
    check(await page.locator('table.bars').innerText().then((t) => t.includes('amount')), 'per-column bars list amount');
    await page.getByText(`Rows 1–${Math.min(50, changedRows)} of ${changedRows}`).waitFor();
    check(await page.locator('table.details td.change ins').count() > 0, 'changed cells show old → new');
    check(await page.locator('table.details td.change del bdi').count() > 0,
      'old and new values are isolated, so right-to-left text cannot swap them');
    await shot('04-step-diff');
    if (changedRows > 50) {
      await page.getByRole('button', { name: 'Next →' }).click();
      await page.getByText(`Rows 51–`).waitFor();
      check(true, 'paging to the next page of details');
    }
    await page.getByRole('tab', { name: 'Changed cells' }).focus();
    await page.keyboard.press('ArrowRight');
    await page.getByText('Rows 1–20 of 20').waitFor();
    check(await page.evaluate(() => document.activeElement?.textContent === 'Added rows'),
      'the arrow keys move between the detail tabs, and the added rows tab pages from the API');
    await page.getByRole('tab', { name: 'Changed cells' }).click();
    await page.getByLabel('Key (id)').fill('15');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText('Rows 1–1 of 1').waitFor();
    check(true, 'search by key finds the one change of id 15');
    await shot('05-step-details-search');
    await page.getByRole('link', { name: 'Next step →' }).click();
    await page.getByRole('heading', { name: 'Step 2 · enrich' }).waitFor();
    check(await page.locator('#key-search').inputValue() === '' && await page.getByRole('button', { name: 'Clear' }).count() === 0,
      "the next step's details start afresh, not filtered by the previous step's search");
  });

  await step('a step without a key', async () => {
    const m = await (await api('POST', '/runs', JSON.stringify({ pipeline: 'multiset' }))).json();
    await api('POST', `/runs/${m.id}/steps?step=a`, 'x,y\n1,a\n1,a\n2,b\n', 'text/csv');
    await api('POST', `/runs/${m.id}/steps?step=b`, 'x,y\n1,a\n3,c\n', 'text/csv');
    await page.goto(`${base}/#/runs/${m.id}/steps/1`);
    await page.getByText('Rows 1–1 of 1').waitFor();
    check(await page.getByRole('tab', { name: 'Added rows' }).getAttribute('aria-selected') === 'true'
      && await page.getByRole('tab', { name: 'Changed cells' }).count() === 0,
      'a multiset diff opens on its added rows and offers no changed cells');
    const noTrace = /Rows cannot be traced in this run: no step was sent with a key column/;
    check(await page.getByRole('link', { name: 'Trace a row' }).count() === 0 && noTrace.test(await page.locator('.stepnav').innerText()),
      'a step of a run without a key offers no row trace, and says why');
    await shot('05c-step-without-key');
    await page.goto(`${base}/#/runs/${m.id}`);
    await page.getByRole('heading', { name: /^Run / }).waitFor();
    check(await page.getByRole('link', { name: 'Trace a row' }).count() === 0 && noTrace.test(await page.locator('#no-trace').innerText()),
      'a run without a key offers no row trace, and says why');
    await shot('05b-run-without-key');
    // Its trace page, reached by its address (a key in it too): the same words, no form, and
    // no trace asked of the server.
    const traces = [];
    const seen = (r) => { if (/\/api\/v1\/runs\/[^/]+\/trace/.test(r.url())) traces.push(r.url()); };
    page.on('request', seen);
    await page.goto(`${base}/#/runs/${m.id}/trace?key=1`);
    await page.locator('#no-trace').waitFor();
    page.off('request', seen);
    check(noTrace.test(await page.locator('#no-trace').innerText()) && await page.locator('#trace-key').count() === 0
      && await page.getByRole('button', { name: 'Trace' }).count() === 0 && await page.getByRole('alert').count() === 0
      && traces.length === 0,
      `the trace page of a run without a key says why rows cannot be traced, with no form (${traces.length} trace requests)`);
    await shot('05d-trace-without-key');
    await page.goBack();
    await page.getByRole('heading', { name: /^Run / }).waitFor();
    await page.goBack();
    await page.getByRole('heading', { name: 'Step 1 · b' }).waitFor();
    await page.goBack();
    await page.getByRole('heading', { name: 'Step 2 · enrich' }).waitFor();
  });

  await step('row trace', async () => {
    await page.getByRole('link', { name: 'Trace a row' }).first().click();
    await page.getByLabel('Key value').fill('15');
    await page.getByRole('button', { name: 'Trace' }).click();
    await page.locator('table.trace').waitFor();
    const rows = await page.locator('table.trace tbody tr').allInnerTexts();
    check(rows.length === 3, `the trace has a row per step (${rows.length})`);
    check(/changed/.test(rows[1] ?? ''), 'id 15 is changed at step 1');
    const cell = await page.locator('table.trace tbody tr').nth(1).locator('td.change').innerText();
    const old = s0.find((r) => r.id === 15).amount;
    check(cell.includes(`${old}`) && cell.includes(`${old + 1}`), `the trace shows the changed amount old → new: ${cell}`);
    await shot('06-trace');
    await page.reload();
    await page.locator('table.trace').waitFor();
    check(await page.getByLabel('Key value').inputValue() === '15' && await page.locator('table.trace tbody tr').count() === 3,
      `the traced key is in the address and outlives a reload (${page.url()})`);
    await page.getByLabel('Key value').fill('99999');
    await page.getByRole('button', { name: 'Trace' }).click();
    await page.getByText('No step of this run has a row with this key (id = 99999)').waitFor();
    check(true, 'a key in no step says so');
  });

  await step("errors in the app's words", async () => {
    // A missing run: what went wrong and where to go, not the API's "list runs with GET ...".
    await page.goto(`${base}/#/runs/no-such-run`);
    const alert = page.getByRole('alert');
    await alert.waitFor();
    let text = await alert.innerText();
    check(/Could not load the run: there is no run with this id on this server/.test(text) && !text.includes('/api/v1'),
      `a missing run is told in the app's words: "${text.trim()}"`);
    await shot('06b-missing-run');
    await alert.getByText("The server's answer").click();
    check(/404 unknown-run\s+there is no run `no-such-run`/.test(await alert.innerText()), "the server's answer to a missing run is at hand");
    await alert.getByRole('link', { name: 'Go to the runs' }).click();
    await page.getByRole('heading', { name: 'Runs' }).waitFor();
    check(true, 'a missing run offers the way to the runs');
    // A key value that is not of the key's type.
    await page.goto(`${base}/#/runs/${run.id}/trace`);
    await page.getByLabel('Key value').fill('abc');
    await page.getByRole('button', { name: 'Trace' }).click();
    await alert.waitFor();
    text = await alert.innerText();
    check(/Could not trace the key: this is not a value of the run's key/.test(text) && !/`|key=/.test(text),
      `a bad trace key is told in the app's words: "${text.trim()}"`);
    await shot('06c-bad-trace-key');
    await alert.getByText("The server's answer").click();
    check(/422 invalid-key-value\s+`abc` is not a value of the key \(id\)/.test(await alert.innerText()),
      "the server's answer to a bad trace key is at hand");
  });

  await step('verify a good bundle in the browser', async () => {
    await page.getByRole('link', { name: 'Verify a bundle' }).click();
    await page.getByLabel(/Public key to trust/).fill(serverKey);
    await page.locator('#bundle-file').setInputFiles(good);
    const verdict = page.locator('.verdict');
    await verdict.waitFor({ timeout: 60000 });
    const text = await verdict.innerText();
    check(/All \d+ checks passed/.test(text), `the good bundle passes: ${text}`);
    console.log(`     ${await page.locator('#verify-facts').innerText()}`);
    check(await page.locator('#verify-facts').getAttribute('data-ran') === 'worker'
      && /in a background thread/.test(await page.locator('#verify-facts').innerText()),
      'the bundle was verified in a worker, and the page says so');
    const described = await page.locator('section:has(#run-h) dl.facts').innerText();
    check(described.includes('env=test') && described.includes('v1.2.3'),
      "the bundle's run is described as the seal signs it (labels, code version)");
    await page.locator('#data-file').setInputFiles(dataFile);
    await page.locator('#data-result').waitFor();
    const data = await page.locator('#data-result').innerText();
    check(/exactly the output of step 1 `clean`/.test(data), `a data file is recognised as step 1: ${data}`);
    check(await page.locator('#data-result').getAttribute('data-ran') === 'worker', 'the data file was checked in a worker');
    await shot('07-verify-good');
    await page.locator('#data-file').setInputFiles(otherFile);
    await page.waitForFunction(() => document.querySelector('#data-result')?.textContent.includes('other.csv'));
    check(/✘.*no step/.test(await page.locator('#data-result').innerText()), 'a foreign data file is refused');
    // Another step to compare with: the verdict on the step before goes; the same file chosen
    // again is checked again, against the step now chosen, which the verdict names.
    await page.locator('#data-file').setInputFiles(dataFile);
    await page.waitForFunction(() => document.querySelector('#data-result')?.textContent.includes('clean.csv'));
    await page.locator('#data-step').selectOption('load');
    check(await page.locator('#data-result').count() === 0, 'choosing another step to compare with clears the verdict on the step before');
    check(await page.locator('#data-file').inputValue() === '', 'the data file input is emptied once read, so the same file can be chosen again');
    await page.locator('#data-file').setInputFiles(dataFile);
    await page.locator('#data-result').waitFor();
    const again = await page.locator('#data-result').innerText();
    check(/^✘ clean\.csv, compared with step 0 `load`: the data is not this step's output/.test(again),
      `the same file chosen again is checked against the step now chosen, which the verdict names: ${again}`);
    await page.locator('#data-step').selectOption('*');
    check(await page.locator('#bundle-file').inputValue() === '', 'the bundle input is emptied once read, so the same bundle can be chosen again');
    await page.locator('table.steps').getByRole('link', { name: 'clean' }).click();
    await page.getByRole('heading', { name: 'Step 1 · clean' }).waitFor();
    await page.getByText(`Rows 1–${Math.min(50, changedRows)} of ${changedRows}`).waitFor();
    await page.getByLabel('Key (id)').fill('15');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText('Rows 1–1 of 1').waitFor();
    check(true, 'the bundle step page shows the diff and details from the bundle alone');
    await shot('08-bundle-step');
    await page.getByRole('link', { name: '← Previous step' }).click();
    await page.getByRole('heading', { name: 'Step 0 · load' }).waitFor();
    const firstStats = await page.locator('table.stats tbody tr').allInnerTexts();
    check(await page.locator('table.columns tbody tr').count() === 4 && firstStats.length === 4
      && firstStats.some((r) => r.startsWith('id\t0\t') && r.includes('\t1\t300\t150.5000')),
      "the bundle's first step shows its columns and statistics from the bundle alone");
    await shot('08b-bundle-first-step');
  });

  await step('verify a tampered bundle', async () => {
    await page.getByRole('link', { name: 'Verify a bundle' }).click();
    await page.locator('#bundle-file').setInputFiles(bad);
    await page.waitForFunction(() => document.querySelector('.verdict')?.textContent.includes('failed'));
    const fails = await page.locator('table.checks tr.fail').allInnerTexts();
    check(fails.length > 0, `the tampered bundle fails: ${fails.map((f) => f.replace(/\s+/g, ' ')).join(' | ')}`);
    check(fails.some((f) => f.includes('1 clean')), 'the failing check names step 1');
    const warned = await page.locator('#run-untrusted').innerText().catch(() => '');
    check(/verification FAILED: do not trust what follows/i.test(warned)
      && await page.locator('section.untrusted:has(#run-h)').count() === 1,
      `the run a failed bundle describes is shown under a warning, muted: ${warned}`);
    await shot('09-verify-tampered');
  });

  await step("the run page verifies the run's bundle in the browser", async () => {
    await page.goto(`${base}/#/runs/${run.id}`);
    await page.getByRole('button', { name: "Verify this run's bundle in the browser" }).click();
    await page.getByRole('heading', { name: 'Verify a bundle' }).waitFor();
    await page.waitForFunction(() => /checks passed|checks failed/.test(document.querySelector('.verdict')?.textContent ?? ''));
    const verdict = await page.locator('.verdict').innerText();
    check(/All \d+ checks passed/.test(verdict) && await page.locator('#verify-facts').getAttribute('data-ran') === 'worker'
      && (await page.locator('#verify-facts').innerText()).startsWith(`${run.id}.bundle.zip`),
      `the run's bundle, downloaded and verified in a worker, passes: ${verdict}`);
  });

  // Redaction: a sealed run's details removed by an admin in the app, then its pages, its
  // trace and its bundle verified offline.
  const redactReason = 'erasure request 2026-118';
  const er = await (await api('POST', '/runs', JSON.stringify({ pipeline: 'erasure' }))).json();
  await api('POST', `/runs/${er.id}/steps?step=load&key=id`, csv(s0, cols), 'text/csv');
  await api('POST', `/runs/${er.id}/steps?step=clean&key=id`, csv(s1, cols), 'text/csv');
  await api('POST', `/runs/${er.id}/steps?step=enrich&key=id&artifact=true`, csv(s2, [...cols, 'region']), 'text/csv');
  const apiCalls = [];
  page.on('request', (r) => { if (r.url().includes('/api/v1/')) apiCalls.push(`${r.method()} ${new URL(r.url()).pathname}`); });

  await step('redact: an admin redacts an ended run from its page', async () => {
    await page.goto(`${base}/#/runs/${er.id}`);
    await page.getByRole('heading', { name: /^Run / }).waitFor();
    await page.locator('table.steps').waitFor();
    check(await page.getByRole('button', { name: 'Redact…' }).count() === 0, 'an open run offers no redaction, even to an admin');
    await api('POST', `/runs/${er.id}/seal`);
    await page.reload();
    await page.getByRole('button', { name: 'Redact…' }).click();
    const form = page.locator('form#redact');
    await form.waitFor();
    const words = await form.innerText();
    check(/all 3 steps/.test(words) && /detail rows \(added, removed and changed rows\) and any kept copy/.test(words)
      && /records and their hashes, row hashes, counts, schema and statistics, the seal/.test(words),
      'the redact control says what will be removed (details and kept data of all steps) and what stays');
    check(await page.evaluate(() => document.activeElement?.id === 'redact-reason'), 'the reason field has the focus');
    const before = apiCalls.filter((c) => c.endsWith('/redact')).length;
    await form.getByRole('button', { name: 'Remove the details and kept data' }).click();
    check(await form.isVisible() && apiCalls.filter((c) => c.endsWith('/redact')).length === before
      && await page.locator('#redact-reason').evaluate((t) => !t.validity.valid),
      'without a reason nothing is sent: the reason is required');
    // The reason is one line of at most 1,000 bytes: counted in bytes, refused before sending.
    check(await page.locator('#redact-reason').evaluate((e) => e.tagName === 'INPUT' && e.type === 'text'),
      'the reason is a single-line field (the server refuses line breaks)');
    await page.locator('#redact-reason').fill('é'.repeat(501));
    await form.getByRole('button', { name: 'Remove the details and kept data' }).click();
    const long = await form.getByRole('alert').innerText().catch(() => '');
    check(/1,002 bytes long/.test(long) && /at most 1,000 bytes/.test(long) && !/about as many letters/.test(long)
      && apiCalls.filter((c) => c.endsWith('/redact')).length === before,
      `a reason of 501 letters but 1,002 bytes is refused in bytes, before sending: "${long.split('\n')[0]}"`);
    // A refusal the server words specifically is shown in its words.
    await page.route('**/redact', (r) => r.fulfill({ status: 400, contentType: 'application/problem+json',
      body: JSON.stringify({ type: 'https://pipeproof.dev/problems/invalid-redaction', title: 'Bad Request', status: 400,
        detail: "the reason holds a control character ('\\u{7}'): write it on one line, as plain text" }) }));
    await page.locator('#redact-reason').fill('a reason');
    await form.getByRole('button', { name: 'Remove the details and kept data' }).click();
    await page.waitForFunction(() => /control character/.test(document.querySelector('form#redact [role=alert]')?.textContent ?? ''));
    check(!/about as many letters/.test(await form.getByRole('alert').innerText()),
      "a reason the server refuses is told in the server's specific words");
    await page.unroute('**/redact');
    await page.locator('#redact-reason').fill(redactReason);
    await shot('11-redact-control');
    await page.setViewportSize({ width: 375, height: 800 });
    const narrow = await page.evaluate(() => document.documentElement.scrollWidth);
    check(narrow <= 375, `at 375 px wide the redact control fits the screen (${narrow} px)`);
    await shot('11b-redact-control-narrow');
    await page.setViewportSize({ width: 1366, height: 900 });
    // A refusal, worded like the app's other errors (the server's answer folded beneath).
    await page.route('**/redact', (r) => r.fulfill({ status: 409, contentType: 'application/problem+json',
      body: JSON.stringify({ type: 'https://pipeproof.dev/problems/run-open', title: 'Conflict', status: 409,
        detail: `run \`${er.id}\` is open: its last step's data is kept to diff the next step against until the run ends; seal or fail it, then redact it` }) }));
    await form.getByRole('button', { name: 'Remove the details and kept data' }).click();
    const alert = form.getByRole('alert');
    await page.waitForFunction(() => /still open/.test(document.querySelector('form#redact [role=alert]')?.textContent ?? ''));
    const refused = await alert.innerText();
    check(/^Could not redact the run: this run is still open/.test(refused.trim()) && !refused.includes('`'),
      `a refused redaction is told in the app's words: "${refused.split('\n')[0]}"`);
    await page.unroute('**/redact');
    await form.getByRole('button', { name: 'Remove the details and kept data' }).click();
    const result = page.locator('#redact-result');
    await result.waitFor();
    await page.waitForFunction(() => document.activeElement?.id === 'redact-result', null, { timeout: 3000 }).catch(() => {});
    check(await page.evaluate(() => document.activeElement?.id) === 'redact-result', 'after redacting, the focus is on the result');
    const done = await result.innerText();
    check(/^Redacted steps 1 and 2 on \d{4}-\d\d-\d\d .*: their detail rows and kept data were removed from the server \(\d+ files?, [\d,]+ bytes freed\)\. Step 0 held nothing to remove/.test(done),
      `the redaction's result is shown: ${done}`);
    await page.locator('table.steps .badge.redacted').first().waitFor();
    const marked = await page.locator('table.steps tbody tr').evaluateAll((rows) => rows.map((r) => !!r.querySelector('.badge.redacted')));
    check(JSON.stringify(marked) === '[false,true,true]', `the refreshed run marks steps 1 and 2 redacted in its steps (${marked})`);
    const note = await page.locator('#redactions').innerText();
    check(note.includes('steps 1 clean, 2 enrich') && note.includes(redactReason), `the run page says when and why: ${note}`);
    check(/✔ Chain: 3 records/.test(await page.locator('ul.status').innerText()) && /✔ Seal: signed/.test(await page.locator('ul.status').innerText()),
      'the chain and seal still check after the redaction');
    await shot('11c-run-redacted');
  });

  await step('redact: not offered to a token without the admin scope', async () => {
    const reader = await (await api('POST', '/tokens', JSON.stringify({ name: 'reviewer', scopes: ['read'] }))).json();
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const p = await ctx.newPage();
    currentPage = p;
    p.setDefaultTimeout(20000);
    await p.goto(`${base}/`);
    await p.getByLabel('Access token').fill(reader.token);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { name: 'Runs' }).waitFor();
    await p.goto(`${base}/#/runs/${er.id}`);
    await p.locator('table.steps .badge.redacted').first().waitFor();
    check(await p.getByRole('button', { name: 'Redact…' }).count() === 0, 'a read token is not offered the redaction');
    await ctx.close();
    currentPage = page;
  });

  await step('a token revoked while signed in signs the tab out', async () => {
    const doomed = await (await api('POST', '/tokens', JSON.stringify({ name: 'doomed', scopes: ['read'] }))).json();
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const p = await ctx.newPage();
    currentPage = p;
    p.setDefaultTimeout(20000);
    await p.goto(`${base}/`);
    await p.getByLabel('Access token').fill(doomed.token);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { name: 'Runs' }).waitFor();
    await api('DELETE', `/tokens/${doomed.id}`);
    await p.goto(`${base}/#/runs/${run.id}`);
    await p.getByRole('heading', { name: 'Sign in' }).waitFor({ timeout: 5000 }).catch(() => {});
    const text = await p.locator('main').innerText();
    check(await p.getByLabel('Access token').isVisible() && /no longer accepts this token/.test(text)
      && await p.getByText('Signed in as').count() === 0
      && await p.evaluate(() => sessionStorage.getItem('pipeproof.token')) === null,
      `a revoked token is dropped on its first refused request, and the sign-in form says why: ${text.split('\n').slice(0, 4).join(' | ')}`);
    await p.screenshot({ path: join(shots, '13-token-revoked.png'), fullPage: true });
    await ctx.close();
    currentPage = page;
  });

  await step('redact: the step page of a redacted step', async () => {
    // The pages' checks stand on their own: redacted through the API if the app did not.
    const now = await (await api('GET', `/runs/${er.id}`)).json();
    if (!now.steps[1].redacted) await api('POST', `/runs/${er.id}/redact`, JSON.stringify({ reason: redactReason }));
    const asked = apiCalls.length;
    await page.goto(`${base}/#/runs/${er.id}/steps/1`);
    await page.getByRole('heading', { name: 'Step 1 · clean' }).waitFor();
    const notice = page.locator('#redacted');
    await notice.waitFor();
    const text = await notice.innerText();
    check(/Removed by a redaction on \d{4}-\d\d-\d\d .*Reason: erasure request 2026-118/s.test(text)
      && /added, removed and changed rows of this step, and any copy of its data the server kept, were removed/.test(text),
      `the redacted step says where its details would be that they were removed, when and why: ${text.replace(/\s+/g, ' ')}`);
    const counts = await page.locator('dl.counts').innerText();
    check(counts.includes(`Changed\n${changedRows}`) && counts.includes('Added\n20') && await page.locator('table.stats tbody tr').count() > 0
      && await page.locator('#schema-h').isVisible(), 'its counts, schema and statistics stay shown');
    check(await page.locator('#statistics-redacted').count() === 0 && await page.getByRole('heading', { name: 'Statistics before → after' }).isVisible()
      && /its schema and statistics, and the run's seal, remain/.test(text),
      'redacted without its statistics, the step shows them as before and says they remain');
    await page.waitForTimeout(300);
    const details = apiCalls.slice(asked).filter((c) => /\/(details|artifact)$/.test(c));
    check(await page.locator('table.details').count() === 0 && await page.getByRole('alert').count() === 0 && details.length === 0,
      `no detail table and no request for the redacted details (${details.join(', ') || 'none'})`);
    await shot('12-step-redacted');
    await page.setViewportSize({ width: 375, height: 800 });
    const narrow = await page.evaluate(() => document.documentElement.scrollWidth);
    check(narrow <= 375, `at 375 px wide the redacted step's page fits the screen (${narrow} px)`);
    await shot('12b-step-redacted-narrow');
    await page.setViewportSize({ width: 1366, height: 900 });
    await page.getByRole('link', { name: '← Previous step' }).click();
    await page.getByRole('heading', { name: 'Step 0 · load' }).waitFor();
    check(await page.locator('#redacted').count() === 0 && await page.locator('table.columns').isVisible(),
      'the first step, which held nothing to remove, is shown as before');
  });

  await step('redact: the trace marks the steps whose values a redaction removed', async () => {
    await page.goto(`${base}/#/runs/${er.id}/trace?key=15`);
    await page.locator('table.trace').waitFor();
    const marked = await page.locator('table.trace tbody tr').evaluateAll((rows) =>
      rows.map((r) => !!r.querySelector('.badge.redacted') && r.classList.contains('redacted')));
    check(JSON.stringify(marked) === '[false,true,true]', `the trace marks steps 1 and 2 as redacted (${marked})`);
    const why = await page.locator('table.trace tbody tr').nth(1).locator('.badge.redacted').getAttribute('title');
    check(why?.includes(redactReason), `the mark says when and why: ${why}`);
    check(/steps 1 clean, 2 enrich are not known any more: the details were redacted/.test(await page.locator('#trace-redacted').innerText()),
      'the trace says which steps\' values are unknown because of the redaction');
    await shot('13-trace-redacted');
  });

  await step('redact: the redacted bundle verified offline', async () => {
    const file = join(tmp, `${er.id}.bundle.zip`);
    writeFileSync(file, Buffer.from(await (await api('GET', `/runs/${er.id}/bundle`)).arrayBuffer()));
    await page.goto(`${base}/#/verify`);
    await page.getByLabel(/Public key to trust/).fill(serverKey);
    await page.locator('#bundle-file').setInputFiles(file);
    await page.waitForFunction(() => /checks passed|checks failed/.test(document.querySelector('.verdict')?.textContent ?? ''));
    const verdict = await page.locator('.verdict').innerText();
    check(/All \d+ checks passed/.test(verdict) && await page.locator('#verify-facts').getAttribute('data-ran') === 'worker',
      `the redacted bundle passes, verified in a worker: ${verdict}`);
    const checks = await page.locator('table.checks tbody tr').allInnerTexts();
    check(checks.some((c) => /^✔ passed\tredactions\t/.test(c)) && checks.filter((c) => /diff details.*redacted at .*erasure request 2026-118/.test(c)).length === 2,
      `the checks list shows the redactions check and the redacted details (${checks.filter((c) => /redact/.test(c)).length} rows)`);
    const note = await page.locator('#redactions').innerText();
    check(note.includes('steps 1 clean, 2 enrich') && note.includes(redactReason), `the bundle says which steps' details were redacted: ${note}`);
    check(await page.locator('table.steps .badge.redacted').count() === 2, 'the bundle\'s steps mark the redacted ones');
    await shot('14-verify-redacted');
    await page.locator('table.steps').getByRole('link', { name: 'clean' }).click();
    await page.getByRole('heading', { name: 'Step 1 · clean' }).waitFor();
    const text = await page.locator('#redacted').innerText();
    check(/before this bundle was written: the bundle does not hold them/.test(text) && text.includes(redactReason)
      && await page.locator('table.details').count() === 0 && await page.getByText('No detail rows were kept').count() === 0
      && (await page.locator('dl.counts').innerText()).includes(`Changed\n${changedRows}`),
      `the bundle's redacted step says so, with no empty detail table: ${text.replace(/\s+/g, ' ')}`);
    await shot('14b-bundle-step-redacted');
    await page.getByRole('link', { name: 'Verify a bundle' }).click();
    await page.locator('#data-file').setInputFiles(dataFile);
    await page.waitForFunction(() => document.querySelector('#data-result')?.textContent.includes('clean.csv'));
    check(/✔.*exactly the output of step 1/.test(await page.locator('#data-result').innerText()),
      "a redacted step's output is still recognised by its fingerprint");
  });

  // Redaction with the column statistics (their minimum and maximum are values of the data):
  // asked for in the form, then the step pages say where the statistics would be that they
  // were removed, when and why.
  const statsReason = 'erasure request 2026-131';
  const sr = await (await api('POST', '/runs', JSON.stringify({ pipeline: 'erasure-stats' }))).json();
  await api('POST', `/runs/${sr.id}/steps?step=load&key=id`, csv(s0, cols), 'text/csv');
  await api('POST', `/runs/${sr.id}/steps?step=clean&key=id`, csv(s1, cols), 'text/csv');
  await api('POST', `/runs/${sr.id}/steps?step=enrich&key=id`, csv(s2, [...cols, 'region']), 'text/csv');
  await api('POST', `/runs/${sr.id}/seal`);

  await step('redact statistics: the form asks, says what goes and what stays, and sends it', async () => {
    await page.goto(`${base}/#/runs/${sr.id}`);
    await page.getByRole('button', { name: 'Redact…' }).click();
    const form = page.locator('form#redact');
    await form.waitFor();
    const box = form.getByLabel('Also remove column statistics');
    check(await box.isVisible() && !(await box.isChecked()), 'the form offers "Also remove column statistics", off by default');
    check(/minimum and maximum are values of the data/.test(await page.locator('#redact-statistics-why').innerText()),
      'a line says why: the minimum and maximum are values of the data');
    check(/counts, schema and statistics, the seal/.test(await form.innerText()), 'unchecked, the statistics are listed as kept');
    await box.check();
    const words = await form.innerText();
    check(/removed:.*and its column statistics \(nulls, distinct count, minimum, maximum and mean/.test(words)
      && /kept:.*still bind the statistics' digest\), row hashes, counts and schema, the seal/.test(words)
      && !/schema and statistics/.test(words),
      `checked, the statistics move from what stays to what is removed: ${words.replace(/\s+/g, ' ')}`);
    await page.locator('#redact-reason').fill(statsReason);
    await shot('15-redact-control-statistics');
    const sent = page.waitForRequest((r) => r.url().endsWith(`/runs/${sr.id}/redact`) && r.method() === 'POST');
    await form.getByRole('button', { name: 'Remove the details, kept data and statistics' }).click();
    const body = JSON.parse((await sent).postData() ?? '{}');
    check(body.statistics === true && body.reason === statsReason, `the request asks for the statistics: ${JSON.stringify(body)}`);
    const result = page.locator('#redact-result');
    await result.waitFor();
    const done = await result.innerText();
    check(/^Redacted steps 1 and 2 on .*\. The column statistics of steps 0, 1 and 2 were removed from the server/.test(done),
      `the result names the steps whose statistics were removed: ${done}`);
    await page.locator('table.steps .badge.statistics').first().waitFor();
    const marked = await page.locator('table.steps tbody tr').evaluateAll((rows) => rows.map((r) => !!r.querySelector('.badge.statistics')));
    check(JSON.stringify(marked) === '[true,true,true]', `the run's steps are marked "statistics redacted" (${marked})`);
    const note = await page.locator('#redactions').innerText();
    check(/Details and statistics redacted/.test(note) && note.includes('column statistics of steps 0 load, 1 clean, 2 enrich') && note.includes(statsReason),
      `the run page says which steps' statistics were removed, when and why: ${note}`);
  });

  await step('redact statistics: the step pages say the statistics were removed, with no table', async () => {
    // The pages' checks stand on their own: redacted through the API if the form did not.
    const now = await (await api('GET', `/runs/${sr.id}`)).json();
    if (!now.steps[1].statistics_redacted) {
      await api('POST', `/runs/${sr.id}/redact`, JSON.stringify({ reason: statsReason, statistics: true }));
    }
    await page.goto(`${base}/#/runs/${sr.id}/steps/1`);
    await page.getByRole('heading', { name: 'Step 1 · clean' }).waitFor();
    const notice = page.locator('#statistics-redacted');
    await notice.waitFor();
    const text = await notice.innerText();
    check(/Removed by a redaction on \d{4}-\d\d-\d\d .*Reason: erasure request 2026-131/s.test(text)
      && /column statistics .* were removed from the server/s.test(text) && /record still binds their digest/.test(text),
      `where the statistics would be, the step says they were removed, when and why: ${text.replace(/\s+/g, ' ')}`);
    check(await page.locator('table.stats').count() === 0, 'no statistics table, empty or not');
    check((await page.locator('dl.counts').innerText()).includes(`Changed\n${changedRows}`) && await page.locator('#redacted').isVisible()
      && !/schema and statistics/.test(await page.locator('#redacted').innerText()),
      'the counts stay, and the details note no longer says the statistics remain');
    await shot('16-step-statistics-redacted');
    await page.setViewportSize({ width: 375, height: 800 });
    const narrow = await page.evaluate(() => document.documentElement.scrollWidth);
    check(narrow <= 375, `at 375 px wide the step with removed statistics fits the screen (${narrow} px)`);
    await page.setViewportSize({ width: 1366, height: 900 });
    await page.getByRole('link', { name: '← Previous step' }).click();
    await page.getByRole('heading', { name: 'Step 0 · load' }).waitFor();
    const first = await page.locator('#statistics-redacted').innerText();
    check(first.includes(statsReason) && await page.locator('table.stats').count() === 0 && await page.locator('table.columns').isVisible(),
      `the first step, which has no diff, says its statistics were removed and keeps its schema: ${first.replace(/\s+/g, ' ')}`);
  });

  await step('redact statistics: a step after one whose statistics were removed shows only its own', async () => {
    const pr = await (await api('POST', '/runs', JSON.stringify({ pipeline: 'erasure-part' }))).json();
    await api('POST', `/runs/${pr.id}/steps?step=load&key=id`, csv(s0, cols), 'text/csv');
    await api('POST', `/runs/${pr.id}/steps?step=clean&key=id`, csv(s1, cols), 'text/csv');
    await api('POST', `/runs/${pr.id}/steps?step=enrich&key=id`, csv(s2, [...cols, 'region']), 'text/csv');
    await api('POST', `/runs/${pr.id}/seal`);
    await api('POST', `/runs/${pr.id}/redact`, JSON.stringify({ reason: statsReason, steps: [1], statistics: true }));
    await page.goto(`${base}/#/runs/${pr.id}/steps/2`);
    await page.getByRole('heading', { name: 'Step 2 · enrich' }).waitFor();
    await page.locator('table.stats').waitFor();
    const heads = await page.locator('table.stats thead').innerText();
    check(await page.locator('#before-statistics-redacted').isVisible() && !/Before/.test(heads)
      && await page.getByRole('heading', { name: 'Statistics after' }).isVisible()
      && await page.locator('#statistics-redacted').count() === 0 && await page.locator('table.stats tbody tr').count() === 5,
      `step 2 shows its own statistics, not its predecessor's removed ones (heads: ${heads.replace(/\s+/g, ' ')})`);
  });

  await step('redact statistics: the v3 bundle verified offline says the statistics were removed', async () => {
    const file = join(tmp, `${sr.id}.bundle.zip`);
    const zip = Buffer.from(await (await api('GET', `/runs/${sr.id}/bundle`)).arrayBuffer());
    writeFileSync(file, zip);
    check(zip.includes('pipeproof-bundle-v3') && zip.includes('statistics_redacted') && !zip.includes('steps/00001/stats.json')
      && zip.includes('steps/00001/rows.arrow'), 'the exported bundle is v3, lists the steps whose statistics were removed, and holds none of them');
    // A page of its own: the tab's memory holds the bundle verified before.
    const p = await context.newPage();
    currentPage = p;
    p.setDefaultTimeout(20000);
    await p.goto(`${base}/#/verify`);
    await p.getByLabel(/Public key to trust/).fill(serverKey);
    await p.locator('#bundle-file').setInputFiles(file);
    await p.waitForFunction(() => /checks passed|checks failed/.test(document.querySelector('.verdict')?.textContent ?? ''));
    const verdict = await p.locator('.verdict').innerText();
    check(/All \d+ checks passed/.test(verdict), `the bundle with removed statistics passes: ${verdict}`);
    const checks = await p.locator('table.checks tbody tr').allInnerTexts();
    check(checks.filter((c) => /^✔ passed\tstatistics\t.*not in the bundle: redacted at .*erasure request 2026-131/.test(c)).length === 3,
      `the checks list passes each step's statistics as redacted (${checks.filter((c) => /\tstatistics\t/.test(c)).join(' | ')})`);
    const marked = await p.locator('table.steps tbody tr').evaluateAll((rows) => rows.map((r) => !!r.querySelector('.badge.statistics')));
    check(JSON.stringify(marked) === '[true,true,true]', `the bundle's steps are marked "statistics redacted" (${marked})`);
    check((await p.locator('#redactions').innerText()).includes('column statistics of steps 0 load, 1 clean, 2 enrich'),
      'the bundle says which steps\' statistics were removed');
    await p.locator('table.steps').getByRole('link', { name: 'clean' }).click();
    await p.getByRole('heading', { name: 'Step 1 · clean' }).waitFor();
    const text = await p.locator('#statistics-redacted').innerText();
    check(/before this bundle was written: the bundle does not hold them/.test(text) && text.includes(statsReason)
      && await p.locator('table.stats').count() === 0,
      `the bundle's step says its statistics were removed, with no empty table: ${text.replace(/\s+/g, ' ')}`);
    const summaryNote = await p.locator('#summary-not-in-bundle').innerText();
    check(/diff summary is not in this bundle: it held column statistics/.test(summaryNote)
      && await p.locator('table.counts, .counts').count() === 0,
      `the bundle's step says its diff summary, which held them, is not in the bundle: ${summaryNote}`);
    const stays = await p.locator('#redacted').innerText();
    check(/binds the rows' hash and the diff summary's/.test(stays) && !/diff counts/.test(stays),
      `its redaction notice does not promise diff counts the bundle does not hold: ${stays.replace(/\s+/g, ' ')}`);
    await p.screenshot({ path: join(shots, '17-bundle-step-statistics-redacted.png'), fullPage: true });
    await p.close();
    currentPage = page;
  });

  await step('a sizeable bundle verifies in a worker while the page stays responsive', async () => {
    // Two steps of 500,000 keyed rows: a 64 MB bundle, about half a second to verify in
    // Chromium, long enough for a page that froze to be seen frozen.
    const rows = ['id,v'];
    for (let id = 1; id <= 500000; id++) rows.push(`${id},${id % 97}`);
    const body = rows.join('\n') + '\n';
    const big = await (await api('POST', '/runs', JSON.stringify({ pipeline: 'big' }))).json();
    for (const name of ['first', 'again']) await api('POST', `/runs/${big.id}/steps?step=${name}&key=id`, body, 'text/csv');
    await api('POST', `/runs/${big.id}/seal`);
    const bigFile = join(tmp, `${big.id}.bundle.zip`);
    writeFileSync(bigFile, Buffer.from(await (await api('GET', `/runs/${big.id}/bundle`)).arrayBuffer()));
    // Verifies the file on a page of its own while counting the frames painted: the longest
    // time between two frames, and how many were painted with the busy notice on screen.
    const verifyWatched = async (blockWorker) => {
      const p = await context.newPage();
      currentPage = p;
      p.setDefaultTimeout(60000);
      if (blockWorker) await p.route('**/verify-worker.js*', (r) => r.abort());
      await p.goto(`${base}/#/verify`);
      await p.getByLabel(/Public key to trust/).fill(serverKey);
      await p.evaluate(() => {
        window.frames_ = { last: 0, longest: 0, busy: 0, done: false };
        // The clock, not the frame's own time: a frame begun before the page froze can be
        // run after it, with the earlier time.
        const tick = () => {
          const t = performance.now();
          const f = window.frames_;
          if (f.done) return;
          if (f.last) f.longest = Math.max(f.longest, t - f.last);
          f.last = t;
          if (document.querySelector('.loading-now')) f.busy += 1;
          if (document.querySelector('.verdict')) f.done = true;
          requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
      });
      await p.locator('#bundle-file').setInputFiles(bigFile);
      await p.waitForFunction(() => window.frames_.done);
      const frames = await p.evaluate(() => window.frames_);
      const facts = p.locator('#verify-facts');
      const result = {
        verdict: await p.locator('.verdict').innerText(),
        checks: await p.locator('table.checks').innerText(),
        ran: await facts.getAttribute('data-ran'),
        millis: Number(/verified in (\d+) ms/.exec(await facts.innerText())[1]),
        ...frames,
      };
      await p.screenshot({ path: join(shots, `09c-verify-large${blockWorker ? '-on-page' : ''}.png`), fullPage: true });
      await p.close();
      currentPage = page;
      return result;
    };
    const w = await verifyWatched(false);
    console.log(`     in the worker: verified in ${w.millis} ms; longest time between frames ${w.longest.toFixed(0)} ms, ${w.busy} frames painted with the busy notice`);
    check(/All \d+ checks passed/.test(w.verdict) && w.ran === 'worker', `the sizeable bundle passes, verified in a worker: ${w.verdict}`);
    check(w.longest < Math.max(250, w.millis / 2) && w.busy >= 5,
      `the page kept painting while the worker verified for ${w.millis} ms (longest gap ${w.longest.toFixed(0)} ms, ${w.busy} frames with the busy notice)`);
    // Without a worker (its script refused), the page verifies by itself: the same checks,
    // and the frame counter sees the page freeze for as long, which shows it would catch one.
    const o = await verifyWatched(true);
    console.log(`     on the page: verified in ${o.millis} ms; longest time between frames ${o.longest.toFixed(0)} ms`);
    check(o.ran === 'page' && o.checks === w.checks, 'with no worker, the page verifies by itself, with the same checks');
    check(o.longest >= 0.9 * o.millis, `verifying on the page freezes it, as the counter sees (${o.longest.toFixed(0)} ms without a frame)`);
  });

  check(pageErrors.length === 0, `no uncaught errors in the page ${pageErrors.join('; ')}`);

  await step("the worker is loaded by URLs of this build, and refuses a page of another", async () => {
    const p = await context.newPage();
    currentPage = p;
    p.setDefaultTimeout(20000);
    const requests = [];
    const seen = (r) => { if (/verify-worker\.js|pipeproof-verify/.test(r.url())) requests.push(r); };
    context.on('request', seen);
    await p.goto(`${base}/#/verify`);
    await p.getByLabel(/Public key to trust/).fill(serverKey);
    await p.locator('#bundle-file').setInputFiles(good);
    await p.waitForFunction(() => /checks passed/.test(document.querySelector('.verdict')?.textContent ?? ''));
    context.off('request', seen);
    check(await p.locator('#verify-facts').getAttribute('data-ran') === 'worker', 'the bundle was verified in a worker');
    // The script and the module's two files, each by a URL with the build's id, served as built.
    const files = ['verify-worker.js', 'pipeproof-verify.js', 'pipeproof-verify_bg.wasm'];
    const byName = new Map(requests.map((r) => [new URL(r.url()).pathname.slice(1), r]));
    const ids = new Set(requests.map((r) => new URL(r.url()).searchParams.get('build')));
    const [id] = ids;
    check(files.every((f) => byName.has(f)) && requests.length === files.length && ids.size === 1 && /^[0-9a-f]{16}$/.test(id ?? ''),
      `the worker's files are loaded with the build's id: ${requests.map((r) => r.url().replace(base, '')).join(', ')}`);
    const served = await Promise.all(files.map(async (f) => {
      const r = byName.has(f) ? await fetch(byName.get(f).url()) : undefined;
      return r?.ok === true && Buffer.from(await r.arrayBuffer()).equals(readFileSync(join(dist, f)));
    }));
    check(served.every(Boolean), `the files served at those URLs are those of web/dist (${files.map((f, i) => `${f}: ${served[i]}`).join(', ')})`);
    // The id is the one compiled into the page's module and the worker's.
    const mainWasm = readdirSync(dist).find((f) => /^pipeproof-web-[0-9a-f]+_bg\.wasm$/.test(f));
    check(id !== undefined && [mainWasm, 'pipeproof-verify_bg.wasm'].every((f) => readFileSync(join(dist, f)).includes(id)),
      `the build's id ${id} is compiled into the page (${mainWasm}) and into the worker`);
    // The worker refuses a job from a page of another build, saying so.
    const [ready, answer] = await p.evaluate(async (id) => {
      const w = new Worker(`verify-worker.js?build=${id}`);
      const messages = [];
      await new Promise((resolve) => {
        w.onmessage = (e) => {
          messages.push(e.data);
          if (e.data.kind === 'ready') w.postMessage({ kind: 'bundle', build: '0123456789abcdef', file: new Blob(['x']) });
          else resolve();
        };
        w.onerror = () => resolve();
      });
      w.terminate();
      return messages;
    }, id);
    check(ready?.kind === 'ready' && ready.build === id && answer?.kind === 'refused' && answer.build === id
      && answer.error === `this worker is of build ${id} and the page of build 0123456789abcdef: reload the page`,
      `a job from a page of another build is refused: ${JSON.stringify(answer)}`);
    // A worker of another build (as a browser could have cached) is not given the job: the
    // page verifies by itself.
    await p.route('**/verify-worker.js*', (r) => r.fulfill({ contentType: 'text/javascript',
      body: "postMessage({ kind: 'ready', build: '0123456789abcdef' }); onmessage = () => postMessage({ kind: 'done', head: '{}', tables: [] });" }));
    await p.locator('#bundle-file').setInputFiles(bad);
    await p.waitForFunction(() => /checks failed/.test(document.querySelector('.verdict')?.textContent ?? ''));
    check(await p.locator('#verify-facts').getAttribute('data-ran') === 'page',
      'a worker of another build is not given the job, and the page verifies the bundle itself');
    await p.close();
    currentPage = page;
  });

  // A bundle that makes the Arrow decoder panic in the browser, and the damaged member alone
  // as a data file (tests/browser/fixtures/README.md says how they were made). Natively the
  // panic is caught: `pipeproof verify` fails the bundle check with this message.
  const malformed = 'the input is malformed: the offset of the new Buffer cannot exceed the existing length: '
    + 'slice offset=14942208 length=8 selflen=448';
  await step('a bundle the decoder panics on is reported as malformed, and the app goes on', async () => {
    const p = await context.newPage();
    currentPage = p;
    p.setDefaultTimeout(20000);
    const errors = [];
    p.on('pageerror', (e) => errors.push(e.message));
    const workers = [];
    p.on('worker', (w) => workers.push(w));
    await p.goto(`${base}/#/verify`);
    await p.locator('#bundle-file').setInputFiles(join(fixtures, 'decoder-panics.bundle.zip'));
    const verdict = p.locator('.verdict');
    await verdict.waitFor();
    const fails = await p.locator('table.checks tr.fail').allInnerTexts();
    check(/1 of 1 checks failed/.test(await verdict.innerText()) && fails.length === 1
      && fails[0].includes('bundle') && fails[0].includes(`cannot read the bundle: ${malformed}`),
      `the bundle's check fails, naming what the decoder tripped on: ${fails.map((f) => f.replace(/\s+/g, ' ')).join(' | ')}`);
    check(await p.locator('#verify-facts').getAttribute('data-ran') === 'worker' && await p.locator('#stopped').count() === 0,
      'the worker stopped on it, and the page did not verify it again itself');
    await p.screenshot({ path: join(shots, '09b-verify-malformed.png'), fullPage: true });
    // The app goes on: a good bundle next, in a fresh worker.
    await p.getByLabel(/Public key to trust/).fill(serverKey);
    await p.locator('#bundle-file').setInputFiles(good);
    await p.waitForFunction(() => /checks passed/.test(document.querySelector('.verdict')?.textContent ?? ''));
    check(await p.locator('#verify-facts').getAttribute('data-ran') === 'worker' && workers.length === 2,
      `then a good bundle passes, verified in a fresh worker (${workers.length} workers started)`);
    // A data file the decoder panics on: the data check fails, and the next file is checked.
    await p.locator('#data-file').setInputFiles(join(fixtures, 'decoder-panics.arrow'));
    await p.locator('#data-result').waitFor();
    const data = await p.locator('#data-result').innerText();
    check(data.startsWith('✘') && data.includes(malformed) && await p.locator('#data-result').getAttribute('data-ran') === 'worker',
      `a data file the decoder panics on fails its check: ${data}`);
    await p.locator('#data-file').setInputFiles(dataFile);
    await p.waitForFunction(() => document.querySelector('#data-result')?.textContent.includes('clean.csv'));
    check(/✔.*exactly the output of step 1/.test(await p.locator('#data-result').innerText()) && await p.locator('#stopped').count() === 0,
      'then another data file is checked, in a fresh worker too');
    check(errors.length === 0, `no uncaught errors in the page ${errors.join('; ')}`);
    await p.close();
    currentPage = page;
  });

  await step('with no worker, a bundle the decoder panics on stops the page, which says so', async () => {
    const p = await context.newPage();
    currentPage = p;
    p.setDefaultTimeout(20000);
    const errors = [];
    p.on('pageerror', (e) => errors.push(e.message));
    await p.route('**/verify-worker.js*', (r) => r.abort());
    await p.goto(`${base}/#/verify`);
    await p.locator('#bundle-file').setInputFiles(join(fixtures, 'decoder-panics.bundle.zip'));
    await p.locator('#stopped').waitFor();
    const text = await p.locator('#stopped').innerText();
    check(/pipeproof stopped and cannot go on in this page: .+ Reload the page to go on\./s.test(text) && text.includes('slice offset=14942208'),
      `verifying on its own thread, the page says the app stopped: ${text}`);
    check(errors.length > 0, `the page's WebAssembly module trapped: ${errors.join('; ')}`);
    await p.screenshot({ path: join(shots, '09d-verify-stopped-on-page.png'), fullPage: true });
    await p.close();
    currentPage = page;
  });

  await step('long names fit the screen; a summary-only step shows no details UI', async () => {
    const longPipeline = `nightly_${'customer_orders_reconciliation_'.repeat(5)}v2`;
    const longStep = `normalise_${'currency_and_country_codes_'.repeat(5)}final`;
    const lr = await (await api('POST', '/runs', JSON.stringify({ pipeline: longPipeline }))).json();
    const rows = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, v: i }));
    await api('POST', `/runs/${lr.id}/steps?step=load&key=id`, csv(rows, ['id', 'v']), 'text/csv');
    await api('POST', `/runs/${lr.id}/steps?step=${longStep}&key=id&summary_only_threshold=0.5`,
      csv(rows.map((r) => ({ ...r, v: r.v + 1 })), ['id', 'v']), 'text/csv');
    await api('POST', `/runs/${lr.id}/seal`);
    for (const [width, height] of [[1366, 900], [375, 800]]) {
      await page.setViewportSize({ width, height });
      await page.goto(`${base}/#/runs`);
      await page.locator('table.runs').waitFor();
      await page.getByLabel('Pipeline').locator(`option[value="${longPipeline}"]`).waitFor({ state: 'attached' });
      const runsWide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(runsWide <= width, `at ${width} px wide the runs page fits the screen with a long pipeline name (${runsWide} px)`);
      await page.goto(`${base}/#/runs/${lr.id}/steps/1`);
      await page.getByRole('heading', { name: /^Step 1 · / }).waitFor();
      await page.locator('dl.counts').waitFor();
      const stepWide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(stepWide <= width, `at ${width} px wide a step with a long name fits the screen (${stepWide} px)`);
      await shot(`14-long-names-${width}`);
    }
    await page.setViewportSize({ width: 1366, height: 900 });
    const note = await page.locator('#summary-only').innerText().catch(() => '');
    check(/No detail rows were kept for this step \(its diff was summary-only/.test(note)
      && await page.getByRole('tab').count() === 0 && await page.locator('table.details').count() === 0,
      `a summary-only step says its details were not kept, with no tabs or table: ${note}`);
  });

  // A page of its own, signed in with `tok` (the admin token unless told).
  const signedIn = async (tok = token, viewport = { width: 1366, height: 900 }) => {
    const ctx = await browser.newContext({ viewport });
    const p = await ctx.newPage();
    currentPage = p;
    p.setDefaultTimeout(20000);
    await p.goto(`${base}/`);
    await p.getByLabel('Access token').fill(tok);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { name: 'Runs' }).waitFor();
    return p;
  };
  const done = async (p) => {
    await p.context().close();
    currentPage = page;
  };
  const apiPath = (u) => new URL(u).pathname.startsWith('/api/v1/');

  await step('after an outage, Retry asks again and shows the page once the server is back', async () => {
    const p = await signedIn();
    await p.locator('table.runs').waitFor();
    // The server unreachable: every API request fails without an answer.
    await p.route(apiPath, (r) => r.abort('connectionrefused'));
    await p.getByRole('link', { name: run.id }).click();
    const alert = p.getByRole('alert');
    await alert.waitFor();
    check(/Could not load the run: the server did not answer/.test(await alert.innerText()),
      `a run page whose request got no answer says so: "${(await alert.innerText()).trim()}"`);
    const retry = alert.getByRole('button', { name: 'Retry', exact: true });
    check(await retry.count() === 1, 'a request that got no answer offers Retry');
    await p.screenshot({ path: join(shots, '18-outage-retry.png'), fullPage: true });
    await p.setViewportSize({ width: 375, height: 800 });
    const narrow = await p.evaluate(() => document.documentElement.scrollWidth);
    check(narrow <= 375, `at 375 px wide the error with Retry fits the screen (${narrow} px)`);
    await p.screenshot({ path: join(shots, '18b-outage-retry-narrow.png'), fullPage: true });
    await p.setViewportSize({ width: 1366, height: 900 });
    // Still down: Retry asks again, says it is at it, and says the error again, the focus
    // staying on the button all along.
    let asked = 0;
    let release;
    const held = new Promise((r) => (release = r));
    await p.unroute(apiPath);
    await p.route(apiPath, async (r) => { asked++; await held; await r.abort('connectionrefused'); });
    await alert.getByRole('button', { name: 'Retry', exact: true }).focus();
    await p.keyboard.press('Enter');
    await alert.getByRole('button', { name: 'Retrying…' }).waitFor();
    const focused = () => p.evaluate(() => document.activeElement?.textContent);
    check(await focused() === 'Retrying…', 'while the request is sent again, the button says so and keeps the focus');
    release();
    await alert.getByRole('button', { name: 'Retry', exact: true }).waitFor();
    check(asked === 1 && await focused() === 'Retry', `Retry sent the request again (${asked} request); failed again, the focus is still on Retry`);
    // Back up: Retry shows the run.
    await p.unroute(apiPath);
    await alert.getByRole('button', { name: 'Retry', exact: true }).click();
    await p.locator('table.steps').waitFor();
    check(await p.getByRole('heading', { name: `Run ${run.id}` }).count() === 1, 'once the server is back, Retry shows the run');

    // A 5xx on the detail rows: Retry there loads them.
    await p.route('**/details?*', (r) => r.fulfill({ status: 503, contentType: 'text/plain', body: 'unavailable' }));
    await p.goto(`${base}/#/runs/${run.id}/steps/1`);
    const dAlert = p.locator('.details-box').getByRole('alert');
    await dAlert.waitFor();
    check(/Could not load the detail rows: the server answered 503/.test(await dAlert.innerText()), 'a 5xx on the detail rows is said');
    await p.unroute('**/details?*');
    await dAlert.getByRole('button', { name: 'Retry', exact: true }).click();
    await p.getByText(`Rows 1–50 of ${changedRows}`).waitFor();
    check(true, 'after a 5xx, Retry loads the detail rows');
    // A refused request (4xx) is not retried: asking again would get the same answer.
    await p.goto(`${base}/#/runs/no-such-run`);
    await p.getByRole('alert').waitFor();
    check(await p.getByRole('button', { name: 'Retry' }).count() === 0, 'a 404 offers no Retry');

    // A reload while the server is down keeps the token, and Retry checks it once it is back.
    await p.goto(`${base}/#/runs/${run.id}`);
    await p.locator('table.steps').waitFor();
    await p.route(apiPath, (r) => r.abort('connectionrefused'));
    await p.reload();
    const tAlert = p.getByRole('alert');
    await tAlert.waitFor();
    const tText = await tAlert.innerText();
    check(/Could not check the stored token: the server did not answer/.test(tText)
      && await p.evaluate(() => sessionStorage.getItem('pipeproof.token')) !== null,
      `a reload during an outage keeps the token and says the server did not answer: "${tText.trim()}"`);
    await p.unroute(apiPath);
    await tAlert.getByRole('button', { name: 'Retry', exact: true }).click();
    await p.locator('table.steps').waitFor();
    check(await p.getByText('Signed in as').isVisible(), 'once the server is back, Retry checks the token and shows the page');
    await done(p);
  });

  await step("a step's detail tab, page, column and key search are in the address", async () => {
    const p = await signedIn();
    const stepUrl = `${base}/#/runs/${run.id}/steps/1`;
    await p.goto(stepUrl);
    await p.getByText(`Rows 1–50 of ${changedRows}`).waitFor();
    await p.getByRole('tab', { name: 'Added rows' }).click();
    await p.getByText('Rows 1–20 of 20').waitFor();
    check(new URL(p.url()).hash.endsWith('?rows=added'), `the tab is in the address: ${new URL(p.url()).hash}`);
    await p.getByRole('tab', { name: 'Changed cells' }).click();
    await p.getByText(`Rows 1–50 of ${changedRows}`).waitFor();
    await p.getByLabel('Only changes in column').selectOption('amount');
    await p.getByRole('button', { name: 'Next →' }).click();
    await p.getByText(`Rows 51–${changedRows} of ${changedRows}`).waitFor();
    const paged = new URL(p.url()).hash;
    check(paged.includes('page=2') && paged.includes('column=amount'), `the page and column are in the address: ${paged}`);
    await p.getByLabel('Key (id)').fill('15');
    await p.getByRole('button', { name: 'Search' }).click();
    await p.getByText('Rows 1–1 of 1').waitFor();
    const searched = new URL(p.url()).hash;
    check(searched.includes('key=15') && !searched.includes('page='), `the search is in the address, from its first page: ${searched}`);
    // A reload shows the same rows, and the form says what is in force.
    await p.reload();
    await p.getByText('Rows 1–1 of 1').waitFor();
    check(await p.locator('#key-search').inputValue() === '15' && await p.getByLabel('Only changes in column').inputValue() === 'amount',
      'after a reload the search and the column are still in force, and shown in the form');
    await p.screenshot({ path: join(shots, '19-details-in-address.png'), fullPage: true });
    // Back: the second page of the amount changes, without the search.
    await p.goBack();
    await p.getByText(`Rows 51–${changedRows} of ${changedRows}`).waitFor();
    check(await p.locator('#key-search').inputValue() === '' && await p.getByRole('button', { name: 'Clear' }).count() === 0,
      'Back returns to the page before the search, and the search box empties');
    await p.goBack();
    await p.getByText(`Rows 1–50 of ${changedRows}`).waitFor();
    check(await p.getByLabel('Only changes in column').inputValue() === 'amount', 'Back again: the first page of the column filtered');
    // A shared link, opened afresh.
    await done(p);
    const q = await signedIn();
    await q.goto(`${stepUrl}?rows=removed&page=1`);
    await q.getByText('Rows 1–10 of 10').waitFor();
    check(await q.getByRole('tab', { name: 'Removed rows' }).getAttribute('aria-selected') === 'true', 'a shared link opens on its tab');
    await q.goto(`${stepUrl}?rows=nonsense&page=x`);
    await q.getByText(`Rows 1–50 of ${changedRows}`).waitFor();
    check(await q.getByRole('tab', { name: 'Changed cells' }).getAttribute('aria-selected') === 'true', 'an address with values that do not parse opens the first tab and page');
    await q.goto(`${stepUrl}?rows=added&page=9`);
    await q.getByText(/past the last of the 20 rows/).waitFor();
    await q.getByRole('button', { name: 'Go to the first page' }).click();
    await q.getByText('Rows 1–20 of 20').waitFor();
    check(true, 'a page past the last says so and leads to the first');
    await done(q);
  });

  await step('a token that may only send steps is told so at sign-in, and not kept', async () => {
    const ingest = await (await api('POST', '/tokens', JSON.stringify({ name: 'loader', scopes: ['ingest'] }))).json();
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const p = await ctx.newPage();
    currentPage = p;
    p.setDefaultTimeout(20000);
    await p.goto(`${base}/`);
    await p.getByLabel('Access token').fill(ingest.token);
    await p.getByRole('button', { name: 'Sign in' }).click();
    const alert = p.getByRole('alert');
    await alert.waitFor();
    const text = await alert.innerText();
    check(/may only send steps \(its scope is ingest\)/.test(text) && /needs a token with the read scope/.test(text),
      `an ingest-only token is told it may only send steps, and that reading needs the read scope: "${text.trim()}"`);
    check(await p.getByText('Signed in as').count() === 0 && await p.getByLabel('Access token').isVisible()
      && await p.evaluate(() => sessionStorage.getItem('pipeproof.token')) === null,
      'an ingest-only token is not kept: the sign-in form stays');
    await p.screenshot({ path: join(shots, '20-ingest-token.png'), fullPage: true });
    await p.setViewportSize({ width: 375, height: 800 });
    await p.screenshot({ path: join(shots, '20b-ingest-token-narrow.png'), fullPage: true });
    // One kept from before (sessionStorage) is checked at start and dropped the same way.
    await p.evaluate((t) => sessionStorage.setItem('pipeproof.token', JSON.stringify(t)), ingest.token);
    await p.reload();
    await p.getByRole('alert').waitFor();
    check(/may only send steps/.test(await p.getByRole('alert').innerText()) && await p.getByText('Signed in as').count() === 0,
      'a stored ingest-only token is dropped at start, saying why');
    await ctx.close();
    currentPage = page;
  });

  await step('each page has its own tab title', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const p = await ctx.newPage();
    currentPage = p;
    p.setDefaultTimeout(20000);
    const titled = async (want) => {
      await p.waitForFunction((w) => document.title === w, want, { timeout: 5000 }).catch(() => {});
      const got = await p.title();
      check(got === want, `the tab title is "${want}" (${got})`);
    };
    await p.goto(`${base}/`);
    await p.getByLabel('Access token').waitFor();
    await titled('Sign in · pipeproof');
    await p.getByLabel('Access token').fill(token);
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.getByRole('heading', { name: 'Runs' }).waitFor();
    await titled('Runs · pipeproof');
    await p.goto(`${base}/#/runs/${run.id}`);
    await p.locator('table.steps').waitFor();
    await titled(`Run ${run.id} · pipeproof`);
    await p.goto(`${base}/#/runs/${run.id}/steps/1`);
    await p.getByRole('heading', { name: 'Step 1 · clean' }).waitFor();
    await titled(`Step 1 clean of run ${run.id} · pipeproof`);
    await p.goto(`${base}/#/runs/${run.id}/trace`);
    await titled(`Trace a row of run ${run.id} · pipeproof`);
    await p.goto(`${base}/#/verify`);
    await titled('Verify a bundle · pipeproof');
    await ctx.close();
    currentPage = page;
  });

  await step("the verify page's checks can be narrowed to the failures", async () => {
    const ctx = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const p = await ctx.newPage();
    currentPage = p;
    p.setDefaultTimeout(20000);
    await p.goto(`${base}/#/verify`);
    await p.locator('#bundle-file').setInputFiles(bad);
    await p.waitForFunction(() => document.querySelector('.verdict')?.textContent.includes('failed'), null, { timeout: 60000 });
    const all = await p.locator('table.checks tbody tr').count();
    const failed = await p.locator('table.checks tbody tr.fail').count();
    await p.getByLabel(/Failures only/).check();
    const shown = await p.locator('table.checks tbody tr').count();
    check(failed > 0 && shown === failed && shown < all && await p.locator('table.checks tbody tr.pass').count() === 0,
      `"Failures only" leaves the ${failed} failed checks of ${all}, and says so: ${await p.locator('p.filters').innerText()}`);
    await p.screenshot({ path: join(shots, '21-checks-failures-only.png'), fullPage: true });
    await p.setViewportSize({ width: 375, height: 800 });
    const narrow = await p.evaluate(() => document.documentElement.scrollWidth);
    check(narrow <= 375, `at 375 px wide the checks with the switch fit the screen (${narrow} px)`);
    await p.screenshot({ path: join(shots, '21b-checks-failures-only-narrow.png'), fullPage: true });
    await p.getByLabel(/Failures only/).uncheck();
    check(await p.locator('table.checks tbody tr').count() === all, 'unticked, every check is listed again');
    // A bundle that passes has nothing to narrow: no switch.
    await p.locator('#bundle-file').setInputFiles(good);
    await p.waitForFunction(() => document.querySelector('.verdict')?.textContent.includes('passed'), null, { timeout: 60000 });
    check(await p.getByLabel(/Failures only/).count() === 0, 'a bundle whose checks all passed offers no switch');
    await ctx.close();
    currentPage = page;
  });

  await step('the _row column of added and removed rows is explained', async () => {
    const p = await signedIn();
    await p.goto(`${base}/#/runs/${run.id}/steps/1?rows=added`);
    await p.getByText('Rows 1–20 of 20').waitFor();
    const th = p.locator('table.details th', { hasText: '_row' });
    const title = await th.getAttribute('title');
    const note = await p.locator('#row-note').innerText();
    check(/where the row is in this step's data, counting from 0/.test(title ?? '') && note === title
      && await th.getAttribute('aria-describedby') === 'row-note',
      `the _row header of added rows says what it is, in a tooltip and under the table: ${note}`);
    await p.screenshot({ path: join(shots, '22-row-column-explained.png'), fullPage: true });
    await p.getByRole('tab', { name: 'Removed rows' }).click();
    await p.getByText('Rows 1–10 of 10').waitFor();
    check(/where the row was in the previous step's data/.test(await p.locator('#row-note').innerText()),
      "the _row of removed rows is their place in the previous step's data");
    await p.getByRole('tab', { name: 'Changed cells' }).click();
    await p.getByText(`Rows 1–50 of ${changedRows}`).waitFor();
    check(await p.locator('#row-note').count() === 0, 'changed cells have no _row, and no note');
    await done(p);
  });

  await step('focus rings stand out at least 3:1 from their background', async () => {
    const p = await signedIn();
    await p.goto(`${base}/#/runs/${run.id}/steps/1`);
    await p.getByText(`Rows 1–50 of ${changedRows}`).waitFor();
    await p.evaluate(() => document.activeElement?.blur());
    const seen = [];
    for (let i = 0; i < 16; i++) {
      await p.keyboard.press('Tab');
      // Past the last control the focus leaves the page; the next Tab starts over.
      if (await p.evaluate(() => document.activeElement === document.body)) continue;
      seen.push(await p.evaluate(() => {
        const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
        const lum = ([r, g, b]) => {
          const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        const el = document.activeElement;
        const st = getComputedStyle(el);
        // What the ring is drawn on: the nearest ancestor with a background.
        let bg = 'rgb(255, 255, 255)';
        for (let a = el.parentElement; a; a = a.parentElement) {
          const c = getComputedStyle(a).backgroundColor;
          const v = rgb(c);
          if (!(v.length === 4 && v[3] === 0) && c !== 'transparent') { bg = c; break; }
        }
        const [l1, l2] = [lum(rgb(st.outlineColor)), lum(rgb(bg))].sort((x, y) => y - x);
        return { what: `${el.tagName.toLowerCase()} "${(el.textContent || el.id).trim().slice(0, 20)}"`,
          style: st.outlineStyle, width: parseFloat(st.outlineWidth), ratio: (l1 + 0.05) / (l2 + 0.05) };
      }));
    }
    const weak = seen.filter((s) => s.style === 'none' || s.width < 2 || s.ratio < 3);
    check(weak.length === 0, `every focus ring of the step page is at least 3:1 (${seen.map((s) => `${s.what} ${s.ratio.toFixed(1)}:1`).join(', ')})`);
    await p.screenshot({ path: join(shots, '23-focus-ring.png') });
    await done(p);
  });

  await step('a chart wider than the screen says it scrolls, and which steps are further along', async () => {
    const many = await (await api('POST', '/runs', JSON.stringify({ pipeline: 'many_steps' }))).json();
    for (let i = 0; i < 55; i++) {
      const rows = Array.from({ length: 6 }, (_, j) => ({ id: j + 1 + (i % 3), v: j * i }));
      await api('POST', `/runs/${many.id}/steps?step=s${i}&key=id`, csv(rows, ['id', 'v']), 'text/csv');
    }
    await api('POST', `/runs/${many.id}/seal`);
    const p = await signedIn();
    await p.goto(`${base}/#/runs/${many.id}`);
    await p.locator('table.steps').waitFor();
    const hint = p.locator('figure.chart #chart-hint');
    await hint.waitFor();
    let text = await hint.innerText();
    const m = /Showing steps 0–(\d+) of 55: scroll the chart sideways for steps (\d+)–54\./.exec(text);
    check(m && Number(m[2]) === Number(m[1]) + 1, `the chart says which steps it shows and that the rest is further along: "${text}"`);
    const scroller = p.locator('figure.chart .chart-scroll');
    check(await scroller.getAttribute('tabindex') === '0' && await scroller.getAttribute('aria-describedby') === 'chart-hint'
      && await p.locator('figure.chart.more-right').count() === 1,
      'the chart takes the focus (the arrow keys scroll it), is described by the hint, and fades at the right');
    await p.screenshot({ path: join(shots, '24-chart-many-steps.png'), fullPage: true });
    await scroller.evaluate((el) => { el.scrollLeft = el.scrollWidth; });
    await p.waitForFunction(() => /for steps 0–/.test(document.querySelector('#chart-hint')?.textContent));
    text = await hint.innerText();
    check(/scroll the chart sideways for steps 0–\d+\.$/.test(text) && await p.locator('figure.chart.more-left:not(.more-right)').count() === 1,
      `scrolled to the end, the hint points back to the first steps: "${text}"`);
    await p.setViewportSize({ width: 375, height: 800 });
    await p.waitForFunction(() => /Showing steps \d+–\d+ of 55/.test(document.querySelector('#chart-hint')?.textContent));
    const narrow = await p.evaluate(() => document.documentElement.scrollWidth);
    check(narrow <= 375, `at 375 px wide the run page with a wide chart fits the screen (${narrow} px)`);
    await p.screenshot({ path: join(shots, '24b-chart-many-steps-narrow.png'), fullPage: true });
    // A run whose chart fits says nothing of scrolling.
    await p.setViewportSize({ width: 1366, height: 900 });
    await p.goto(`${base}/#/runs/${run.id}`);
    await p.locator('table.steps').waitFor();
    check(await p.locator('#chart-hint').count() === 0 && await p.locator('figure.chart .chart-scroll[tabindex]').count() === 0,
      'a chart that fits has no hint and takes no focus');
    await done(p);
  });

  await step('offline: a static host with no API', async () => {
    const sport = await freePort();
    start('python3', ['-m', 'http.server', '-b', '127.0.0.1', '-d', dist, String(sport)], {}, 'static server');
    const sbase = `http://127.0.0.1:${sport}`;
    await waitFor(`${sbase}/index.html`, 'the static server');
    const off = await (await browser.newContext({ viewport: { width: 1366, height: 900 } })).newPage();
    off.setDefaultTimeout(20000);
    await off.goto(`${sbase}/`);
    await off.getByLabel('Access token').fill(token);
    await off.getByRole('button', { name: 'Sign in' }).click();
    const alert = await off.getByRole('alert').innerText();
    check(/no pipeproof API at this address/.test(alert), `signing in without a server says why: "${alert.trim()}"`);
    await off.getByRole('link', { name: 'Verify a bundle' }).first().click();
    await off.getByLabel(/Public key to trust/).fill(serverKey);
    await off.locator('#bundle-file').setInputFiles(good);
    const verdict = await off.locator('.verdict').innerText({ timeout: 60000 });
    check(/All \d+ checks passed/.test(verdict), `offline, the good bundle passes: ${verdict}`);
    check(await off.locator('#verify-facts').getAttribute('data-ran') === 'worker', 'offline, the static host serves the worker too');
    await off.screenshot({ path: join(shots, '10-offline-verify.png'), fullPage: true });
  });

  await firefoxChecks({ root, base, token, runId: run.id, good, bad, serverKey, shots, check, step });
}

/// Flips a byte in the middle of a zip member and fixes its CRC-32, as someone editing the
/// bundle on purpose would.
function tamper(zip, name) {
  return editMember(zip, name, (bytes) => { bytes[Math.floor(bytes.length / 2)] ^= 0x01; });
}

/// A copy of a zip whose (stored) member `name` is changed in place by `edit`, with its CRC-32
/// fixed in the local header and the central directory.
function editMember(zip, name, edit) {
  const out = Buffer.from(zip);
  const nameBuf = Buffer.from(name);
  const local = Buffer.from([0x50, 0x4b, 0x03, 0x04]);
  const central = Buffer.from([0x50, 0x4b, 0x01, 0x02]);
  for (let at = out.indexOf(local); at >= 0; at = out.indexOf(local, at + 4)) {
    const nlen = out.readUInt16LE(at + 26);
    const xlen = out.readUInt16LE(at + 28);
    if (!out.subarray(at + 30, at + 30 + nlen).equals(nameBuf)) continue;
    const start = at + 30 + nlen + xlen;
    const bytes = out.subarray(start, start + out.readUInt32LE(at + 18));
    edit(bytes);
    const crc = crc32(bytes) >>> 0;
    out.writeUInt32LE(crc, at + 14);
    for (let c = out.indexOf(central); c >= 0; c = out.indexOf(central, c + 4)) {
      const cn = out.readUInt16LE(c + 28);
      if (out.subarray(c + 46, c + 46 + cn).equals(nameBuf)) out.writeUInt32LE(crc, c + 16);
    }
    return out;
  }
  throw new Error(`no member ${name} in the bundle`);
}

try {
  await main();
} catch (e) {
  check(false, `setup: ${e.message}`);
} finally {
  if (browser) await browser.close();
  for (const c of children) {
    c.stopping = true;
    c.kill('SIGTERM');
  }
  if (process.env.KEEP_TMP) console.log(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}
if (failures.length) {
  console.error(`\n${failures.length} browser check(s) failed:\n- ${failures.join('\n- ')}`);
  process.exit(1);
}
console.log('\nall browser checks passed; screenshots in tests/artifacts/screenshots/');
