// pull.test.mjs — `qwen-edge pull / list / rm` against a local stand-in for Hugging Face and ModelScope
// (lib/hfserver.mjs): full download, resume with Range after a cut connection, checksum mismatch, 404,
// unreachable host, mirrors without a file-list API, plain URLs, ModelScope, list and rm.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
const spawnSyncInfo = (f) => spawnSync(BIN, ['info', '-m', f], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout;
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { startHubServer, closedPort, sha256 } from './lib/hfserver.mjs';
import { splitGguf } from './lib/ggufsplit.mjs';

const BIN = process.env.QE_BIN || 'build/qwen-edge';
const TMP = process.env.QE_TEST_TMP || 'build/tests/tmp';
const REPO = 'Qwen/Qwen2.5-0.5B-Instruct-GGUF';
const FILE = 'qwen2.5-0.5b-instruct-q8_0.gguf';
const DATA = crypto.randomBytes(3 * 1024 * 1024 + 123); // pure download tests: any bytes
const Q4 = crypto.randomBytes(200 * 1024);

let hub;
let n = 0;
function home() {
  const d = path.join(TMP, `pull-home-${process.pid}-${n++}`);
  fs.rmSync(d, { recursive: true, force: true });
  return d;
}

// Runs the binary without blocking the event loop (the hub server lives in this process).
function run(args, env = {}, timeoutMs = 30000) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(BIN, args, { env: { ...process.env, HF_ENDPOINT: hub.url, MODELSCOPE_ENDPOINT: hub.url, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, err, ms: Date.now() - t0 }); });
  });
}

const REPO7 = 'Qwen/Qwen2.5-7B-Instruct-GGUF';
let whole; // a real (tiny, random) GGUF published in two parts as the 7b q4_k_m
before(async () => {
  fs.mkdirSync(TMP, { recursive: true });
  const g = path.join(TMP, `pull-split-${process.pid}.gguf`);
  const mk = await new Promise((resolve) => {
    const p = spawn(BIN, ['mkmodel', '-o', g, '--shape', 'tiny', '--type', 'q4_0']);
    p.on('close', resolve);
  });
  assert.equal(mk, 0, 'mkmodel');
  whole = fs.readFileSync(g);
  const parts = splitGguf(g, path.join(TMP, `pull-split-${process.pid}`), 2);
  const split = {};
  parts.forEach((p, i) => { split[`qwen2.5-7b-instruct-q4_k_m-0000${i + 1}-of-00002.gguf`] = fs.readFileSync(p); fs.rmSync(p); });
  fs.rmSync(g);
  hub = await startHubServer({
    [REPO]: { [FILE]: DATA, 'qwen2.5-0.5b-instruct-q4_0.gguf': Q4, 'README.md': Buffer.from('hi') },
    [REPO7]: { ...split, 'qwen2.5-7b-instruct-q2_k.gguf': Q4 },
  });
});
after(async () => { await hub.close(); });

test('pull downloads the default model, verifies it, and a second pull needs no network', async () => {
  const h = home();
  hub.requests.length = 0;
  const r = await run(['pull'], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 0, r.err);
  const dest = path.join(h, FILE);
  assert.equal(r.out.trim(), dest);
  assert.ok(fs.readFileSync(dest).equals(DATA));
  assert.ok(!fs.existsSync(dest + '.part'));
  const meta = JSON.parse(fs.readFileSync(dest + '.json', 'utf8'));
  assert.equal(meta.sha256, sha256(DATA));
  assert.equal(meta.name, 'qwen2.5-0.5b-instruct:q8_0');
  // went through the hub's list API and the resolve URL (redirected to the CDN)
  assert.ok(hub.requests.some((q) => q.url === `/api/models/${REPO}/tree/main`));
  assert.ok(hub.requests.some((q) => q.method === 'GET' && q.url === `/${REPO}/resolve/main/${FILE}`));
  // already there: no network needed at all
  const port = await closedPort();
  const r2 = await run(['pull'], { QWEN_EDGE_HOME: h, HF_ENDPOINT: `http://127.0.0.1:${port}` });
  assert.equal(r2.code, 0, r2.err);
  assert.match(r2.err, /already downloaded/);
});

