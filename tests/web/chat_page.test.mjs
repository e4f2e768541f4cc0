// End-to-end test of the reference chat page (web/, served at GET /): the
// real `parley serve` on the real openrouter-sim, driven through Debian's
// headless Chromium with playwright-core. The page runs under its own
// Content-Security-Policy (no bypass), so an inline script or a blocked
// connection fails the test too.
//
// Run (CTest sets these): PARLEY=build/debug/bin/parley OPENROUTER_SIM=build/debug/bin/openrouter-sim \
//   node --test tests/web/chat_page.test.mjs
// WEB_SCREENSHOTS=DIR also saves screenshots there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';
import { start, stop } from '../support/processes.mjs';

const PARLEY = process.env.PARLEY && resolve(process.env.PARLEY);
const SIM = process.env.OPENROUTER_SIM && resolve(process.env.OPENROUTER_SIM);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOTS = process.env.WEB_SCREENSHOTS || '';
const SECRET = 'web-page-test-secret-0123456789abcdef';
const RATE_LIMIT = 3;  // AI_RATE_LIMIT_PER_USER: the 4th message of a user is refused
const MODEL = 'anthropic/claude-3.5-sonnet';
const STEP_MS = 15_000;  // any one wait for the page

let work;      // temporary directory: database, data dir
let sim;       // { child, port, output }
let parley;    // { child, port, output }
let browser;
let base;      // http://127.0.0.1:PORT
const contexts = [];

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms); }),
  ]);
}

function parleyEnv() {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME || work,
    OPENROUTER_BASE_URL: `http://127.0.0.1:${sim.port}/api/v1`,
    OPENROUTER_API_KEY: 'k',
    PARLEY_CONFIG: '/dev/null',
    PARLEY_JWT_SECRET: SECRET,
    DATABASE_URL: `sqlite:${join(work, 'p.db')}`,
    PARLEY_DATA_DIR: join(work, 'var'),
    PARLEY_DEV_TOKENS: 'true',
    AI_RATE_LIMIT_PER_USER: String(RATE_LIMIT),
  };
}

// A token from `parley token` (the path a person takes without dev tokens).
async function mintToken(user) {
  const { stdout } = await promisify(execFile)(PARLEY, ['token', '--user', user], {
    env: parleyEnv(), timeout: 15_000, cwd: work,
  });
  const token = stdout.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, `parley token printed ${stdout}`);
  return token;
}

