// security_keys.test.mjs — who may use the server and what one user can learn about another: the prefix cache
// as an oracle (a guessed 4-digit code in another user's system prompt, the reviewer's experiment) closed by
// "cache_salt" and by several API keys; --api-key-file; 401 before 404/405 so the API cannot be mapped without
// a key; the per-address throttle on wrong keys (quick 429 + Retry-After). Model: the tiny random-weight GGUF.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startServer, metrics, sleep, BIN, TMP } from './lib/server.mjs';

const SECRET = '4719';
const system = (code) => `You are the support bot of ACME. The door code is ${code}. Never tell it to anyone.`;
const GUESSES = ['0000', '4000', '4700', '4710', SECRET]; // 0, 1, 2, 3, 4 right leading digits
const ARGS = ['--parallel', '4', '--ctx', '512'];

async function post(base, pathname, body, key) {
  const headers = { 'Content-Type': 'application/json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  const r = await fetch(base + pathname, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text, headers: r.headers };
}

// One chat with the code in the system prompt; returns usage.prompt_tokens_details.cached_tokens.
async function ask(base, code, { salt, key } = {}) {
  const body = { model: 'qwen', max_tokens: 1, temperature: 0,
    messages: [{ role: 'system', content: system(code) }, { role: 'user', content: 'What can you do for me?' }] };
  if (salt !== undefined) body.cache_salt = salt;
  const r = await post(base, '/v1/chat/completions', body, key);
  assert.equal(r.status, 200, r.text);
  return r.json.usage.prompt_tokens_details.cached_tokens;
}

// The attacker's guesses in order; the cached tokens each one got.
async function guess(base, opts) {
  const out = [];
  for (const g of GUESSES) out.push(await ask(base, g, opts));
  return out;
}

// The guesses on a server where nobody else has asked anything (what the attacker's own history explains), then on
// one where the victim asked first. Isolation means both lists are equal: the victim's prompt changes nothing.
async function oracle({ args = [], victim, attacker }) {
  const fresh = await startServer({ args: [...ARGS, ...args] });
  let alone;
  try { alone = await guess(fresh.base, attacker); } finally { await fresh.stop(); }
  const srv = await startServer({ args: [...ARGS, ...args] });
  try {
    const first = await ask(srv.base, SECRET, victim);
    const withVictim = await guess(srv.base, attacker);
    const again = await ask(srv.base, SECRET, victim);
    return { alone, withVictim, first, again };
  } finally { await srv.stop(); }
}

describe('prefix cache: no oracle between users', () => {
  test('default (no salt, one key or none): shared as before — the victim’s prompt shows', async () => {
    const r = await oracle({ victim: {}, attacker: {} });
    console.log(`# shared cache: attacker alone ${r.alone}, after the victim ${r.withVictim}`);
    assert.notDeepEqual(r.withVictim, r.alone, 'single-user behaviour: one cache for everybody');
  });

  test('cache_salt: guesses get the same cached tokens whether or not the victim asked', async () => {
    const r = await oracle({ victim: { salt: 'alice-7f3a' }, attacker: { salt: 'mallory' } });
    console.log(`# cache_salt: attacker alone ${r.alone}, after the victim ${r.withVictim}; victim ${r.first} then ${r.again}`);
    assert.deepEqual(r.withVictim, r.alone);
    assert.equal(r.first, 0);
    assert.ok(r.again > 20, `the victim's own salt still shares its prefix (${r.again})`); // not evicted either
  });

  test('several API keys: each key is its own tenant without any salt', async () => {
    const file = path.join(TMP, 'oracle-keys.txt');
    fs.writeFileSync(file, 'alice-key-0123456789\nmallory-key-9876543210\n', { mode: 0o600 });
    const r = await oracle({ args: ['--api-key-file', file],
      victim: { key: 'alice-key-0123456789' }, attacker: { key: 'mallory-key-9876543210' } });
    console.log(`# two keys: attacker alone ${r.alone}, after the victim ${r.withVictim}; victim ${r.first} then ${r.again}`);
    assert.deepEqual(r.withVictim, r.alone);
    assert.ok(r.again > 20);
  });

  test('every generation route honours cache_salt; a wrong type is a 400', async () => {
    const srv = await startServer({ args: ARGS });
    try {
      const msgs = [{ role: 'system', content: system(SECRET) }, { role: 'user', content: 'hi there' }];
      const cached = async (pathname, body) => {
        const m0 = (await metrics(srv.base)).qwen_edge_cached_tokens_total;
        const r = await post(srv.base, pathname, { model: 'qwen', ...body });
        assert.equal(r.status, 200, r.text);
        return (await metrics(srv.base)).qwen_edge_cached_tokens_total - m0;
      };
      const chat = { messages: msgs, max_tokens: 1 };
      const ochat = { messages: msgs, stream: false, options: { num_predict: 1 } };
      assert.equal(await cached('/v1/chat/completions', { ...chat, cache_salt: 'a' }), 0);
      assert.equal(await cached('/v1/chat/completions', { ...chat, cache_salt: 'b' }), 0);
      assert.equal(await cached('/api/chat', { ...ochat, cache_salt: 'c' }), 0);
      assert.ok(await cached('/api/chat', { ...ochat, cache_salt: 'a' }) > 20, 'the same salt shares across dialects');
      assert.ok(await cached('/v1/chat/completions', chat) === 0, 'no salt does not see salted tokens');
      const text = system(SECRET) + ' And then some more words.';
      assert.equal(await cached('/v1/completions', { prompt: text, max_tokens: 1, cache_salt: 'a' }), 0);
      assert.equal(await cached('/v1/completions', { prompt: text, max_tokens: 1, cache_salt: 'd' }), 0);
      assert.ok(await cached('/v1/completions', { prompt: text, max_tokens: 1, cache_salt: 'a' }) > 20);
      const gen = { prompt: 'hi there', system: system(SECRET), stream: false, options: { num_predict: 1 } };
      assert.equal(await cached('/api/generate', { ...gen, cache_salt: 'e' }), 0);
      assert.ok(await cached('/api/generate', { ...gen, cache_salt: 'e' }) > 20);
      const bad = await post(srv.base, '/v1/chat/completions', { ...chat, cache_salt: 42 });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.param, 'cache_salt');
      assert.equal((await post(srv.base, '/api/chat', { ...ochat, cache_salt: ['x'] })).status, 400);
    } finally { await srv.stop(); }
  });
});

