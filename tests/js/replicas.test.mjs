// replicas.test.mjs — two `qwen-edge serve` replicas behind Debian's nginx with deploy/nginx.conf (issue 19 §3),
// all on 127.0.0.1: nginx runs as a non-daemon child with its own prefix and temp dirs, the config is the
// deployed file with only the replica addresses and the listen line replaced.
//   - affinity: each turn 2 lands on the replica of its turn 1 (cached_tokens > 0 through nginx), and 16
//     conversations spread over both replicas;
//   - streams pass through (SSE ends with [DONE]), the replica's own checks still apply (foreign Origin 403,
//     --cors origin served, 413 from the replica for a body over its --max-body);
//   - one replica killed mid-stream: the client sees an error (not a hang) within a bound, and then every
//     request succeeds on the other replica, conversations of the dead one included.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startServer, metrics, TMP, sleep } from './lib/server.mjs';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));
const skip = NGINX ? false : 'nginx is not installed (scripts/deps.sh test installs it)';

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.on('error', reject);
  s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});

let replicas = [], nginx = null, nginxLog = '', base = '', origin = '';

// deploy/nginx.conf with the replicas and the listen address replaced, temp dirs in the prefix
function testConfig(text, { listen, servers, prefix }) {
  const block = /# replicas begin\n[\s\S]*?# replicas end\n/;
  assert.match(text, block);
  assert.match(text, /listen 8080;/);
  const serverLine = /server qe1:8080 (.*);/.exec(text)[1];
  // As root, nginx's workers would switch to an unprivileged user, who cannot write the temp dirs when the checkout
  // lives under a 0700 home (Debian 12's default, e.g. /root): a large body then fails with 500. Keep them root.
  const user = process.getuid && process.getuid() === 0 ? 'user root;\n' : '';
  return user + text
    .replace(block, `# replicas begin\n${servers.map((s) => `        server ${s} ${serverLine};\n`).join('')}        # replicas end\n`)
    .replace('listen 8080;', `listen ${listen};`)
    .replace("access_log /dev/stdout;", `access_log ${prefix}/access.log;`)
    .replace(/http \{\n/, `http {\n    client_body_temp_path ${prefix}/body; proxy_temp_path ${prefix}/proxy; fastcgi_temp_path ${prefix}/fcgi;\n` +
             `    uwsgi_temp_path ${prefix}/uwsgi; scgi_temp_path ${prefix}/scgi;\n`);
}

before(async () => {
  if (skip) return;
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  // --ctx 4096 so a stream can be long enough to be cut mid-way; --cors: the page's public origin is nginx's
  const args = ['--parallel', '2', '--ctx', '4096', '--cors', origin];
  replicas = await Promise.all([startServer({ args }), startServer({ args })]);
  const prefix = path.resolve(TMP, `nginx-${process.pid}`);
  fs.rmSync(prefix, { recursive: true, force: true });
  fs.mkdirSync(prefix, { recursive: true });
  const conf = testConfig(fs.readFileSync('deploy/nginx.conf', 'utf8'), {
    listen: `127.0.0.1:${port}`, servers: replicas.map((r) => `127.0.0.1:${r.port}`), prefix,
  });
  fs.writeFileSync(path.join(prefix, 'nginx.conf'), conf);
  const cmd = ['-p', prefix, '-c', path.join(prefix, 'nginx.conf'), '-e', 'stderr', '-g', `daemon off; pid ${prefix}/nginx.pid;`];
  execFileSync(NGINX, [...cmd, '-t'], { stdio: 'pipe' }); // the config is valid nginx
  nginx = spawn(NGINX, cmd, { stdio: ['ignore', 'pipe', 'pipe'] });
  nginx.stdout.on('data', (d) => { nginxLog += d; });
  nginx.stderr.on('data', (d) => { nginxLog += d; });
  base = origin;
  const t0 = Date.now();
  for (;;) {
    try { if ((await fetch(`${base}/health`)).status === 200) break; } catch { /* not yet */ }
    if (nginx.exitCode !== null || Date.now() - t0 > 20000) throw new Error(`nginx did not start:\n${nginxLog}`);
    await sleep(100);
  }
});

after(async () => {
  if (nginx && nginx.exitCode === null) {
    const done = new Promise((r) => nginx.on('exit', r));
    nginx.kill('SIGQUIT');
    const t = setTimeout(() => nginx.kill('SIGKILL'), 10000);
    await done;
    clearTimeout(t);
  }
  // the killed replica has already exited (by a signal: its exitCode stays null, which stop() does not expect)
  await Promise.all(replicas.filter((r) => !r.child.signalCode).map((r) => r.stop()));
});

const chatCount = async (r) => {
  if (r.child.exitCode !== null || r.child.signalCode) return null;
  return (await metrics(r.base))['qwen_edge_http_requests_total{route="/v1/chat/completions",status="200"}'] || 0;
};
// which replica answered: the one whose count of 200 chat answers went up (a replica counts a request when
// MHD reports it complete, which may be a moment after the client has the whole answer: poll briefly)
async function servedBy(fn) {
  const before = await Promise.all(replicas.map(chatCount));
  const out = await fn();
  let who = [];
  for (const t0 = Date.now(); Date.now() - t0 < 5000; await sleep(50)) {
    const after = await Promise.all(replicas.map(chatCount));
    who = replicas.map((_, i) => i).filter((i) => after[i] !== null && after[i] > before[i]);
    if (who.length) break;
  }
  return { out, who };
}
const chat = (conv, messages, extra = {}) => fetch(`${base}/v1/chat/completions`, {
  method: 'POST', headers: { 'Content-Type': 'application/json', ...(conv ? { 'X-Conversation-Id': conv } : {}), ...(extra.headers || {}) },
  body: JSON.stringify({ model: 'm', messages, max_tokens: 8, temperature: 0, ...(extra.body || {}) }),
});

test('affinity: turn 2 goes to the replica of turn 1 and reuses its prompt cache', { skip }, async () => {
  const spread = [0, 0];
  for (let k = 0; k < 16; k++) {
    const conv = `conv-${k}-${process.pid}`;
    const m1 = [{ role: 'system', content: 'You are a terse assistant.' }, { role: 'user', content: `Question number ${k}: what is a river?` }];
    const t1 = await servedBy(async () => { const r = await chat(conv, m1); assert.equal(r.status, 200); return r.json(); });
    assert.equal(t1.who.length, 1, 'exactly one replica answered turn 1');
    const m2 = [...m1, { role: 'assistant', content: t1.out.choices[0].message.content }, { role: 'user', content: 'And a lake?' }];
    const t2 = await servedBy(async () => { const r = await chat(conv, m2); assert.equal(r.status, 200); return r.json(); });
    assert.deepEqual(t2.who, t1.who, `conversation ${conv}: turn 2 on the replica of turn 1`);
    assert.ok(t2.out.usage.prompt_tokens_details.cached_tokens > 0, `turn 2 cached ${t2.out.usage.prompt_tokens_details.cached_tokens}`);
    spread[t1.who[0]]++;
  }
  console.log(`16 conversations over the replicas: ${spread.join(' + ')}`);
  assert.ok(spread[0] > 0 && spread[1] > 0, `both replicas get conversations (${spread})`);
  // X-Session-Id is a key too: the same id, the same replica
  const a = await servedBy(async () => (await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'X-Session-Id': 's-1' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }) })).status);
  const b = await servedBy(async () => (await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'X-Session-Id': 's-1' }, body: JSON.stringify({ messages: [{ role: 'user', content: 'hi again' }], max_tokens: 2 }) })).status);
  assert.equal(a.out, 200);
  assert.deepEqual(b.who, a.who);
});

