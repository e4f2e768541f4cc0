// End-to-end test of Parley's NATS front door (ARCHITECTURE §4 "NATS",
// src/app/nats_front.hpp) read by a second implementation: the `nats` npm
// client. Real binaries: `openrouter-sim` upstream, `parley serve` with
// NATS_URL, and a nats-server (PARLEY_TEST_NATS_URL when set, as
// scripts/test does; else one started here on a port it picks). Each run
// uses its own chat subject, queue group and tool subjects, so parallel
// runs on a shared server never cross.
//
// Covered: a streamed turn (delta... then done), a turn not streamed
// (nc.request gets the done frame), a bad token, malformed requests, a
// request without a reply subject (counted in /metrics), /readyz, parallel
// requests, resuming a conversation made over HTTP, tools of type nats
// (answered by a subscriber here, and one nobody serves), and the usage the
// turns recorded (GET /v1/usage).
//
// Run (CTest sets these): PARLEY=build/debug/bin/parley OPENROUTER_SIM=build/debug/bin/openrouter-sim \
//   node --test tests/nats/nats_front.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { connect, createInbox, StringCodec } from 'nats';
import { start, stop } from '../support/processes.mjs';

const PARLEY = process.env.PARLEY && resolve(process.env.PARLEY);
const SIM = process.env.OPENROUTER_SIM && resolve(process.env.OPENROUTER_SIM);
const SHARED_NATS = process.env.PARLEY_TEST_NATS_URL || '';
const SECRET = 'nats-front-test-secret-0123456789abcdef';
const MODEL = 'anthropic/claude-3.5-sonnet';
const ANSWER_TOKENS = 12;
const STEP_MS = 15_000;     // any one wait for a reply, a poll or a process
const SETTLE_MS = 300;      // how long to watch for frames after the last one

const RUN = randomBytes(6).toString('hex');
const SUBJECT = `parley.chat.${RUN}`;
const QUEUE = `parley-${RUN}`;
const WEATHER_SUBJECT = `parley.test.${RUN}.tools.weather`;
const FORECAST_SUBJECT = `parley.test.${RUN}.tools.forecast`;  // nobody subscribes to it

const EN = {
  unauthorized: 'You are not signed in or your session has expired. Please sign in again.',
  bad_request: 'The request could not be understood. Please check it and try again.',
  conversation_not_found: 'That conversation does not exist or is not yours.',
};
const ES = {
  bad_request: 'No he podido entender la solicitud. Revísala e inténtalo de nuevo.',
};

const sc = StringCodec();
let work;          // temporary directory: database, data dir, tools.json
let natsServer;    // { child, port, output } when started here
let natsUrl;
let sim;           // { child, port, output }
let parley;        // { child, port, output }
let nc;            // the test's NATS connection
const subs = [];   // the test's long-lived subscriptions (the tool service)

// The end of Parley's log, for failure messages.
const parleyLog = () => (parley ? parley.output().slice(-4000) : '(not started)');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Calls `probe` until it returns something truthy (that value), at most `ms`.
async function poll(what, probe, ms = STEP_MS, every = 50) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms (last: ${last?.stack ?? JSON.stringify(last)})`);
    await sleep(every);
  }
}

// A JWT for `user` from `parley token`.
async function mintToken(user, { lang, name, perms = [] } = {}) {
  const args = ['token', '--user', user];
  if (lang) args.push('--lang', lang);
  if (name) args.push('--name', name);
  for (const p of perms) args.push('--perm', p);
  const { stdout } = await promisify(execFile)(PARLEY, args, {
    env: { PATH: process.env.PATH, PARLEY_CONFIG: '/dev/null', PARLEY_JWT_SECRET: SECRET },
    timeout: STEP_MS,
    cwd: work,
  });
  const token = stdout.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, `parley token printed ${stdout}`);
  return token;
}

async function http(base, method, path, { body, token, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  if (token) h.authorization = `Bearer ${token}`;
  const r = await fetch(`http://127.0.0.1:${base.port}${path}`, {
    method,
    headers: h,
    body: body !== undefined ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(STEP_MS),
  });
  const text = await r.text();
  return { status: r.status, text, json: () => JSON.parse(text) };
}

