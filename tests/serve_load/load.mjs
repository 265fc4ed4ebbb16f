// A bounded load test of a running `tpp serve` (loopback only).
// Usage: node load.mjs BASE_URL CLIENTS REQUESTS_PER_CLIENT
//
// Sixteen distinct requests (chat and completions, streamed and not, greedy
// and seeded, 2 to 48 new tokens, prompts of 1 to ~200 tokens) are first run
// one at a time: their replies are the reference. Then CLIENTS clients send
// REQUESTS_PER_CLIENT requests each, all at once, one in ten of the streamed
// ones (5 % of all) disconnecting after its first chunk. Every completed reply must
// equal its reference (text, finish reason, token counts); no request may
// fail. Prints one JSON line of figures; exits 1 on any failure.
import http from 'node:http';
import assert from 'node:assert/strict';

const [, , base, clientsArg, perClientArg] = process.argv;
const clients = Number(clientsArg), perClient = Number(perClientArg);
const url = new URL(base);

const specs = [];
for (let i = 0; i < 16; i++) {
  const chat = i % 2 === 0;
  const words = 'the cat sat on the mat and the dog ran '.repeat(1 + ((i * 7) % 20));
  const body = {
    max_tokens: 2 + ((i * 13) % 47),
    temperature: i % 3 === 0 ? 0 : 0.9,
    seed: 1000 + i,
    stream: i % 4 < 2,
  };
  if (chat) body.messages = [{ role: 'user', content: words.slice(0, 20 + i * 37) }];
  else body.prompt = words.slice(0, 1 + i * 41);
  if (i % 5 === 0) body.stop = ['the'];
  if (body.stream) body.stream_options = { include_usage: true };
  specs.push({ path: chat ? '/v1/chat/completions' : '/v1/completions', body, chat });
}

// One request; disconnect: close after the first streamed chunk.
function send(spec, disconnect) {
  return new Promise((resolve) => {
    const data = JSON.stringify(spec.body);
    const req = http.request(
      { host: url.hostname, port: url.port, path: spec.path, method: 'POST', agent: false,
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } },
      (res) => {
        let raw = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          raw += chunk;
          if (disconnect && raw.includes('data: ')) {
            req.destroy();
            resolve({ disconnected: true });
          }
        });
        res.on('end', () => resolve({ status: res.statusCode, raw }));
        res.on('error', (e) => resolve({ error: String(e) }));
      },
    );
    req.on('error', (e) => resolve(disconnect ? { disconnected: true } : { error: String(e) }));
    req.end(data);
  });
}

// The reply's text, finish reason and token counts, from a body or an event
// stream (cached prompt tokens depend on what ran before: counted apart).
let cached = 0;
function counts(u) {
  const { prompt_tokens_details: details, ...rest } = u;
  assert.ok(details.cached_tokens <= u.prompt_tokens);
  cached += details.cached_tokens;
  return rest;
}
function reply(spec, r) {
  if (!spec.body.stream) {
    const j = JSON.parse(r.raw);
    const c = j.choices[0];
    return { text: spec.chat ? c.message.content : c.text, finish: c.finish_reason, usage: counts(j.usage) };
  }
  let text = '', finish = null, usage = null, done = false;
  for (const block of r.raw.split('\n\n')) {
    if (!block.startsWith('data: ')) continue;
    const d = block.slice(6);
    if (d === '[DONE]') { done = true; continue; }
    const j = JSON.parse(d);
    if (j.usage) usage = counts(j.usage);
    for (const c of j.choices) {
      text += spec.chat ? (c.delta.content ?? '') : c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(done, 'the stream ended without [DONE]');
  return { text, finish, usage };
}

const reference = [];
for (const spec of specs) {
  const r = await send(spec, false);
  assert.equal(r.status, 200, r.raw ?? r.error);
  reference.push(reply(spec, r));
}

let completed = 0, disconnected = 0, mismatched = 0, failed = 0, tokens = 0;
const failures = [];
const t0 = performance.now();
await Promise.all(Array.from({ length: clients }, async (_, c) => {
  for (let k = 0; k < perClient; k++) {
    const n = c * perClient + k;
    const i = (n * 5 + c) % specs.length;
    const spec = specs[i];
    const disconnect = spec.body.stream && n % 10 === 7;
    const r = await send(spec, disconnect);
    if (r.disconnected) { disconnected++; continue; }
    if (r.error || r.status !== 200) { failed++; failures.push(r.error ?? `${r.status} ${r.raw}`); continue; }
    const got = reply(spec, r);
    try {
      assert.deepEqual(got, reference[i]);
      completed++;
      tokens += got.usage.completion_tokens;
    } catch (e) {
      mismatched++;
      failures.push(`request ${i}: ${e.message}`);
    }
  }
}));
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ clients, perClient, completed, disconnected, mismatched, failed, cached, seconds,
  requests_per_second: (completed + disconnected) / seconds, completion_tokens_per_second: tokens / seconds }));
if (failures.length) console.log(failures.slice(0, 5).join('\n'));
process.exit(mismatched || failed ? 1 : 0);