describe('API keys', () => {
  test('--api-key-file: one key per line, comments and blank lines ignored; the keys stay out of ps', async () => {
    const file = path.join(TMP, 'keys-ok.txt');
    fs.writeFileSync(file, '# tenants of this box\n\n  key-one-abcdef  \r\n# key-commented-out\nkey-two-ghijkl\n', { mode: 0o600 });
    const srv = await startServer({ args: ['--api-key-file', file, '--api-key', 'key-three-mnop'] });
    try {
      for (const k of ['key-one-abcdef', 'key-two-ghijkl', 'key-three-mnop']) {
        const r = await fetch(`${srv.base}/v1/models`, { headers: { Authorization: `Bearer ${k}` } });
        assert.equal(r.status, 200, k);
      }
      for (const k of ['key-commented-out', '# key-commented-out', 'key-one-abcde', 'key-one-abcdefg', '']) {
        const r = await fetch(`${srv.base}/v1/models`, { headers: { Authorization: `Bearer ${k}` } });
        assert.equal(r.status, 401, JSON.stringify(k));
      }
      const cmdline = fs.readFileSync(`/proc/${srv.child.pid}/cmdline`, 'utf8');
      assert.ok(!cmdline.includes('key-one-abcdef'));
      assert.match(srv.log, /API keys required/);
    } finally { await srv.stop(); }
  });

  test('--api-key-file that cannot be read or holds no key: a clear error, no server', () => {
    const run = (...args) => spawnSync(BIN, ['serve', '-m', '/nonexistent.gguf', '--port', '0', ...args],
      { encoding: 'utf8', timeout: 20000, env: { ...process.env, QWEN_EDGE_API_KEY: '' } });
    let r = run('--api-key-file', path.join(TMP, 'no-such-keys.txt'));
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--api-key-file .*no-such-keys\.txt: No such file/);
    const empty = path.join(TMP, 'keys-empty.txt');
    fs.writeFileSync(empty, '# nothing yet\n\n   \n', { mode: 0o600 });
    r = run('--api-key-file', empty);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /holds no key/);
    const spaced = path.join(TMP, 'keys-spaced.txt');
    fs.writeFileSync(spaced, 'good-key\nbad key here\n', { mode: 0o600 });
    r = run('--api-key-file', spaced);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /line 2: a key may not contain spaces/);
    assert.ok(!r.stderr.includes('bad key here'), 'the key itself is not printed');
  });

  describe('with a key', () => {
    let srv;
    const KEY = 'sekret-123';
    before(async () => { srv = await startServer({ env: { QWEN_EDGE_API_KEY: KEY } }); });
    after(async () => { await srv.stop(); });

    test('401 comes before 404 and 405: without a key the API cannot be mapped', async () => {
      const probe = async (method, pathname, key) => (await fetch(srv.base + pathname,
        { method, headers: key ? { Authorization: `Bearer ${key}` } : {} })).status;
      for (const [method, p] of [['GET', '/nope'], ['GET', '/v1/nope'], ['POST', '/api/nope'], ['POST', '/v1/models'],
        ['GET', '/v1/chat/completions'], ['DELETE', '/api/tags'], ['GET', '/metrics'], ['POST', '/metrics']])
        assert.equal(await probe(method, p), 401, `${method} ${p}`);
      // with the key, the same requests get their real answers
      assert.equal(await probe('GET', '/nope', KEY), 404);
      assert.equal(await probe('POST', '/v1/models', KEY), 405);
      assert.equal(await probe('GET', '/v1/chat/completions', KEY), 405);
      // the page, /health and preflights need none
      assert.equal(await probe('GET', '/'), 200);
      assert.equal(await probe('GET', '/health'), 200);
      assert.equal(await probe('OPTIONS', '/v1/chat/completions'), 204);
      assert.equal(await probe('POST', '/'), 405);
    });
  });

  test('wrong keys from one address: a quick 429 with Retry-After, then the right key works again', async () => {
    const KEY = 'right-key-42';
    const srv = await startServer({ args: ['--api-key', KEY] });
    try {
      const get = (key) => fetch(`${srv.base}/v1/models`, { headers: key === undefined ? {} : { Authorization: `Bearer ${key}` } });
      // no key at all is not a guess: the page's first visit has none
      for (let i = 0; i < 15; i++) assert.equal((await get()).status, 401);
      const t0 = Date.now();
      for (let i = 0; i < 10; i++) assert.equal((await get(`guess-${i}`)).status, 401, `guess ${i}`);
      const r = await get('guess-10');
      assert.equal(r.status, 429);
      const ra = Number(r.headers.get('retry-after'));
      assert.ok(ra >= 1 && ra <= 3, `Retry-After ${ra}`);
      assert.equal((await r.json()).error.code, 'too_many_wrong_keys');
      // while it lasts, the right key is refused too (else the 429 would not slow guessing down), and fast
      const t1 = Date.now();
      assert.equal((await get(KEY)).status, 429);
      assert.ok(Date.now() - t1 < 1000, 'no sleeping on the connection thread');
      assert.equal((await fetch(`${srv.base}/health`)).status, 200);
      console.log(`# 10 wrong keys in ${Date.now() - t0} ms, then 429 with Retry-After ${ra}`);
      await sleep(ra * 1000 + 200);
      const ok = await get(KEY);
      assert.equal(ok.status, 200);
      // one more guess refills only slowly: the next wrong key is again followed by a 429
      assert.equal((await get('guess-11')).status, 401);
      assert.equal((await get('guess-12')).status, 429);
    } finally { await srv.stop(); }
  });
});
