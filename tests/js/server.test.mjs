// server.test.mjs — `qwen-edge serve` end to end: the official openai SDK (non-stream, stream, usage, stop
// sequences, errors), raw SSE framing and whole-UTF-8 chunks, ollama's routes and shapes, 8 concurrent
// clients, a client that disconnects mid-stream (its slot frees, seen in /metrics), bad inputs with their
// documented errors (and the server still answering after them), API key, and the prefix cache across the
// turns of a chat. Model: the tiny random-weight GGUF from `qwen-edge mkmodel --shape tiny`.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, metrics, rawSSE, sleep } from './lib/server.mjs';

let srv, client;
before(async () => {
  srv = await startServer({ args: ['--parallel', '4', '--ctx', '512'] });
  client = new OpenAI({ baseURL: `${srv.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { if (srv) assert.equal(await srv.stop(), 0, 'clean exit on SIGTERM'); });

const chat = (extra = {}) => ({ model: 'qwen', messages: [{ role: 'user', content: '你好, who are you?' }], max_tokens: 12, ...extra });

async function postJSON(path, body, headers = {}) {
  const r = await fetch(srv.base + path, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text, headers: r.headers };
}

function parseSSE(raw) {
  const text = new TextDecoder('utf-8', { fatal: true }).decode(raw); // throws on any invalid UTF-8
  assert.ok(text.endsWith('\n\n'), 'every event ends with a blank line');
  return text.split('\n\n').filter(Boolean).map((ev) => {
    assert.ok(ev.startsWith('data: '), `event framing: ${JSON.stringify(ev.slice(0, 40))}`);
    assert.ok(!ev.includes('\n'), 'one data line per event');
    return ev.slice(6);
  });
}

describe('openai SDK', () => {
  test('models.list', async () => {
    const page = await client.models.list();
    assert.equal(page.data.length, 1);
    assert.equal(page.data[0].object, 'model');
    assert.ok(page.data[0].id.length > 0);
  });

  test('non-stream chat completion', async () => {
    const r = await client.chat.completions.create(chat({ seed: 1, max_tokens: 6 }));
    assert.match(r.id, /^chatcmpl-/);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
    assert.ok(r.usage.prompt_tokens > 10);
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 6);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
    assert.equal(typeof r.usage.prompt_tokens_details.cached_tokens, 'number');
    if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 6);
  });

  test('stream with include_usage: role first, same id, empty final delta, usage chunk last', async () => {
    const stream = await client.chat.completions.create(chat({ stream: true, stream_options: { include_usage: true }, max_tokens: 6 }));
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks.length >= 3);
    const ids = new Set(chunks.map((c) => c.id));
    const created = new Set(chunks.map((c) => c.created));
    assert.equal(ids.size, 1);
    assert.equal(created.size, 1);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const usage = chunks.at(-1);
    assert.deepEqual(usage.choices, []);
    assert.ok(usage.usage.completion_tokens >= 1);
    const last = chunks.at(-2);
    assert.deepEqual(last.choices[0].delta, {});
    assert.ok(['stop', 'length'].includes(last.choices[0].finish_reason));
    for (const c of chunks.slice(0, -2)) assert.equal(c.choices[0].finish_reason, null);
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null);
  });

  test('stream without include_usage has no usage chunk', async () => {
    const stream = await client.chat.completions.create(chat({ stream: true, max_tokens: 5 }));
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks.every((c) => c.choices.length === 1 && !('usage' in c)));
  });

  test('stop sequences cut the text (same greedy answer with and without)', async () => {
    const base = chat({ temperature: 0, seed: 7, max_tokens: 12 });
    const full = (await client.chat.completions.create(base)).choices[0].message.content;
    const chars = [...full];
    assert.ok(chars.length >= 6, `need some text to cut: ${JSON.stringify(full)}`);
    const stop = chars.slice(3, 5).join('');
    const expect = full.slice(0, full.indexOf(stop));
    const r = await client.chat.completions.create({ ...base, stop: [stop, 'never-appears-xyz'] });
    assert.equal(r.choices[0].message.content, expect);
    assert.equal(r.choices[0].finish_reason, 'stop');
    // and streaming, with a single string
    const s = await client.chat.completions.create({ ...base, stop, stream: true });
    let text = '', finish = null;
    for await (const c of s) { text += c.choices[0]?.delta?.content || ''; finish = c.choices[0]?.finish_reason || finish; }
    assert.equal(text, expect);
    assert.equal(finish, 'stop');
  });

  test('completions (non-stream and stream)', async () => {
    const r = await client.completions.create({ model: 'qwen', prompt: 'Once upon a time', max_tokens: 6 });
    assert.equal(r.object, 'text_completion');
    assert.equal(typeof r.choices[0].text, 'string');
    assert.ok(r.usage.prompt_tokens >= 3);
    const s = await client.completions.create({ model: 'qwen', prompt: 'Once upon a time', max_tokens: 6, stream: true });
    let n = 0;
    for await (const c of s) { n++; assert.equal(c.object, 'text_completion'); }
    assert.ok(n >= 2);
  });

  test('SDK raises on a bad request with the error body', async () => {
    await assert.rejects(client.chat.completions.create(chat({ temperature: 'hot' })), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.error?.type ?? e.type, 'invalid_request_error');
      assert.equal(e.error?.param ?? e.param, 'temperature');
      return true;
    });
  });
});

describe('wire format', () => {
  test('raw SSE framing, whole UTF-8 in every chunk, [DONE] last', async () => {
    const { status, headers, raw } = await rawSSE(srv.base, '/v1/chat/completions',
      chat({ stream: true, max_tokens: 16, stream_options: { include_usage: true } }));
    assert.equal(status, 200);
    assert.match(headers.get('content-type'), /^text\/event-stream/);
    const events = parseSSE(raw);
    assert.equal(events.at(-1), '[DONE]');
    for (const e of events.slice(0, -1)) {
      const j = JSON.parse(e);
      const piece = j.choices[0]?.delta?.content;
      if (piece === undefined) continue;
      // a chunk holding half a character would have been invalid UTF-8 on the wire (fatal decoder above)
      // or a lone surrogate after decoding
      assert.ok(!/[\uD800-\uDFFF]/.test(piece.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')));
    }
  });

  test('streamed text equals the non-streamed text (no chunk lost or split), greedy', async () => {
    const body = chat({ temperature: 0, seed: 3, max_tokens: 48, messages: [{ role: 'user', content: '写一首诗 🌸 and some code' }] });
    const whole = (await postJSON('/v1/chat/completions', body)).json.choices[0].message.content;
    const { raw } = await rawSSE(srv.base, '/v1/chat/completions', { ...body, stream: true });
    const pieces = parseSSE(raw).slice(0, -1).map((e) => JSON.parse(e).choices[0].delta.content).filter((p) => p !== undefined);
    assert.equal(pieces.join(''), whole);
    // the same through ollama's NDJSON
    const o = await fetch(`${srv.base}/api/chat`, { method: 'POST', body: JSON.stringify({ model: 'q', messages: body.messages, options: { temperature: 0, seed: 3, num_predict: 48 } }) });
    const text = (await o.text()).trim().split('\n').map((l) => JSON.parse(l).message.content).join('');
    assert.equal(text, whole);
  });

  test('ollama /api/chat streams NDJSON in ollama shapes', async () => {
    const r = await fetch(`${srv.base}/api/chat`, { method: 'POST', body: JSON.stringify({ model: 'qwen', messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 6, temperature: 0 } }) });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /ndjson/);
    const lines = (await r.text()).trim().split('\n').map((l) => JSON.parse(l));
    for (const l of lines.slice(0, -1)) {
      assert.equal(l.done, false);
      assert.equal(l.message.role, 'assistant');
      assert.equal(typeof l.message.content, 'string');
      assert.match(l.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/);
    }
    const last = lines.at(-1);
    assert.equal(last.done, true);
    assert.ok(['stop', 'length'].includes(last.done_reason));
    for (const k of ['total_duration', 'load_duration', 'prompt_eval_count', 'prompt_eval_duration', 'eval_count', 'eval_duration'])
      assert.equal(typeof last[k], 'number', k);
    assert.ok(last.eval_count >= 1 && last.eval_count <= 6);
  });

  test('ollama /api/chat and /api/generate without streaming', async () => {
    const c = await postJSON('/api/chat', { model: 'qwen', stream: false, messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 4 } });
    assert.equal(c.status, 200);
    assert.equal(c.json.done, true);
    assert.equal(c.json.message.role, 'assistant');
    const gen = { model: 'qwen', prompt: 'Why is the sky blue?', options: { num_predict: 4, seed: 3, temperature: 0 } };
    const g = await postJSON('/api/generate', { ...gen, stream: false });
    assert.equal(g.status, 200);
    assert.equal(typeof g.json.response, 'string');
    assert.ok(g.json.eval_count >= 1 && g.json.eval_count <= 4, g.text);
    assert.ok(Array.isArray(g.json.context) && g.json.context.length > g.json.prompt_eval_count - 1);
    // generate streams by default, the same answer in pieces
    const s = await fetch(`${srv.base}/api/generate`, { method: 'POST', body: JSON.stringify(gen) });
    const lines = (await s.text()).trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= 2);
    assert.equal(typeof lines[0].response, 'string');
    assert.equal(lines.at(-1).done, true);
    assert.equal(lines.map((l) => l.response).join(''), g.json.response);
    assert.equal(lines.at(-1).eval_count, g.json.eval_count);
  });

  test('ollama /api/generate continues from a returned context; empty prompt answers "load"', async () => {
    const a = await postJSON('/api/generate', { model: 'qwen', prompt: 'first', stream: false, options: { num_predict: 2 } });
    const b = await postJSON('/api/generate', { model: 'qwen', prompt: 'second', context: a.json.context, stream: false, options: { num_predict: 2 } });
    assert.equal(b.status, 200, b.text);
    assert.ok(b.json.prompt_eval_count > a.json.context.length, `${b.json.prompt_eval_count} > ${a.json.context.length}`);
    assert.deepEqual(b.json.context.slice(0, a.json.context.length), a.json.context);
    const bad = await postJSON('/api/generate', { model: 'qwen', prompt: 'x', context: ['nope'], stream: false });
    assert.equal(bad.status, 400);
    const load = await postJSON('/api/generate', { model: 'qwen' });
    assert.equal(load.status, 200);
    assert.equal(load.json.done, true);
    assert.equal(load.json.done_reason, 'load');
  });

  test('ollama options.stop and ignore_eos', async () => {
    const base = { model: 'q', prompt: 'Tell me a story', stream: false, raw: true, options: { temperature: 0, seed: 5, num_predict: 12 } };
    const full = (await postJSON('/api/generate', base)).json.response;
    const chars = [...full];
    assert.ok(chars.length >= 5, JSON.stringify(full));
    const stop = chars.slice(2, 4).join('');
    const cut = await postJSON('/api/generate', { ...base, options: { ...base.options, stop: [stop] } });
    assert.equal(cut.json.response, full.slice(0, full.indexOf(stop)));
    assert.equal(cut.json.done_reason, 'stop');
    const r = await postJSON('/v1/completions', { prompt: 'x', max_tokens: 7, ignore_eos: true });
    assert.equal(r.json.usage.completion_tokens, 7);
  });

  test('ollama /api/tags, /api/version, /api/show', async () => {
    const tags = await (await fetch(`${srv.base}/api/tags`)).json();
    assert.equal(tags.models.length, 1);
    const m = tags.models[0];
    for (const k of ['name', 'model', 'modified_at', 'size', 'digest', 'details']) assert.ok(k in m, k);
    assert.equal(m.details.format, 'gguf');
    assert.equal(m.details.family, 'qwen2');
    assert.match(m.digest, /^[0-9a-f]{64}$/);
    const v = await (await fetch(`${srv.base}/api/version`)).json();
    assert.match(v.version, /^\d+\.\d+\.\d+/);
    const show = await postJSON('/api/show', { model: m.name });
    assert.equal(show.status, 200);
    for (const k of ['modelfile', 'parameters', 'template', 'details', 'model_info', 'capabilities']) assert.ok(k in show.json, k);
    assert.equal(show.json.model_info['general.architecture'], 'qwen2');
  });

  test('ollama errors are {"error": "..."}', async () => {
    const r = await postJSON('/api/chat', '{"model":');
    assert.equal(r.status, 400);
    assert.equal(typeof r.json.error, 'string');
  });
});

describe('many users', () => {
  test('8 concurrent streaming clients all complete', async () => {
    const one = async (i) => {
      const s = await client.chat.completions.create(chat({ messages: [{ role: 'user', content: `client ${i}: count to ten` }], stream: true, max_tokens: 4, stream_options: { include_usage: true } }));
      let usage = null;
      for await (const c of s) if (c.usage) usage = c.usage;
      return usage;
    };
    const res = await Promise.all(Array.from({ length: 8 }, (_, i) => one(i)));
    for (const u of res) assert.ok(u && u.completion_tokens >= 1);
  });

  test('a client that disconnects mid-stream frees its slot', async () => {
    const controller = new AbortController();
    const r = await fetch(`${srv.base}/v1/chat/completions`, {
      method: 'POST', signal: controller.signal, headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(chat({ stream: true, max_tokens: 400, temperature: 1, min_p: 0, top_k: 0, top_p: 1 })),
    });
    const reader = r.body.getReader();
    await reader.read();
    await reader.read();
    let m = await metrics(srv.base);
    assert.ok(m.qwen_edge_slots_busy >= 1, 'the stream holds a slot');
    const canceledBefore = m.qwen_edge_canceled_total;
    controller.abort();
    const t0 = Date.now();
    do {
      await sleep(50);
      m = await metrics(srv.base);
    } while (m.qwen_edge_slots_busy > 0 && Date.now() - t0 < 5000);
    assert.equal(m.qwen_edge_slots_busy, 0, 'slot freed after the disconnect');
    assert.ok(m.qwen_edge_canceled_total > canceledBefore, 'counted as canceled');
    assert.ok(m['qwen_edge_http_requests_total{route="/v1/chat/completions",status="200"}'] >= 1);
  });
  test('a non-streaming client that gives up frees its slot too', async () => {
    const controller = new AbortController();
    const req = fetch(`${srv.base}/v1/chat/completions`, {
      method: 'POST', signal: controller.signal, headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(chat({ max_tokens: 400, temperature: 1, top_k: 0, top_p: 1 })),
    }).catch(() => null);
    let m;
    const t0 = Date.now();
    do { await sleep(50); m = await metrics(srv.base); } while (m.qwen_edge_slots_busy < 1 && Date.now() - t0 < 5000);
    assert.ok(m.qwen_edge_slots_busy >= 1, 'the request holds a slot');
    controller.abort();
    await req;
    const t1 = Date.now();
    do { await sleep(50); m = await metrics(srv.base); } while (m.qwen_edge_slots_busy > 0 && Date.now() - t1 < 5000);
    assert.equal(m.qwen_edge_slots_busy, 0);
  });
});

describe('bad input', () => {
  const cases = [
    ['malformed JSON', '{"messages": [', 400, null],
    ['not an object', '[1,2]', 400, null],
    ['messages missing', { model: 'x' }, 400, 'messages'],
    ['empty messages', { messages: [] }, 400, 'messages'],
    ['messages wrong type', { messages: 'hello' }, 400, 'messages'],
    ['bad role', { messages: [{ role: 'wizard', content: 'x' }] }, 400, 'messages'],
    ['content wrong type', { messages: [{ role: 'user', content: 42 }] }, 400, 'messages'],
    ['image part', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 400, 'messages'],
    ['temperature wrong type', { ...chat(), temperature: 'hot' }, 400, 'temperature'],
    ['temperature out of range', { ...chat(), temperature: 5 }, 400, 'temperature'],
    ['max_tokens negative', { ...chat(), max_tokens: -1 }, 400, 'max_tokens'],
    ['max_tokens over the context', { ...chat(), max_tokens: 100000 }, 400, 'max_tokens'],
    ['stop wrong type', { ...chat(), stop: 5 }, 400, 'stop'],
    ['n > 1', { ...chat(), n: 2 }, 400, 'n'],
  ];
  for (const [name, body, status, param] of cases) {
    test(name, async () => {
      const r = await postJSON('/v1/chat/completions', body);
      assert.equal(r.status, status, r.text);
      assert.equal(typeof r.json.error.message, 'string');
      assert.equal(r.json.error.type, 'invalid_request_error');
      assert.equal(r.json.error.param, param);
      assert.ok('code' in r.json.error);
    });
  }

  test('text parts are accepted', async () => {
    const r = await postJSON('/v1/chat/completions', { messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'text', text: ' there' }] }], max_tokens: 2 });
    assert.equal(r.status, 200, r.text);
  });

  test('bad UTF-8 in the body', async () => {
    const bytes = Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"a'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}]}')]);
    const r = await postJSON('/v1/chat/completions', new Uint8Array(bytes));
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /UTF-8/);
  });

  test('prompt longer than the context: 400 context_length_exceeded, not truncated', async () => {
    const r = await postJSON('/v1/chat/completions', { messages: [{ role: 'user', content: 'word '.repeat(2000) }], max_tokens: 4 });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'context_length_exceeded');
  });

  test('huge body: 413', async () => {
    const big = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(5 << 20) }] });
    const r = await postJSON('/v1/chat/completions', big);
    assert.equal(r.status, 413);
    assert.equal(r.json.error.code, 'request_too_large');
  });

  test('unknown route 404, wrong method 405', async () => {
    const a = await fetch(`${srv.base}/v1/nothing`);
    assert.equal(a.status, 404);
    assert.equal((await a.json()).error.type, 'not_found_error');
    const b = await fetch(`${srv.base}/v1/chat/completions`);
    assert.equal(b.status, 405);
    assert.equal(b.headers.get('allow'), 'POST');
    const c = await fetch(`${srv.base}/v1/models/not-this-one`);
    assert.equal(c.status, 404);
    assert.deepEqual((await c.json()).error, { message: "The model 'not-this-one' does not exist", type: 'invalid_request_error',
      param: 'model', code: 'model_not_found' });
  });

  test('no CORS headers unless --cors', async () => {
    const r = await fetch(`${srv.base}/v1/models`, { headers: { Origin: 'http://evil.example' } });
    assert.equal(r.headers.get('access-control-allow-origin'), null);
  });

  test('200 random mutated requests: every answer is 200 or a JSON 4xx, never a crash', async () => {
    let seed = 12345;
    const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
    const pick = (a) => a[Math.floor(rnd() * a.length)];
    const values = [null, true, false, 0, -1, 1e308, -1e308, 3.5, 2 ** 53, '', 'x', '🦙', '\u0000', [], [1], ['a', 'b'], {}, { type: 'text' },
      { type: 'text', text: 'hi' }, [{ type: 'text', text: 'hi' }], 'a'.repeat(3000), [[[[[]]]]]];
    const fields = ['messages', 'model', 'temperature', 'top_p', 'top_k', 'min_p', 'seed', 'stop', 'stream', 'stream_options',
      'presence_penalty', 'frequency_penalty', 'repetition_penalty', 'n', 'logprobs', 'memory_rounds', 'prompt', 'options', 'context'];
    const routes = ['/v1/chat/completions', '/v1/completions', '/api/chat', '/api/generate', '/api/show'];
    for (let i = 0; i < 200; i++) {
      const body = { messages: [{ role: 'user', content: 'hi' }], prompt: 'hi' };
      for (let k = 0, n = 1 + Math.floor(rnd() * 3); k < n; k++) {
        const f = pick(fields);
        if (rnd() < 0.3 && f === 'messages') body.messages = [{ role: pick(['user', 'system', 'assistant', 'tool', 7, null]), content: pick(values) }];
        else body[f] = pick(values);
      }
      body.max_tokens = 1;
      body.options = typeof body.options === 'object' && body.options && !Array.isArray(body.options) ? { ...body.options, num_predict: 1 } : { num_predict: 1 };
      let text = JSON.stringify(body);
      if (rnd() < 0.15) text = text.slice(0, Math.floor(rnd() * text.length)); // truncated JSON
      if (rnd() < 0.05) text = '['.repeat(5000) + ']'.repeat(5000); // deep nesting
      const route = pick(routes);
      const r = await fetch(srv.base + route, { method: 'POST', body: text });
      const out = await r.text();
      assert.ok(r.status === 200 || (r.status >= 400 && r.status < 500), `${route} ${text.slice(0, 200)} -> ${r.status}`);
      if (r.status !== 200) {
        const j = JSON.parse(out);
        assert.ok(j.error, out);
      }
    }
  });

  test('still serving after all that', async () => {
    const r = await client.chat.completions.create(chat({ max_tokens: 3 }));
    const { finish_reason: fr, message } = r.choices[0];
    assert.equal(typeof message.content, 'string');
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 3, JSON.stringify(r.usage));
    assert.ok(fr === 'stop' || (fr === 'length' && r.usage.completion_tokens === 3), `${fr} after ${r.usage.completion_tokens}`);
    if (fr === 'length') assert.ok(message.content.length > 0, 'three tokens of answer are some text');
    const h = await fetch(`${srv.base}/health`);
    assert.deepEqual(await h.json(), { status: 'ok' });
  });
});

describe('prefix cache', () => {
  test('turn 4 of a chat prefills only the new tokens', async () => {
    const messages = [{ role: 'system', content: 'You are a terse assistant.' }];
    let prev = null, last = null;
    for (let turn = 1; turn <= 4; turn++) {
      messages.push({ role: 'user', content: `Question ${turn}: and ${turn * 7}?` });
      const r = await client.chat.completions.create({ model: 'q', messages, max_tokens: 5, temperature: 0, seed: 1 });
      messages.push({ role: 'assistant', content: r.choices[0].message.content });
      prev = last;
      last = r.usage;
    }
    const newTokens = last.prompt_tokens - prev.prompt_tokens; // last answer + new question + template
    const uncached = last.prompt_tokens - last.prompt_tokens_details.cached_tokens;
    assert.ok(uncached <= newTokens, `turn 4 recomputed ${uncached} tokens, only ${newTokens} are new`);
    assert.ok(last.prompt_tokens_details.cached_tokens >= prev.prompt_tokens - 1);
    const m = await metrics(srv.base);
    assert.ok(m.qwen_edge_cached_tokens_total >= last.prompt_tokens_details.cached_tokens);
  });
});

describe('API key', () => {
  let keyed;
  before(async () => { keyed = await startServer({ env: { QWEN_EDGE_API_KEY: 'sekret-123' }, args: ['--cors', 'http://app.example'] }); });
  after(async () => { await keyed.stop(); });

  test('missing or wrong key: 401 authentication_error; page and /health need none', async () => {
    const body = JSON.stringify(chat({ max_tokens: 2 }));
    const a = await fetch(`${keyed.base}/v1/chat/completions`, { method: 'POST', body });
    assert.equal(a.status, 401);
    assert.equal((await a.json()).error.type, 'authentication_error');
    const b = await fetch(`${keyed.base}/v1/chat/completions`, { method: 'POST', body, headers: { Authorization: 'Bearer wrong' } });
    assert.equal(b.status, 401);
    const o = await fetch(`${keyed.base}/api/tags`);
    assert.equal(o.status, 401);
    assert.equal(typeof (await o.json()).error, 'string');
    assert.equal((await fetch(`${keyed.base}/health`)).status, 200);
    assert.equal((await fetch(`${keyed.base}/`)).status, 200);
    assert.equal((await fetch(`${keyed.base}/metrics`)).status, 401);
  });

  test('right key works (SDK), CORS header for the allowed origin', async () => {
    const c = new OpenAI({ baseURL: `${keyed.base}/v1`, apiKey: 'sekret-123', maxRetries: 0 });
    const r = await c.chat.completions.create(chat({ max_tokens: 2 }));
    assert.equal(r.object, 'chat.completion');
    const m = await fetch(`${keyed.base}/v1/models`, { headers: { Authorization: 'Bearer sekret-123' } });
    assert.equal(m.headers.get('access-control-allow-origin'), 'http://app.example');
    const pre = await fetch(`${keyed.base}/v1/chat/completions`, { method: 'OPTIONS' });
    assert.equal(pre.status, 204);
    assert.match(pre.headers.get('access-control-allow-headers'), /Authorization/);
  });
});

describe('page assets', () => {
  test('served with content types, ETag and caching; 304 on revalidation', async () => {
    const r = await fetch(`${srv.base}/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.headers.get('content-security-policy'), /default-src 'self'/);
    const etag = r.headers.get('etag');
    assert.ok(etag);
    const again = await fetch(`${srv.base}/`, { headers: { 'If-None-Match': etag } });
    assert.equal(again.status, 304);
    const js = await fetch(`${srv.base}/app.js`);
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
    const css = await fetch(`${srv.base}/style.css`);
    assert.match(css.headers.get('content-type'), /^text\/css/);
    for (const v of ['marked.js', 'purify.js', 'highlight.js', 'highlight.css']) {
      const x = await fetch(`${srv.base}/vendor/${v}`);
      assert.equal(x.status, 200, v);
      assert.match(x.headers.get('cache-control'), /max-age/);
      assert.ok((await x.text()).length > 1000, `${v} is the real library`);
    }
  });
});

