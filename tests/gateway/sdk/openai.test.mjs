// The official `openai` npm SDK (6.x: 7.x needs Node 22) against
// switchboard-gateway's POST /v1/chat/completions: plain, streaming, JSON mode,
// tool calls with a follow-up turn, routing ("auto", a tier, a concrete model),
// and errors as the SDK's typed exceptions. Run by tests/gateway/sdk/run.sh.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import OpenAI from 'openai';

import {
  ANTHROPIC_CHEAP, BROKE_KEY, CHEAP, GATEWAY_URL, KEY, PREMIUM, TOOL_ARGUMENTS, ALL_MODELS,
  answerFrom, checkSwitchboardHeaders, expectError, recordOk, recordRefused,
} from './helpers.mjs';

// No retries: every request is made once, so the ledger count is exact.
const client = new OpenAI({ apiKey: KEY, baseURL: `${GATEWAY_URL}/v1`, maxRetries: 0, timeout: 20_000 });

const USER = { role: 'user', content: 'Reformat this list as a table: apples 3, pears 5.' };
const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'lookup',
      description: 'Looks a term up in the project wiki.',
      parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
    },
  },
  {
    type: 'function',
    function: { name: 'unused', description: 'Never called.', parameters: { type: 'object', properties: {} } },
  },
];

// A whole answer with text from `model`, and the headers naming it.
function checkTextAnswer(data, response, model) {
  assert.equal(response.status, 200);
  checkSwitchboardHeaders(response.headers, model);
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.model, model);
  assert.equal(data.choices.length, 1);
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, answerFrom(model));
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.ok(data.usage.prompt_tokens > 0, 'usage.prompt_tokens');
  assert.ok(data.usage.completion_tokens > 0, 'usage.completion_tokens');
  assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
}

describe('openai SDK: plain', () => {
  test('model "auto" with metadata.role format goes to the cheap tier', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'auto', messages: [USER], metadata: { role: 'format' } })
      .withResponse();
    recordOk(data.model);
    checkTextAnswer(data, response, CHEAP);
    assert.match(data.id, /^chatcmpl-/);
  });

  test('model "auto" with an x-switchboard-role header (plan) goes to premium', async () => {
    const { data, response } = await client.chat.completions
      .create(
        {
          model: 'auto',
          messages: [{ role: 'system', content: 'You plan.' }, { role: 'user', content: 'Plan the migration.' }],
          max_completion_tokens: 200,
        },
        { headers: { 'x-switchboard-role': 'plan' } },
      )
      .withResponse();
    recordOk(data.model);
    checkTextAnswer(data, response, PREMIUM);
  });

  test('a concrete model name is honoured over the rules (and served by another provider)', async () => {
    // The rules would send role plan to premium; the client names a cheap Anthropic model.
    const { data, response } = await client.chat.completions
      .create({ model: ANTHROPIC_CHEAP, messages: [USER], max_tokens: 100 }, { headers: { 'x-switchboard-role': 'plan' } })
      .withResponse();
    recordOk(data.model);
    checkTextAnswer(data, response, ANTHROPIC_CHEAP);
  });

  test('a tier name routes to that tier', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'premium', messages: [USER], metadata: { role: 'format' } })
      .withResponse();
    recordOk(data.model);
    checkTextAnswer(data, response, PREMIUM);
  });

  test('.asResponse() gives the raw response with the switchboard headers', async () => {
    const response = await client.chat.completions
      .create({ model: CHEAP, messages: [USER] })
      .asResponse();
    recordOk(response.headers.get('x-switchboard-model'));
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^application\/json/);
    checkSwitchboardHeaders(response.headers, CHEAP);
    const body = await response.json();
    assert.equal(body.model, CHEAP);
  });

  test('models.list() names every configured model', async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    for (const m of ALL_MODELS) assert.ok(ids.includes(m), `${m} not in /v1/models: ${ids.join(', ')}`);
  });
});

