// The web app in Firefox (Debian's firefox-esr, driven over WebDriver BiDi by puppeteer-core):
// sign in to the real server, open the runs page and a run, then verify a good and a tampered
// bundle on the verify page. Called by run.mjs with the server and the bundles it made.
import { createRequire } from 'node:module';
import { join } from 'node:path';

export async function firefoxChecks({ root, base, token, runId, good, bad, serverKey, shots, check, step }) {
  const require = createRequire(join(root, 'package.json'));
  const puppeteer = require('puppeteer-core');
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: process.env.FIREFOX ?? '/usr/bin/firefox-esr',
    headless: true,
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1366, height: 900 });
    page.setDefaultTimeout(30000);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const text = (selector) => page.$eval(selector, (e) => e.innerText);

    await step('firefox: sign in and open a run', async () => {
      const t0 = Date.now();
      await page.goto(`${base}/`);
      await page.waitForSelector('#token');
      console.log(`     ${await browser.version()}: first page interactive after ${Date.now() - t0} ms`);
      await page.type('#token', token);
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.body.innerText.includes('Signed in as'));
      check(true, 'firefox: signed in with the token');
      await page.goto(`${base}/#/runs/${runId}`);
      await page.waitForFunction(() => /clean/.test(document.body.innerText) && /enrich/.test(document.body.innerText));
      check(true, 'firefox: the run page lists its steps');
    });

    await step('firefox: verify a good and a tampered bundle', async () => {
      await page.goto(`${base}/#/verify`);
      await page.waitForSelector('#bundle-file');
      await page.type('#trusted-key', serverKey);
      const input = await page.$('#bundle-file');
      await input.uploadFile(good);
      await page.waitForSelector('.verdict');
      const verdict = await text('.verdict');
      check(/All \d+ checks passed/.test(verdict), `firefox: the good bundle passes: ${verdict.trim()}`);
      check(await page.$eval('#verify-facts', (e) => e.dataset.ran) === 'worker', 'firefox: the bundle was verified in a worker');
      await page.screenshot({ path: join(shots, '11-firefox-verify.png'), fullPage: true });
      await page.goto(`${base}/#/runs`);
      await page.goto(`${base}/#/verify`);
      await page.waitForSelector('#bundle-file');
      const again = await page.$('#bundle-file');
      await again.uploadFile(bad);
      await page.waitForFunction(() => document.querySelector('.verdict.bad') !== null);
      const failed = await text('.verdict.bad');
      check(/checks failed/.test(failed), `firefox: the tampered bundle fails: ${failed.trim()}`);
    });
    check(errors.length === 0, `firefox: no uncaught errors in the page ${errors.join('; ')}`);
  } finally {
    await browser.close();
  }
}
