// The Vercel AI SDK (`ai` 6 with @ai-sdk/openai and @ai-sdk/anthropic; their
// 7.x/4.x need Node 22) against switchboard-gateway, through three APIs:
// openai.chat() = POST /v1/chat/completions, openai.responses() = POST
// /v1/responses, anthropic() = POST /v1/messages. Each case runs against the
// gateway and, where the fake provider speaks that API (chat, messages), the
// same call straight to the fake: the answers must match, and what the
// gateway sent upstream must mean what the client sent. Run by run.sh.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { generateObject, generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

import {
  ANTHROPIC_CHEAP, ANTHROPIC_PREMIUM, CHEAP, GATEWAY_URL, KEY, SAMPLING_MODEL, TOOL_ARGUMENTS,
  UPSTREAM_KEY, UPSTREAM_URL, answerFrom, checkSwitchboardHeaders, recordOk, withUpstream,
} from './helpers.mjs';

const gateway = {
  openai: createOpenAI({ apiKey: KEY, baseURL: `${GATEWAY_URL}/v1` }),
  anthropic: createAnthropic({ apiKey: KEY, baseURL: `${GATEWAY_URL}/v1` }),
};
const direct = {
  openai: createOpenAI({ apiKey: UPSTREAM_KEY, baseURL: `${UPSTREAM_URL}/v1` }),
  anthropic: createAnthropic({ apiKey: UPSTREAM_KEY, baseURL: `${UPSTREAM_URL}/v1` }),
};

// The three ways in. `direct` is null where the fake has no such route
// (it serves Chat Completions, not the Responses API): the gateway's answer
// is then compared with the chat API's straight from the fake.
const APIS = [
  { name: 'chat', model: (p, id) => p.openai.chat(id), id: CHEAP, direct: 'chat' },
  { name: 'responses', model: (p, id) => p.openai.responses(id), id: CHEAP, direct: 'chat' },
  { name: 'anthropic', model: (p, id) => p.anthropic(id), id: ANTHROPIC_CHEAP, direct: 'anthropic' },
];
const byName = Object.fromEntries(APIS.map((a) => [a.name, a]));
const directModel = (api, id = api.id) => byName[api.direct].model(direct, id);

const PROMPT = 'Reformat this list as a table: apples 3, pears 5.';
const bytes = (body) => Buffer.byteLength(JSON.stringify(body));

// The fake's prompt count is max(1, body bytes / 4) of the request it got
// (tests/fakes/fake_provider.h); the recorder re-serialises the body, so allow
// the few bytes of a different spelling of the same JSON.
function checkUsage(usage, upstreamBody, what) {
  assert.ok(usage.inputTokens > 0, `${what}: inputTokens ${usage.inputTokens}`);
  assert.ok(usage.outputTokens > 0, `${what}: outputTokens ${usage.outputTokens}`);
  assert.equal(usage.totalTokens, usage.inputTokens + usage.outputTokens, `${what}: totalTokens`);
  const expected = Math.max(1, Math.floor(bytes(upstreamBody) / 4));
  assert.ok(Math.abs(usage.inputTokens - expected) <= 8,
    `${what}: inputTokens ${usage.inputTokens}, the fake counts ${expected} for the upstream body`);
}

// The one request a gateway call made upstream.
function only(upstream, what) {
  assert.equal(upstream.length, 1, `${what}: ${upstream.length} upstream requests`);
  return upstream[0].body;
}

const lookup = tool({
  description: 'Looks a term up in the project wiki.',
  inputSchema: z.object({ query: z.string() }),
  execute: async ({ query }) => ({ page: `wiki/${query}`, found: true }),
});

describe('Vercel AI SDK: generateText', () => {
  for (const api of APIS) {
    test(`${api.name}: plain text, usage, switchboard headers; as the fake answers directly`, async () => {
      const [result, upstream] = await withUpstream(() =>
        generateText({ model: api.model(gateway, api.id), prompt: PROMPT, maxRetries: 0 }));
      recordOk(api.id);
      assert.equal(result.text, answerFrom(api.id));
      assert.equal(result.finishReason, 'stop');
      checkSwitchboardHeaders(new Headers(result.response.headers), api.id);
      assert.equal(result.response.modelId, api.id);
      checkUsage(result.usage, only(upstream, api.name), api.name);

      const straight = await generateText({ model: directModel(api), prompt: PROMPT, maxRetries: 0 });
      assert.equal(result.text, straight.text);
      assert.equal(result.finishReason, straight.finishReason);
      assert.equal(result.usage.outputTokens, straight.usage.outputTokens);
    });
  }
});

