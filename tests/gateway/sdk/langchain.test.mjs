// LangChain JS (@langchain/openai ChatOpenAI with @langchain/core; 1.5.9+
// needs Node 22) against switchboard-gateway's POST /v1/chat/completions and
// (useResponsesApi) POST /v1/responses: invoke, stream, tools with a forced
// choice and a follow-up turn, withStructuredOutput, sampling parameters and
// usage_metadata. Each chat case runs against the fake provider directly too,
// and must get the same answer. Run by tests/gateway/sdk/run.sh.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HumanMessage, ToolMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { ChatOpenAI } from '@langchain/openai';
import { z } from 'zod';

import {
  CHEAP, GATEWAY_URL, KEY, SAMPLING_MODEL, TOOL_ARGUMENTS, UPSTREAM_KEY, UPSTREAM_URL, answerFrom,
  recordOk, withUpstream,
} from './helpers.mjs';

const chat = (baseURL, apiKey, fields = {}) =>
  new ChatOpenAI({ model: CHEAP, apiKey, configuration: { baseURL: `${baseURL}/v1` }, maxRetries: 0, ...fields });
// The gateway and the fake, Chat Completions; the gateway, Responses API (the fake has none).
const viaGateway = (fields) => chat(GATEWAY_URL, KEY, fields);
const straight = (fields) => chat(UPSTREAM_URL, UPSTREAM_KEY, fields);
const APIS = [
  { name: 'chat', gateway: (f) => viaGateway(f), direct: (f) => straight(f) },
  { name: 'responses', gateway: (f) => viaGateway({ useResponsesApi: true, ...f }), direct: (f) => straight(f) },
];

const PROMPT = 'Reformat this list as a table: apples 3, pears 5.';

function only(upstream, what) {
  assert.equal(upstream.length, 1, `${what}: ${upstream.length} upstream requests`);
  return upstream[0].body;
}

function checkUsage(message, what) {
  const usage = message.usage_metadata;
  assert.ok(usage, `${what}: no usage_metadata`);
  assert.ok(usage.input_tokens > 0, `${what}: input_tokens ${usage.input_tokens}`);
  assert.ok(usage.output_tokens > 0, `${what}: output_tokens ${usage.output_tokens}`);
  assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens, `${what}: total_tokens`);
}

const lookup = tool(async ({ query }) => JSON.stringify({ page: `wiki/${query}`, found: true }), {
  name: 'lookup',
  description: 'Looks a term up in the project wiki.',
  schema: z.object({ query: z.string() }),
});