async function simRequest(method, path, body) {
  const r = await http(sim, method, path, { body });
  assert.equal(r.status, 200, `sim ${method} ${path} -> ${r.status} ${r.text}`);
  return r.json();
}

// The chat requests of `userId` (the body `user` Parley sends upstream)
// among the simulator's last 256, oldest first.
async function upstreamRequests(userId) {
  const { requests } = await simRequest('GET', '/sim/requests?last=256');
  return requests.filter((r) => r.body?.user === userId);
}

// Publishes `payload` (an object, sent as JSON, or a string sent as it is)
// on Parley's subject with a reply inbox of its own, and collects the
// frames until `done` or `error`, then SETTLE_MS more (frames after the
// last one are returned as `extra`). Every frame must be a JSON object.
async function chat(payload, { timeoutMs = STEP_MS } = {}) {
  const inbox = createInbox();
  const frames = [];
  const extra = [];
  let final = null;
  let finished;
  const ended = new Promise((r) => { finished = r; });
  const sub = nc.subscribe(inbox, {
    callback: (err, msg) => {
      if (err) return;
      const text = sc.decode(msg.data);
      let f;
      try {
        f = JSON.parse(text);
      } catch {
        f = { type: '<not JSON>', raw: text };
      }
      if (final) {
        extra.push(f);
        return;
      }
      frames.push(f);
      if (f?.type === 'done' || f?.type === 'error') {
        final = f;
        finished();
      }
    },
  });
  try {
    await nc.flush();
    const data = typeof payload === 'string' ? payload : JSON.stringify(payload);
    nc.publish(SUBJECT, sc.encode(data), { reply: inbox });
    let timer;
    const timedOut = new Promise((r) => { timer = setTimeout(() => r('timeout'), timeoutMs); });
    const outcome = await Promise.race([ended.then(() => 'ended'), timedOut]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      throw new Error(`no done/error frame within ${timeoutMs} ms for ${String(data).slice(0, 300)}; `
        + `frames so far: ${JSON.stringify(frames).slice(0, 2000)}\nparley log:\n${parleyLog()}`);
    }
    await sleep(SETTLE_MS);
  } finally {
    sub.unsubscribe();
  }
  for (const f of [...frames, ...extra]) {
    assert.ok(f && typeof f === 'object' && !Array.isArray(f) && typeof f.type === 'string',
      `a frame that is not a JSON object with a type: ${JSON.stringify(f)}`);
  }
  return { frames, final, extra };
}

