// security_parse.test.mjs — request numbers outside their field's range (reals beyond int64 such as 1e300,
// -1e300, 1e19, 2^63 that C must never cast to an integer) get a 400 naming the field and its range in both
// dialects, a token-id prompt with a bad id names it, and top_k above the vocabulary is accepted (= no top-k).
// Model: the tiny random-weight GGUF from `qwen-edge mkmodel --shape tiny`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';

let srv;
before(async () => { srv = await startServer({ args: ['--parallel', '1', '--ctx', '512'] }); });
after(async () => { if (srv) assert.equal(await srv.stop(), 0, 'clean exit on SIGTERM'); });

// raw bodies: JSON.stringify cannot write 9223372036854775808.0 as a real
async function post(path, raw) {
  const r = await fetch(srv.base + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: raw });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}
const msgs = '"messages":[{"role":"user","content":"hi"}]';
const BIG = ['1e300', '-1e300', '1e19', '-1e19', '9223372036854775808.0', '9.3e18'];

test('OpenAI integer fields: reals beyond their range are a 400 naming the field and the range', async () => {
  const fields = { max_tokens: [1, 1073741824], top_k: [0, 1073741824], seed: ['-9223372036854775808', '9223372036854775807'],
    memory_rounds: [0, 100000], n: [1, 1] };
  for (const [f, [lo, hi]] of Object.entries(fields)) {
    for (const v of BIG) {
      if (f === 'seed' && v === '9.3e18') continue; // a valid seed
      const r = await post('/v1/chat/completions', `{"model":"q",${msgs},${f === 'max_tokens' ? '' : '"max_tokens":2,'}"${f}":${v}}`);
      assert.equal(r.status, 400, `${f}: ${v}: ${r.text}`);
      assert.equal(r.json.error.param, f);
      if (f !== 'n') assert.match(r.json.error.message, new RegExp(`'${f}' must be an integer between ${lo} and ${hi}`), `${f}: ${v}`);
    }
  }
});

test('ollama options: reals beyond their range are a 400 naming the field and the range', async () => {
  const fields = { num_predict: [-2, 1073741824], top_k: [0, 1073741824], repeat_last_n: [-1, 1073741824],
    seed: ['-9223372036854775808', '9223372036854775807'] };
  for (const [f, [lo, hi]] of Object.entries(fields)) {
    for (const v of BIG) {
      if (f === 'seed' && v === '9.3e18') continue;
      const r = await post('/api/chat', `{"model":"q",${msgs},"stream":false,"options":{"${f}":${v}}}`);
      assert.equal(r.status, 400, `${f}: ${v}: ${r.text}`);
      assert.match(r.json.error, new RegExp(`'${f}' must be an integer between ${lo} and ${hi}`), `${f}: ${v}`);
    }
  }
});

test('real fields name their range; numbers JSON cannot hold are invalid JSON', async () => {
  let r = await post('/v1/chat/completions', `{"model":"q",${msgs},"temperature":1e300}`);
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /'temperature' must be between 0 and 2/);
  r = await post('/v1/chat/completions', `{"model":"q",${msgs},"top_p":-1e300}`);
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /'top_p' must be between 0 and 1/);
  for (const v of ['1e999', '-1e999', '9223372036854775808', '18446744073709551616']) {
    r = await post('/v1/chat/completions', `{"model":"q",${msgs},"seed":${v}}`);
    assert.equal(r.status, 400, `${v}: ${r.text}`);
    assert.match(r.json.error.message, /not valid JSON/, v);
  }
});

test('token-id prompts and ollama context: a bad id is a 400 naming its index', async () => {
  let r = await post('/v1/completions', '{"model":"q","prompt":[1,2,999999999],"max_tokens":1}');
  assert.equal(r.status, 400);
  assert.match(r.json.error.message, /prompt\[2\] must be a token id in \[0, \d+\)/);
  r = await post('/api/generate', '{"model":"q","prompt":"hi","stream":false,"context":[1,-5]}');
  assert.equal(r.status, 400);
  assert.match(r.json.error, /context\[1\] must be a token id in \[0, \d+\)/);
});

test('top_k above the vocabulary means no top-k (200), as llama.cpp treats it', async () => {
  for (const k of [151936, 151937, 1073741824]) {
    const r = await post('/v1/chat/completions', `{"model":"q",${msgs},"max_tokens":3,"temperature":1,"top_k":${k},"top_p":1}`);
    assert.equal(r.status, 200, r.text);
    const o = await post('/api/chat', `{"model":"q",${msgs},"stream":false,"options":{"num_predict":3,"top_k":${k}}}`);
    assert.equal(o.status, 200, o.text);
  }
});
