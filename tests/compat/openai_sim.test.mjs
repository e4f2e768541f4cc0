// Fidelity of openrouter-sim with the official OpenAI SDK (the client many
// OpenRouter users run): if the SDK's own parsers, stream helpers, tool
// runner and retry logic accept the simulator's wire format, tests that
// trust the simulator trust something real clients accept too.
//
// Run: OPENROUTER_SIM=build/debug/bin/openrouter-sim node --test tests/compat/openai_sim.test.mjs
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { start, stop } from '../support/processes.mjs';

const SIM = process.env.OPENROUTER_SIM;
const MODEL = 'anthropic/claude-3.5-sonnet';
const ANSWER_TOKENS = 16;

let sim; // { child, port, output }
let client;

async function simJson(path, init) {
  const r = await fetch(`http://127.0.0.1:${sim.port}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  assert.equal(r.status, 200, `${path} -> ${r.status}`);
  return r.json();
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

before(async () => {
  assert.ok(SIM, 'set OPENROUTER_SIM to the openrouter-sim binary');
  sim = await start('openrouter-sim', SIM, [
    '--port', '0', '--latency-ms', '20', '--tokens-per-second', '400', '--answer-tokens', String(ANSWER_TOKENS),
    '--keepalive-comments', '2',
  ], process.env, /openrouter-sim listening on http:\/\/127\.0\.0\.1:(\d+)\n/);
  client = new OpenAI({
    baseURL: `http://127.0.0.1:${sim.port}/api/v1`,
    apiKey: 'sk-or-test',
    maxRetries: 0,
    timeout: 20_000,
  });
});

after(async () => {
  await stop(sim);
});

