// The official `@anthropic-ai/sdk` npm package against switchboard-gateway's
// POST /v1/messages: plain, streaming, tool use with a tool_result turn,
// routing ("auto" vs a concrete model), and errors as the SDK's typed
// exceptions. (Anthropic's API has no JSON mode.) Run by tests/gateway/sdk/run.sh.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';

import {
  ANTHROPIC_CHEAP, ANTHROPIC_PREMIUM, BROKE_KEY, CHEAP, GATEWAY_URL, KEY, PREMIUM, TOOL_ARGUMENTS,
  answerFrom, checkSwitchboardHeaders, expectError, recordOk, recordRefused,
} from './helpers.mjs';

// No retries: every request is made once, so the ledger count is exact.
const client = new Anthropic({ apiKey: KEY, baseURL: GATEWAY_URL, maxRetries: 0, timeout: 20_000 });

const USER = { role: 'user', content: 'Summarize: the quick brown fox jumps over the lazy dog.' };
const TOOLS = [
  {
    name: 'lookup',
    description: 'Looks a term up in the project wiki.',
    input_schema: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
  },
  { name: 'unused', description: 'Never called.', input_schema: { type: 'object', properties: {} } },
];

function checkTextMessage(data, model) {
  assert.equal(data.type, 'message');
  assert.equal(data.role, 'assistant');
  assert.equal(data.model, model);
  assert.match(data.id, /^msg_/);
  assert.equal(data.content.length, 1);
  assert.equal(data.content[0].type, 'text');
  assert.equal(data.content[0].text, answerFrom(model));
  assert.equal(data.stop_reason, 'end_turn');
  assert.ok(data.usage.input_tokens > 0, 'usage.input_tokens');
  assert.ok(data.usage.output_tokens > 0, 'usage.output_tokens');
}

describe('anthropic SDK: plain', () => {
  test('model "auto" with an x-switchboard-role header (summarize) goes to the cheap tier', async () => {
    const { data, response } = await client.messages
      .create(
        { model: 'auto', max_tokens: 256, system: 'Be brief.', messages: [USER] },
        { headers: { 'x-switchboard-role': 'summarize' } },
      )
      .withResponse();
    recordOk(data.model);
    assert.equal(response.status, 200);
    checkSwitchboardHeaders(response.headers, CHEAP);
    checkTextMessage(data, CHEAP);
  });

  test('model "auto" with metadata.role plan goes to premium', async () => {
    const { data, response } = await client.messages
      .create({ model: 'auto', max_tokens: 256, messages: [USER], metadata: { role: 'plan' } })
      .withResponse();
    recordOk(data.model);
    checkSwitchboardHeaders(response.headers, PREMIUM);
    checkTextMessage(data, PREMIUM);
  });

  test('a concrete model name is honoured over the rules', async () => {
    // The rules would send role format to cheap; the client names a premium Anthropic model.
    const { data, response } = await client.messages
      .create({ model: ANTHROPIC_PREMIUM, max_tokens: 256, messages: [USER] }, { headers: { 'x-switchboard-role': 'format' } })
      .withResponse();
    recordOk(data.model);
    checkSwitchboardHeaders(response.headers, ANTHROPIC_PREMIUM);
    checkTextMessage(data, ANTHROPIC_PREMIUM);
  });

  test('.asResponse() gives the raw response with the switchboard headers', async () => {
    const response = await client.messages
      .create({ model: ANTHROPIC_CHEAP, max_tokens: 64, messages: [USER] })
      .asResponse();
    recordOk(response.headers.get('x-switchboard-model'));
    assert.equal(response.status, 200);
    checkSwitchboardHeaders(response.headers, ANTHROPIC_CHEAP);
    const body = await response.json();
    assert.equal(body.model, ANTHROPIC_CHEAP);
  });

  test('the key works as x-api-key too', async () => {
    // This SDK sends the key as a bearer token; older ones and curl users send x-api-key.
    const headerClient = new Anthropic({
      apiKey: null,
      baseURL: GATEWAY_URL,
      maxRetries: 0,
      defaultHeaders: { 'x-api-key': KEY, authorization: null },
    });
    const data = await headerClient.messages.create({ model: ANTHROPIC_CHEAP, max_tokens: 64, messages: [USER] });
    recordOk(data.model);
    checkTextMessage(data, ANTHROPIC_CHEAP);
  });
});