test('a cut connection keeps the .part and the next pull resumes it with Range', async () => {
  const h = home();
  hub.cutOnce.add(FILE);
  const r = await run(['pull', '--retries', '0'], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 1);
  assert.match(r.err, /interrupted.*run the same pull again to resume/s);
  const part = path.join(h, FILE + '.part');
  assert.ok(!fs.existsSync(path.join(h, FILE)), 'no file under the final name');
  const have = fs.statSync(part).size;
  assert.ok(have > 0 && have < DATA.length, `partial size ${have}`);
  assert.ok(fs.readFileSync(part).equals(DATA.subarray(0, have)));
  hub.requests.length = 0;
  const r2 = await run(['pull'], { QWEN_EDGE_HOME: h });
  assert.equal(r2.code, 0, r2.err);
  assert.match(r2.err, /resuming/);
  assert.ok(hub.requests.some((q) => q.range === `bytes=${have}-`), JSON.stringify(hub.requests));
  assert.ok(fs.readFileSync(path.join(h, FILE)).equals(DATA));
  assert.ok(!fs.existsSync(part));
});

test('a dropped connection is resumed within the same pull (retries)', async () => {
  const h = home();
  hub.cutOnce.add(FILE);
  hub.requests.length = 0;
  const r = await run(['pull'], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /connection lost/);
  assert.ok(hub.requests.some((q) => q.range && q.range.startsWith('bytes=')));
  assert.ok(fs.readFileSync(path.join(h, FILE)).equals(DATA));
});

test('checksum mismatch: rejected, nothing under the final name, nothing to resume', async () => {
  const h = home();
  hub.badSha = true;
  try {
    const r = await run(['pull'], { QWEN_EDGE_HOME: h });
    assert.equal(r.code, 1);
    assert.match(r.err, /checksum mismatch/);
    assert.ok(!fs.existsSync(path.join(h, FILE)));
    assert.ok(!fs.existsSync(path.join(h, FILE + '.part')));
  } finally {
    hub.badSha = false;
  }
});

