// Parley's POST /v1/chat/completions with the official SDKs: the OpenAI Node
// SDK (`openai`) and OpenRouter's own (`@openrouter/sdk`), each changed only
// in its base URL and key. Real binaries: `openrouter-sim` upstream and
// `parley serve` in front of it, the key a JWT from `parley token`. Covered:
// text answers, streams with their usage chunk, tool calls (whole and
// streamed) and the tool result sent back, the model allow list, a bad token,
// a failure mid-stream, the hourly rate limit, the daily budget (a 429 the
// OpenAI SDK must not retry: `x-should-retry: false`) and an upstream that
// keeps failing (Parley retries, then 502).
//
// Base URLs: openai `baseURL: http://127.0.0.1:PORT/v1`; @openrouter/sdk
// `serverURL: http://127.0.0.1:PORT/v1` (it appends `chat/completions` to
// the path, like OpenRouter's own `https://openrouter.ai/api/v1`).
//
// Run (CTest sets these): OPENROUTER_SIM=build/debug/bin/openrouter-sim PARLEY=build/debug/bin/parley \
//   node --test tests/compat/parley_sdks.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { HTTPClient, OpenRouter } from '@openrouter/sdk';
import * as orErrors from '@openrouter/sdk/models/errors';
import { start, stop } from '../support/processes.mjs';

const PARLEY = process.env.PARLEY;
const SIM = process.env.OPENROUTER_SIM;
const SECRET = 'compat-sdk-test-secret-0123456789abcdef';
const MODEL = 'anthropic/claude-3.5-sonnet';        // AI_MODEL
const OTHER_MODEL = 'openai/gpt-4o-mini';           // also allowed on the main instance
const FORBIDDEN_MODEL = 'openai/gpt-4o';            // known upstream, not allowed by Parley
const RATE_LIMIT = 3;                               // AI_RATE_LIMIT_PER_USER of the rate-limited instance
const ANSWER_TOKENS = 12;
const STEP_MS = 20_000;                             // any one SDK call

let work;        // temporary directory: one subdirectory per Parley instance
let sim;         // { child, port, output }: the upstream, answering at once
let pacedSim;    // an upstream that streams 20 tokens a second (failures mid-stream)
const parleys = {};  // name -> { child, port, output, base }

// The environment of a Parley instance: its own database and data dir.
function parleyEnv(name, extra = {}, upstream = sim) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME || work,
    OPENROUTER_BASE_URL: `http://127.0.0.1:${upstream.port}/api/v1`,
    OPENROUTER_API_KEY: 'k',
    PARLEY_CONFIG: '/dev/null',
    PARLEY_JWT_SECRET: SECRET,
    DATABASE_URL: `sqlite:${join(work, name, 'p.db')}`,
    PARLEY_DATA_DIR: join(work, name, 'var'),
    PARLEY_USAGE_FLUSH_INTERVAL_MS: '10',
    PARLEY_RETRY_INITIAL_BACKOFF_MS: '5',
    PARLEY_RETRY_MAX_BACKOFF_MS: '10',
    AI_MODEL: MODEL,
    ...extra,
  };
}

async function startParley(name, extra, upstream = sim) {
  await mkdir(join(work, name), { recursive: true });
  const p = await start(`parley (${name})`, PARLEY, ['serve', '--listen', '127.0.0.1:0'],
    parleyEnv(name, extra, upstream),
    /listening on http:\/\/127\.0\.0\.1:(\d+)/);
  p.base = `http://127.0.0.1:${p.port}/v1`;
  parleys[name] = p;
  return p;
}

// A JWT for `user` from `parley token`.
async function mintToken(user) {
  const { stdout } = await promisify(execFile)(PARLEY, ['token', '--user', user, '--lang', 'en'], {
    env: { PATH: process.env.PATH, PARLEY_CONFIG: '/dev/null', PARLEY_JWT_SECRET: SECRET },
    timeout: 15_000,
    cwd: work,
  });
  const token = stdout.trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, `parley token printed ${stdout}`);
  return token;
}

