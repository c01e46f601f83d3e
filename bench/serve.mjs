#!/usr/bin/env node
// bench/serve.mjs — `qwen-edge serve` over HTTP, the way users meet it (not part of `make test`):
//   1. time to first token for turns 1..10 of one chat with a 3-round memory window (the prefix cache
//      should keep later turns cheap even after the window starts dropping old rounds);
//   2. aggregate decode throughput with 1, 4 and 8 concurrent streams.
// usage: node bench/serve.mjs [-m MODEL.gguf | --url http://127.0.0.1:8080] [--tokens 128] [--parallel 8]
//        [--threads N] [--json bench/out/serve.json]
// Without -m/--url it uses a tiny random model (shape only; numbers then mean little).
import fs from 'node:fs';
import path from 'node:path';
import { startServer, tinyModel } from '../tests/js/lib/server.mjs';

const argv = process.argv.slice(2);
const opt = (name, def) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : def; };
const nTok = Number(opt('--tokens', 128));
const parallel = Number(opt('--parallel', 8));
const jsonOut = opt('--json', 'bench/out/serve.json');

let srv = null, base = opt('--url', null);
if (!base) {
  const model = opt('-m', process.env.QE_BENCH_MODEL || tinyModel());
  const threads = opt('--threads', null);
  srv = await startServer({ model, args: ['--parallel', String(parallel), '--ctx', '4096', ...(threads ? ['-t', threads] : []), '--quiet'] });
  base = srv.base;
}
const key = process.env.QWEN_EDGE_API_KEY;
const headers = { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) };

// One streaming request; returns ttft (ms from send to first content), decode time, usage.
async function stream(body) {
  const t0 = performance.now();
  const r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }) });
  if (!r.ok) throw new Error(`HTTP ${r.status}: ${await r.text()}`);
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '', text = '', tFirst = null, usage = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i); buf = buf.slice(i + 2);
      if (!ev.startsWith('data: ') || ev === 'data: [DONE]') continue;
      const j = JSON.parse(ev.slice(6));
      if (j.usage) usage = j.usage;
      const piece = j.choices?.[0]?.delta?.content;
      if (piece) { if (tFirst === null) tFirst = performance.now(); text += piece; }
    }
  }
  const tEnd = performance.now();
  return { ttft: tFirst === null ? null : tFirst - t0, decodeMs: tFirst === null ? 0 : tEnd - tFirst, total: tEnd - t0, usage, text };
}

const topics = ['the moon', 'rivers', 'bread', 'bicycles', 'tea', 'libraries', 'trains', 'volcanoes', 'chess', 'rain'];
console.log(`server ${base}\n\n1) TTFT per turn, memory window 3 rounds, answers up to 64 tokens`);
console.log('turn  prompt  cached  new   ttft_ms');
const turns = [];
const messages = [{ role: 'system', content: 'You are a helpful assistant. Answer in two or three sentences.' }];
for (let turn = 1; turn <= 10; turn++) {
  messages.push({ role: 'user', content: `Tell me one interesting fact about ${topics[turn - 1]}.` });
  const r = await stream({ model: 'qwen', messages, max_tokens: 64, temperature: 0.7, seed: turn, memory_rounds: 3 });
  messages.push({ role: 'assistant', content: r.text });
  const u = r.usage, cached = u.prompt_tokens_details.cached_tokens;
  turns.push({ turn, prompt_tokens: u.prompt_tokens, cached_tokens: cached, ttft_ms: r.ttft });
  console.log(`${String(turn).padStart(4)}  ${String(u.prompt_tokens).padStart(6)}  ${String(cached).padStart(6)}  ${String(u.prompt_tokens - cached).padStart(4)}  ${r.ttft?.toFixed(1)}`);
}

console.log(`\n2) aggregate decode throughput, ${nTok} tokens per stream (ignore_eos)`);
console.log('streams  wall_s  tokens  agg_tok/s  per_stream_tok/s  mean_ttft_ms');
const conc = [];
for (const n of [1, 4, 8].filter((x) => x <= Math.max(parallel, 1))) {
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: n }, (_, i) => stream({
    model: 'qwen', messages: [{ role: 'user', content: `Write a long story about ${topics[i % 10]}, at least 500 words.` }],
    max_tokens: nTok, temperature: 0.8, seed: 100 + i, ignore_eos: true,
  })));
  const wall = (performance.now() - t0) / 1000;
  const tokens = rs.reduce((a, r) => a + (r.usage?.completion_tokens || 0), 0);
  const perStream = rs.reduce((a, r) => a + (r.usage.completion_tokens > 1 ? (r.usage.completion_tokens - 1) / (r.decodeMs / 1000) : 0), 0) / n;
  const ttft = rs.reduce((a, r) => a + (r.ttft || 0), 0) / n;
  conc.push({ streams: n, wall_s: wall, tokens, agg_tok_s: tokens / wall, per_stream_tok_s: perStream, mean_ttft_ms: ttft });
  console.log(`${String(n).padStart(7)}  ${wall.toFixed(2).padStart(6)}  ${String(tokens).padStart(6)}  ${(tokens / wall).toFixed(1).padStart(9)}  ${perStream.toFixed(1).padStart(16)}  ${ttft.toFixed(0).padStart(12)}`);
}

fs.mkdirSync(path.dirname(jsonOut), { recursive: true });
fs.writeFileSync(jsonOut, JSON.stringify({ base, tokens_per_stream: nTok, turns, concurrency: conc }, null, 2));
console.log(`\nwrote ${jsonOut}`);
if (srv) await srv.stop();