test('404: unknown repository and unknown file give clear errors', async () => {
  const h = home();
  const r = await run(['pull', 'qwen2.5-1.5b-instruct'], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 1);
  assert.match(r.err, /not found: Qwen\/Qwen2\.5-1\.5B-Instruct-GGUF has no file qwen2\.5-1\.5b-instruct-q8_0\.gguf, or the repository does not exist/);
  const r2 = await run(['pull', 'qwen2.5-0.5b-instruct:q2_k'], { QWEN_EDGE_HOME: h });
  assert.equal(r2.code, 1);
  assert.match(r2.err, /has no file qwen2\.5-0\.5b-instruct-q2_k\.gguf \(it has: .*q8_0\.gguf/);
  const r3 = await run(['pull', `${hub.url}/plain/nothing.gguf`], { QWEN_EDGE_HOME: h });
  assert.equal(r3.code, 1);
  assert.match(r3.err, /not found \(HTTP 404\)/);
  const r4 = await run(['pull', 'llama-7b'], { QWEN_EDGE_HOME: h });
  assert.equal(r4.code, 1);
  assert.match(r4.err, /unknown model 'llama-7b'.*qwen2\.5-<size>-instruct/);
  assert.deepEqual(fs.readdirSync(h), []);
});

test('unreachable host: a clear message saying what to do, quickly', async () => {
  const h = home();
  const port = await closedPort();
  const r = await run(['pull'], { QWEN_EDGE_HOME: h, HF_ENDPOINT: `http://127.0.0.1:${port}` }, 20000);
  assert.equal(r.code, 1);
  assert.ok(r.ms < 15000, `took ${r.ms} ms`);
  assert.match(r.err, /cannot reach 127\.0\.0\.1/);
  assert.match(r.err, /-m FILE\.gguf/);
  assert.match(r.err, /HF_ENDPOINT=https:\/\/hf-mirror\.com/);
  assert.match(r.err, /--source modelscope/);
  // an unresolvable host name (no DNS needed to fail: .invalid never resolves)
  const r2 = await run(['pull'], { QWEN_EDGE_HOME: h, HF_ENDPOINT: 'http://hub.invalid' }, 30000);
  assert.equal(r2.code, 1);
  assert.match(r2.err, /cannot reach hub\.invalid/);
});

test('a mirror without the file-list API: HEAD headers give size and sha256', async () => {
  const h = home();
  hub.noApi = true;
  hub.requests.length = 0;
  try {
    const r = await run(['pull', 'qwen2.5-0.5b-instruct:q4_0'], { QWEN_EDGE_HOME: h });
    assert.equal(r.code, 0, r.err);
    assert.ok(hub.requests.some((q) => q.method === 'HEAD'));
    assert.doesNotMatch(r.err, /warning/);
    assert.ok(fs.readFileSync(path.join(h, 'qwen2.5-0.5b-instruct-q4_0.gguf')).equals(Q4));
    // a split model cannot be found without the list: the message says why
    const r3 = await run(['pull', 'qwen2.5-7b-instruct:q4_k_m'], { QWEN_EDGE_HOME: home() });
    assert.equal(r3.code, 1);
    assert.match(r3.err, /no file-list API, so a model published in parts cannot be found here/);
    // and a wrong checksum in those headers is caught too
    hub.badSha = true;
    const r2 = await run(['pull', '--force', 'qwen2.5-0.5b-instruct:q4_0'], { QWEN_EDGE_HOME: home() });
    assert.equal(r2.code, 1);
    assert.match(r2.err, /checksum mismatch/);
  } finally {
    hub.noApi = false;
    hub.badSha = false;
  }
});

test('--source modelscope uses the ModelScope API and URL layout', async () => {
  const h = home();
  hub.requests.length = 0;
  const r = await run(['pull', '--source', 'modelscope', 'qwen2.5-0.5b-instruct:q4_0'], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 0, r.err);
  assert.ok(hub.requests.some((q) => q.url.startsWith(`/api/v1/models/${REPO}/repo/files?Revision=master`)));
  assert.ok(hub.requests.some((q) => q.url === `/models/${REPO}/resolve/master/qwen2.5-0.5b-instruct-q4_0.gguf`));
  assert.ok(fs.readFileSync(path.join(h, 'qwen2.5-0.5b-instruct-q4_0.gguf')).equals(Q4));
});

test('a Hugging Face resolve URL: the X-Linked-* headers of its redirect give the checksum', async () => {
  const h = home();
  const r = await run(['pull', `${hub.url}/${REPO}/resolve/main/qwen2.5-0.5b-instruct-q4_0.gguf?download=true`], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 0, r.err);
  assert.doesNotMatch(r.err, /warning/);
  const meta = JSON.parse(fs.readFileSync(path.join(h, 'qwen2.5-0.5b-instruct-q4_0.gguf.json'), 'utf8'));
  assert.equal(meta.sha256, sha256(Q4));
});

test('a plain URL: size checked, warning that no checksum was published', async () => {
  const h = home();
  const r = await run(['pull', `${hub.url}/plain/${FILE}`], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /warning: .*no sha256/);
  assert.ok(fs.readFileSync(path.join(h, FILE)).equals(DATA));
});

test('list and rm', async () => {
  const h = home();
  let r = await run(['list'], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 0);
  assert.match(r.out, /no models/);
  assert.equal((await run(['pull', '-q'], { QWEN_EDGE_HOME: h })).code, 0);
  hub.cutOnce.add('qwen2.5-0.5b-instruct-q4_0.gguf');
  assert.equal((await run(['pull', '-q', '--retries', '0', 'qwen2.5-0.5b-instruct:q4_0'], { QWEN_EDGE_HOME: h })).code, 1);
  r = await run(['list'], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 0);
  assert.match(r.out, /qwen2\.5-0\.5b-instruct:q8_0\s+3\.0 MB\s+qwen2\.5-0\.5b-instruct-q8_0\.gguf\n/);
  assert.match(r.out, /qwen2\.5-0\.5b-instruct:q4_0 .*\(partial\)/);
  r = await run(['rm', 'qwen2.5-0.5b-instruct'], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 0, r.err);
  assert.ok(!fs.existsSync(path.join(h, FILE)) && !fs.existsSync(path.join(h, FILE + '.json')));
  r = await run(['rm', 'qwen2.5-0.5b-instruct:q4_0'], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 0, r.err);
  r = await run(['rm', 'qwen2.5-0.5b-instruct'], { QWEN_EDGE_HOME: h });
  assert.equal(r.code, 1);
  assert.match(r.err, /not in the model folder/);
  r = await run(['list'], { QWEN_EDGE_HOME: h });
  assert.match(r.out, /no models/);
});

test('a model published in parts is downloaded part by part and merged into one GGUF', async () => {
  for (const source of ['hf', 'modelscope']) {
    const h = home();
    hub.requests.length = 0;
    hub.cutOnce.add('qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf'); // and part 2 resumes
    const r = await run(['pull', '--source', source, 'qwen2.5-7b-instruct:q4_k_m'], { QWEN_EDGE_HOME: h });
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /part 2 of 2/);
    assert.match(r.err, /merging 2 parts/);
    const dest = path.join(h, 'qwen2.5-7b-instruct-q4_k_m.gguf');
    assert.equal(r.out.trim(), dest);
    // the merge gives back exactly the file that was split
    assert.equal(sha256(fs.readFileSync(dest)), sha256(whole));
    assert.deepEqual(fs.readdirSync(h).sort(), ['qwen2.5-7b-instruct-q4_k_m.gguf', 'qwen2.5-7b-instruct-q4_k_m.gguf.json']);
    const info = spawnSyncInfo(dest);
    assert.match(info, /tensors \(26\)/);
    assert.doesNotMatch(info, /split\./);
  }
});