async function simRequest(method, path, body, target = sim) {
  const r = await fetch(`http://127.0.0.1:${target.port}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  assert.equal(r.status, 200, `${method} ${path} -> ${r.status}`);
  return r.json();
}

// How many chat requests of `userId` (the body `user` Parley sends) the
// simulator saw among its last 256.
async function upstreamCalls(target, userId) {
  const { requests } = await simRequest('GET', '/sim/requests?last=256', undefined, target);
  return requests.filter((r) => r.body?.user === userId).length;
}

// A fetch that records what went out and what came back (status, headers).
function recorder() {
  const calls = [];
  const record = async (req) => {
    const res = await fetch(req);
    calls.push({ url: req.url, method: req.method, status: res.status, headers: res.headers });
    return res;
  };
  return {
    calls,
    // openai: fetch(url, init)
    fetch: (url, init) => record(new Request(url, init)),
    // @openrouter/sdk: an HTTPClient whose fetcher gets a Request
    httpClient: new HTTPClient({ fetcher: (req) => record(req) }),
  };
}

// Clients for a user on an instance. Every user gets its own token, so the
// hourly windows of the tests stay apart.
async function openaiClient(instance, user, options = {}) {
  const token = await mintToken(user);
  const rec = recorder();
  const client = new OpenAI({
    baseURL: parleys[instance].base,
    apiKey: token,
    maxRetries: 0,
    timeout: STEP_MS,
    fetch: rec.fetch,
    ...options,
  });
  return { client, calls: rec.calls, token };
}

async function openrouterClient(instance, user, options = {}) {
  const token = await mintToken(user);
  const rec = recorder();
  const client = new OpenRouter({
    serverURL: parleys[instance].base,
    apiKey: token,
    timeoutMs: STEP_MS,
    httpClient: rec.httpClient,
    ...options,
  });
  return { client, calls: rec.calls, token };
}

// The leaf issues of a zod error ("path: message"), through unions.
function zodIssues(err) {
  const out = [];
  const walk = (issues, prefix) => {
    for (const i of issues ?? []) {
      const path = [...prefix, ...(i.path ?? [])];
      if (i.code === 'invalid_union' && i.errors?.length) i.errors.forEach((branch) => walk(branch, path));
      else out.push(`${path.join('.') || '(body)'}: ${i.message}`);
    }
  };
  walk(err?.issues, []);
  return out.length ? out : [String(err)];
}

// @openrouter/sdk's chat.send. An answer its schemas reject fails with what
// they expected and the body they got, not just "Response validation failed".
async function send(client, chatRequest, options) {
  try {
    return await client.chat.send({ chatRequest }, options);
  } catch (e) {
    if (e instanceof orErrors.ResponseValidationError) {
      throw new Error(`@openrouter/sdk rejected Parley's answer (HTTP ${e.statusCode}): `
        + `${zodIssues(e.cause).join('; ')}\nbody: ${JSON.stringify(e.rawValue)?.slice(0, 800)}`, { cause: e });
    }
    throw e;
  }
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, units: { type: 'string', enum: ['c', 'f'] } },
      required: ['city', 'units'],
    },
  },
};
const timeTool = {
  type: 'function',
  function: { name: 'current_time', description: 'The time now', parameters: { type: 'object', properties: {} } },
};

const user = (content) => [{ role: 'user', content }];

// A scripted upstream answer that fails after its first three tokens.
const brokenTurn = { text: 'Partial answer that breaks off here', fault: 'mid-stream-error;after-tokens=3' };

function assertRequestId(headers, what) {
  const id = headers?.get('x-request-id');
  assert.ok(id && id.length > 0, `${what}: no X-Request-Id`);
}

function assertRetryAfter(headers, what) {
  const v = headers?.get('retry-after');
  assert.match(v ?? '', /^\d+$/, `${what}: Retry-After ${v}`);
  assert.ok(Number(v) >= 1, `${what}: Retry-After ${v}`);
}