describe('Vercel AI SDK: streamText', () => {
  for (const api of APIS) {
    test(`${api.name}: streamed text, finish reason and usage`, async () => {
      const run = async (model) => {
        const result = streamText({ model, prompt: PROMPT, maxRetries: 0 });
        let text = '';
        let pieces = 0;
        for await (const piece of result.textStream) {
          text += piece;
          pieces++;
        }
        return { text, pieces, finishReason: await result.finishReason, usage: await result.usage,
                 response: await result.response };
      };
      const [streamed, upstream] = await withUpstream(() => run(api.model(gateway, api.id)));
      recordOk(api.id);
      assert.equal(streamed.text, answerFrom(api.id));
      assert.ok(streamed.pieces > 1, `one piece: ${streamed.pieces}`);
      assert.equal(streamed.finishReason, 'stop');
      // A stream's head goes out before its cost is known: the model header only.
      assert.equal(new Headers(streamed.response.headers).get('x-switchboard-model'), api.id);
      const sent = only(upstream, api.name);
      assert.equal(sent.stream, true);
      checkUsage(streamed.usage, sent, api.name);

      const straight = await run(directModel(api));
      assert.equal(streamed.text, straight.text);
      assert.equal(streamed.usage.outputTokens, straight.usage.outputTokens);
    });
  }
});

describe('Vercel AI SDK: tools', () => {
  for (const api of APIS) {
    test(`${api.name}: a forced tool call, then the tool result sent back`, async () => {
      const first = async (model) =>
        generateText({ model, prompt: 'Find the switchboard page.', tools: { lookup },
                       toolChoice: { type: 'tool', toolName: 'lookup' }, maxRetries: 0 });
      const [called, upstream] = await withUpstream(() => first(api.model(gateway, api.id)));
      recordOk(api.id);
      assert.equal(called.finishReason, 'tool-calls');
      assert.equal(called.toolCalls.length, 1);
      assert.equal(called.toolCalls[0].toolName, 'lookup');
      assert.deepEqual(called.toolCalls[0].input, TOOL_ARGUMENTS);
      assert.deepEqual(called.toolResults[0].output, { page: 'wiki/switchboard', found: true });
      const sent = only(upstream, api.name);
      if (api.name === 'anthropic') {
        assert.deepEqual(sent.tool_choice, { type: 'tool', name: 'lookup' });
      } else {
        assert.deepEqual(sent.tool_choice, { type: 'function', function: { name: 'lookup' } });
      }

      // The second turn: the assistant's call and the tool's result go back.
      const second = async (model, history) =>
        generateText({ model, messages: [{ role: 'user', content: 'Find the switchboard page.' }, ...history],
                       tools: { lookup }, maxRetries: 0 });
      const [answered, upstream2] = await withUpstream(() => second(api.model(gateway, api.id), called.response.messages));
      recordOk(api.id);
      assert.equal(answered.text, answerFrom(api.id));
      assert.equal(answered.finishReason, 'stop');
      const sent2 = only(upstream2, api.name);
      const id = called.toolCalls[0].toolCallId;
      const last = sent2.messages.at(-1);
      if (api.name === 'anthropic') {
        assert.equal(last.role, 'user');
        assert.equal(last.content[0].type, 'tool_result');
        assert.equal(last.content[0].tool_use_id, id);
        assert.deepEqual(JSON.parse(last.content[0].content.map?.((b) => b.text).join('') ?? last.content[0].content),
                         { page: 'wiki/switchboard', found: true });
      } else {
        assert.equal(last.role, 'tool');
        assert.equal(last.tool_call_id, id);
        assert.deepEqual(JSON.parse(last.content), { page: 'wiki/switchboard', found: true });
      }

      const straightCall = await first(directModel(api));
      assert.deepEqual(straightCall.toolCalls.map((c) => [c.toolName, c.input]),
                       called.toolCalls.map((c) => [c.toolName, c.input]));
      const straightAnswer = await second(directModel(api), straightCall.response.messages);
      assert.equal(straightAnswer.text, answered.text);
    });
  }
});

