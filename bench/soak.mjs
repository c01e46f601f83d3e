#!/usr/bin/env node
// bench/soak.mjs — many users against one `qwen-edge serve` for a bounded time, then checks that the server
// is back where it started (issue 19 §2). Loopback only; every loop is bounded by --duration and --clients.
//
// Each simulated client loops until the deadline, one request at a time, choosing per request:
//   - a turn of its own multi-turn chat (OpenAI /v1/chat/completions or ollama /api/chat, streaming or not;
//     the conversation carries over between routes, so later turns can reuse the prefix cache),
//   - a one-shot prompt (/v1/completions or /api/generate),
//   - a long prompt that fills the context up to the answer's room (--long, default 3 %),
//   - an invalid request (--invalid, default 5 %: bad JSON, a field out of range, an unknown URL, a wrong
//     method) that must get its documented 400/404/405,
//   - a streaming request it abandons after a few tokens (--disconnect, default 10 %).
// Only the documented 429 (queue full) and 503 (busy, loading) may fail a request; each is counted and the
// client waits for its Retry-After (capped at 2 s). Anything else — another status, a reset connection, a
// stream that ends without [DONE] / done:true or with an error event, a request that takes longer than
// --request-timeout — is an error.
//
// Printed at the end: requests by outcome, errors by kind, p50/p99 time to first token (streams),
// aggregate tok/s, per-stream decode tok/s, the server's RSS at start / middle / end (the last second of
// load) / after, and its open descriptors. Goals (exit status 1 when one fails): no error other than
// 429/503; RSS at the end within 5 % of the middle; once the clients stop, /metrics shows no request in flight, no busy slot and an empty
// queue, and the server holds no more descriptors than before the first client.
//
// The server allows at most 64 connections per client address (docs/SERVER.md "Who may use it"); the
// clients are therefore spread over --addresses loopback source addresses (127.0.0.2, 127.0.0.3, …), as
// users on different machines would be, and /metrics is read from 127.0.0.1.
//
// usage: node bench/soak.mjs [-m MODEL.gguf | --shape 0.5b --type q4_0 | --url http://127.0.0.1:PORT --pid PID]
//          [--clients 64] [--duration 600] [--ctx 4096] [--parallel 8] [--threads N] [--max-queue 32]
//          [--max-tokens 48] [--disconnect 0.10] [--invalid 0.05] [--long 0.03] [--stream 0.5]
//          [--addresses 4] [--request-timeout 300] [--seed 1] [--no-warm] [--chat-only] [--json FILE] [--quiet]
// --chat-only: streaming multi-turn chats on /v1/chat/completions only (the capacity runs of docs/SCALING.md).
// Without -m/--url it makes a random-weight model with `qwen-edge mkmodel` (--shape, default 0.5b;
// --type, default q4_0): the numbers are the real model's cost, the text is noise.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { startServer } from '../tests/js/lib/server.mjs';
import { makeModel } from '../tests/js/lib/models.mjs';

const MAX_CLIENTS = 256, MAX_DURATION_S = 3600;

export function parseArgs(argv) {
  const opt = (name, def) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : def; };
  const num = (name, def) => Number(opt(name, def));
  return {
    model: opt('-m', null), shape: opt('--shape', '0.5b'), type: opt('--type', 'q4_0'),
    url: opt('--url', null), pid: opt('--pid', null),
    clients: num('--clients', 64), duration: num('--duration', 600), ctx: num('--ctx', 4096),
    parallel: num('--parallel', 8), threads: opt('--threads', null), maxQueue: num('--max-queue', 32),
    maxTokens: num('--max-tokens', 48), disconnect: num('--disconnect', 0.10), invalid: num('--invalid', 0.05),
    long: num('--long', 0.03), stream: num('--stream', 0.5), addresses: num('--addresses', 4),
    requestTimeout: num('--request-timeout', 300), seed: num('--seed', 1),
    json: opt('--json', null), warm: !argv.includes('--no-warm'), quiet: argv.includes('--quiet'), chatOnly: argv.includes('--chat-only'),
  };
}

// mulberry32: a seeded generator so a run's mix of requests can be repeated
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const quantile = (xs, q) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function procStat(pid) {
  if (!pid) return { rss_kb: null, fds: null };
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rss_kb: Number(/VmRSS:\s+(\d+)/.exec(st)?.[1]), fds: fs.readdirSync(`/proc/${pid}/fd`).length };
  } catch { return { rss_kb: null, fds: null }; }
}