test('streams pass through; the replicas still check Origin and the body size', { skip }, async () => {
  const r = await chat('conv-stream', [{ role: 'user', content: 'Count to ten.' }], { body: { stream: true, max_tokens: 32, ignore_eos: true } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /text\/event-stream/);
  const text = await r.text();
  assert.ok(text.trimEnd().endsWith('data: [DONE]'), text.slice(-200));
  assert.equal((text.match(/^data: \{/gm) || []).length >= 32, true);
  // ollama NDJSON too
  const o = await fetch(`${base}/api/chat`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 4 } }) });
  assert.equal(o.status, 200);
  const lines = (await o.text()).trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.at(-1).done, true);
  // the page's origin (the replicas run with --cors set to nginx's address) is served, another site is not
  assert.equal((await chat('c-o', [{ role: 'user', content: 'hi' }], { headers: { Origin: origin } })).status, 200);
  const evil = await chat('c-o', [{ role: 'user', content: 'hi' }], { headers: { Origin: 'http://evil.example' } });
  assert.equal(evil.status, 403);
  assert.equal((await evil.json()).error.code, 'forbidden_origin');
  // 5 MiB: nginx lets it through (8 MiB), the replica refuses it with its own JSON error
  const big = await fetch(`${base}/v1/chat/completions`, { method: 'POST', body: 'x'.repeat(5 << 20) });
  assert.equal(big.status, 413);
  assert.equal((await big.json()).error.code, 'request_too_large');
});