before(async () => {
  assert.ok(PARLEY, 'set PARLEY to the parley binary');
  assert.ok(SIM, 'set OPENROUTER_SIM to the openrouter-sim binary');
  work = await mkdtemp(join(tmpdir(), 'parley-compat-'));
  sim = await start('openrouter-sim', SIM,
    ['--port', '0', '--latency-ms', '0', '--tokens-per-second', '0', '--answer-tokens', String(ANSWER_TOKENS),
      '--keepalive-comments', '1'],
    { PATH: process.env.PATH }, /openrouter-sim listening on http:\/\/127\.0\.0\.1:(\d+)\n/);
  // Paced, so that the first tokens of a failing stream surely reached the
  // client before the failure (Parley retries a failure before that).
  pacedSim = await start('openrouter-sim (paced)', SIM,
    ['--port', '0', '--latency-ms', '0', '--tokens-per-second', '20', '--answer-tokens', '8'],
    { PATH: process.env.PATH }, /openrouter-sim listening on http:\/\/127\.0\.0\.1:(\d+)\n/);
  // The instances: one per set of limits, so a limit reached, a budget
  // spent or an open circuit never leaks into another test.
  // allSettled: every start has ended (and a started instance is in
  // `parleys`, for after() to stop) before a failure is reported.
  const started = await Promise.allSettled([
    startParley('main', {
      AI_ALLOWED_MODELS: `${MODEL},${OTHER_MODEL}`,
      AI_RATE_LIMIT_PER_USER: '1000',
      AI_COST_LIMIT_DAILY: '100',
    }),
    startParley('rate', { AI_RATE_LIMIT_PER_USER: String(RATE_LIMIT), AI_COST_LIMIT_DAILY: '100' }),
    startParley('budget', { AI_COST_LIMIT_DAILY: '0.000001', AI_RATE_LIMIT_PER_USER: '1000' }),
    startParley('failing', { AI_RATE_LIMIT_PER_USER: '1000', AI_COST_LIMIT_DAILY: '100', PARLEY_RETRY_MAX_RETRIES: '2' }),
    startParley('paced', { AI_RATE_LIMIT_PER_USER: '1000', AI_COST_LIMIT_DAILY: '100' }, pacedSim),
  ]);
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
});