describe('Vercel AI SDK: streamed tool calls', () => {
  for (const api of APIS) {
    test(`${api.name}: streamText with a forced tool call`, async () => {
      const run = async (model) => {
        const result = streamText({ model, prompt: 'Find the switchboard page.', tools: { lookup },
                                    toolChoice: { type: 'tool', toolName: 'lookup' }, maxRetries: 0 });
        const kinds = new Set();
        for await (const part of result.fullStream) {
          kinds.add(part.type);
          if (part.type === 'error') throw part.error;
        }
        return { kinds, toolCalls: await result.toolCalls, finishReason: await result.finishReason,
                 usage: await result.usage };
      };
      const [streamed, upstream] = await withUpstream(() => run(api.model(gateway, api.id)));
      recordOk(api.id);
      assert.equal(only(upstream, api.name).stream, true);
      assert.equal(streamed.finishReason, 'tool-calls');
      assert.ok(streamed.kinds.has('tool-input-delta'), `no tool-input-delta: ${[...streamed.kinds].join(', ')}`);
      assert.deepEqual(streamed.toolCalls.map((c) => [c.toolName, c.input]), [['lookup', TOOL_ARGUMENTS]]);
      assert.ok(streamed.usage.outputTokens > 0);
      const straight = await run(directModel(api));
      assert.deepEqual(straight.toolCalls.map((c) => [c.toolName, c.input]), [['lookup', TOOL_ARGUMENTS]]);
      assert.equal(streamed.usage.outputTokens, straight.usage.outputTokens);
    });
  }

  test('anthropic: streamed thinking with its signature, then the tool call', async () => {
    const run = async (model) => {
      const result = streamText({ model, prompt: 'Find the switchboard page.', tools: { lookup }, maxOutputTokens: 4000,
                                  providerOptions: { anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 } } },
                                  maxRetries: 0 });
      for await (const part of result.fullStream) if (part.type === 'error') throw part.error;
      return { reasoning: await result.reasoning, toolCalls: await result.toolCalls };
    };
    const [streamed] = await withUpstream(() => run(gateway.anthropic(ANTHROPIC_PREMIUM)));
    recordOk(ANTHROPIC_PREMIUM);
    const straight = await run(direct.anthropic(ANTHROPIC_PREMIUM));
    assert.ok(streamed.reasoning[0]?.text, 'no streamed thinking');
    assert.equal(streamed.reasoning[0].text, straight.reasoning[0].text);
    assert.equal(streamed.reasoning[0].providerMetadata?.anthropic?.signature,
                 straight.reasoning[0].providerMetadata?.anthropic?.signature);
    assert.ok(streamed.reasoning[0].providerMetadata?.anthropic?.signature, 'no signature');
    assert.deepEqual(streamed.toolCalls.map((c) => [c.toolName, c.input]), [['lookup', TOOL_ARGUMENTS]]);
  });
});

describe('Vercel AI SDK: structured output', () => {
  const schema = z.object({ name: z.string(), count: z.number().int(), tags: z.array(z.string()) });
  for (const api of APIS) {
    test(`${api.name}: generateObject with a JSON schema`, async () => {
      // Anthropic: a forced "json" tool (the fake answers output_config.format with text).
      const providerOptions = { anthropic: { structuredOutputMode: 'jsonTool' } };
      const run = (model) => generateObject({ model, schema, schemaName: 'inventory', prompt: PROMPT,
                                              providerOptions, maxRetries: 0 });
      const [result, upstream] = await withUpstream(() => run(api.model(gateway, api.id)));
      recordOk(api.id);
      assert.deepEqual(result.object, { name: 'switchboard', count: 0, tags: [] });
      const sent = only(upstream, api.name);
      if (api.name === 'anthropic') {
        assert.equal(sent.tools.length, 1);
        assert.deepEqual(sent.tools[0].input_schema.required, ['name', 'count', 'tags']);
      } else {
        assert.equal(sent.response_format.type, 'json_schema');
        assert.equal(sent.response_format.json_schema.name, 'inventory');
        assert.equal(sent.response_format.json_schema.strict, true);
        assert.deepEqual(sent.response_format.json_schema.schema.required, ['name', 'count', 'tags']);
      }
      const straight = await run(directModel(api));
      assert.deepEqual(result.object, straight.object);
    });
  }
});