describe('openai SDK: streaming', () => {
  test('stream: true with include_usage, routed by the rules', async () => {
    const { data: stream, response } = await client.chat.completions
      .create(
        { model: 'auto', messages: [USER], stream: true, stream_options: { include_usage: true } },
        { headers: { 'x-switchboard-role': 'summarize' } },
      )
      .withResponse();
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    assert.equal(response.headers.get('x-switchboard-model'), CHEAP);
    let text = '';
    let chunks = 0;
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      chunks++;
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.equal(chunk.model, CHEAP);
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.delta?.content ?? '';
        if (choice.finish_reason) finish = choice.finish_reason;
      }
    }
    recordOk(response.headers.get('x-switchboard-model'));
    assert.ok(chunks >= 3, `${chunks} chunks: the answer should arrive in pieces`);
    assert.equal(text, answerFrom(CHEAP));
    assert.equal(finish, 'stop');
    assert.ok(usage, 'no usage chunk although stream_options.include_usage');
    assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
  });

  test('the SDK stream helper over an Anthropic model: finalChatCompletion', async () => {
    const stream = client.chat.completions.stream({ model: ANTHROPIC_CHEAP, messages: [USER] });
    let deltas = '';
    stream.on('content.delta', ({ delta }) => { deltas += delta; });
    const completion = await stream.finalChatCompletion();
    recordOk(completion.model);
    assert.equal(completion.model, ANTHROPIC_CHEAP);
    assert.equal(completion.choices[0].message.content, answerFrom(ANTHROPIC_CHEAP));
    assert.equal(deltas, answerFrom(ANTHROPIC_CHEAP));
    assert.equal(completion.choices[0].finish_reason, 'stop');
  });

  test('without include_usage no usage chunk is sent', async () => {
    const stream = await client.chat.completions.create({ model: PREMIUM, messages: [USER], stream: true });
    let text = '';
    let model = null;
    for await (const chunk of stream) {
      assert.ok(!chunk.usage, 'a usage chunk although include_usage was not asked');
      model = chunk.model;
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    recordOk(model);
    assert.equal(model, PREMIUM);
    assert.equal(text, answerFrom(PREMIUM));
  });
});

describe('openai SDK: JSON mode', () => {
  test('response_format json_object makes output_must_be_json (the rules send it to cheap)', async () => {
    // Role "chat" alone would go to premium; the test rules send JSON output to cheap.
    const { data, response } = await client.chat.completions
      .create({
        model: 'auto',
        messages: [{ role: 'system', content: 'Answer in JSON.' }, { role: 'user', content: 'List two fruits.' }],
        response_format: { type: 'json_object' },
      })
      .withResponse();
    recordOk(data.model);
    // The fake provider answers text whatever the format; the routing shows the gateway read it.
    checkTextAnswer(data, response, CHEAP);
  });

  test('response_format json_schema counts as JSON mode too', async () => {
    const { data } = await client.chat.completions
      .create({
        model: 'auto',
        messages: [USER],
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'fruits', schema: { type: 'object', properties: { fruits: { type: 'array' } } } },
        },
      })
      .withResponse();
    recordOk(data.model);
    assert.equal(data.model, CHEAP);
  });
});

// A tool call, then the follow-up turn with its result, through `model`.
async function toolRoundTrip(model, role) {
  const messages = [{ role: 'user', content: 'What does the wiki say about switchboard?' }];
  const first = await client.chat.completions.create(
    { model, messages, tools: TOOLS, tool_choice: 'auto' },
    { headers: { 'x-switchboard-role': role } },
  );
  const served = first.model;
  recordOk(served);
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'lookup');
  assert.deepEqual(JSON.parse(call.function.arguments), TOOL_ARGUMENTS);
  assert.ok(typeof call.id === 'string' && call.id.length > 0, 'tool call id');

  messages.push(choice.message);
  messages.push({ role: 'tool', tool_call_id: call.id, content: 'Switchboard routes agent steps to models.' });
  const second = await client.chat.completions.create(
    { model, messages, tools: TOOLS, tool_choice: 'auto' },
    { headers: { 'x-switchboard-role': role } },
  );
  recordOk(second.model);
  assert.equal(second.model, served);
  assert.equal(second.choices[0].finish_reason, 'stop');
  assert.equal(second.choices[0].message.content, answerFrom(served));
  return served;
}

