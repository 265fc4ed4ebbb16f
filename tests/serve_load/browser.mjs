// The chat page in a real headless browser (Debian's chromium, driven by
// puppeteer-core): type a system prompt and a message, see the streamed reply
// arrive and the speed shown, stop a long reply, take a screenshot.
// Usage: node browser.mjs PAGE_URL NODE_MODULES_DIR CHROMIUM SCREENSHOT.png
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';

const [, , pageUrl, modules, chromium, screenshot] = process.argv;
const puppeteer = createRequire(modules + '/')('puppeteer-core');
const browser = await puppeteer.launch({
  executablePath: chromium, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 900, height: 600 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => console.log(`page console: ${m.text()}`));
  const step = (what) => console.log(`step: ${what}`);
  await page.goto(pageUrl, { waitUntil: 'load' });
  step('load');
  // Polled on a timer: animation frames need not run in a headless page.
  const poll = { polling: 100, timeout: 20000 };
  await page.waitForFunction(() => document.getElementById('model').textContent === 'test-model', poll);
  step('model shown');

  // A reply, streamed: several updates of the assistant bubble, then stats.
  // The test model answers in milliseconds, so the connection is slowed to
  // 16 KB/s (each event is ~250 bytes) to watch the text arrive.
  await page.emulateNetworkConditions({ offline: false, download: 16 * 1024, upload: 1 << 20, latency: 5 });
  await page.type('#system', 'Answer briefly.');
  await page.$eval('#max_tokens', (e) => { e.value = '300'; });
  // Greedy: a sampled reply of the random test model may end after a few
  // tokens, too soon to watch it stream; the greedy one runs to max_tokens.
  await page.$eval('#temperature', (e) => { e.value = '0'; });
  await page.type('#input', 'Hello there');
  const updates = await page.evaluate(() => {
    window.__updates = 0;
    const log = document.getElementById('log');
    new MutationObserver(() => window.__updates++).observe(log, { childList: true, subtree: true, characterData: true });
    return 0;
  });
  assert.equal(updates, 0);
  await page.click('#send');
  step('sent');
  await page.waitForFunction(
    () => /tokens\/s/.test(document.getElementById('stats').textContent) || document.querySelector('.error'),
    poll);
  step('reply done');
  const failed = await page.$('.error');
  if (failed) throw new Error(`the page shows an error: ${await page.$eval('.error', (e) => e.textContent)}`);
  const reply = await page.$eval('.assistant', (e) => e.textContent);
  const seen = await page.evaluate(() => window.__updates);
  assert.ok(reply.length > 0, 'no reply text');
  assert.ok(seen >= 3, `the reply arrived in ${seen} page updates, not streamed`);
  assert.equal(await page.$eval('.user', (e) => e.textContent), 'Hello there');
  await page.screenshot({ path: screenshot });

  // Stop: a long reply (a fresh conversation, greedy, so the same reply every
  // run: it runs to max_tokens here) ends when the button is pressed.
  await page.reload({ waitUntil: 'load' });
  await page.waitForFunction(() => document.getElementById('model').textContent === 'test-model', poll);
  await page.$eval('#max_tokens', (e) => { e.value = '400'; });
  await page.$eval('#temperature', (e) => { e.value = '0'; });
  await page.type('#input', 'Tell me more');
  await page.click('#send');
  step('sent a long one');
  await page.waitForFunction(() => document.querySelector('.assistant')?.textContent.length > 0, poll);
  step('long reply arriving');
  await page.click('#stop');
  await page.waitForFunction(() => /stopped|tokens\/s/.test(document.getElementById('stats').textContent), poll);
  assert.equal(await page.$eval('#stats', (e) => e.textContent), 'stopped', 'the reply ended before the stop');
  assert.equal(await page.$eval('#send', (e) => e.disabled), false);
  assert.deepEqual(errors, []);
  console.log(`browser: reply of ${reply.length} characters in ${seen} updates; stopped a second reply; screenshot ${screenshot}`);
} catch (e) {
  // What the page showed, for the failure message.
  const pages = await browser.pages();
  const shown = pages.length ? await pages[pages.length - 1].evaluate(
    () => `stats: ${document.getElementById('stats')?.textContent}; input: '${document.getElementById('input').value}'; ` +
      `send disabled: ${document.getElementById('send').disabled}; messages: ` +
      [...document.querySelectorAll('.msg')].map((m) => `${m.className} (${m.textContent.length})`).join(', ')) : '';
  console.log(`failed: ${e.message}\n${shown.slice(0, 2000)}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