describe('metrics', () => {
  test('Prometheus text: types, monotonic histogram buckets, counters moving', async () => {
    const r = await fetch(`${srv.base}/metrics`);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    for (const [name, type] of [['qwen_edge_http_requests_total', 'counter'], ['qwen_edge_time_to_first_token_seconds', 'histogram'],
      ['qwen_edge_time_per_token_seconds', 'histogram'], ['qwen_edge_slots_busy', 'gauge'], ['qwen_edge_queue_length', 'gauge'],
      ['qwen_edge_generated_tokens_total', 'counter'], ['qwen_edge_engine_cached_tokens_total', 'counter']])
      assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'));
    const m = await metrics(srv.base);
    const buckets = Object.entries(m).filter(([k]) => k.startsWith('qwen_edge_time_to_first_token_seconds_bucket'));
    assert.ok(buckets.length >= 5);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1]);
    assert.equal(buckets.at(-1)[1], m.qwen_edge_time_to_first_token_seconds_count);
    assert.ok(m.qwen_edge_time_to_first_token_seconds_count > 0);
    assert.ok(m.qwen_edge_generated_tokens_total > 0 && m.qwen_edge_engine_generated_tokens_total >= m.qwen_edge_generated_tokens_total);
    assert.ok(m['qwen_edge_http_requests_total{route="/v1/chat/completions",status="400"}'] >= 10);
    assert.equal(m.qwen_edge_up, 1);
  });
});