// One HTTP exchange. onData(buf) may return true to abandon the response (the socket is destroyed, as a
// browser tab closing would). Resolves { status, headers, body, aborted, netError, timedOut, ms }.
function call(conn, method, pathname, body, { onData = null, timeoutMs }) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const headers = { ...conn.headers };
    if (body != null) { headers['Content-Type'] = 'application/json'; headers['Content-Length'] = Buffer.byteLength(body); }
    const req = http.request({ host: conn.host, port: conn.port, localAddress: conn.localAddress, agent: conn.agent,
                               method, path: pathname, headers });
    let settled = false, res = null;
    const chunks = [];
    const finish = (r) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status: res?.statusCode ?? null, headers: res?.headers ?? {}, body: Buffer.concat(chunks).toString(), ms: performance.now() - t0, ...r });
    };
    const timer = setTimeout(() => { req.destroy(); finish({ timedOut: true }); }, timeoutMs);
    req.on('error', (e) => finish({ netError: e.code || e.message }));
    req.on('response', (r) => {
      res = r;
      r.on('data', (d) => {
        if (settled) return;
        chunks.push(d);
        if (onData && onData(d, performance.now() - t0)) { req.destroy(); finish({ aborted: true }); }
      });
      r.on('end', () => finish({}));
      r.on('error', (e) => finish({ netError: e.code || e.message }));
      r.on('aborted', () => finish({ netError: 'response aborted' }));
    });
    req.end(body ?? undefined);
  });
}

const TOPICS = ['the moon', 'rivers', 'bread', 'bicycles', 'tea', 'libraries', 'trains', 'volcanoes', 'chess', 'rain',
                '长城', 'owls', 'glass', 'maps', 'honey', 'clocks'];
const ASKS = ['Tell me about %.', 'Why do people like %?', 'Give three facts about %.', 'Write a haiku on %.',
              'Explain % to a child.', '用一句话介绍%。', 'What is the history of %?', 'Compare % and music.'];

// Parses what a request returned against its route's contract. Returns { ok, kind, tokens, cached, ttft, text }.
function judge(route, stream, r, firstMs) {
  if (r.timedOut) return { ok: false, kind: 'timeout' };
  if (r.netError) return { ok: false, kind: `net:${r.netError}` };
  if (r.status === 429 || r.status === 503) {
    let code = '';
    try {
      const j = JSON.parse(r.body);
      // ollama's errors are plain messages: name them as the OpenAI routes do
      code = j.error?.code || (typeof j.error === 'string' ? (/busy/.test(j.error) ? 'server_busy' : /too many/.test(j.error) ? 'too_many_requests'
                                                                : /loading/.test(j.error) ? 'model_loading' : j.error.slice(0, 40)) : '');
    } catch { /* */ }
    return { ok: false, allowed: true, kind: `${r.status}${code ? ':' + code : ''}`, retryAfter: Number(r.headers['retry-after']) || 1 };
  }
  if (r.status !== 200) return { ok: false, kind: `http:${r.status}:${r.body.slice(0, 80)}` };
  const ollama = route.startsWith('/api/');
  let text = '', tokens = 0, cached = 0, promptTokens = 0;
  try {
    if (!stream) {
      const j = JSON.parse(r.body);
      if (ollama) { text = j.message?.content ?? j.response ?? ''; tokens = j.eval_count || 0; promptTokens = j.prompt_eval_count || 0; }
      else {
        text = j.choices[0].message?.content ?? j.choices[0].text ?? '';
        tokens = j.usage.completion_tokens; cached = j.usage.prompt_tokens_details?.cached_tokens || 0; promptTokens = j.usage.prompt_tokens;
      }
      return { ok: true, text, tokens, cached, promptTokens, kind: 'ok' };
    }
    if (!ollama) {
      const events = r.body.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
      if (events[events.length - 1] !== '[DONE]') {
        const err = events.map((e) => { try { return JSON.parse(e).error; } catch { return null; } }).find(Boolean);
        return { ok: false, kind: err ? `stream_error:${err.code || err.type}` : 'stream_without_DONE' };
      }
      for (const e of events.slice(0, -1)) {
        const j = JSON.parse(e);
        if (j.error) return { ok: false, kind: `stream_error:${j.error.code || j.error.type}` };
        if (j.usage) { tokens = j.usage.completion_tokens; cached = j.usage.prompt_tokens_details?.cached_tokens || 0; promptTokens = j.usage.prompt_tokens; }
        const c = j.choices?.[0];
        if (c) text += c.delta?.content ?? c.text ?? '';
      }
    } else {
      const lines = r.body.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      const last = lines[lines.length - 1];
      if (lines.some((l) => l.error)) return { ok: false, kind: `stream_error:${String(lines.find((l) => l.error).error).slice(0, 40)}` };
      if (!last?.done) return { ok: false, kind: 'stream_without_done' };
      for (const l of lines) text += l.message?.content ?? l.response ?? '';
      tokens = last.eval_count || 0; promptTokens = last.prompt_eval_count || 0;
    }
  } catch (e) {
    return { ok: false, kind: `bad_body:${e.message.slice(0, 60)}` };
  }
  return { ok: true, text, tokens, cached, promptTokens, ttft: firstMs, kind: 'ok' };
}