test('the page through nginx: one conversation id per chat, its turns on one replica', { skip: skip || (!fs.existsSync('/usr/bin/chromium') && 'no chromium') }, async () => {
  const { chromium } = await import('playwright-core');
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-replicas-'));
  const ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium', headless: true, locale: 'en-US',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  try {
    await ctx.addInitScript(() => localStorage.setItem('qe.settings', JSON.stringify({ maxTokens: 6 })));
    const page = ctx.pages()[0] || await ctx.newPage();
    const sent = [];
    page.on('request', (req) => { if (req.url().endsWith('/v1/chat/completions')) sent.push(req.headers()['x-conversation-id']); });
    await page.goto(`${base}/`);
    await page.waitForSelector('#input');
    const turn = async (text, n) => {
      const b = await Promise.all(replicas.map(chatCount));
      await page.fill('#input', text);
      await page.keyboard.press('Enter');
      await page.waitForFunction((k) => document.querySelectorAll('.msg.assistant').length === k && !document.querySelector('.msg.assistant.streaming'), n, { timeout: 60000 });
      const a = await Promise.all(replicas.map(chatCount));
      assert.equal(await page.locator('.error-line').count(), 0, 'no error shown');
      return replicas.map((_, i) => i).filter((i) => a[i] > b[i]);
    };
    const w1 = await turn('Hello there', 1);
    const w2 = await turn('And then?', 2);
    assert.equal(sent.length, 2);
    assert.ok(sent[0] && sent[0] === sent[1], `the same conversation id on both turns (${sent})`);
    assert.equal(w1.length, 1);
    assert.deepEqual(w2, w1, 'turn 2 on the replica of turn 1');
    await page.click('#new-chat');
    await turn('A new chat', 1);
    assert.ok(sent[2] && sent[2] !== sent[0], 'a new chat has a new id');
  } finally {
    await ctx.close();
    fs.rmSync(userDir, { recursive: true, force: true });
  }
});

test('a replica killed mid-stream: the client sees an error, new requests go to the other replica', { skip }, async () => {
  const conv = 'conv-killed';
  const ac = new AbortController();
  const guard = setTimeout(() => ac.abort(), 60000);
  const r = await chat(conv, [{ role: 'user', content: 'Write a very long story.' }],
                       { body: { stream: true, max_tokens: 4000, ignore_eos: true } });
  assert.equal(r.status, 200);
  const reader = r.body.getReader();
  let got = '';
  while (!got.includes('data: {')) {
    const { value, done } = await reader.read();
    assert.ok(!done, 'stream ended before its first token');
    got += Buffer.from(value).toString();
  }
  // the replica running it: the one with a request in flight
  const inflight = await Promise.all(replicas.map(async (x) => (await metrics(x.base)).qwen_edge_requests_inflight));
  const victim = inflight.findIndex((n) => n > 0);
  assert.ok(victim >= 0, `a replica runs the stream (${inflight})`);
  replicas[victim].child.kill('SIGKILL');
  const t0 = Date.now();
  let outcome;
  try {
    for (;;) {
      const { value, done } = await Promise.race([reader.read(), new Promise((_, rej) => setTimeout(() => rej(new Error('hang')), 20000))]);
      if (done) { outcome = got.includes('[DONE]') ? 'completed' : 'closed'; break; }
      got += Buffer.from(value).toString();
    }
  } catch (e) {
    outcome = `error: ${e.message}`;
  }
  clearTimeout(guard);
  const ms = Date.now() - t0;
  console.log(`stream cut after ${got.length} bytes: ${outcome} after ${ms} ms`);
  assert.ok(outcome.startsWith('error') && !outcome.includes('hang'), `the client sees an error, not a hang or a clean end (${outcome})`);
  assert.ok(!got.includes('[DONE]'));
  await new Promise((res) => (replicas[victim].child.exitCode !== null || replicas[victim].child.signalCode ? res() : replicas[victim].child.on('exit', res)));
  // every new request succeeds, the cut conversation and conversations of both replicas alike
  const survivor = 1 - victim;
  for (let k = 0; k < 8; k++) {
    const s = await servedBy(async () => {
      const x = await chat(k === 0 ? conv : `after-${k}`, [{ role: 'user', content: `Still there? ${k}` }], { body: { stream: k % 2 === 1 } });
      return { status: x.status, text: await x.text() };
    });
    assert.equal(s.out.status, 200, s.out.text);
    assert.deepEqual(s.who, [survivor]);
  }
});

test('deploy/compose.replicas.yaml: the replicas nginx.conf names, nginx on this machine only', () => {
  const compose = fs.readFileSync('deploy/compose.replicas.yaml', 'utf8');
  const conf = fs.readFileSync('deploy/nginx.conf', 'utf8');
  const services = [...compose.matchAll(/^  (qe\d+): \*replica$/gm)].map((m) => m[1]);
  const upstream = [...conf.matchAll(/^\s*server (qe\d+):8080 /gm)].map((m) => m[1]);
  assert.ok(services.length >= 2);
  assert.deepEqual(services, upstream);
  assert.match(compose, /- \.\/nginx\.conf:\/etc\/nginx\/nginx\.conf:ro/);
  assert.match(compose, /- "127\.0\.0\.1:8080:8080"/);
  assert.match(compose, /"--cors", "\$\{QWEN_EDGE_PUBLIC_ORIGIN/);
  assert.match(fs.readFileSync('deploy/nginx.Dockerfile', 'utf8'), /^FROM debian:bookworm-slim$/m);
  // nginx must let through every body the replica may accept (so the replica answers 413 with its JSON)
  const mb = Number(/client_max_body_size (\d+)m;/.exec(conf)[1]);
  assert.ok(mb * 1048576 >= 4194304);
});
