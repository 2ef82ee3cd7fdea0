#!/usr/bin/env node
// Plays livegrid streams in Debian's Chromium with real browser players and
// prints what they saw as JSON on stdout:
//
//   node e2e/player/run.mjs --mode hls --url http://HOST:8080/live/demo/index.m3u8 \
//     [--mode dash --url .../index.mpd] [--mode flv --url .../demo.flv] ...
//
// Each --mode (hls, dash, flv) pairs with the --url after it; the pairs run
// one after another in one page (each with a new <video> element), and
// the output is a JSON array with one result per pair (see player.js for
// its fields).
// The page is this folder over HTTP: --page URL of its index.html, or by
// default the driver serves the folder itself on 127.0.0.1 — either way
// another origin than the stream, so the origin's CORS headers are used.
// The JSON is measurements, not a verdict: coordinator/player_test.go
// judges it. Exit status 0 when results were printed (even ones with
// "error" set), 2 for bad usage or a browser that did not start. Never
// downloads a browser: --chromium (default /usr/bin/chromium, Debian's
// package) must exist.
import { parseArgs } from 'node:util';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const usage = 'usage: run.mjs --mode hls|dash|flv --url STREAM_URL [--mode M --url U]... ' +
  '[--page URL] [--fps 30] [--play 5] [--timeout 30] [--no-cycle] [--chromium /usr/bin/chromium]';

function fail(msg) {
  console.error(`run.mjs: ${msg}\n${usage}`);
  process.exit(2);
}

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      mode: { type: 'string', multiple: true, default: [] },
      url: { type: 'string', multiple: true, default: [] },
      page: { type: 'string' },
      fps: { type: 'string', default: '30' },
      play: { type: 'string', default: '5' },
      timeout: { type: 'string', default: '30' },
      'no-cycle': { type: 'boolean', default: false },
      chromium: { type: 'string', default: '/usr/bin/chromium' },
    },
  }));
} catch (e) {
  fail(e.message);
}
if (opts.mode.length === 0 || opts.mode.length !== opts.url.length) fail('give --mode and --url in pairs');
for (const m of opts.mode) if (!['hls', 'dash', 'flv'].includes(m)) fail(`unknown mode ${m}`);
const fps = Number(opts.fps);
const playSeconds = Number(opts.play);
const timeoutS = Number(opts.timeout);
if (!(fps > 0 && playSeconds > 0 && timeoutS > 0)) fail('--fps, --play and --timeout must be positive numbers');

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.map': 'application/json' };

// servePage serves this folder on 127.0.0.1 and returns its index.html URL.
async function servePage() {
  const root = dirname(fileURLToPath(import.meta.url));
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    try {
      const body = await readFile(join(root, path === '/' ? 'index.html' : path));
      res.writeHead(200, { 'Content-Type': TYPES[extname(path)] || 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  return `http://127.0.0.1:${server.address().port}/index.html`;
}

// The flags this machine needs: no sandbox as root, no GPU, and no
// background connections (the network is closed; they would only fail).
// Playwright gives the browser a fresh profile (--user-data-dir) in a
// temporary folder and removes it when the browser goes.
const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];
const pageURL = opts.page || await servePage();

// Ending this process, by a signal too, SIGKILLs the browser's whole
// process group at once (Playwright's exit hook) instead of closing it
// gracefully: a graceful close reaps child processes one by one while the
// browser still polls /proc, and on this kind of VM that was once seen to
// livelock the kernel (shrink_dcache_parent), with two threads spinning
// on both cores until someone intervened.
const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
for (const sig of signals) process.once(sig, () => process.exit(1));

let browser;
try {
  browser = await chromium.launch({
    executablePath: opts.chromium, headless: true, args, timeout: 30000,
    handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
  });
} catch (e) {
  console.error(`run.mjs: cannot start ${opts.chromium}: ${e.message}`);
  process.exit(2);
}

// All runs share one page and one document, so no renderer process ends
// before the browser does.
const page = await browser.newPage();
let consoleLines = [];
let requests = [];
page.on('console', (m) => {
  if (m.type() === 'error' || m.type() === 'warning') consoleLines.push(`${m.type()}: ${m.text()}`.slice(0, 500));
});
page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`.slice(0, 500)));
page.on('requestfailed', (r) => {
  // An aborted request is a player cancelling a load, not a failure.
  const why = r.failure() ? r.failure().errorText : '';
  if (why !== 'net::ERR_ABORTED') requests.push(`${r.method()} ${r.url()}: ${why}`);
});
page.on('response', (r) => {
  if (r.status() >= 400) requests.push(`${r.request().method()} ${r.url()}: ${r.status()}`);
});

// play runs one player and returns its result, with the page's console
// warnings and failed requests during the run added.
async function play(mode, url) {
  consoleLines = [];
  requests = [];
  const options = { mode, url, fps, playSeconds, timeoutMs: timeoutS * 1000, cycle: !opts['no-cycle'] };
  // The page bounds each of its waits; this is the backstop for a hung page.
  const backstopMs = (timeoutS * 6 + playSeconds * 3 + 30) * 1000;
  let backstop;
  let result;
  try {
    result = await Promise.race([
      page.evaluate((o) => window.playerTest(o), options),
      new Promise((_, reject) => {
        backstop = setTimeout(() => reject(new Error(`page gave no result in ${backstopMs / 1000} s`)), backstopMs);
      }),
    ]);
  } catch (e) {
    result = { mode, url, error: `run.mjs: ${e.message}` };
  } finally {
    clearTimeout(backstop);
  }
  result.console = consoleLines.slice(0, 50);
  result.failedRequests = requests.slice(0, 50);
  return result;
}

const results = [];
try {
  await page.goto(pageURL, { waitUntil: 'load', timeout: 30000 });
  for (let i = 0; i < opts.mode.length; i++) results.push(await play(opts.mode[i], opts.url[i]));
} catch (e) {
  console.error(`run.mjs: ${pageURL}: ${e.message}`);
  process.exit(2);
}
// Exiting kills the browser (see above) and removes its profile.
process.stdout.write(`${JSON.stringify(results, null, 2)}\n`, () => process.exit(0));