after(async () => {
  await Promise.all(Object.values(parleys).map((p) => stop(p)));
  await Promise.all([stop(sim), stop(pacedSim)]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('openai SDK through Parley', { timeout: 180_000 }, () => {
  test('non-streamed text answer: chat.completion with content, usage with tokens and cost, X-Request-Id', async () => {
    const { client, calls } = await openaiClient('main', 'oa-text');
    const { data, response } = await client.chat.completions
      .create({ model: MODEL, messages: user('Hello SDK') })
      .withResponse();
    assert.equal(calls[0].url, `${parleys.main.base}/chat/completions`);
    assertRequestId(response.headers, 'text answer');
    assert.match(data.id, /^chatcmpl-/);
    assert.equal(data.object, 'chat.completion');
    assert.equal(typeof data.created, 'number');
    assert.equal(data.model, MODEL);
    assert.equal(data.choices.length, 1);
    const choice = data.choices[0];
    assert.equal(choice.index, 0);
    assert.equal(choice.finish_reason, 'stop');
    assert.equal(choice.message.role, 'assistant');
    assert.ok(choice.message.content.startsWith('Echo: Hello SDK'), choice.message.content);
    assert.ok(data.usage.prompt_tokens > 0);
    assert.equal(data.usage.completion_tokens, ANSWER_TOKENS);
    assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
    assert.equal(typeof data.usage.cost, 'number');
    assert.ok(data.usage.cost > 0);
  });

  test('another allowed model is served and named; a missing model means AI_MODEL', async () => {
    const { client } = await openaiClient('main', 'oa-models');
    const other = await client.chat.completions.create({ model: OTHER_MODEL, messages: user('which model') });
    assert.equal(other.model, OTHER_MODEL);
    assert.ok(other.choices[0].message.content.length > 0);
    const dflt = await client.chat.completions.create({ messages: user('no model given') });
    assert.equal(dflt.model, MODEL);
  });

  test('streamed (for await, include_usage): deltas join to the text, finish chunk, usage chunk with empty choices', async () => {
    const { client } = await openaiClient('main', 'oa-stream');
    const expected = (await client.chat.completions.create({ model: MODEL, messages: user('Stream me please') }))
      .choices[0].message.content;
    const { data: stream, response } = await client.chat.completions
      .create({
        model: MODEL,
        messages: user('Stream me please'),
        stream: true,
        stream_options: { include_usage: true },
      })
      .withResponse();
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    assertRequestId(response.headers, 'stream');
    let text = '';
    let finish = null;
    let last = null;
    const ids = new Set();
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      ids.add(chunk.id);
      last = chunk;
      const choice = chunk.choices[0]; // the usage chunk has none
      if (!choice) continue;
      if (choice.delta?.content) text += choice.delta.content;
      if (choice.finish_reason && !finish) finish = choice.finish_reason;
    }
    assert.equal(text, expected);
    assert.equal(finish, 'stop');
    assert.equal(ids.size, 1);
    assert.match([...ids][0], /^chatcmpl-/);
    assert.ok(last, 'no chunk at all');
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage, 'the last chunk has no usage');
    assert.equal(last.usage.completion_tokens, ANSWER_TOKENS);
    assert.ok(last.usage.prompt_tokens > 0);
    assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
    assert.equal(typeof last.usage.cost, 'number');
  });

  test('stream() helper: content events and finalChatCompletion() agree, with usage', async () => {
    const { client } = await openaiClient('main', 'oa-helper');
    const stream = client.chat.completions.stream({
      model: MODEL,
      messages: user('helper stream'),
      stream_options: { include_usage: true },
    });
    let deltas = '';
    stream.on('content', (delta) => { deltas += delta; });
    const final = await stream.finalChatCompletion();
    assert.ok(deltas.startsWith('Echo: helper stream'), deltas);
    assert.equal(final.choices[0].message.content, deltas);
    assert.equal(final.choices[0].finish_reason, 'stop');
    assert.equal(final.model, MODEL);
    assert.ok(final.usage.total_tokens > 0);
    assert.equal(final.usage.completion_tokens, ANSWER_TOKENS);
  });

  test('tool call, not streamed: name and JSON arguments; the tool result sent back gets a text answer', async () => {
    const { client } = await openaiClient('main', 'oa-tools');
    const messages = user('Please use get_weather for Madrid');
    const r = await client.chat.completions.create({ model: MODEL, messages, tools: [weatherTool, timeTool] });
    const choice = r.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.role, 'assistant');
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.ok(call.id.length > 0);
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'sample', units: 'c' });
    assert.ok(r.usage.total_tokens > 0);

    const answer = await client.chat.completions.create({
      model: MODEL,
      tools: [weatherTool, timeTool],
      messages: [
        ...messages,
        choice.message,
        { role: 'tool', tool_call_id: call.id, content: '{"temp_c":21}' },
      ],
    });
    assert.equal(answer.choices[0].finish_reason, 'stop');
    assert.equal(answer.choices[0].message.content, 'The tool returned: "{"temp_c":21}".');
  });

  test('tool calls, streamed (stream helper): two calls with their indexes, then both results sent back', async () => {
    const { client } = await openaiClient('main', 'oa-tools-stream');
    const messages = user('Call get_weather and current_time');
    const stream = client.chat.completions.stream({ model: MODEL, messages, tools: [weatherTool, timeTool] });
    const done = [];
    stream.on('tool_calls.function.arguments.done', (e) => done.push(e));
    const final = await stream.finalChatCompletion();
    const message = final.choices[0].message;
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.equal(message.tool_calls.length, 2);
    assert.equal(message.tool_calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(message.tool_calls[0].function.arguments), { city: 'sample', units: 'c' });
    assert.equal(message.tool_calls[1].function.name, 'current_time');
    assert.deepEqual(JSON.parse(message.tool_calls[1].function.arguments || '{}'), {});
    assert.notEqual(message.tool_calls[0].id, message.tool_calls[1].id);
    assert.deepEqual(done.map((e) => [e.index, e.name]), [[0, 'get_weather'], [1, 'current_time']]);

    const answer = client.chat.completions.stream({
      model: MODEL,
      tools: [weatherTool, timeTool],
      messages: [
        ...messages,
        { role: 'assistant', content: null, tool_calls: message.tool_calls },
        { role: 'tool', tool_call_id: message.tool_calls[0].id, content: 'sunny' },
        { role: 'tool', tool_call_id: message.tool_calls[1].id, content: '12:00' },
      ],
    });
    assert.equal(await answer.finalContent(), 'The tools returned: "sunny"; "12:00".');
  });

  test('tool call, streamed (for await): delta.tool_calls with index, id, type, name and arguments', async () => {
    const { client } = await openaiClient('main', 'oa-tools-raw');
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: user('What is current_time?'),
      tools: [weatherTool, timeTool],
      stream: true,
    });
    const calls = new Map();
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      for (const tc of choice.delta?.tool_calls ?? []) {
        const c = calls.get(tc.index) ?? { name: '', arguments: '' };
        if (tc.id) c.id = tc.id;
        if (tc.type) c.type = tc.type;
        if (tc.function?.name) c.name = tc.function.name;
        c.arguments += tc.function?.arguments ?? '';
        calls.set(tc.index, c);
      }
      if (choice.finish_reason && !finish) finish = choice.finish_reason;
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(calls.size, 1);
    const c = calls.get(0);
    assert.ok(c, 'no tool call at index 0');
    assert.equal(c.name, 'current_time');
    assert.equal(c.type, 'function');
    assert.ok(c.id?.length > 0);
    assert.deepEqual(JSON.parse(c.arguments || '{}'), {});
    assert.ok(usage?.total_tokens > 0, 'no usage chunk');
  });

  test('runTools(): the SDK runs the tool loop through Parley and ends with an answer quoting the result', async () => {
    const { client, calls } = await openaiClient('main', 'oa-runtools');
    let called = 0;
    const runner = client.chat.completions.runTools({
      model: MODEL,
      messages: user('What is current_time right now?'),
      tools: [
        {
          type: 'function',
          function: {
            name: 'current_time',
            description: 'The time now',
            parameters: { type: 'object', properties: {} },
            parse: JSON.parse,
            function: async () => { called += 1; return '2026-01-01T12:00:00Z'; },
          },
        },
      ],
    });
    const content = await runner.finalContent();
    assert.equal(called, 1);
    assert.ok(content.includes('"2026-01-01T12:00:00Z"'), content);
    assert.equal(calls.length, 2);
  });

  test('a model outside the allow list: 400 BadRequestError (bad_request, names the model), not retried', async () => {
    const { client, calls } = await openaiClient('main', 'oa-forbidden', { maxRetries: 2 });
    await assert.rejects(
      client.chat.completions.create({ model: FORBIDDEN_MODEL, messages: user('x') }),
      (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, `${e}`);
        assert.equal(e.status, 400);
        assert.equal(e.type, 'bad_request');
        assert.ok(e.message.includes(FORBIDDEN_MODEL), e.message);
        assertRequestId(e.headers, '400');
        return true;
      },
    );
    assert.equal(calls.length, 1);
  });

  test('a bad token: 401 AuthenticationError (unauthorized)', async () => {
    const client = new OpenAI({ baseURL: parleys.main.base, apiKey: 'not-a-jwt', maxRetries: 0, timeout: STEP_MS });
    await assert.rejects(
      client.chat.completions.create({ model: MODEL, messages: user('x') }),
      (e) => {
        assert.ok(e instanceof OpenAI.AuthenticationError, `${e}`);
        assert.equal(e.status, 401);
        assert.equal(e.type, 'unauthorized');
        assertRequestId(e.headers, '401');
        return true;
      },
    );
  });

  test('a failure mid-stream (after the first tokens) surfaces as an APIError from the stream', async () => {
    const id = 'oa-midstream';
    const { client } = await openaiClient('paced', id);
    await simRequest('POST', '/sim/script', { key: id, turns: [brokenTurn] }, pacedSim);
    const stream = await client.chat.completions.create({ model: MODEL, messages: user('fail midway'), stream: true });
    let text = '';
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      })(),
      (e) => e instanceof OpenAI.APIError,
    );
    assert.equal(text, 'Partial answer that');
    assert.equal(await upstreamCalls(pacedSim, id), 1, 'Parley retried after the first tokens');
  });
});