describe('Vercel AI SDK: sampling parameters reach the upstream', () => {
  const settings = { temperature: 0.25, topP: 0.5, maxOutputTokens: 321, stopSequences: ['END'], seed: 7,
                     presencePenalty: 0.125, frequencyPenalty: 0.375 };
  const OPENAI_FIELDS = ['temperature', 'top_p', 'max_tokens', 'max_completion_tokens', 'stop', 'seed',
                         'presence_penalty', 'frequency_penalty'];
  const pick = (body, fields) => Object.fromEntries(fields.filter((f) => f in body).map((f) => [f, body[f]]));

  test('chat: every parameter, as the SDK sends them straight to the fake', async () => {
    const [result, upstream] = await withUpstream(() =>
      generateText({ model: gateway.openai.chat(SAMPLING_MODEL), prompt: PROMPT, ...settings, maxRetries: 0 }));
    recordOk(SAMPLING_MODEL);
    assert.equal(result.text, answerFrom(SAMPLING_MODEL));
    const sent = only(upstream, 'chat');
    const [, straight] = await withUpstream(() =>
      generateText({ model: direct.openai.chat(SAMPLING_MODEL), prompt: PROMPT, ...settings, maxRetries: 0 }));
    const want = pick(straight[0].body, OPENAI_FIELDS);
    assert.deepEqual(want, { temperature: 0.25, top_p: 0.5, max_tokens: 321, stop: ['END'], seed: 7,
                             presence_penalty: 0.125, frequency_penalty: 0.375 });
    const got = pick(sent, OPENAI_FIELDS);
    // max_tokens and max_completion_tokens mean the same cap on Chat Completions.
    if ('max_completion_tokens' in got && !('max_tokens' in got)) {
      got.max_tokens = got.max_completion_tokens;
      delete got.max_completion_tokens;
    }
    assert.deepEqual(got, want);
  });

  test('responses: temperature, top_p and the output cap reach the upstream', async () => {
    // The Responses API has no stop sequences, seed or penalties: the SDK drops them with a warning.
    const { temperature, topP, maxOutputTokens } = settings;
    const [result, upstream] = await withUpstream(() =>
      generateText({ model: gateway.openai.responses(SAMPLING_MODEL), prompt: PROMPT, temperature, topP,
                     maxOutputTokens, maxRetries: 0 }));
    recordOk(SAMPLING_MODEL);
    assert.equal(result.text, answerFrom(SAMPLING_MODEL));
    const sent = only(upstream, 'responses');
    assert.equal(sent.temperature, 0.25);
    assert.equal(sent.top_p, 0.5);
    assert.equal(sent.max_completion_tokens ?? sent.max_tokens, 321);
  });

  test('anthropic: temperature, top_k, max_tokens and stop sequences, as straight to the fake', async () => {
    const run = (p) => withUpstream(() =>
      generateText({ model: p.anthropic(ANTHROPIC_CHEAP), prompt: PROMPT, temperature: 0.25, topK: 40,
                     maxOutputTokens: 321, stopSequences: ['END'], maxRetries: 0 }));
    const [result, upstream] = await run(gateway);
    recordOk(ANTHROPIC_CHEAP);
    assert.equal(result.text, answerFrom(ANTHROPIC_CHEAP));
    const [, straight] = await run(direct);
    const FIELDS = ['temperature', 'top_p', 'top_k', 'max_tokens', 'stop_sequences'];
    const want = pick(straight[0].body, FIELDS);
    assert.deepEqual(want, { temperature: 0.25, top_k: 40, max_tokens: 321, stop_sequences: ['END'] });
    assert.deepEqual(pick(only(upstream, 'anthropic'), FIELDS), want);
  });
});