describe('memory window', () => {
  test('memory_rounds keeps the newest rounds; the default is --memory-rounds', async () => {
    const messages = [];
    for (let i = 1; i <= 5; i++) messages.push({ role: 'user', content: `round ${i} question` }, { role: 'assistant', content: `round ${i} answer` });
    messages.push({ role: 'user', content: 'the current question' });
    const tokens = async (extra) => (await postJSON('/v1/chat/completions', { messages, max_tokens: 1, ...extra })).json.usage.prompt_tokens;
    const all = await tokens({ memory_rounds: 0 });
    const one = await tokens({ memory_rounds: 1 });
    const three = await tokens({ memory_rounds: 3 });
    const dflt = await tokens({});
    assert.ok(one < three && three < all, `${one} < ${three} < ${all}`);
    assert.equal(dflt, three, 'server default is 3 rounds');
    const bad = await postJSON('/v1/chat/completions', { messages, memory_rounds: -1 });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, 'memory_rounds');
  });
});

describe('shutdown', () => {
  test('SIGTERM ends running streams cleanly and exits 0', async () => {
    const s = await startServer();
    const r = await fetch(`${s.base}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(chat({ stream: true, max_tokens: 300 })) });
    const reader = r.body.getReader();
    await reader.read();
    const t0 = Date.now();
    const exited = s.stop();
    let text = '';
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
    assert.ok(text.endsWith('data: [DONE]\n\n'), 'the stream was finished, not cut');
    assert.equal(await exited, 0);
    assert.ok(Date.now() - t0 < 15000);
    assert.match(s.log, /shutting down/);
  });
});

describe('limits and start-up', () => {
  test('more requests than slots + queue: 429 with a JSON error; the running ones are unaffected', async () => {
    const s = await startServer({ args: ['--parallel', '1', '--max-queue', '1'] });
    const controller = new AbortController();
    try {
      // one answering, one waiting for the slot: both in flight
      const open = async () => {
        const r = await fetch(`${s.base}/v1/chat/completions`, { method: 'POST', signal: controller.signal, body: JSON.stringify(chat({ stream: true, max_tokens: 400 })) });
        const reader = r.body.getReader();
        await reader.read(); // the role chunk is sent at once, even while waiting for the slot
        return reader;
      };
      const readers = [await open(), await open()];
      const r = await fetch(`${s.base}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(chat({ max_tokens: 2 })) });
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('retry-after'), '1');
      assert.equal((await r.json()).error.code, 'too_many_requests');
      const more = await readers[0].read();
      assert.equal(more.done, false, 'the first stream still runs');
      controller.abort();
      // once they are gone the server takes requests again
      let ok = false;
      for (let i = 0; i < 100 && !ok; i++) {
        await sleep(50);
        const again = await fetch(`${s.base}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(chat({ max_tokens: 2 })) });
        ok = again.status === 200;
        await again.arrayBuffer();
      }
      assert.ok(ok, 'serves again after the streams left');
    } finally {
      controller.abort();
      await s.stop();
    }
  });

  test('a missing or broken model file: clear message, exit 1; --help exits 0', async () => {
    const { spawnSync } = await import('node:child_process');
    const fs = await import('node:fs');
    const { BIN, TMP } = await import('./lib/server.mjs');
    const a = spawnSync(BIN, ['serve', '-m', '/nonexistent/model.gguf', '--port', '0'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(a.status, 1);
    assert.match(a.stderr, /cannot load the model/);
    const junk = `${TMP}/server-junk.gguf`;
    fs.writeFileSync(junk, 'this is not a GGUF file at all, just text');
    const b = spawnSync(BIN, ['serve', '-m', junk, '--port', '0'], { encoding: 'utf8', timeout: 20000 });
    assert.equal(b.status, 1);
    assert.match(b.stderr, /cannot load the model/);
    const h = spawnSync(BIN, ['serve', '--help'], { encoding: 'utf8' });
    assert.equal(h.status, 0);
    assert.match(h.stdout, /--memory-rounds/);
    const bad = spawnSync(BIN, ['serve', '-m', junk, '--port', 'eighty'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
  });
});