describe('@openrouter/sdk through Parley', { timeout: 180_000 }, () => {
  test('non-streamed text answer: ChatResult with content and usage; URL is serverURL + /chat/completions', async () => {
    const { client, calls } = await openrouterClient('main', 'or-text');
    const r = await send(client, { model: MODEL, messages: user('Hello OpenRouter SDK') });
    assert.equal(calls.length, 1);
    assert.equal(calls[0].url, `${parleys.main.base}/chat/completions`);
    assertRequestId(calls[0].headers, 'text answer');
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, MODEL);
    const choice = r.choices[0];
    assert.equal(choice.finishReason, 'stop');
    assert.equal(choice.message.role, 'assistant');
    assert.ok(choice.message.content.startsWith('Echo: Hello OpenRouter SDK'), choice.message.content);
    assert.ok(r.usage.promptTokens > 0);
    assert.equal(r.usage.completionTokens, ANSWER_TOKENS);
    assert.equal(r.usage.totalTokens, r.usage.promptTokens + r.usage.completionTokens);
    assert.equal(typeof r.usage.cost, 'number');
    assert.ok(r.usage.cost > 0);
  });

  test('no model in the request: AI_MODEL serves it; another allowed model is named', async () => {
    const { client } = await openrouterClient('main', 'or-models');
    const dflt = await send(client, { messages: user('no model given') });
    assert.equal(dflt.model, MODEL);
    const other = await send(client, { model: OTHER_MODEL, messages: user('other model') });
    assert.equal(other.model, OTHER_MODEL);
  });

  test('streamed: chunks parse, deltas join to the text, finish reason, usage chunk with empty choices', async () => {
    const { client, calls } = await openrouterClient('main', 'or-stream');
    const expected = (await send(client, { model: MODEL, messages: user('Stream me too') }))
      .choices[0].message.content;
    const stream = await send(client, {
      model: MODEL, messages: user('Stream me too'), stream: true, streamOptions: { includeUsage: true },
    });
    assert.match(calls[1].headers.get('content-type'), /^text\/event-stream/);
    assertRequestId(calls[1].headers, 'stream');
    let text = '';
    let finish = null;
    let last = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.equal(chunk.error, undefined);
      last = chunk;
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.delta?.content) text += choice.delta.content;
      if (choice.finishReason && !finish) finish = choice.finishReason;
    }
    assert.equal(text, expected);
    assert.equal(finish, 'stop');
    assert.ok(last, 'no chunk at all');
    assert.deepEqual(last.choices, []);
    assert.ok(last.usage, 'the last chunk has no usage');
    assert.equal(last.usage.completionTokens, ANSWER_TOKENS);
    assert.equal(last.usage.totalTokens, last.usage.promptTokens + last.usage.completionTokens);
    assert.equal(typeof last.usage.cost, 'number');
  });

  test('tool call, not streamed: toolCalls with name and JSON arguments; the result sent back gets a text answer', async () => {
    const { client } = await openrouterClient('main', 'or-tools');
    const messages = user('Please use get_weather for Lisbon');
    const r = await send(client, { model: MODEL, messages, tools: [weatherTool, timeTool] });
    const choice = r.choices[0];
    assert.equal(choice.finishReason, 'tool_calls');
    assert.equal(choice.message.toolCalls.length, 1);
    const call = choice.message.toolCalls[0];
    assert.equal(call.type, 'function');
    assert.ok(call.id.length > 0);
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'sample', units: 'c' });

    const answer = await send(client, {
      model: MODEL,
      tools: [weatherTool, timeTool],
      messages: [...messages, choice.message, { role: 'tool', toolCallId: call.id, content: 'rain' }],
    });
    assert.equal(answer.choices[0].finishReason, 'stop');
    assert.equal(answer.choices[0].message.content, 'The tool returned: "rain".');
  });

  test('tool calls, streamed: delta.toolCalls accumulate by index; the results sent back stream a text answer', async () => {
    const { client } = await openrouterClient('main', 'or-tools-stream');
    const messages = user('Call get_weather and current_time');
    const stream = await send(client, { model: MODEL, messages, tools: [weatherTool, timeTool], stream: true });
    const calls = new Map();
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      for (const tc of choice.delta?.toolCalls ?? []) {
        const c = calls.get(tc.index) ?? { name: '', arguments: '' };
        if (tc.id) c.id = tc.id;
        if (tc.type) c.type = tc.type;
        if (tc.function?.name) c.name = tc.function.name;
        c.arguments += tc.function?.arguments ?? '';
        calls.set(tc.index, c);
      }
      if (choice.finishReason && !finish) finish = choice.finishReason;
    }
    assert.equal(finish, 'tool_calls');
    assert.deepEqual([...calls.keys()].sort(), [0, 1]);
    assert.equal(calls.get(0).name, 'get_weather');
    assert.equal(calls.get(0).type, 'function');
    assert.deepEqual(JSON.parse(calls.get(0).arguments), { city: 'sample', units: 'c' });
    assert.equal(calls.get(1).name, 'current_time');
    assert.deepEqual(JSON.parse(calls.get(1).arguments || '{}'), {});
    assert.ok(usage?.totalTokens > 0, 'no usage chunk');

    const toolCalls = [0, 1].map((i) => ({
      id: calls.get(i).id,
      type: 'function',
      function: { name: calls.get(i).name, arguments: calls.get(i).arguments },
    }));
    const answer = await send(client, {
      model: MODEL,
      tools: [weatherTool, timeTool],
      stream: true,
      messages: [
        ...messages,
        { role: 'assistant', content: null, toolCalls },
        { role: 'tool', toolCallId: toolCalls[0].id, content: 'sunny' },
        { role: 'tool', toolCallId: toolCalls[1].id, content: '12:00' },
      ],
    });
    let text = '';
    for await (const chunk of answer) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'The tools returned: "sunny"; "12:00".');
  });

  test('a model outside the allow list: BadRequestResponseError 400 naming the model, one request', async () => {
    const { client, calls } = await openrouterClient('main', 'or-forbidden');
    await assert.rejects(
      send(client, { model: FORBIDDEN_MODEL, messages: user('x') }),
      (e) => {
        assert.ok(e instanceof orErrors.BadRequestResponseError, `${e?.name}: ${e}`);
        assert.equal(e.statusCode, 400);
        assert.ok(e.error.message.includes(FORBIDDEN_MODEL), e.error.message);
        assert.equal(e.error.code, 400);
        assertRequestId(e.headers, '400');
        return true;
      },
    );
    assert.equal(calls.length, 1);
  });

  test('a bad token: UnauthorizedResponseError 401', async () => {
    const client = new OpenRouter({ serverURL: parleys.main.base, apiKey: 'not-a-jwt', timeoutMs: STEP_MS });
    await assert.rejects(
      send(client, { model: MODEL, messages: user('x') }),
      (e) => {
        assert.ok(e instanceof orErrors.UnauthorizedResponseError, `${e?.name}: ${e}`);
        assert.equal(e.statusCode, 401);
        return true;
      },
    );
  });

  test('a failure mid-stream: the SDK yields the error chunk (code, finishReason "error") after the first tokens', async () => {
    const id = 'or-midstream';
    const { client } = await openrouterClient('paced', id);
    await simRequest('POST', '/sim/script', { key: id, turns: [brokenTurn] }, pacedSim);
    const stream = await send(client, { model: MODEL, messages: user('fail midway'), stream: true });
    let text = '';
    let error = null;
    let finish = null;
    for await (const chunk of stream) {
      if (chunk.error) error = chunk.error;
      const choice = chunk.choices[0];
      text += choice?.delta?.content ?? '';
      if (choice?.finishReason && !finish) finish = choice.finishReason;
    }
    assert.equal(text, 'Partial answer that');
    assert.ok(error, 'no error chunk');
    assert.equal(typeof error.code, 'number');
    assert.equal(typeof error.message, 'string');
    assert.equal(finish, 'error');
    assert.equal(await upstreamCalls(pacedSim, id), 1, 'Parley retried after the first tokens');
  });
});