describe('Vercel AI SDK: thinking and tools across two turns', () => {
  const twoTurns = (model, providerOptions) =>
    generateText({ model, prompt: 'Find the switchboard page, then summarise it.', tools: { lookup },
                   maxOutputTokens: 4000, providerOptions, stopWhen: stepCountIs(2), maxRetries: 0 });

  test('anthropic: thinking (signed) and a tool call, the thinking carried into the second turn', async () => {
    const options = { anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 } } };
    const [result, upstream] = await withUpstream(() => twoTurns(gateway.anthropic(ANTHROPIC_PREMIUM), options));
    recordOk(ANTHROPIC_PREMIUM);
    recordOk(ANTHROPIC_PREMIUM);
    assert.equal(result.steps.length, 2);
    const [step1, step2] = result.steps;
    assert.ok(step1.reasoningText, 'no thinking in the first turn');
    assert.equal(step1.toolCalls[0].toolName, 'lookup');
    assert.deepEqual(step1.toolCalls[0].input, TOOL_ARGUMENTS);
    assert.equal(step2.text, answerFrom(ANTHROPIC_PREMIUM));
    assert.equal(upstream.length, 2);
    assert.deepEqual(upstream[0].body.thinking, { type: 'enabled', budget_tokens: 1024 });
    // The fake checks the signature: a changed one is a 400, so reaching here means it came back intact.
    const assistant = upstream[1].body.messages.find((m) => m.role === 'assistant');
    assert.equal(assistant.content[0].type, 'thinking');
    assert.equal(assistant.content[0].thinking, step1.reasoningText);
    assert.ok(assistant.content[0].signature);
    assert.equal(assistant.content[1].type, 'tool_use');

    const straight = await twoTurns(direct.anthropic(ANTHROPIC_PREMIUM), options);
    assert.equal(straight.steps[0].reasoningText, step1.reasoningText);
    assert.equal(straight.text, result.text);
    assert.equal(result.totalUsage.outputTokens, straight.totalUsage.outputTokens);
  });

  test('responses: a Claude model named through the OpenAI Responses API, reasoning carried back', async () => {
    // The gateway honours a model name: the Responses API request is served by
    // claude-opus-4-5 on the Anthropic wire. store false: the reasoning item
    // comes back whole (encrypted_content), not as an item_reference.
    const options = { openai: { forceReasoning: true, reasoningEffort: 'medium', store: false } };
    const [result, upstream] = await withUpstream(() => twoTurns(gateway.openai.responses(ANTHROPIC_PREMIUM), options));
    recordOk(ANTHROPIC_PREMIUM);
    recordOk(ANTHROPIC_PREMIUM);
    assert.equal(result.steps.length, 2);
    const [step1, step2] = result.steps;
    assert.equal(step1.toolCalls[0].toolName, 'lookup');
    assert.deepEqual(step1.toolCalls[0].input, TOOL_ARGUMENTS);
    assert.equal(step2.text, answerFrom(ANTHROPIC_PREMIUM));
    // Claude's thinking reaches the client as a reasoning part (the item's summary_text).
    assert.ok(step1.reasoningText, `no reasoning in the first turn: ${JSON.stringify(step1.reasoning)}`);
    const straight = await twoTurns(direct.anthropic(ANTHROPIC_PREMIUM),
                                    { anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 } } });
    assert.equal(step1.reasoningText, straight.steps[0].reasoningText);
    assert.equal(upstream.length, 2);
    assert.equal(upstream[0].url, '/v1/messages');
    assert.equal(upstream[0].body.thinking?.type === 'enabled' || upstream[0].body.thinking?.type === 'adaptive', true,
                 `thinking upstream: ${JSON.stringify(upstream[0].body.thinking)}`);
    const assistant = upstream[1].body.messages.find((m) => m.role === 'assistant');
    assert.ok(['thinking', 'redacted_thinking'].includes(assistant.content[0].type),
              `the second turn's assistant message starts with ${assistant.content[0].type}`);
  });
});