// Does this chunk of a stream hold generated text? (the first one marks the time to first token)
function hasContent(s, ollama) {
  if (ollama) return /"(content|response)":"[^"]/.test(s);
  return /"(content|text)":"[^"]/.test(s);
}

export async function runSoak(o, log = console.log) {
  if (o.clients < 1 || o.clients > MAX_CLIENTS) throw new Error(`--clients must be 1..${MAX_CLIENTS}`);
  if (!(o.duration > 0 && o.duration <= MAX_DURATION_S)) throw new Error(`--duration must be 1..${MAX_DURATION_S} s`);
  let srv = null, base = o.url, pid = o.pid ? Number(o.pid) : null;
  if (base) {
    const h = new URL(base).hostname;
    if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(h)) throw new Error('--url must be a loopback address');
  } else {
    const model = o.model || makeModel({ shape: o.shape, type: o.type });
    srv = await startServer({
      model, args: ['--ctx', String(o.ctx), '--parallel', String(o.parallel), '--max-queue', String(o.maxQueue),
                    ...(o.threads ? ['-t', String(o.threads)] : ['-t', '2']), '--quiet'],
    });
    base = srv.base;
    pid = srv.child.pid;
  }
  const u = new URL(base);
  const key = process.env.QWEN_EDGE_API_KEY;
  const mkConn = (localAddress) => ({
    host: u.hostname, port: Number(u.port), localAddress,
    agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
    headers: key ? { Authorization: `Bearer ${key}` } : {},
  });
  const admin = mkConn('127.0.0.1');
  const readMetrics = async () => {
    const r = await call(admin, 'GET', '/metrics', null, { timeoutMs: 30000 });
    const out = {};
    for (const line of (r.body || '').split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const i = line.lastIndexOf(' ');
      out[line.slice(0, i)] = Number(line.slice(i + 1));
    }
    return out;
  };

  // The context each long prompt fills: measure the chat template's overhead and the tokens per word once.
  const word = ' hello';
  const probe = async (n) => {
    const r = await call(admin, 'POST', '/v1/chat/completions', JSON.stringify({
      model: 'm', messages: [{ role: 'user', content: word.repeat(n).trim() }], max_tokens: 1 }), { timeoutMs: 600000 });
    if (r.status !== 200) throw new Error(`probe: HTTP ${r.status} ${r.body}`);
    return JSON.parse(r.body).usage.prompt_tokens;
  };
  const p1 = await probe(20), p2 = await probe(60);
  const perWord = (p2 - p1) / 40, overhead = p1 - 20 * perWord;
  const ctx = srv ? o.ctx : (await (await fetch(`${base}/v1/models`, { headers: admin.headers })).json()).data[0].max_model_len;
  const longWords = Math.max(1, Math.floor((ctx - o.maxTokens - overhead - 8) / perWord));

  // Warm-up: the KV cache is mapped once and its pages become resident as positions are first written, so
  // RSS grows until every slot has held a full context once. Fill every slot now, so that RSS growth
  // during the run means memory that was not given back, not KV pages touched for the first time.
  const nSlots = (await readMetrics()).qwen_edge_slots || 1;
  if (o.warm) {
    const tw = performance.now();
    const conns = Array.from({ length: nSlots }, () => mkConn('127.0.0.1'));
    await Promise.all(conns.map((c, i) => call(c, 'POST', '/v1/chat/completions', JSON.stringify({
      model: 'm', messages: [{ role: 'user', content: `${i}${word.repeat(longWords)}` }], max_tokens: o.maxTokens, ignore_eos: true }),
      { timeoutMs: 3600000 })));
    for (const c of conns) c.agent.destroy();
    await sleep(1000); // the server closes its ends of those connections
    log(`warm-up: ${nSlots} slots filled with ${longWords}-word prompts in ${((performance.now() - tw) / 1000).toFixed(1)} s`);
  }
  const st0 = procStat(pid);
  const m0 = await readMetrics();
  log(`soak: ${o.clients} clients for ${o.duration} s against ${base} (pid ${pid ?? '?'}), ctx ${ctx}, ` +
      `long prompts ${longWords} words ≈ ${Math.round(overhead + longWords * perWord)} tokens; ` +
      `RSS ${(st0.rss_kb / 1024).toFixed(1)} MiB, ${st0.fds} fds`);

  const t0 = performance.now(), tEnd = t0 + o.duration * 1000;
  const counts = {}, errors = {}, allowed = {};
  const bump = (m, k) => { m[k] = (m[k] || 0) + 1; };
  const ttfts = [], decodeRates = [];
  let completed = 0, genTokens = 0, cachedTokens = 0, promptTokens = 0, stMid = null, stEnd = null;
  // RSS is compared under the same load (the middle and the last second of the run): connection threads'
  // stacks and buffers come and go with the clients, a leak stays
  const midTimer = setTimeout(() => { stMid = procStat(pid); }, o.duration * 500);
  const endTimer = setTimeout(() => { stEnd = procStat(pid); }, Math.max(o.duration * 500 + 1, o.duration * 1000 - 1000));
  const progress = setInterval(() => {
    if (!o.quiet) log(`  ${((performance.now() - t0) / 1000).toFixed(0)} s: ${completed} completed, ${genTokens} tokens, ` +
                      `${Object.values(errors).reduce((a, b) => a + b, 0)} errors ${JSON.stringify(errors)}, ` +
                      `${Object.values(allowed).reduce((a, b) => a + b, 0)} 429/503`);
  }, Math.max(5000, Math.min(60000, o.duration * 100)));

  async function client(idx) {
    const rand = rng(o.seed * 1000 + idx);
    const pick = (xs) => xs[Math.floor(rand() * xs.length)];
    const conn = mkConn(`127.0.0.${2 + (idx % Math.max(1, o.addresses))}`);
    let messages = [], turns = 0;
    while (performance.now() < tEnd) {
      const x = rand();
      let kind, route, stream, body, method = 'POST', expect = 200;
      const maxTokens = 8 + Math.floor(rand() * (o.maxTokens - 7));
      if (!o.chatOnly && x < o.invalid) {
        kind = 'invalid';
        const v = pick([
          ['/v1/chat/completions', '{"messages": [', 400],
          ['/v1/chat/completions', JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], temperature: 7 }), 400],
          ['/api/chat', JSON.stringify({ messages: 'not a list' }), 400],
          ['/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 1e300 }), 400],
          ['/v1/nowhere', '{}', 404],
          ['/api/generate', null, 405],
        ]);
        [route, body, expect] = v;
        if (body === null) method = 'GET';
      } else if (!o.chatOnly && x < o.invalid + o.disconnect) {
        // a stream abandoned after 1–4 pieces of text, as a closed tab or a Stop button would
        kind = 'disconnect';
        route = pick(['/v1/chat/completions', '/api/chat', '/v1/completions', '/api/generate']);
        stream = true;
        const q = pick(ASKS).replace('%', pick(TOPICS));
        body = route === '/api/chat' ? { messages: [{ role: 'user', content: q }], options: { num_predict: maxTokens } }
          : route === '/api/generate' ? { prompt: q, options: { num_predict: maxTokens } }
          : route === '/v1/completions' ? { prompt: q, stream, max_tokens: maxTokens }
          : { messages: [{ role: 'user', content: q }], stream, max_tokens: maxTokens };
      } else if (!o.chatOnly && x < o.invalid + o.disconnect + o.long) {
        kind = 'long';
        route = pick(['/v1/chat/completions', '/api/chat']);
        stream = rand() < o.stream;
        const m = [{ role: 'user', content: word.repeat(longWords).trim() }];
        body = route === '/api/chat'
          ? { messages: m, stream, options: { num_predict: maxTokens } }
          : { messages: m, stream, max_tokens: maxTokens };
      } else if (!o.chatOnly && x < o.invalid + o.disconnect + o.long + 0.15) {
        kind = 'oneshot';
        route = pick(['/v1/completions', '/api/generate']);
        stream = rand() < o.stream;
        const prompt = `${pick(ASKS).replace('%', pick(TOPICS))} Answer:`;
        body = route === '/api/generate'
          ? { prompt, stream, options: { num_predict: maxTokens } }
          : { prompt, stream, max_tokens: maxTokens };
      } else {
        kind = 'chat';
        route = o.chatOnly ? '/v1/chat/completions' : pick(['/v1/chat/completions', '/api/chat']);
        stream = o.chatOnly || rand() < o.stream;
        if (turns >= 3 + Math.floor(rand() * 6)) { messages = []; turns = 0; }
        messages.push({ role: 'user', content: pick(ASKS).replace('%', pick(TOPICS)) });
        body = route === '/api/chat'
          ? { messages, stream, options: { num_predict: maxTokens } }
          : { messages, stream, max_tokens: maxTokens, ...(stream ? { stream_options: { include_usage: true } } : {}) };
      }
      const ollama = route.startsWith('/api/');
      const abandon = kind === 'disconnect' ? 1 + Math.floor(rand() * 4) : 0;
      let firstMs = null, firstAt = null, pieces = 0;
      const onData = stream ? (d, ms) => {
        if (hasContent(d.toString(), ollama)) {
          if (firstMs === null) { firstMs = ms; firstAt = performance.now(); }
          pieces++;
          if (abandon && pieces >= abandon) return true;
        }
        return false;
      } : null;
      const payload = typeof body === 'string' || body === null ? body : JSON.stringify({ model: 'qwen-edge', ...body });
      const r = await call(conn, method, route, payload, { onData, timeoutMs: o.requestTimeout * 1000 });
      if (kind === 'invalid') {
        if (r.status === expect) bump(counts, 'invalid_refused');
        else if (r.status === 429 || r.status === 503) bump(allowed, `${r.status}`);
        else bump(errors, `invalid_got:${r.status ?? r.netError ?? 'timeout'}`);
        continue;
      }
      if (abandon && r.aborted) {
        bump(counts, 'disconnected');
        if (firstMs !== null) ttfts.push(firstMs);
        continue;
      }
      const j = judge(route, stream, r, firstMs);
      if (j.allowed) {
        bump(allowed, j.kind);
        if (kind === 'chat') messages.pop();
        await sleep(Math.min(2, j.retryAfter) * 1000 * (0.5 + rand()));
        continue;
      }
      if (!j.ok) {
        bump(errors, `${j.kind} ${route}${stream ? ' stream' : ''} ${Math.round(r.ms / 1000)}s`.replace(/ \d+s$/, (t) => (r.ms > 60000 ? ` >${Math.floor(r.ms / 60000)}min` : '')));
        if (kind === 'chat') { messages = []; turns = 0; }
        continue;
      }
      completed++;
      bump(counts, `${kind}:${route}${stream ? ':stream' : ''}`);
      genTokens += j.tokens; cachedTokens += j.cached; promptTokens += j.promptTokens;
      if (stream && firstMs !== null) {
        ttfts.push(firstMs);
        const dt = (performance.now() - firstAt) / 1000;
        if (j.tokens > 4 && dt > 0) decodeRates.push((j.tokens - 1) / dt);
      }
      if (kind === 'chat') { messages.push({ role: 'assistant', content: j.text }); turns++; }
    }
    conn.agent.destroy();
  }

  await Promise.all(Array.from({ length: o.clients }, (_, i) => client(i)));
  const wall = (performance.now() - t0) / 1000;
  clearTimeout(midTimer);
  clearTimeout(endTimer);
  clearInterval(progress);
  if (!stMid) stMid = procStat(pid);
  if (!stEnd) stEnd = procStat(pid);

  // After the clients stop: every slot free, nothing in flight, the descriptors back to where they were.
  let m1 = null, st1 = null;
  const settleEnd = performance.now() + 30000;
  for (;;) {
    m1 = await readMetrics();
    st1 = procStat(pid);
    const idle = m1.qwen_edge_requests_inflight === 0 && m1.qwen_edge_slots_busy === 0 && m1.qwen_edge_queue_length === 0;
    if ((idle && (st1.fds === null || st1.fds <= st0.fds)) || performance.now() > settleEnd) break;
    await sleep(500);
  }
  admin.agent.destroy();
  const serverTokens = m1.qwen_edge_engine_generated_tokens_total - m0.qwen_edge_engine_generated_tokens_total;
  const result = {
    base, clients: o.clients, duration_s: o.duration, wall_s: wall, ctx,
    requests_completed: completed, outcomes: counts, errors, allowed_429_503: allowed,
    ttft_ms: { n: ttfts.length, p50: quantile(ttfts, 0.5), p99: quantile(ttfts, 0.99) },
    decode_tok_s_per_stream: { n: decodeRates.length, p50: quantile(decodeRates, 0.5), p10: quantile(decodeRates, 0.1) },
    tokens_generated_completed: genTokens, tokens_generated_server: serverTokens,
    agg_tok_s: serverTokens / wall, prompt_tokens: promptTokens, cached_tokens: cachedTokens,
    rss_mib: { start: st0.rss_kb / 1024, middle: stMid.rss_kb / 1024, end: stEnd.rss_kb / 1024, idle_after: st1.rss_kb / 1024 },
    fds: { start: st0.fds, end: st1.fds },
    end_gauges: { inflight: m1.qwen_edge_requests_inflight, slots_busy: m1.qwen_edge_slots_busy, queue: m1.qwen_edge_queue_length, slots: m1.qwen_edge_slots },
    canceled_total: m1.qwen_edge_canceled_total - (m0.qwen_edge_canceled_total || 0),
  };
  const goals = {
    only_429_503: Object.keys(errors).length === 0,
    rss_end_within_5pct_of_middle: stEnd.rss_kb ? Math.abs(stEnd.rss_kb - stMid.rss_kb) <= 0.05 * stMid.rss_kb : null,
    slots_free: result.end_gauges.inflight === 0 && result.end_gauges.slots_busy === 0 && result.end_gauges.queue === 0,
    fds_closed: st1.fds !== null ? st1.fds <= st0.fds : null,
  };
  result.goals = goals;
  result.ok = Object.values(goals).every((g) => g !== false);
  const f = (x, d = 0) => (x === null || x === undefined ? '-' : x.toFixed(d));
  log(`\nrequests completed  ${completed} in ${wall.toFixed(1)} s  (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  log(`errors              ${Object.keys(errors).length ? Object.entries(errors).map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
  log(`429/503 (allowed)   ${Object.keys(allowed).length ? Object.entries(allowed).map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
  log(`TTFT                p50 ${f(result.ttft_ms.p50)} ms, p99 ${f(result.ttft_ms.p99)} ms (${ttfts.length} streams)`);
  log(`throughput          ${f(result.agg_tok_s, 1)} tok/s aggregate (${serverTokens} tokens generated by the server, ` +
      `${genTokens} in completed answers); per stream p50 ${f(result.decode_tok_s_per_stream.p50, 1)}, p10 ${f(result.decode_tok_s_per_stream.p10, 1)} tok/s`);
  log(`prompt cache        ${cachedTokens} of ${promptTokens} prompt tokens of completed OpenAI answers cached`);
  log(`RSS                 start ${f(result.rss_mib.start, 1)} MiB, middle ${f(result.rss_mib.middle, 1)} MiB, end ${f(result.rss_mib.end, 1)} MiB ` +
      `(under load); ${f(result.rss_mib.idle_after, 1)} MiB after the clients stopped`);
  log(`descriptors         start ${st0.fds}, end ${st1.fds}; end gauges: inflight ${result.end_gauges.inflight}, ` +
      `slots busy ${result.end_gauges.slots_busy}/${result.end_gauges.slots}, queue ${result.end_gauges.queue}`);
  log(`goals               ${Object.entries(goals).map(([k, v]) => `${k} ${v === null ? 'n/a' : v ? 'yes' : 'NO'}`).join(', ')}`);
  if (o.json) { fs.mkdirSync(path.dirname(o.json), { recursive: true }); fs.writeFileSync(o.json, JSON.stringify(result, null, 2)); }
  if (srv) await srv.stop();
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await runSoak(parseArgs(process.argv.slice(2)));
  process.exit(r.ok ? 0 : 1);
}