describe('limits through both SDKs', { timeout: 180_000 }, () => {
  test(`rate limit (openai): ${RATE_LIMIT} answers, then RateLimitError 429 rate_limited with Retry-After`, async () => {
    const { client, calls } = await openaiClient('rate', 'oa-rate');
    for (let i = 0; i < RATE_LIMIT; i += 1) {
      const r = await client.chat.completions.create({ model: MODEL, messages: user(`call ${i}`) });
      assert.ok(r.choices[0].message.content.length > 0);
    }
    await assert.rejects(
      client.chat.completions.create({ model: MODEL, messages: user('one too many') }),
      (e) => {
        assert.ok(e instanceof OpenAI.RateLimitError, `${e}`);
        assert.equal(e.status, 429);
        assert.equal(e.type, 'rate_limited');
        assertRetryAfter(e.headers, 'rate limit');
        assertRequestId(e.headers, 'rate limit');
        return true;
      },
    );
    assert.equal(calls.length, RATE_LIMIT + 1);
  });

  test(`rate limit (@openrouter/sdk): ${RATE_LIMIT} answers, then TooManyRequestsResponseError 429 with Retry-After`, async () => {
    const { client, calls } = await openrouterClient('rate', 'or-rate');
    for (let i = 0; i < RATE_LIMIT; i += 1) {
      const r = await send(client, { model: MODEL, messages: user(`call ${i}`) });
      assert.ok(r.choices[0].message.content.length > 0);
    }
    await assert.rejects(
      send(client, { model: MODEL, messages: user('one too many') }),
      (e) => {
        assert.ok(e instanceof orErrors.TooManyRequestsResponseError, `${e?.name}: ${e}`);
        assert.equal(e.statusCode, 429);
        assert.equal(e.error.code, 429);
        assertRetryAfter(e.headers, 'rate limit');
        return true;
      },
    );
    // The SDK's default policy retries 5XX only.
    assert.equal(calls.length, RATE_LIMIT + 1);
  });

  test('budget spent (openai, maxRetries 2): 429 budget_exhausted, x-should-retry false, exactly one request', async () => {
    const before = await simRequest('GET', '/sim/counters');
    const { client, calls } = await openaiClient('budget', 'oa-budget', { maxRetries: 2 });
    for (const stream of [false, true]) {
      calls.length = 0;
      await assert.rejects(
        client.chat.completions.create({ model: MODEL, messages: user('too expensive'), stream }),
        (e) => {
          assert.ok(e instanceof OpenAI.RateLimitError, `${e}`);
          assert.equal(e.status, 429);
          assert.equal(e.type, 'budget_exhausted');
          assert.equal(e.headers.get('x-should-retry'), 'false');
          assertRetryAfter(e.headers, 'budget');
          assertRequestId(e.headers, 'budget');
          return true;
        },
      );
      assert.equal(calls.length, 1, `stream=${stream}: the SDK sent ${calls.length} requests`);
    }
    const afterCounters = await simRequest('GET', '/sim/counters');
    assert.equal(afterCounters.requests, before.requests, 'a refused call reached the upstream');
  });

  test('budget spent (@openrouter/sdk): TooManyRequestsResponseError 429, one request', async () => {
    const { client, calls } = await openrouterClient('budget', 'or-budget');
    await assert.rejects(
      send(client, { model: MODEL, messages: user('too expensive') }),
      (e) => {
        assert.ok(e instanceof orErrors.TooManyRequestsResponseError, `${e?.name}: ${e}`);
        assert.equal(e.statusCode, 429);
        assert.equal(e.headers.get('x-should-retry'), 'false');
        assertRetryAfter(e.headers, 'budget');
        return true;
      },
    );
    assert.equal(calls.length, 1);
  });

  // Every upstream attempt of these users fails with a 502 (scripted turns
  // keyed by the body `user`, which Parley sets to the token's subject).
  const failingTurns = 10;
  async function scriptFailures(id) {
    await simRequest('POST', '/sim/script', { key: id, turns: Array.from({ length: failingTurns }, () => ({ fault: '502' })) });
  }
  async function attemptsSpent(id) {
    const pending = (await simRequest('GET', '/sim/script')).keyed[id] ?? 0;
    await simRequest('DELETE', `/sim/script?key=${encodeURIComponent(id)}`);
    return failingTurns - pending;
  }

  test('upstream keeps failing (openai): Parley retries, then 502 upstream_error (or 503 ai_unavailable)', async () => {
    const id = 'oa-failing';
    const { client, calls } = await openaiClient('failing', id);
    await scriptFailures(id);
    await assert.rejects(
      client.chat.completions.create({ model: MODEL, messages: user('upstream down') }),
      (e) => {
        assert.ok(e instanceof OpenAI.APIError, `${e}`);
        assert.ok(
          (e.status === 502 && e.type === 'upstream_error') || (e.status === 503 && e.type === 'ai_unavailable'),
          `${e.status} ${e.type}: ${e.message}`,
        );
        assertRequestId(e.headers, 'upstream failure');
        return true;
      },
    );
    assert.equal(calls.length, 1);
    const spent = await attemptsSpent(id);
    assert.ok(spent >= 2 && spent <= 3, `Parley made ${spent} upstream attempts (PARLEY_RETRY_MAX_RETRIES=2)`);
  });

  test('upstream keeps failing (@openrouter/sdk, retries off): BadGateway 502 or ServiceUnavailable 503', async () => {
    const id = 'or-failing';
    // The SDK's default policy would retry any 5XX with backoff for up to an hour.
    const { client, calls } = await openrouterClient('failing', id, { retryConfig: { strategy: 'none' } });
    await scriptFailures(id);
    await assert.rejects(
      send(client, { model: MODEL, messages: user('upstream down') }),
      (e) => {
        assert.ok(
          (e instanceof orErrors.BadGatewayResponseError && e.statusCode === 502)
            || (e instanceof orErrors.ServiceUnavailableResponseError && e.statusCode === 503),
          `${e?.name}: ${e}`,
        );
        return true;
      },
    );
    assert.equal(calls.length, 1);
    await attemptsSpent(id);
  });
});