describe('openai SDK: tool calls', () => {
  test('tools + tool_choice auto, then the tool result (OpenAI upstream)', async () => {
    assert.equal(await toolRoundTrip('auto', 'plan'), PREMIUM);
  });

  test('tools + tool_choice auto, then the tool result (Anthropic upstream)', async () => {
    assert.equal(await toolRoundTrip(ANTHROPIC_CHEAP, 'extract'), ANTHROPIC_CHEAP);
  });

  test('a streamed tool call assembles in the SDK helper', async () => {
    const stream = client.chat.completions.stream({
      model: 'auto',
      messages: [{ role: 'user', content: 'Look it up.' }],
      tools: TOOLS,
      tool_choice: 'auto',
      metadata: { role: 'extract' },
    });
    const completion = await stream.finalChatCompletion();
    recordOk(completion.model);
    assert.equal(completion.model, CHEAP);
    assert.equal(completion.choices[0].finish_reason, 'tool_calls');
    const call = completion.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'lookup');
    assert.deepEqual(JSON.parse(call.function.arguments), TOOL_ARGUMENTS);
  });

  test('a streamed tool call from an Anthropic model', async () => {
    const stream = client.chat.completions.stream({
      model: ANTHROPIC_CHEAP,
      messages: [{ role: 'user', content: 'Look it up.' }],
      tools: TOOLS,
    });
    const completion = await stream.finalChatCompletion();
    recordOk(completion.model);
    assert.equal(completion.model, ANTHROPIC_CHEAP);
    assert.equal(completion.choices[0].finish_reason, 'tool_calls');
    const call = completion.choices[0].message.tool_calls[0];
    assert.equal(call.function.name, 'lookup');
    assert.deepEqual(JSON.parse(call.function.arguments), TOOL_ARGUMENTS);
  });
});

describe('openai SDK: tool_choice', () => {
  test('tool_choice "none" gets text, not a tool call', async () => {
    const completion = await client.chat.completions.create({
      model: CHEAP, messages: [{ role: 'user', content: 'Just answer.' }], tools: TOOLS, tool_choice: 'none',
    });
    recordOk(completion.model);
    assert.equal(completion.choices[0].finish_reason, 'stop');
    assert.equal(completion.choices[0].message.content, answerFrom(CHEAP));
  });
});

describe('openai SDK: errors', () => {
  test('a bad request is a BadRequestError (400) naming the field', async () => {
    const error = await expectError(
      client.chat.completions.create({ model: 'auto', messages: 'not a list' }),
      OpenAI.BadRequestError,
      400,
    );
    assert.equal(error.type, 'invalid_request_error');
    assert.equal(error.param, 'messages');
  });

  test('an unknown model is a NotFoundError (404, model_not_found)', async () => {
    const error = await expectError(
      client.chat.completions.create({ model: 'no-such-model', messages: [USER] }),
      OpenAI.NotFoundError,
      404,
    );
    assert.equal(error.code, 'model_not_found');
    assert.equal(error.param, 'model');
    assert.match(error.message, /no-such-model/);
  });

  test('malformed JSON gets an OpenAI-shaped 400', async () => {
    const response = await fetch(`${GATEWAY_URL}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: '{"model": "auto", "messages": [',
    });
    assert.equal(response.status, 400);
    const body = await response.json();
    assert.equal(typeof body.error.message, 'string');
    assert.equal(body.error.type, 'invalid_request_error');
  });

  test('an unknown key is an AuthenticationError (401)', async () => {
    const stranger = new OpenAI({ apiKey: 'sk-not-a-gateway-key', baseURL: `${GATEWAY_URL}/v1`, maxRetries: 0 });
    await expectError(stranger.chat.completions.create({ model: 'auto', messages: [USER] }), OpenAI.AuthenticationError, 401);
  });

  test('a key over its budget is a RateLimitError (429)', async () => {
    const broke = new OpenAI({ apiKey: BROKE_KEY, baseURL: `${GATEWAY_URL}/v1`, maxRetries: 0 });
    const error = await expectError(
      broke.chat.completions.create({ model: 'auto', messages: [USER] }),
      OpenAI.RateLimitError,
      429,
    );
    recordRefused();
    assert.match(error.message, /budget/i);
  });

  test('a streamed request over budget is refused before the stream starts', async () => {
    const broke = new OpenAI({ apiKey: BROKE_KEY, baseURL: `${GATEWAY_URL}/v1`, maxRetries: 0 });
    await expectError(
      broke.chat.completions.create({ model: 'auto', messages: [USER], stream: true }),
      OpenAI.RateLimitError,
      429,
    );
    recordRefused();
  });
});
