// Times verifying one bundle in headless Chromium (the web app's verify page, served by a plain
// static server) against the native CLI (`pipeproof verify`), and prints both and the ratio.
// Not a test: numbers for the performance notes.
// Usage: node tests/browser/verify-bench.mjs BUNDLE [PUBKEY_HEX]   (PIPEPROOF_BIN overrides the CLI)
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { chromium } = createRequire(join(root, 'package.json'))('playwright-core');
const [bundle, pubkey] = process.argv.slice(2);
if (!bundle) {
  console.error('usage: node tests/browser/verify-bench.mjs BUNDLE [PUBKEY_HEX]');
  process.exit(2);
}
const bin = process.env.PIPEPROOF_BIN ?? join(root, 'target', 'release', 'pipeproof');
const port = await new Promise((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});
const web = spawn('python3', ['-m', 'http.server', '-b', '127.0.0.1', '-d', join(root, 'web', 'dist'), String(port)], { stdio: 'ignore' });
try {
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`http://127.0.0.1:${port}/`)).ok) break; } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${port}/#/verify`);
  if (pubkey) await page.locator('#trusted-key').fill(pubkey);
  const t0 = Date.now();
  await page.locator('#bundle-file').setInputFiles(bundle);
  await page.locator('.verdict').waitFor({ timeout: 600000 });
  const wall = (Date.now() - t0) / 1000;
  const verdict = await page.locator('.verdict').innerText();
  const facts = await page.locator('#verify-facts').innerText();
  const inPage = Number(/verified in ([\d,]+) ms/.exec(facts)[1].replace(/,/g, '')) / 1000;
  const ran = await page.locator('#verify-facts').getAttribute('data-ran');
  await browser.close();
  const c0 = Date.now();
  const cli = spawnSync(bin, ['verify', bundle, ...(pubkey ? ['--pubkey', pubkey] : [])], { encoding: 'utf8' });
  const native = (Date.now() - c0) / 1000;
  const mb = (statSync(bundle).size / 1048576).toFixed(1);
  console.log(`bundle ${bundle} (${mb} MiB)`);
  console.log(`browser: ${verdict.trim()}  verify ${inPage.toFixed(2)} s (in the ${ran}), ${wall.toFixed(2)} s from picking the file to the verdict`);
  console.log(`native:  exit ${cli.status}, ${native.toFixed(2)} s (${cli.stdout.trim().split('\n').pop()})`);
  console.log(`ratio browser/native: ${(inPage / native).toFixed(1)}x (verify), ${(wall / native).toFixed(1)}x (wall)`);
} finally {
  web.kill('SIGTERM');
}
