// OpenAI's official Node client against a running `tpp serve`.
// Usage: node openai_client.mjs BASE_URL NODE_MODULES_DIR EXPECTED.json
// EXPECTED.json holds what `generate` gives for the requests below (written
// by the C++ test that starts the server); every check failing throws.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

const [, , baseURL, modules, expectedPath] = process.argv;
const OpenAI = createRequire(modules + '/')('openai');
const expected = JSON.parse(readFileSync(expectedPath, 'utf8'));
const client = new OpenAI({ baseURL, apiKey: expected.api_key, maxRetries: 0 });
const model = expected.model;
let checks = 0;

// Models.
const models = await client.models.list();
assert.deepEqual(models.data.map((m) => m.id), [model]);
checks++;

// Chat, greedy, not streamed.
const messages = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }];
const chat = await client.chat.completions.create({ model, messages, max_tokens: 24, temperature: 0 });
assert.equal(chat.choices[0].message.content, expected.chat_greedy);
assert.equal(chat.usage.prompt_tokens, expected.chat_prompt_tokens);
checks++;

// The same, streamed with usage: the same text, then a usage chunk.
const stream = await client.chat.completions.create({
  model, messages, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true },
});
let text = '';
let usage = null;
for await (const chunk of stream) {
  if (chunk.choices.length) text += chunk.choices[0].delta.content ?? '';
  if (chunk.usage) usage = chunk.usage;
}
assert.equal(text, expected.chat_greedy);
assert.deepEqual(usage, chat.usage);
checks++;

// Completions, seeded sampling, n = 2: choice i draws from seed + i.
const comp = await client.completions.create({ model, prompt: 'the cat', max_tokens: 15, seed: 42, n: 2 });
assert.deepEqual(comp.choices.map((c) => c.text), expected.completion_seeded);
checks++;

// A stop string: the reply ends before it and never shows it.
const stopped = await client.completions.create({
  model, prompt: 'the cat', max_tokens: 40, temperature: 0, stop: [expected.stop],
});
assert.equal(stopped.choices[0].text, expected.stopped_text);
assert.equal(stopped.choices[0].finish_reason, 'stop');
checks++;

// Logprobs on chat.
const lp = await client.chat.completions.create({
  model, messages, max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 2,
});
assert.equal(lp.choices[0].logprobs.content.length > 0, true);
for (const t of lp.choices[0].logprobs.content) {
  assert.equal(t.top_logprobs.length, 2);
  assert.equal(t.top_logprobs[0].logprob, t.logprob);
}
checks++;

// Structured output: the reply parses and follows the schema.
const schema = {
  type: 'object',
  properties: { color: { enum: ['red', 'green'] }, n: { type: 'integer' }, ok: { type: 'boolean' } },
  required: ['color', 'n', 'ok'],
  additionalProperties: false,
};
const structured = await client.chat.completions.create({
  model, messages, max_tokens: 300, seed: 5,
  response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } },
});
const obj = JSON.parse(structured.choices[0].message.content);
assert.ok(['red', 'green'].includes(obj.color));
assert.ok(Number.isInteger(obj.n));
assert.equal(typeof obj.ok, 'boolean');
assert.deepEqual(Object.keys(obj).filter((k) => !(k in schema.properties)), []);
checks++;

// Errors arrive as the client's typed errors, naming the field.
await assert.rejects(
  client.chat.completions.create({ model, messages, temperature: 7 }),
  (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature',
);
await assert.rejects(
  new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 }).models.list(),
  (e) => e instanceof OpenAI.AuthenticationError && e.status === 401,
);
checks++;

console.log(`openai client: ${checks} checks passed`);