// A metric's value in Parley's /metrics text (NaN when absent).
async function metric(line) {
  const r = await http(parley, 'GET', '/metrics');
  assert.equal(r.status, 200);
  const esc = line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = r.text.match(new RegExp(`^${esc} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

function assertUsage(usage, what) {
  assert.ok(usage && typeof usage === 'object', `${what}: no usage`);
  assert.ok(Number.isInteger(usage.input_tokens) && usage.input_tokens > 0, `${what}: input_tokens ${usage.input_tokens}`);
  assert.ok(Number.isInteger(usage.output_tokens) && usage.output_tokens > 0, `${what}: output_tokens ${usage.output_tokens}`);
  assert.match(usage.cost_usd, /^\d+\.\d{6}$/, `${what}: cost_usd ${usage.cost_usd}`);
  assert.ok(Number(usage.cost_usd) > 0, `${what}: cost_usd ${usage.cost_usd}`);
}

function assertDone(done, what) {
  assert.equal(done.type, 'done', `${what}: ${JSON.stringify(done)}`);
  assert.equal(typeof done.text, 'string');
  assert.equal(done.model, MODEL, `${what}: model`);
  assert.equal(done.fallback, false, `${what}: fallback`);
  assertUsage(done.usage, what);
}

const weatherParams = {
  type: 'object',
  properties: { city: { type: 'string' } },
  required: ['city'],
};

before(async () => {
  assert.ok(PARLEY, 'set PARLEY to the parley binary');
  assert.ok(SIM, 'set OPENROUTER_SIM to the openrouter-sim binary');
  work = await mkdtemp(join(tmpdir(), 'parley-nats-'));
  if (SHARED_NATS) {
    natsUrl = SHARED_NATS;
  } else {
    // -p -1: the server picks a free port and names it.
    natsServer = await start('nats-server', 'nats-server', ['-a', '127.0.0.1', '-p', '-1'],
      { PATH: process.env.PATH },
      /Listening for client connections on 127\.0\.0\.1:(\d+)[\s\S]*Server is ready/);
    natsUrl = `nats://127.0.0.1:${natsServer.port}`;
  }
  sim = await start('openrouter-sim', SIM,
    ['--port', '0', '--latency-ms', '0', '--tokens-per-second', '0', '--answer-tokens', String(ANSWER_TOKENS)],
    { PATH: process.env.PATH }, /openrouter-sim listening on http:\/\/127\.0\.0\.1:(\d+)\n/);

  const toolsFile = join(work, 'tools.json');
  await writeFile(toolsFile, JSON.stringify({
    tools: [
      {
        name: 'weather',
        description: 'Current temperature in a city',
        parameters: weatherParams,
        permission: '',
        handler: { type: 'nats', subject: WEATHER_SUBJECT, timeout_ms: 2000 },
      },
      {
        name: 'forecast',
        description: 'Tomorrow in a city',
        parameters: weatherParams,
        permission: '',
        handler: { type: 'nats', subject: FORECAST_SUBJECT, timeout_ms: 2000 },
      },
    ],
  }, null, 2));

  await mkdir(join(work, 'var'), { recursive: true });
  parley = await start('parley', PARLEY, ['serve', '--listen', '127.0.0.1:0'], {
    PATH: process.env.PATH,
    HOME: process.env.HOME || work,
    OPENROUTER_BASE_URL: `http://127.0.0.1:${sim.port}/api/v1`,
    OPENROUTER_API_KEY: 'k',
    PARLEY_CONFIG: '/dev/null',
    PARLEY_JWT_SECRET: SECRET,
    DATABASE_URL: `sqlite:${join(work, 'p.db')}`,
    PARLEY_DATA_DIR: join(work, 'var'),
    PARLEY_USAGE_FLUSH_INTERVAL_MS: '10',
    PARLEY_TOOLS_FILE: toolsFile,
    AI_MODEL: MODEL,
    AI_RATE_LIMIT_PER_USER: '1000',
    AI_COST_LIMIT_DAILY: '100',
    NATS_URL: natsUrl,
    PARLEY_NATS_SUBJECT: SUBJECT,
    PARLEY_NATS_QUEUE_GROUP: QUEUE,
  }, /listening on http:\/\/127\.0\.0\.1:(\d+)/);

  nc = await connect({ servers: natsUrl, name: `parley-nats-test-${RUN}`, timeout: STEP_MS });
  // Parley connects to NATS in the background: wait until it is connected
  // and its subscription answers (a malformed request gets bad_request).
  await poll('parley connected to NATS', async () => {
    const r = await http(parley, 'GET', '/readyz');
    return r.text.includes('"nats":"connected"');
  });
  await poll('parley answering on its subject', async () => {
    const inbox = createInbox();
    const sub = nc.subscribe(inbox, { max: 1, timeout: 500 });
    await nc.flush();
    nc.publish(SUBJECT, sc.encode('warm-up'), { reply: inbox });
    for await (const m of sub) return JSON.parse(sc.decode(m.data)).code === 'bad_request';
    return false;
  });
});