describe('anthropic SDK: streaming', () => {
  test('messages.stream() from an Anthropic model: text events and finalMessage', async () => {
    const stream = client.messages.stream({ model: ANTHROPIC_CHEAP, max_tokens: 256, messages: [USER] });
    let text = '';
    const events = [];
    stream.on('text', (delta) => { text += delta; });
    stream.on('streamEvent', (event) => events.push(event.type));
    const message = await stream.finalMessage();
    recordOk(message.model);
    checkTextMessage(message, ANTHROPIC_CHEAP);
    assert.equal(text, answerFrom(ANTHROPIC_CHEAP));
    assert.equal(events[0], 'message_start');
    assert.equal(events.at(-1), 'message_stop');
    assert.ok(events.filter((e) => e === 'content_block_delta').length >= 3, `events: ${events.join(' ')}`);
  });

  test('create({stream: true}) routed by the rules to an OpenAI model, with the headers', async () => {
    const { data: stream, response } = await client.messages
      .create({ model: 'auto', max_tokens: 256, messages: [USER], stream: true }, { headers: { 'x-switchboard-role': 'plan' } })
      .withResponse();
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    assert.equal(response.headers.get('x-switchboard-model'), PREMIUM);
    let text = '';
    let model = null;
    let stopReason = null;
    let outputTokens = 0;
    for await (const event of stream) {
      if (event.type === 'message_start') model = event.message.model;
      if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
      if (event.type === 'message_delta') {
        stopReason = event.delta.stop_reason;
        outputTokens = event.usage.output_tokens;
      }
    }
    recordOk(model);
    assert.equal(model, PREMIUM);
    assert.equal(text, answerFrom(PREMIUM));
    assert.equal(stopReason, 'end_turn');
    assert.ok(outputTokens > 0, 'message_delta usage.output_tokens');
  });
});

// A tool_use, then the turn with its tool_result, through `model`.
async function toolRoundTrip(model, role, stream) {
  const messages = [{ role: 'user', content: 'What does the wiki say about switchboard?' }];
  const params = { model, max_tokens: 512, tools: TOOLS, tool_choice: { type: 'auto' } };
  const options = { headers: { 'x-switchboard-role': role } };
  const first = stream
    ? await client.messages.stream({ ...params, messages }, options).finalMessage()
    : await client.messages.create({ ...params, messages }, options);
  recordOk(first.model);
  assert.equal(first.stop_reason, 'tool_use');
  const uses = first.content.filter((block) => block.type === 'tool_use');
  assert.equal(uses.length, 1);
  assert.equal(uses[0].name, 'lookup');
  assert.deepEqual(uses[0].input, TOOL_ARGUMENTS);
  assert.ok(typeof uses[0].id === 'string' && uses[0].id.length > 0, 'tool_use id');

  messages.push({ role: 'assistant', content: first.content });
  messages.push({
    role: 'user',
    content: [{ type: 'tool_result', tool_use_id: uses[0].id, content: 'Switchboard routes agent steps to models.' }],
  });
  const second = await client.messages.create({ ...params, messages }, options);
  recordOk(second.model);
  assert.equal(second.model, first.model);
  checkTextMessage(second, first.model);
  return first.model;
}

describe('anthropic SDK: tool use', () => {
  test('tools + tool_choice auto, then the tool_result (Anthropic upstream)', async () => {
    assert.equal(await toolRoundTrip(ANTHROPIC_PREMIUM, 'plan', false), ANTHROPIC_PREMIUM);
  });

  test('tools + tool_choice auto, then the tool_result (OpenAI upstream, routed by the rules)', async () => {
    assert.equal(await toolRoundTrip('auto', 'extract', false), CHEAP);
  });

  test('a streamed tool_use assembles its input_json_delta pieces', async () => {
    assert.equal(await toolRoundTrip(ANTHROPIC_CHEAP, 'format', true), ANTHROPIC_CHEAP);
  });

  test('a streamed tool_use from an OpenAI model', async () => {
    assert.equal(await toolRoundTrip('auto', 'plan', true), PREMIUM);
  });
});

describe('anthropic SDK: errors', () => {
  test('a bad request is a BadRequestError (400) in Anthropic\'s error shape', async () => {
    const error = await expectError(
      client.messages.create({ model: 'auto', max_tokens: 64, messages: [{ role: 'robot', content: 'hi' }] }),
      Anthropic.BadRequestError,
      400,
    );
    assert.equal(error.error?.type, 'error');
    assert.equal(error.error?.error?.type, 'invalid_request_error');
  });

  test('an unknown model is a NotFoundError (404)', async () => {
    const error = await expectError(
      client.messages.create({ model: 'no-such-model', max_tokens: 64, messages: [USER] }),
      Anthropic.NotFoundError,
      404,
    );
    assert.equal(error.error?.error?.type, 'not_found_error');
    assert.match(error.message, /no-such-model/);
  });

  test('an unknown key is an AuthenticationError (401)', async () => {
    const stranger = new Anthropic({ apiKey: 'sk-not-a-gateway-key', baseURL: GATEWAY_URL, maxRetries: 0 });
    const error = await expectError(
      stranger.messages.create({ model: 'auto', max_tokens: 64, messages: [USER] }),
      Anthropic.AuthenticationError,
      401,
    );
    assert.equal(error.error?.type, 'error');
  });

  test('a key over its budget is a RateLimitError (429)', async () => {
    const broke = new Anthropic({ apiKey: BROKE_KEY, baseURL: GATEWAY_URL, maxRetries: 0 });
    const error = await expectError(
      broke.messages.create({ model: 'auto', max_tokens: 64, messages: [USER] }),
      Anthropic.RateLimitError,
      429,
    );
    recordRefused();
    assert.match(error.message, /budget/i);
  });
});
