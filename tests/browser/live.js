// live.js - the live view in a real browser (Debian's chromium through playwright-core):
// the page follows changes made with the real client, resumes without a reload after the
// server is killed and restarted, stops when its link is revoked, and shows record text
// with <script>, quotes and & as text. Run by tests/it_browser.sh, which starts conferd
// and passes what this needs in the environment.
'use strict';
const { chromium } = require('playwright-core');
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const env = process.env;
const URL = env.LIVE_URL;
const CONFER = env.CONFER;
const SHOT = env.LIVE_SHOT;
const WAIT = 15000; // every wait for the page is bounded

let failures = 0;
function ok(what) { console.log('ok - ' + what); }
function confer(...args) {
  return execFileSync(CONFER, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function restartServer() {
  const pid = parseInt(fs.readFileSync(env.LIVE_PIDFILE, 'utf8'), 10);
  process.kill(pid, 'SIGKILL');
  return pid;
}

function startServer() {
  const args = JSON.parse(env.LIVE_SERVE_ARGS);
  const log = fs.openSync(env.LIVE_LOG, 'a');
  const child = spawn(env.CONFERD, args, { stdio: ['ignore', log, log], detached: true });
  fs.writeFileSync(env.LIVE_PIDFILE, String(child.pid));
  child.unref();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  await page.goto(URL);
  await page.waitForSelector('h1', { timeout: WAIT });
  const title = await page.textContent('h1');
  if (!/Industry Engagement/.test(title)) throw new Error('the page shows no title: ' + title);
  await page.waitForFunction(() => /^Live/.test(document.getElementById('live-status').textContent),
    null, { timeout: WAIT });
  await page.evaluate(() => { window.__sameDocument = 1; });
  ok('the page shows the meeting and its script connects');

  // A text edit with confer edit (a scripted $EDITOR appends a word to section 3).
  confer('edit', '3');
  await page.waitForFunction(() => document.getElementById('record').textContent
    .includes('BROWSER-TEXT-EDIT'), null, { timeout: WAIT });
  ok('a text edit (confer edit) shows in the page');

  confer('actions', 'add', 'Prepare the browser liaison statement', '--to', 'WP2');
  await page.waitForFunction(() => document.getElementById('s-actions').textContent
    .includes('Prepare the browser liaison statement'), null, { timeout: WAIT });
  ok('a new action (confer actions add) shows in the page');

  const docs = JSON.parse(confer('docs', '--json'));
  const ref = docs[0].ref + (docs[0].revision || '');
  const before = await page.textContent('#s-docs');
  if (!before.includes(docs[0].ref)) throw new Error('the page has no document ' + docs[0].ref);
  const rows = await page.$$eval('#s-docs tr', (r) => r.length);
  confer('docs', 'remove', ref, '--yes');
  await page.waitForFunction((n) => document.querySelectorAll('#s-docs tr').length === n - 1,
    rows, { timeout: WAIT });
  ok('a deleted document (confer docs remove) leaves the page');

  confer('items', 'set', '1', '--title', '<script>window.__pwned=1</script> "quoted" & <b>bold</b>');
  await page.waitForFunction(() => document.getElementById('record').textContent
    .includes('<script>window.__pwned=1</script> "quoted" & <b>bold</b>'), null, { timeout: WAIT });
  const bad = await page.evaluate(() => ({
    pwned: window.__pwned,
    scripts: document.querySelectorAll('#record script').length,
    bolds: document.querySelectorAll('#record h2 b').length,
  }));
  if (bad.pwned !== undefined || bad.scripts !== 0 || bad.bolds !== 0) {
    throw new Error('record text made elements: ' + JSON.stringify(bad));
  }
  ok('<script>, quotes, & and tags in the record show as text, making no element');

  // The server is killed and started again: the page resumes by itself, without a reload.
  restartServer();
  await page.waitForFunction(() => /lost/.test(document.getElementById('live-status').className),
    null, { timeout: WAIT });
  startServer();
  await page.waitForFunction(() => /^Live/.test(document.getElementById('live-status').textContent),
    null, { timeout: WAIT });
  // Changes made while it was away and after it came back both show.
  let done = false;
  for (let i = 0; i < 50 && !done; i++) {
    try { confer('items', 'set', '2', '--title', 'After the restart'); done = true; }
    catch (e) { await new Promise((r) => setTimeout(r, 200)); }
  }
  if (!done) throw new Error('the client could not reach the restarted server');
  await page.waitForFunction(() => document.getElementById('record').textContent
    .includes('After the restart'), null, { timeout: WAIT });
  const same = await page.evaluate(() => window.__sameDocument);
  if (same !== 1) throw new Error('the page was reloaded');
  ok('after the server is killed and restarted the page resumes, without a reload');

  // Someone writes in section 3 (confer write in a terminal): the page marks the section
  // with their name, and the projector keeps it in view.
  const session = 'confer-browser-' + process.pid;
  execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '100', '-y', '30',
    `XDG_CONFIG_HOME='${env.XDG_CONFIG_HOME}' '${CONFER}' write 3`]);
  await page.waitForFunction(() => {
    const s = document.querySelector('#record .sec.editing');
    return s && s.querySelector('.who') && s.querySelector('.who').textContent === 'rap';
  }, null, { timeout: WAIT });
  ok('the section being written is marked with the writer\'s name');

  // The projector: large type, the edited section in view, saved as a picture.
  const proj = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  await proj.goto(URL + '?follow=1');
  await proj.waitForFunction(() => document.body.classList.contains('follow') &&
    /^Live/.test(document.getElementById('live-status').textContent), null, { timeout: WAIT });
  const size = await proj.evaluate(() => parseFloat(getComputedStyle(document.body).fontSize));
  if (!(size > 20)) throw new Error('projector mode has no large type: ' + size + 'px');
  await proj.waitForFunction(() => {
    const s = document.querySelector('#record .sec.editing');
    if (!s) return false;
    const r = s.getBoundingClientRect();
    return r.top < window.innerHeight && r.bottom > 0 && window.scrollY > 0;
  }, null, { timeout: WAIT });
  await proj.screenshot({ path: SHOT });
  execFileSync('tmux', ['kill-session', '-t', session]);
  await page.waitForFunction(() => !document.querySelector('#record .sec.editing'),
    null, { timeout: WAIT });
  ok('projector mode (?follow=1): large type, the edited section in view; screenshot ' + SHOT);

  // Revoking the link stops the open pages.
  const shares = JSON.parse(confer('share', 'list', '--json'));
  const share = shares.find((s) => s.label === 'browser');
  confer('share', 'revoke', String(share.id));
  await page.waitForFunction(() => /revoked/.test(document.getElementById('live-status').textContent),
    null, { timeout: WAIT });
  await proj.waitForFunction(() => /revoked/.test(document.getElementById('live-status').textContent),
    null, { timeout: WAIT });
  const res = await page.request.get(URL);
  if (res.status() !== 404) throw new Error('a revoked link answered ' + res.status());
  ok('revoking the link stops its open pages; the link answers 404');

  const real = errors.filter((e) => !/EventSource|ERR_CONNECTION_REFUSED|404|net::/.test(e));
  if (real.length) throw new Error('the page logged errors: ' + real.join('; '));
  await browser.close();
}

main().then(() => process.exit(failures ? 1 : 0)).catch((e) => {
  console.error('FAIL: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
});