after(async () => {
  for (const s of subs) s.unsubscribe();
  if (nc) await nc.close().catch(() => {});
  await stop(parley);
  await stop(sim);
  await stop(natsServer);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('Parley NATS front door', { timeout: 240_000 }, () => {
  test('streamed request: delta frames join to the done text; done has model and usage', { timeout: 60_000 }, async () => {
    const token = await mintToken('nats-stream', { lang: 'es' });
    const { frames, final, extra } = await chat({ token, text: 'Hola', stream: true });
    assertDone(final, 'streamed turn');
    const deltas = frames.filter((f) => f.type === 'delta');
    assert.deepEqual(frames.map((f) => f.type), [...deltas.map(() => 'delta'), 'done'],
      `frames: ${JSON.stringify(frames)}`);
    assert.ok(deltas.length >= 2, `expected several deltas, got ${deltas.length}: ${JSON.stringify(frames)}`);
    for (const d of deltas) assert.equal(typeof d.text, 'string');
    assert.equal(deltas.map((d) => d.text).join(''), final.text);
    assert.ok(final.text.startsWith('Echo: Hola'), final.text);
    for (const f of frames) assert.equal(f.id, 'n1', `a request without id: frames say id "n1": ${JSON.stringify(f)}`);
    assert.deepEqual(extra, [], 'nothing after done');
    assert.equal(final.usage.output_tokens, ANSWER_TOKENS);
  });

  test('the request id is echoed on every frame', { timeout: 60_000 }, async () => {
    const token = await mintToken('nats-id');
    const { frames, final } = await chat({ token, text: 'Hola otra vez', id: 'q-42' });
    assertDone(final, 'turn with id');
    assert.ok(frames.length >= 2, 'stream is the default: deltas then done');
    for (const f of frames) assert.equal(f.id, 'q-42', JSON.stringify(f));
  });

  test('not streamed: nc.request() gets a single done frame as the first reply', { timeout: 60_000 }, async () => {
    const token = await mintToken('nats-nostream', { lang: 'en' });
    const body = JSON.stringify({ token, text: 'Just one frame please', stream: false });
    const msg = await nc.request(SUBJECT, sc.encode(body), { timeout: STEP_MS });
    const done = JSON.parse(sc.decode(msg.data));
    assertDone(done, 'nc.request');
    assert.ok(done.text.startsWith('Echo: Just one frame please'), done.text);
    assert.equal(done.usage.output_tokens, ANSWER_TOKENS);
    // The same with our own inbox: exactly one frame, nothing after it.
    const { frames, extra } = await chat({ token, text: 'Just one frame again', stream: false });
    assert.deepEqual(frames.map((f) => f.type), ['done'], JSON.stringify(frames));
    assert.deepEqual(extra, []);
  });

  test('bad token with language en: one error frame, unauthorized, in English', { timeout: 60_000 }, async () => {
    const { frames, final, extra } = await chat({ token: 'not-a-jwt', text: 'Hello', language: 'en' });
    assert.equal(frames.length, 1, JSON.stringify(frames));
    assert.equal(final.type, 'error');
    assert.equal(final.code, 'unauthorized');
    assert.equal(final.message, EN.unauthorized);
    assert.deepEqual(extra, []);
    // A token signed with another secret, and no token at all.
    const forged = (await mintToken('nats-forged')).replace(/\.[\w-]+$/, '.AAAA');
    for (const token of [forged, undefined]) {
      const r = await chat({ token, text: 'Hello', language: 'en' });
      assert.equal(r.frames.length, 1, JSON.stringify(r.frames));
      assert.equal(r.final.code, 'unauthorized');
      assert.equal(r.final.message, EN.unauthorized);
    }
  });

  test('malformed requests: not JSON, a JSON array, missing text: one bad_request error each', { timeout: 60_000 }, async () => {
    const token = await mintToken('nats-bad', { lang: 'en' });
    const cases = [
      { what: 'not JSON', payload: '{"token": oops', message: ES.bad_request },  // no language can be read: the default (es)
      { what: 'a JSON array', payload: JSON.stringify([{ token, text: 'hi' }]), message: ES.bad_request },
      { what: 'missing text', payload: { token, language: 'en' }, message: EN.bad_request },
      { what: 'text not a string', payload: { token, text: 42, language: 'en' }, message: EN.bad_request },
      { what: 'stream not a boolean', payload: { token, text: 'hi', stream: 'yes', language: 'en' }, message: EN.bad_request },
      { what: 'conversation_id not a string', payload: { token, text: 'hi', conversation_id: 7, language: 'en' }, message: EN.bad_request },
    ];
    for (const c of cases) {
      const { frames, final, extra } = await chat(c.payload);
      assert.equal(frames.length, 1, `${c.what}: ${JSON.stringify(frames)}`);
      assert.equal(final.type, 'error', c.what);
      assert.equal(final.code, 'bad_request', `${c.what}: ${JSON.stringify(final)}`);
      assert.equal(final.message, c.message, c.what);
      assert.deepEqual(extra, [], c.what);
    }
    // The token's language counts when the request names none.
    const r = await chat({ token, text: 17 });
    assert.equal(r.final.code, 'bad_request');
    assert.equal(r.final.message, EN.bad_request);
  });

  test('a request without a reply subject is dropped and counted; /readyz shows nats connected', { timeout: 60_000 }, async () => {
    const token = await mintToken('nats-noreply');
    const before = await metric('parley_nats_requests_total{outcome="no_reply"}');
    assert.equal(before, 0, 'no_reply before the plain publish');
    nc.publish(SUBJECT, sc.encode(JSON.stringify({ token, text: 'nobody listens' })));
    await nc.flush();
    await poll('no_reply counted', async () => (await metric('parley_nats_requests_total{outcome="no_reply"}')) === 1);
    // Nothing broke: a turn still runs, the process is up, and the dropped
    // request never went upstream.
    const { final } = await chat({ token, text: 'still here' });
    assertDone(final, 'after the dropped request');
    assert.equal(parley.child.exitCode, null);
    const up = await upstreamRequests('nats-noreply');
    assert.equal(up.length, 1, `upstream calls of the user: ${up.length}`);
    assert.match(parley.output(), /without a reply subject was dropped/);

    const ready = await http(parley, 'GET', '/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.equal(ready.json().nats, 'connected', ready.text);
    assert.equal(await metric('parley_nats_connected'), 1);
    assert.ok(await metric('parley_nats_requests_total{outcome="ok"}') >= 2);
    assert.ok(await metric('parley_nats_requests_total{outcome="unauthorized"}') >= 1);
    assert.ok(await metric('parley_nats_requests_total{outcome="bad_request"}') >= 1);
  });

  test('parallel requests get their own frames', { timeout: 60_000 }, async () => {
    const users = ['nats-par-1', 'nats-par-2', 'nats-par-3', 'nats-par-4'];
    const tokens = await Promise.all(users.map((u) => mintToken(u)));
    const results = await Promise.all(users.map((u, i) => chat({ token: tokens[i], text: `Parallel ${u}`, id: `p${i}` })));
    results.forEach(({ frames, final }, i) => {
      assertDone(final, users[i]);
      assert.ok(final.text.startsWith(`Echo: Parallel ${users[i]}`), final.text);
      for (const f of frames) assert.equal(f.id, `p${i}`);
      assert.equal(frames.filter((f) => f.type === 'delta').map((f) => f.text).join(''), final.text);
    });
  });

  test('resume: a conversation made over HTTP goes on over NATS (and back)', { timeout: 60_000 }, async () => {
    const user = 'nats-resume';
    const token = await mintToken(user, { lang: 'en' });
    const first = await http(parley, 'POST', '/v1/respond', { token, body: { text: 'Remember the pelican' } });
    assert.equal(first.status, 200, first.text);
    const conversationId = first.json().conversation_id;
    assert.ok(conversationId, first.text);

    const { final } = await chat({ token, text: 'What did I ask you to remember', conversation_id: conversationId });
    assertDone(final, 'resumed over NATS');
    let up = await upstreamRequests(user);
    assert.equal(up.length, 2);
    const seen = JSON.stringify(up[1].body.messages);
    assert.ok(seen.includes('Remember the pelican'), `history not sent upstream: ${seen.slice(0, 1500)}`);

    // The NATS turn was stored in the conversation: HTTP sees it next.
    const third = await http(parley, 'POST', '/v1/respond',
      { token, body: { text: 'And now', conversation_id: conversationId } });
    assert.equal(third.status, 200, third.text);
    up = await upstreamRequests(user);
    assert.equal(up.length, 3);
    assert.ok(JSON.stringify(up[2].body.messages).includes('What did I ask you to remember'),
      'the NATS turn is in the conversation');

    // Unknown, and someone else's: conversation_not_found.
    const other = await mintToken('nats-resume-other', { lang: 'en' });
    for (const [tok, id] of [[token, 'c-0000000000000000nope'], [other, conversationId]]) {
      const r = await chat({ token: tok, text: 'hi', conversation_id: id });
      assert.equal(r.frames.length, 1, JSON.stringify(r.frames));
      assert.equal(r.final.type, 'error');
      assert.equal(r.final.code, 'conversation_not_found', JSON.stringify(r.final));
      assert.equal(r.final.message, EN.conversation_not_found);
    }
  });

  test('tools over NATS: the model calls weather, our service answers, tool frames arrive', { timeout: 60_000 }, async () => {
    const user = 'nats-tools';
    const token = await mintToken(user, { lang: 'en', name: 'Ana Tools', perms: ['reader'] });
    const calls = [];
    const sub = nc.subscribe(WEATHER_SUBJECT, {
      callback: (err, msg) => {
        if (err) return;
        calls.push({ body: JSON.parse(sc.decode(msg.data)), reply: msg.reply });
        msg.respond(sc.encode(JSON.stringify({ temp_c: 21 })));
      },
    });
    subs.push(sub);
    await nc.flush();
    const answer = 'It is 21 degrees in Lima right now.';
    await simRequest('POST', '/sim/script', {
      key: user,
      turns: [
        { tool_calls: [{ id: 'call_w1', name: 'weather', arguments: { city: 'Lima' } }] },
        { text: answer },
      ],
    });
    const { frames, final, extra } = await chat({ token, text: 'How warm is it in Lima?', stream: true });
    assertDone(final, 'tool turn');
    assert.equal(final.text, answer);
    const tools = frames.filter((f) => f.type === 'tool');
    assert.deepEqual(tools.map((f) => [f.name, f.status]), [['weather', 'started'], ['weather', 'done']],
      JSON.stringify(frames));
    for (const f of frames) assert.equal(f.id, 'n1');
    const firstDelta = frames.findIndex((f) => f.type === 'delta');
    assert.ok(firstDelta > frames.findIndex((f) => f.type === 'tool' && f.status === 'done'),
      `the answer streams after the tool: ${JSON.stringify(frames)}`);
    assert.equal(frames.filter((f) => f.type === 'delta').map((f) => f.text).join(''), answer);
    assert.deepEqual(extra, []);

    // What our tool service saw.
    assert.equal(calls.length, 1, JSON.stringify(calls));
    const seen = calls[0].body;
    assert.equal(seen.tool, 'weather');
    assert.deepEqual(seen.arguments, { city: 'Lima' });
    assert.equal(seen.user.id, user);
    assert.equal(seen.user.name, 'Ana Tools');
    assert.deepEqual(seen.user.permissions, ['reader']);
    assert.equal(seen.user.language, 'en');
    assert.ok(calls[0].reply, 'a NATS request has a reply subject');

    // The reply went to the model as it is (JSON).
    const up = await upstreamRequests(user);
    assert.equal(up.length, 2);
    const toolMsg = up[1].body.messages.find((m) => m.role === 'tool');
    assert.ok(toolMsg, JSON.stringify(up[1].body.messages));
    assert.equal(toolMsg.tool_call_id, 'call_w1');
    const content = typeof toolMsg.content === 'string' ? toolMsg.content : JSON.stringify(toolMsg.content);
    assert.deepEqual(JSON.parse(content), { temp_c: 21 });
    assert.equal(final.usage.input_tokens > 0, true);
  });

  test('a tool whose subject nobody serves: the tool frame says failed, the turn still ends with done', { timeout: 60_000 }, async () => {
    const user = 'nats-tools-missing';
    const token = await mintToken(user, { lang: 'en' });
    const answer = 'The forecast is not available right now.';
    await simRequest('POST', '/sim/script', {
      key: user,
      turns: [
        { tool_calls: [{ id: 'call_f1', name: 'forecast', arguments: { city: 'Quito' } }] },
        { text: answer },
      ],
    });
    const t0 = Date.now();
    const { frames, final } = await chat({ token, text: 'And tomorrow in Quito?' });
    assertDone(final, 'failed tool turn');
    assert.equal(final.text, answer);
    const tools = frames.filter((f) => f.type === 'tool');
    assert.deepEqual(tools.map((f) => [f.name, f.status]), [['forecast', 'started'], ['forecast', 'failed']],
      JSON.stringify(frames));
    assert.ok(Date.now() - t0 < STEP_MS);
    const up = await upstreamRequests(user);
    assert.equal(up.length, 2);
    const toolMsg = up[1].body.messages.find((m) => m.role === 'tool');
    assert.ok(toolMsg, JSON.stringify(up[1].body.messages));
    const content = typeof toolMsg.content === 'string' ? toolMsg.content : JSON.stringify(toolMsg.content);
    const result = JSON.parse(content);
    assert.equal(typeof result.error, 'string', `the model is told the tool failed: ${content}`);
  });

  test('usage: GET /v1/usage?by=user shows the turns recorded', { timeout: 60_000 }, async () => {
    const check = async (user, requests, lang) => {
      const token = await mintToken(user, { lang });
      const report = await poll(`usage of ${user}`, async () => {
        const r = await http(parley, 'GET', '/v1/usage?by=user', { token });
        if (r.status !== 200) throw new Error(`${r.status} ${r.text}`);
        const body = r.json();
        const row = body.rows?.find((x) => x.key === user);
        return row && row.requests === requests ? body : null;
      });
      assert.equal(report.by, 'user');
      assert.equal(report.rows.length, 1, JSON.stringify(report));
      const row = report.rows[0];
      assert.ok(row.input_tokens > 0 && row.output_tokens > 0, JSON.stringify(row));
      assert.match(row.cost_usd, /^\d+\.\d{6}$/);
      assert.ok(Number(row.cost_usd) > 0);
      assert.equal(report.total.requests, requests);
      return row;
    };
    await check('nats-stream', 1, 'es');
    await check('nats-nostream', 2, 'en');
    await check('nats-tools', 2, 'en');          // two upstream calls: the tool round and the answer
    await check('nats-tools-missing', 2, 'en');
    // A refused request records nothing, and no one sees another's usage.
    const bad = await mintToken('nats-bad');
    const r = await http(parley, 'GET', '/v1/usage?by=user', { token: bad });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json().rows, [], r.text);
    const forbidden = await http(parley, 'GET', '/v1/usage?by=user&user=nats-tools', { token: bad });
    assert.equal(forbidden.status, 403, forbidden.text);
  });
});