describe('openai SDK against openrouter-sim', { timeout: 120_000 }, () => {
  test('non-streamed answer: padded body parses, content and usage with cost', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: MODEL, messages: user('Hello SDK') })
      .withResponse();
    assert.match(data.id, /^gen-\d+-[A-Za-z0-9]{20}$/);
    assert.equal(response.headers.get('x-generation-id'), data.id);
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.model, MODEL);
    const choice = data.choices[0];
    assert.equal(choice.finish_reason, 'stop');
    assert.equal(choice.message.role, 'assistant');
    assert.ok(choice.message.content.startsWith('Echo: Hello SDK'), choice.message.content);
    assert.equal(data.usage.completion_tokens, ANSWER_TOKENS);
    assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
    assert.equal(typeof data.usage.cost, 'number');
    // $3 / $15 per million tokens.
    const expected = (data.usage.prompt_tokens * 3000 + ANSWER_TOKENS * 15000) / 1e9;
    assert.ok(Math.abs(data.usage.cost - expected) < 1e-12, `cost ${data.usage.cost} != ${expected}`);
    assert.equal(data.usage.prompt_tokens_details.cached_tokens, 0);
  });

  test('streamed answer (for await): deltas join to the same text, usage arrives', async () => {
    const plain = await client.chat.completions.create({ model: MODEL, messages: user('Stream me please') });
    const expected = plain.choices[0].message.content;

    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: user('Stream me please'),
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage = null;
    let finish = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0]; // the usage chunk may have no choices
      if (!choice) continue;
      if (choice.delta?.content) text += choice.delta.content;
      if (choice.finish_reason && !finish) finish = choice.finish_reason;
    }
    assert.equal(text, expected);
    assert.equal(finish, 'stop');
    assert.ok(chunks >= ANSWER_TOKENS + 2);
    assert.ok(usage, 'no usage chunk');
    assert.equal(usage.completion_tokens, ANSWER_TOKENS);
    assert.equal(typeof usage.cost, 'number');
  });

  for (const shape of ['empty', 'finish', 'delta']) {
    test(`stream helper with the "${shape}" usage chunk: finalChatCompletion has text and usage`, async () => {
      const expected = (await client.chat.completions.create({ model: MODEL, messages: user(`shape ${shape}`) }))
        .choices[0].message.content;
      const stream = client.chat.completions.stream(
        { model: MODEL, messages: user(`shape ${shape}`) },
        { headers: { 'X-Sim-Usage-Shape': shape } },
      );
      let deltas = '';
      stream.on('content', (delta) => { deltas += delta; });
      const final = await stream.finalChatCompletion();
      assert.equal(deltas, expected);
      assert.equal(final.choices[0].message.content, expected);
      assert.equal(final.choices[0].finish_reason, 'stop');
      assert.equal(final.usage.completion_tokens, ANSWER_TOKENS);
      assert.equal(typeof final.usage.cost, 'number');
    });
  }

  test('tool call, not streamed: name and parsed arguments', async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: user('Please use get_weather for Madrid'),
      tools: [weatherTool, timeTool],
    });
    const choice = r.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.tool_calls.length, 1);
    const call = choice.message.tool_calls[0];
    assert.equal(call.type, 'function');
    assert.match(call.id, /^toolu_/);
    assert.equal(call.function.name, 'get_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { city: 'sample', units: 'c' });
  });

  test('tool calls, streamed (stream helper): fragments assemble, parallel calls keep their index', async () => {
    const stream = client.chat.completions.stream({
      model: MODEL,
      messages: user('Call get_weather and current_time'),
      tools: [weatherTool, timeTool],
    });
    const done = [];
    stream.on('tool_calls.function.arguments.done', (e) => done.push(e));
    const final = await stream.finalChatCompletion();
    const calls = final.choices[0].message.tool_calls;
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.equal(calls.length, 2);
    assert.equal(calls[0].function.name, 'get_weather');
    assert.deepEqual(JSON.parse(calls[0].function.arguments), { city: 'sample', units: 'c' });
    assert.equal(calls[1].function.name, 'current_time');
    assert.deepEqual(JSON.parse(calls[1].function.arguments), {});
    assert.notEqual(calls[0].id, calls[1].id);
    assert.deepEqual(done.map((e) => [e.index, e.name]), [[0, 'get_weather'], [1, 'current_time']]);
    assert.deepEqual(JSON.parse(done[0].arguments), { city: 'sample', units: 'c' });
  });

  test('tool calls, streamed (for await): manual accumulation by index', async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: user('What is current_time?'),
      tools: [weatherTool, timeTool],
      stream: true,
    });
    const calls = new Map();
    let finish = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      for (const tc of choice.delta?.tool_calls ?? []) {
        const c = calls.get(tc.index) ?? { name: '', arguments: '' };
        if (tc.id) c.id = tc.id;
        if (tc.function?.name) c.name = tc.function.name;
        c.arguments += tc.function?.arguments ?? '';
        calls.set(tc.index, c);
      }
      if (choice.finish_reason && !finish) finish = choice.finish_reason;
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(calls.size, 1);
    assert.equal(calls.get(0).name, 'current_time');
    assert.deepEqual(JSON.parse(calls.get(0).arguments), {});
  });

  for (const streamed of [false, true]) {
    test(`runTools ${streamed ? 'streamed' : 'not streamed'}: the SDK's tool loop ends with an answer quoting the result`, async () => {
      let called = 0;
      const runner = client.chat.completions.runTools({
        model: MODEL,
        messages: user('What is current_time right now?'),
        stream: streamed,
        tools: [
          {
            type: 'function',
            function: {
              name: 'current_time',
              description: 'The time now',
              parameters: { type: 'object', properties: {} },
              parse: JSON.parse,
              function: async (args) => {
                called += 1;
                assert.deepEqual(args, {});
                return '2026-01-01T12:00:00Z';
              },
            },
          },
        ],
      });
      const content = await runner.finalContent();
      assert.equal(called, 1);
      assert.ok(content.includes('"2026-01-01T12:00:00Z"'), content);
      const usage = await runner.totalUsage();
      assert.ok(usage.total_tokens > 0);
    });
  }

  test('a mid-stream error chunk surfaces as an APIError after the first tokens', async () => {
    const stream = await client.chat.completions.create(
      { model: MODEL, messages: user('fail midway'), stream: true },
      { headers: { 'X-Sim-Fault': 'mid-stream-error;after-tokens=3' } },
    );
    let text = '';
    await assert.rejects(
      (async () => {
        for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      })(),
      (e) => e instanceof OpenAI.APIError && /Provider returned error/.test(e.message),
    );
    assert.ok(text.length > 0);
  });

  test('the SDK honours Retry-After on a 429 and its retry succeeds (times=1 per X-Request-Id)', async () => {
    const retrying = new OpenAI({
      baseURL: `http://127.0.0.1:${sim.port}/api/v1`,
      apiKey: 'sk-or-test',
      maxRetries: 2,
      timeout: 20_000,
    });
    const requestId = `sdk-retry-${process.pid}`;
    const t0 = Date.now();
    const r = await retrying.chat.completions.create(
      { model: MODEL, messages: user('retry') },
      { headers: { 'X-Sim-Fault': '429;times=1;retry-after=1', 'X-Request-Id': requestId } },
    );
    assert.ok(Date.now() - t0 >= 900, 'the retry did not wait for Retry-After');
    assert.ok(r.choices[0].message.content.startsWith('Echo: retry'));
    const counters = await simJson('/sim/counters');
    assert.equal(counters.attempts[requestId], 2);

    // Not retryable: 400 comes straight back as BadRequestError.
    await assert.rejects(
      retrying.chat.completions.create({ model: 'acme/nope', messages: user('x') }),
      (e) => e instanceof OpenAI.BadRequestError && e.status === 400,
    );
  });

  test('missing key: 401 as AuthenticationError', async () => {
    const r = await fetch(`http://127.0.0.1:${sim.port}/api/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: user('x') }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(r.status, 401);
    assert.deepEqual(await r.json(), { error: { message: 'No auth credentials found', code: 401 } });
    const noKey = new OpenAI({ baseURL: `http://127.0.0.1:${sim.port}/api/v1`, apiKey: 'x', maxRetries: 0 });
    await assert.rejects(
      noKey.chat.completions.create(
        { model: MODEL, messages: user('x') },
        { headers: { Authorization: null } },
      ),
      (e) => e instanceof OpenAI.AuthenticationError,
    );
  });
});
