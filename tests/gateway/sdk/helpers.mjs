// Shared by the SDK tests: where the gateway is, the keys, what the fake
// provider answers, and the calls log that run.sh checks the ledger against.
//
// Environment (set by run.sh):
//   SWITCHBOARD_GATEWAY_URL   http://127.0.0.1:PORT
//   SWITCHBOARD_SDK_KEY       a configured gateway key (workload "default", no budget)
//   SWITCHBOARD_SDK_BROKE_KEY a configured gateway key whose budget is $0
//   SWITCHBOARD_UPSTREAM_URL  http://127.0.0.1:PORT of recorder.mjs: the fake provider,
//                             keeping every request that reached it
//   SWITCHBOARD_SDK_CALLS     a file: one line per request the gateway answered,
//                             "ok MODEL" or "refused", appended as they finish
import assert from 'node:assert/strict';
import { appendFileSync } from 'node:fs';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the SDK tests with tests/gateway/sdk/run.sh`);
  return value;
}

export const GATEWAY_URL = required('SWITCHBOARD_GATEWAY_URL');
export const KEY = required('SWITCHBOARD_SDK_KEY');
export const BROKE_KEY = required('SWITCHBOARD_SDK_BROKE_KEY');
// The fake provider as every model's upstream (through recorder.mjs). A client
// pointed here talks to the fake directly, without the gateway.
export const UPSTREAM_URL = required('SWITCHBOARD_UPSTREAM_URL');
// The key the gateway sends upstream (run.sh); a direct client uses it too.
export const UPSTREAM_KEY = 'sk-fake-upstream';
const CALLS = required('SWITCHBOARD_SDK_CALLS');

// The models of run.sh's config: tier cheap = [gpt-5-mini, claude-haiku-4-5],
// premium = [gpt-5, claude-opus-4-5]. The rules send format/summarize/extract
// and JSON-mode requests to cheap, everything else to premium.
export const CHEAP = 'gpt-5-mini';
export const PREMIUM = 'gpt-5';
export const ANTHROPIC_CHEAP = 'claude-haiku-4-5';
export const ANTHROPIC_PREMIUM = 'claude-opus-4-5';
// Tier "sampling" alone; the SDKs send sampling parameters to it (they drop them for gpt-5*).
export const SAMPLING_MODEL = 'gpt-4.1';
export const ALL_MODELS = [CHEAP, ANTHROPIC_CHEAP, PREMIUM, ANTHROPIC_PREMIUM];

// The fake provider's text answer (tests/fake_provider.h) from `model`.
export const answerFrom = (model) => `Hello from ${model}. This answer is "fake" and deterministic.`;
// The fake's tool call: the first function tool, with these arguments.
export const TOOL_ARGUMENTS = { query: 'switchboard' };

// One request the gateway answered with a model: the ledger must hold one ok record for it.
export function recordOk(model) {
  appendFileSync(CALLS, `ok ${model}\n`);
}
// One request refused by a budget: the ledger must hold one refused_by_budget record for it.
export function recordRefused() {
  appendFileSync(CALLS, 'refused\n');
}

// The headers every answer carries: which model served it, and what it cost.
export function checkSwitchboardHeaders(headers, model) {
  assert.equal(headers.get('x-switchboard-model'), model, 'x-switchboard-model');
  const cost = headers.get('x-switchboard-cost-usd');
  assert.ok(cost !== null, 'x-switchboard-cost-usd is missing');
  assert.ok(Number.isFinite(Number(cost)) && Number(cost) > 0, `x-switchboard-cost-usd: ${cost}`);
}

// Awaits `promise`, expects it to reject with an instance of `errorClass` and
// `status`; returns the error for further checks.
export async function expectError(promise, errorClass, status) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected ${errorClass.name} (${status}), but the request succeeded`);
  assert.ok(error instanceof errorClass, `expected ${errorClass.name}, got ${error?.constructor?.name}: ${error?.message}`);
  assert.equal(error.status, status);
  return error;
}

// Every request that reached the fake provider so far, oldest first, with its
// body parsed: [{method, url, headers, body}].
export async function upstreamRequests() {
  const response = await fetch(`${UPSTREAM_URL}/__recorded`);
  assert.equal(response.status, 200, 'recorder.mjs /__recorded');
  return (await response.json()).map((r) => ({ ...r, body: JSON.parse(r.body || 'null') }));
}

// Runs `call` and returns [its result, the requests that reached the fake
// provider while it ran] (the tests run one at a time).
export async function withUpstream(call) {
  const before = (await upstreamRequests()).length;
  const result = await call();
  const after = await upstreamRequests();
  return [result, after.slice(before)];
}