async function simRequest(method, path, body) {
  const r = await fetch(`http://127.0.0.1:${sim.port}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(r.status, 200, `${method} ${path} -> ${r.status}`);
  return r.json();
}

// A fresh browser context and page, with what the page logs and every
// WebSocket frame it sends and receives.
async function openPage({ locale = 'es-ES', viewport = { width: 1000, height: 800 }, clock = false } = {}) {
  const context = await browser.newContext({ locale, viewport });
  contexts.push(context);
  context.setDefaultTimeout(STEP_MS);
  const page = await context.newPage();
  const problems = [];
  const sent = [];
  const received = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('websocket', (ws) => {
    const parse = (f) => { try { return JSON.parse(f.payload); } catch { return { unparsed: String(f.payload) }; } };
    ws.on('framesent', (f) => sent.push(parse(f)));
    ws.on('framereceived', (f) => received.push(parse(f)));
  });
  if (clock) await page.clock.install();
  const response = await page.goto(base + '/', { waitUntil: 'load' });
  assert.equal(response.status(), 200);
  return { page, problems, sent, received };
}

async function screenshot(page, name) {
  if (!SCREENSHOTS) return;
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

const text = (page, selector) => page.locator(selector).textContent();

async function waitConnected(page) {
  await page.locator('#state[data-state="connected"]').waitFor();
  await page.locator('#send:not([disabled])').waitFor();
}

// Sends one message through the composer (Enter); resolves with the locator
// of its turn, by the turn's message id.
async function sendMessage(page, message) {
  const before = await page.locator('#log article').count();
  await page.locator('#message').fill(message);
  await page.locator('#message').press('Enter');
  const id = await page.locator('#log article').nth(before).getAttribute('data-id');
  assert.ok(id, 'the turn has its message id');
  return page.locator(`#log article[data-id="${id}"]`);
}

// Resolves with the turn's final status once it ended (done, error, cancelled).
async function waitEnded(turn, timeout = 30_000) {
  await turn.and(turn.page().locator(':is([data-status="done"], [data-status="error"], [data-status="cancelled"])'))
    .waitFor({ timeout });
  return turn.getAttribute('data-status');
}

before(async () => {
  assert.ok(PARLEY, 'set PARLEY to the parley binary');
  assert.ok(SIM, 'set OPENROUTER_SIM to the openrouter-sim binary');
  work = await mkdtemp(join(tmpdir(), 'parley-web-'));
  sim = await start('openrouter-sim', SIM,
    ['--port', '0', '--latency-ms', '0', '--tokens-per-second', '50', '--answer-tokens', '20'],
    { PATH: process.env.PATH }, /openrouter-sim listening on http:\/\/127\.0\.0\.1:(\d+)\n/);
  parley = await start('parley', PARLEY, ['serve', '--listen', '127.0.0.1:0'], parleyEnv(),
    /listening on http:\/\/127\.0\.0\.1:(\d+)/);
  base = `http://127.0.0.1:${parley.port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], timeout: 60_000 });
});

after(async () => {
  for (const c of contexts) await withTimeout(c.close(), 10_000, 'closing a browser context').catch(() => {});
  if (browser) await withTimeout(browser.close(), 15_000, 'closing the browser').catch(() => {});
  await stop(parley);
  await stop(sim);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('the reference chat page', { timeout: 240_000 }, () => {
  test('GET / serves the page with its security headers', async () => {
    const r = await fetch(base + '/', { signal: AbortSignal.timeout(10_000) });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'self'.*connect-src 'self' ws: wss:/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(r.headers.get('cache-control'), 'no-cache');
    assert.match(await r.text(), /<title>Parley<\/title>/);
    const js = await fetch(base + '/app.js', { signal: AbortSignal.timeout(10_000) });
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
    const css = await fetch(base + '/app.css', { method: 'HEAD', signal: AbortSignal.timeout(10_000) });
    assert.equal(css.status, 200);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    const post = await fetch(base + '/', { method: 'POST', body: 'x', signal: AbortSignal.timeout(10_000) });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  test('loads in Spanish and offers the dev token', async () => {
    const { page, problems } = await openPage({ locale: 'es-ES' });
    assert.equal(await page.title(), 'Parley');
    assert.equal(await page.locator('html').getAttribute('lang'), 'es');
    assert.equal(await text(page, '#state-text'), 'Desconectado');
    assert.equal(await text(page, '#connect'), 'Conectar');
    assert.equal(await page.locator('#language').inputValue(), 'es');
    await page.locator('#dev-token').waitFor({ state: 'visible' });
    assert.equal(await text(page, '#dev-token'), 'Usar token de desarrollo');
    await screenshot(page, 'login');
    assert.deepEqual(problems, []);
  });

  test('an English browser gets the page in English', async () => {
    const { page, problems } = await openPage({ locale: 'en-US' });
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.equal(await text(page, '#connect'), 'Connect');
    assert.equal(await text(page, '#login-title'), 'Sign in');
    assert.deepEqual(problems, []);
  });

  test('a bad pasted token: the server\'s message and the close code', async () => {
    const { page, sent } = await openPage();
    await page.locator('#token').fill('not-a-token');
    await page.locator('#connect').click();
    await page.locator('#state[data-state="closed"]').waitFor();
    await page.locator('#notice:not([hidden])').waitFor();
    const notice = await text(page, '#notice');
    assert.match(notice, /No has iniciado sesión/);
    assert.match(notice, /\(unauthorized\)/);
    assert.match(await text(page, '#state-text'), /1008/);
    assert.ok(await page.locator('#login').isVisible(), 'back to the token form');
    assert.deepEqual(sent[0], { type: 'hello', token: 'not-a-token', language: 'es' });
  });

  describe('with a pasted token', () => {
    let page;
    let sent;
    let received;
    let problems;

    before(async () => {
      const token = await mintToken('web-paste');
      ({ page, sent, received, problems } = await openPage({ locale: 'es-ES' }));
      await page.locator('#token').fill(token);
      await page.locator('#connect').click();
      await waitConnected(page);
      assert.deepEqual(sent[0], { type: 'hello', token, language: 'es' });
      assert.equal(await text(page, '#state-text'), 'Conectado como web-paste');
      assert.ok(await page.locator('#chat').isVisible());
      assert.ok(!(await page.locator('#login').isVisible()));
    });

    test('an answer streams in, then ends with model and cost', async () => {
      // Every text the answer shows, with the turn's state at that moment.
      await page.evaluate(() => {
        window.__growth = [];
        const log = document.getElementById('log');
        new MutationObserver(() => {
          const turn = log.querySelector('article:last-of-type');
          if (!turn) return;
          const shown = turn.querySelector('.answer-text').textContent;
          const last = window.__growth[window.__growth.length - 1];
          if (!last || last.text !== shown || last.status !== turn.dataset.status) {
            window.__growth.push({ text: shown, status: turn.dataset.status });
          }
        }).observe(log, { subtree: true, childList: true, characterData: true, attributes: true });
      });
      const turn = await sendMessage(page, 'Hola Parley');
      assert.equal(await waitEnded(turn), 'done');
      const answer = await turn.locator('.answer-text').textContent();
      assert.ok(answer.startsWith('Echo: Hola Parley'), answer);
      const growth = await page.evaluate(() => window.__growth);
      const streamed = growth.filter((g) => g.status === 'streaming' && g.text.length > 0);
      assert.ok(streamed.length >= 2, `the answer grew in ${streamed.length} step(s) before done`);
      for (let i = 1; i < streamed.length; ++i) {
        assert.ok(streamed[i].text.startsWith(streamed[i - 1].text), 'each step extends the answer');
        assert.ok(streamed[i].text.length > streamed[i - 1].text.length);
      }
      assert.ok(streamed.at(-1).text.length <= answer.length);
      assert.equal(await turn.locator('.user-text').textContent(), 'Hola Parley');
      const meta = await turn.locator('.meta').textContent();
      assert.match(meta, new RegExp(MODEL.replace(/[./]/g, '\\$&')));
      assert.match(meta, /coste \d+\.\d+ USD/);
      assert.equal(await turn.locator('.answer').getAttribute('aria-busy'), 'false');

      const message = sent.find((f) => f.type === 'message');
      assert.deepEqual(Object.keys(message).sort(), ['id', 'stream', 'text', 'type']);
      assert.equal(message.text, 'Hola Parley');
      assert.equal(message.stream, true);
      assert.equal(await turn.getAttribute('data-id'), message.id);
      const deltas = received.filter((f) => f.type === 'delta' && f.id === message.id);
      assert.ok(deltas.length >= 2, `${deltas.length} delta frames`);
      assert.equal(await text(page, '#message'), '');
      assert.ok(await page.locator('#cancel').isDisabled());
      await screenshot(page, 'answer');
    });

    test('the cancel button stops a slow answer', async () => {
      // One long scripted answer (2000 words at 50 tokens/s: about 40 s), so
      // the click lands mid-answer even on a loaded machine (300 words were
      // over before the click once, under the coverage build).
      const long = Array.from({ length: 2000 }, (_, i) => `palabra${i}`).join(' ');
      await simRequest('POST', '/sim/script', { turns: [{ text: long }] });
      try {
        const turn = await sendMessage(page, 'Cuéntame algo largo');
        await turn.and(page.locator('[data-status="streaming"]')).waitFor().catch(async (e) => {
          throw new Error(`${e.message}\nturn: ${await turn.evaluate((el) => el.outerHTML)}\nframes: ${JSON.stringify(received.slice(-5))}`);
        });
        assert.ok(await page.locator('#send').isDisabled(), 'one turn at a time');
        await page.locator('#cancel:not([disabled])').click();
        assert.equal(await waitEnded(turn), 'cancelled');
        const id = await turn.getAttribute('data-id');
        assert.deepEqual(sent.filter((f) => f.type === 'cancel'), [{ type: 'cancel', id }]);
        assert.match(await turn.locator('.error').textContent(), /Respuesta cancelada\..*cancelled/);
        const shown = await turn.locator('.answer-text').textContent();
        assert.ok(shown.length < long.length, 'cut before the end');
        assert.ok(await page.locator('#cancel').isDisabled());
        assert.ok(await page.locator('#send').isEnabled());
      } finally {
        await simRequest('DELETE', '/sim/script');
      }
    });

    test('disconnect shows the close code; reconnect resumes the conversation', async () => {
      const ready = received.find((f) => f.type === 'ready');
      assert.ok(ready && ready.conversation_id, 'ready carries the conversation');
      await page.locator('#disconnect').click();
      await page.locator('#state[data-state="closed"]').waitFor();
      assert.match(await text(page, '#closed-text'), /código 1000/);
      assert.ok(await page.locator('#send').isDisabled());
      await page.locator('#reconnect').click();
      await waitConnected(page);
      const hellos = sent.filter((f) => f.type === 'hello');
      assert.equal(hellos.length, 2);
      assert.equal(hellos[1].conversation_id, ready.conversation_id);
      assert.equal(await page.locator('#log article').count(), 2, 'the earlier turns stay on screen');
      assert.deepEqual(problems, []);
    });
  });

  test('tool activity is shown', async () => {
    // Its own user: a turn with a tool call takes two model calls, and the
    // rate window counts model calls (AI_RATE_LIMIT_PER_USER).
    const token = await mintToken('web-tools');
    const { page, received, problems } = await openPage();
    await page.locator('#token').fill(token);
    await page.locator('#connect').click();
    await waitConnected(page);
    const turn = await sendMessage(page, 'Dime el current_time, por favor');
    assert.equal(await waitEnded(turn), 'done');
    const tools = turn.locator('.tools li');
    assert.equal(await tools.count(), 1, 'a line per tool call');
    assert.equal(await tools.first().getAttribute('data-name'), 'current_time');
    assert.equal(await tools.first().getAttribute('data-status'), 'done');
    assert.equal(await tools.first().textContent(), 'Herramienta current_time: terminada');
    const frames = received.filter((f) => f.type === 'tool');
    assert.deepEqual(frames.map((f) => f.status), ['started', 'done']);
    assert.match(await turn.locator('.answer-text').textContent(), /The tool returned/);
    await page.locator('#language').selectOption('en');
    assert.equal(await tools.first().textContent(), 'Tool current_time: done', 'translated in place');
    assert.deepEqual(problems, []);
  });

  test('dev token, then English: UI strings and the rate-limit message', async () => {
    const { page, sent, problems } = await openPage({ locale: 'es-ES' });
    await page.locator('#dev-token').click();
    await waitConnected(page);
    assert.equal(await text(page, '#state-text'), 'Conectado como dev');
    assert.equal(await text(page, '#send'), 'Enviar');
    assert.equal(sent[0].type, 'hello');
    assert.equal(sent[0].language, 'es');

    await page.locator('#language').selectOption('en');
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.equal(await text(page, '#send'), 'Send');
    assert.equal(await text(page, '#cancel'), 'Cancel');
    assert.equal(await text(page, '#disconnect'), 'Disconnect');
    assert.equal(await text(page, 'label[for="language"]'), 'Language');
    assert.equal(await text(page, '#state-text'), 'Connected as dev');
    assert.equal(await page.locator('#message').getAttribute('placeholder'), 'Type your message…');
    await page.waitForFunction(() => true);  // let the frame go out
    assert.deepEqual(sent.find((f) => f.type === 'language'), { type: 'language', language: 'en' });

    const ended = [];
    let limited = null;
    for (let i = 1; i <= RATE_LIMIT + 2 && !limited; ++i) {
      const turn = await sendMessage(page, `Message number ${i}`);
      const status = await waitEnded(turn);
      ended.push(status);
      if (status === 'error') limited = turn;
    }
    assert.deepEqual(ended, [...Array(RATE_LIMIT).fill('done'), 'error']);
    assert.equal(await limited.locator('.error').getAttribute('data-code'), 'rate_limited');
    const error = await limited.locator('.error').textContent();
    assert.match(error, /You have reached the hourly message limit/);
    assert.match(error, /code rate_limited, retry in \d+ s/);
    assert.equal(await limited.locator('.who').first().textContent(), 'You');
    await screenshot(page, 'rate-limited');
    assert.deepEqual(problems, []);
  });

  test('keep-alive: a ping every 25 s', async () => {
    const token = await mintToken('web-ping');
    const { page, sent, received, problems } = await openPage({ clock: true });
    await page.locator('#token').fill(token);
    await page.locator('#connect').click();
    await waitConnected(page);
    assert.equal(sent.filter((f) => f.type === 'ping').length, 0);
    await page.clock.runFor(25_000);
    await page.waitForFunction(() => true);
    const deadline = Date.now() + STEP_MS;
    while (!received.some((f) => f.type === 'pong') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(sent.filter((f) => f.type === 'ping').length, 1);
    assert.ok(received.some((f) => f.type === 'pong'), 'the server answered the ping');
    assert.deepEqual(problems, []);
  });

  test('fits a narrow screen', async () => {
    const { page, problems } = await openPage({ viewport: { width: 320, height: 640 } });
    const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    assert.ok(await fits(), 'the sign-in form fits');
    await page.locator('#dev-token').click();
    await waitConnected(page);
    assert.ok(await fits(), 'the chat fits');
    await screenshot(page, 'narrow');
    assert.deepEqual(problems, []);
  });
});