test('a stalled transfer is dropped after QWEN_EDGE_STALL_TIMEOUT and resumed, never a hang', async () => {
  const h = home();
  hub.stallOnce.add(FILE);
  hub.requests.length = 0;
  const r = await run(['pull'], { QWEN_EDGE_HOME: h, QWEN_EDGE_STALL_TIMEOUT: '2' }, 30000);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /connection lost \(Timeout was reached\); resuming/);
  assert.ok(r.ms < 15000, `took ${r.ms} ms`);
  assert.ok(hub.requests.some((q) => q.range === `bytes=${Math.floor(DATA.length / 2)}-`), JSON.stringify(hub.requests));
  assert.ok(fs.readFileSync(path.join(h, FILE)).equals(DATA));
});

test('two pulls of one file: the second says so; a killed pull leaves a .part that the next one resumes', async () => {
  const h = home();
  hub.slow = true;
  try {
    const env = { ...process.env, HF_ENDPOINT: hub.url, QWEN_EDGE_HOME: h };
    const a = spawn(BIN, ['pull', '-q'], { env });
    const part = path.join(h, FILE + '.part');
    for (let i = 0; i < 100 && !(fs.existsSync(part) && fs.statSync(part).size > 0); i++) await new Promise((r) => setTimeout(r, 50));
    const b = await run(['pull', '-q'], { QWEN_EDGE_HOME: h });
    assert.equal(b.code, 1);
    assert.match(b.err, /another qwen-edge is downloading .*\.part right now/);
    const closed = new Promise((r) => a.on('close', r));
    a.kill('SIGINT');
    await closed;
    const have = fs.statSync(part).size;
    assert.ok(have > 0 && have < DATA.length, `part ${have}`);
    assert.ok(!fs.existsSync(path.join(h, FILE)));
    hub.slow = false;
    hub.requests.length = 0;
    const c = await run(['pull', '-q'], { QWEN_EDGE_HOME: h });
    assert.equal(c.code, 0, c.err);
    assert.ok(hub.requests.some((q) => q.range === `bytes=${have}-`));
    assert.ok(fs.readFileSync(path.join(h, FILE)).equals(DATA));
  } finally {
    hub.slow = false;
  }
});

test('first run: `run` without -m downloads the default model, then needs no network; offline: the clear message', async () => {
  const h = home();
  hub.repos[REPO][FILE] = whole; // a real (tiny, random) GGUF under the default model's name
  try {
    const args = ['run', '--raw', '-n', '4', '--temp', '0', '-t', '1', '-p', 'Hello'];
    const r = await run(args, { QWEN_EDGE_HOME: h }, 60000);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /first run: downloading the default model qwen2\.5-0\.5b-instruct:q8_0/);
    assert.ok(r.out.length > 0);
    assert.ok(fs.existsSync(path.join(h, FILE)));
    const port = await closedPort();
    const r2 = await run(args, { QWEN_EDGE_HOME: h, HF_ENDPOINT: `http://127.0.0.1:${port}` }, 60000);
    assert.equal(r2.code, 0, r2.err);
    assert.equal(r2.out, r.out);
    assert.doesNotMatch(r2.err, /downloading/);
    // a fresh machine without network: one clear message, what to do, nothing else
    const r3 = await run(args, { QWEN_EDGE_HOME: home(), HF_ENDPOINT: `http://127.0.0.1:${port}` }, 30000);
    assert.notEqual(r3.code, 0);
    assert.equal(r3.out, '');
    // until it is installed, the binary names itself in its advice as it was run (BIN here): read it as qwen-edge
    r3.err = r3.err.split(`${BIN} `).join('qwen-edge ');
    assert.match(r3.err, /^first run: downloading the default model .*\nqwen-edge: cannot reach 127\.0\.0\.1 \(Couldn't connect to server\)\. No model was downloaded\. What to do:\n {2}- use a model file you already have: {3}-m FILE\.gguf {3}\(qwen-edge serve -m FILE\.gguf\)\n {2}- or download through a mirror: {9}HF_ENDPOINT=https:\/\/hf-mirror\.com qwen-edge pull\n {2}- or download from ModelScope \(China\): {2}qwen-edge pull --source modelscope\n$/);
  } finally {
    hub.repos[REPO][FILE] = DATA;
  }
});