describe('LangChain ChatOpenAI', () => {
  for (const api of APIS) {
    test(`${api.name}: invoke, usage_metadata; as the fake answers directly`, async () => {
      const [message, upstream] = await withUpstream(() => api.gateway().invoke(PROMPT));
      recordOk(CHEAP);
      only(upstream, api.name);
      assert.equal(message.text, answerFrom(CHEAP));
      checkUsage(message, api.name);
      const expected = await api.direct().invoke(PROMPT);
      assert.equal(message.text, expected.text);
      assert.equal(message.usage_metadata.output_tokens, expected.usage_metadata.output_tokens);
    });

    test(`${api.name}: stream, with usage in the last chunk`, async () => {
      const run = async (model) => {
        let whole;
        let pieces = 0;
        for await (const chunk of await model.stream(PROMPT)) {
          whole = whole ? whole.concat(chunk) : chunk;
          if (chunk.text) pieces++;
        }
        return { whole, pieces };
      };
      const [{ whole, pieces }, upstream] = await withUpstream(() => run(api.gateway()));
      recordOk(CHEAP);
      assert.equal(only(upstream, api.name).stream, true);
      assert.equal(whole.text, answerFrom(CHEAP));
      assert.ok(pieces > 1, `pieces: ${pieces}`);
      checkUsage(whole, api.name);
      const expected = await run(api.direct());
      assert.equal(whole.text, expected.whole.text);
    });

    test(`${api.name}: bindTools with a forced choice, then the ToolMessage sent back`, async () => {
      const turn1 = (model) => model.bindTools([lookup], { tool_choice: 'lookup' }).invoke([new HumanMessage('Find the switchboard page.')]);
      const [called, upstream] = await withUpstream(() => turn1(api.gateway()));
      recordOk(CHEAP);
      const sent = only(upstream, api.name);
      assert.deepEqual(sent.tool_choice, { type: 'function', function: { name: 'lookup' } });
      assert.equal(called.tool_calls.length, 1);
      assert.equal(called.tool_calls[0].name, 'lookup');
      assert.deepEqual(called.tool_calls[0].args, TOOL_ARGUMENTS);

      const result = await lookup.invoke(called.tool_calls[0]);
      assert.ok(result instanceof ToolMessage);
      const turn2 = (model, call, toolMessage) =>
        model.bindTools([lookup]).invoke([new HumanMessage('Find the switchboard page.'), call, toolMessage]);
      const [answer, upstream2] = await withUpstream(() => turn2(api.gateway(), called, result));
      recordOk(CHEAP);
      const last = only(upstream2, api.name).messages.at(-1);
      assert.equal(last.role, 'tool');
      assert.equal(last.tool_call_id, called.tool_calls[0].id);
      assert.deepEqual(JSON.parse(last.content), { page: 'wiki/switchboard', found: true });
      assert.equal(answer.text, answerFrom(CHEAP));
      assert.equal(answer.tool_calls?.length ?? 0, 0);

      const calledDirect = await turn1(api.direct());
      assert.deepEqual(calledDirect.tool_calls.map((c) => [c.name, c.args]), called.tool_calls.map((c) => [c.name, c.args]));
      const answerDirect = await turn2(api.direct(), calledDirect, await lookup.invoke(calledDirect.tool_calls[0]));
      assert.equal(answerDirect.text, answer.text);
    });

    test(`${api.name}: a streamed forced tool call`, async () => {
      const run = async (model) => {
        let whole;
        for await (const chunk of await model.bindTools([lookup], { tool_choice: 'lookup' }).stream('Find the switchboard page.')) {
          whole = whole ? whole.concat(chunk) : chunk;
        }
        return whole;
      };
      const [whole, upstream] = await withUpstream(() => run(api.gateway()));
      recordOk(CHEAP);
      assert.equal(only(upstream, api.name).stream, true);
      assert.deepEqual(whole.tool_calls.map((c) => [c.name, c.args]), [['lookup', TOOL_ARGUMENTS]]);
      checkUsage(whole, api.name);
      const expected = await run(api.direct());
      assert.deepEqual(expected.tool_calls.map((c) => [c.name, c.args]), [['lookup', TOOL_ARGUMENTS]]);
    });

    test(`${api.name}: withStructuredOutput (a JSON schema)`, async () => {
      const schema = z.object({ name: z.string(), count: z.number().int(), tags: z.array(z.string()) });
      const run = (model) => model.withStructuredOutput(schema, { name: 'inventory', method: 'jsonSchema', strict: true }).invoke(PROMPT);
      const [object, upstream] = await withUpstream(() => run(api.gateway()));
      recordOk(CHEAP);
      const sent = only(upstream, api.name);
      assert.equal(sent.response_format.type, 'json_schema');
      assert.equal(sent.response_format.json_schema.name, 'inventory');
      assert.equal(sent.response_format.json_schema.strict, true);
      assert.deepEqual(object, { name: 'switchboard', count: 0, tags: [] });
      assert.deepEqual(await run(api.direct()), object);
    });
  }

  test('chat: sampling parameters reach the upstream as they reach the fake directly', async () => {
    const fields = { model: SAMPLING_MODEL, temperature: 0.25, topP: 0.5, maxTokens: 321, stop: ['END'],
                     presencePenalty: 0.125, frequencyPenalty: 0.375 };
    const options = { seed: 7 };  // a call option in LangChain, not a field
    const FIELDS = ['temperature', 'top_p', 'max_tokens', 'max_completion_tokens', 'stop', 'seed',
                    'presence_penalty', 'frequency_penalty'];
    const pick = (body) => Object.fromEntries(FIELDS.filter((f) => f in body).map((f) => [f, body[f]]));
    const [message, upstream] = await withUpstream(() => viaGateway(fields).invoke(PROMPT, options));
    recordOk(SAMPLING_MODEL);
    assert.equal(message.text, answerFrom(SAMPLING_MODEL));
    const [, direct] = await withUpstream(() => straight(fields).invoke(PROMPT, options));
    const want = pick(direct[0].body);
    assert.equal(want.temperature, 0.25);
    assert.equal(want.top_p, 0.5);
    assert.deepEqual(want.stop, ['END']);
    assert.equal(want.seed, 7);
    const got = pick(only(upstream, 'chat'));
    const cap = (b) => b.max_completion_tokens ?? b.max_tokens;
    assert.equal(cap(got), 321);
    assert.equal(cap(want), 321);
    for (const f of ['max_tokens', 'max_completion_tokens']) { delete got[f]; delete want[f]; }
    assert.deepEqual(got, want);
  });

  test('responses: temperature, top_p and the output cap reach the upstream', async () => {
    const [message, upstream] = await withUpstream(() =>
      viaGateway({ model: SAMPLING_MODEL, useResponsesApi: true, temperature: 0.25, topP: 0.5, maxTokens: 321 }).invoke(PROMPT));
    recordOk(SAMPLING_MODEL);
    assert.equal(message.text, answerFrom(SAMPLING_MODEL));
    const sent = only(upstream, 'responses');
    assert.equal(sent.temperature, 0.25);
    assert.equal(sent.top_p, 0.5);
    assert.equal(sent.max_completion_tokens ?? sent.max_tokens, 321);
  });
});
