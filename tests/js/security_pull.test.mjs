// security_pull.test.mjs — the downloader against hostile or broken servers, and `make run` offline:
// HF_TOKEN goes to the hub's exact origin only (not to a URL that merely starts with its text, not across a
// redirect to another host); no https -> http redirect; a .part symlink is not written through; a server that
// sends more than the hub said, or without end, is stopped; a model folder others can write to is refused;
// without network `make run` fails within seconds, non-zero, saying what to do; `serve -m missing.gguf` fails
// before it listens. Every server here is a local stand-in on 127.0.0.1 (the names localhost and 127.0.0.1
// are two hosts to libcurl, on one socket).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { closedPort, sha256 } from './lib/hfserver.mjs';

const BIN = path.resolve(process.env.QE_BIN || 'build/qwen-edge');
const TMP = path.resolve(process.env.QE_TEST_TMP || 'build/tests/tmp');
const REPO = 'Qwen/Qwen2.5-0.5B-Instruct-GGUF';
const FILE = 'qwen2.5-0.5b-instruct-q8_0.gguf';
const DATA = crypto.randomBytes(256 * 1024 + 7);
const TOKEN = 'hf_secret_token_for_the_test';

let n = 0;
function home() {
  const d = path.join(TMP, `secpull-home-${process.pid}-${n++}`);
  fs.rmSync(d, { recursive: true, force: true });
  return d;
}

// no proxy from the environment may take these requests elsewhere
const BASE_ENV = { ...process.env, http_proxy: '', https_proxy: '', HTTP_PROXY: '', HTTPS_PROXY: '', ALL_PROXY: '', all_proxy: '',
  no_proxy: '', NO_PROXY: '', HF_TOKEN: '', QWEN_EDGE_MAKE_RUN: '' };

function run(cmd, args, env = {}, timeoutMs = 30000) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(cmd, args, { env: { ...BASE_ENV, ...env } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, err, ms: Date.now() - t0 }); });
  });
}
const pull = (args, env, ms) => run(BIN, ['pull', '-q', ...args], env, ms);

// A server whose every request is recorded as {method, url, host, auth}; handler(req, res) answers.
async function fake(handler, tls = null) {
  const requests = [];
  const fn = (req, res) => {
    requests.push({ method: req.method, url: req.url, host: req.headers.host, auth: req.headers.authorization || null });
    handler(req, res);
  };
  const server = tls ? https.createServer(tls, fn) : http.createServer(fn);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    port, requests, url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

// The Hugging Face layout for one file: list API, resolve (302 to `cdn`), and the bytes at /cdn/.
function hubHandler({ cdn = '', body = DATA, listSize = DATA.length } = {}) {
  return (req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    if (p === `/api/models/${REPO}/tree/main`) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end(JSON.stringify([{ type: 'file', path: FILE, size: listSize, lfs: { oid: sha256(DATA), size: listSize } }]));
    }
    if (p === `/${REPO}/resolve/main/${FILE}`) {
      res.writeHead(302, { Location: `${cdn}/cdn/${FILE}` });
      return res.end();
    }
    if (p === `/cdn/${FILE}` || p === `/plain/${FILE}`) {
      const m = /^bytes=(\d+)-$/.exec(req.headers.range || '');
      const start = m ? Number(m[1]) : 0;
      const headers = { 'Content-Length': String(body.length - start) };
      if (m) headers['Content-Range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
      res.writeHead(m ? 206 : 200, headers);
      return res.end(req.method === 'HEAD' ? undefined : body.subarray(start));
    }
    res.writeHead(404);
    res.end();
  };
}

let tls = null;
before(() => {
  fs.mkdirSync(TMP, { recursive: true });
  // a self-signed certificate for 127.0.0.1, trusted by the binary through CURL_CA_BUNDLE
  const key = path.join(TMP, `secpull-${process.pid}.key`);
  const crt = path.join(TMP, `secpull-${process.pid}.crt`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' });
  if (r.status === 0) tls = { key: fs.readFileSync(key), cert: fs.readFileSync(crt), file: crt };
});
after(() => { for (const f of fs.readdirSync(TMP)) if (f.startsWith(`secpull-${process.pid}`)) fs.rmSync(path.join(TMP, f), { recursive: true, force: true }); });

test('HF_TOKEN goes to the hub itself, not to a URL that merely starts with the hub address', async () => {
  const evil = await fake(hubHandler());
  const hub = await fake(hubHandler());
  try {
    // the real hub gets it (the control)
    let r = await pull([], { QWEN_EDGE_HOME: home(), HF_ENDPOINT: hub.url, HF_TOKEN: TOKEN });
    assert.equal(r.code, 0, r.err);
    assert.ok(hub.requests.some((q) => q.auth === `Bearer ${TOKEN}`), JSON.stringify(hub.requests));
    // "http://127.0.0.1:4512" is a text prefix of "http://127.0.0.1:45123/…": another port, another server
    const prefix = `http://127.0.0.1:${String(evil.port).slice(0, -1)}`;
    r = await pull([`${evil.url}/plain/${FILE}`], { QWEN_EDGE_HOME: home(), HF_ENDPOINT: prefix, HF_TOKEN: TOKEN });
    assert.equal(r.code, 0, r.err);
    // "http://<hub>@localhost:<evil>/…": the hub's text as user info, the host is localhost
    r = await pull([`${hub.url}@localhost:${evil.port}/plain/${FILE}`], { QWEN_EDGE_HOME: home(), HF_ENDPOINT: hub.url, HF_TOKEN: TOKEN });
    assert.equal(r.code, 0, r.err);
    assert.ok(evil.requests.length >= 2, JSON.stringify(evil.requests));
    for (const q of evil.requests) assert.ok(!String(q.auth).includes(TOKEN), `token sent to ${q.host}${q.url}: ${q.auth}`);
  } finally {
    await evil.close();
    await hub.close();
  }
});

test('HF_TOKEN is not forwarded when the hub redirects to another host', async () => {
  let hub;
  hub = await fake((req, res) => hubHandler({ cdn: `http://localhost:${hub.port}` })(req, res));
  try {
    const r = await pull([], { QWEN_EDGE_HOME: home(), HF_ENDPOINT: hub.url, HF_TOKEN: TOKEN });
    assert.equal(r.code, 0, r.err);
    const cdn = hub.requests.filter((q) => q.url.startsWith('/cdn/'));
    assert.ok(cdn.length >= 1 && cdn.every((q) => q.host.startsWith('localhost:')), JSON.stringify(hub.requests));
    for (const q of cdn) assert.equal(q.auth, null, `token forwarded to ${q.host}`);
    assert.ok(hub.requests.some((q) => q.host.startsWith('127.0.0.1:') && q.auth === `Bearer ${TOKEN}`));
  } finally {
    await hub.close();
  }
});

test('an https download refuses a redirect to plain http', { skip: !tls && 'no openssl' }, async () => {
  const plain = await fake(hubHandler());
  const hub = await fake(hubHandler({ cdn: plain.url }), tls);
  try {
    const h = home();
    const r = await pull([], { QWEN_EDGE_HOME: h, HF_ENDPOINT: hub.url, CURL_CA_BUNDLE: tls.file, HF_TOKEN: TOKEN });
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /refusing the redirect from https:\/\/127\.0\.0\.1:\d+\/\S+ to .*: it leaves https/);
    assert.equal(plain.requests.length, 0, JSON.stringify(plain.requests));
    assert.ok(!fs.existsSync(path.join(h, FILE)));
    // the same file over an https CDN is fine: the CA bundle is honoured
    const cdn = await fake(hubHandler(), tls);
    const hub2 = await fake(hubHandler({ cdn: cdn.url }), tls);
    const r2 = await pull([], { QWEN_EDGE_HOME: h, HF_ENDPOINT: hub2.url, CURL_CA_BUNDLE: tls.file });
    await cdn.close();
    await hub2.close();
    assert.equal(r2.code, 0, r2.err);
    assert.ok(fs.readFileSync(path.join(h, FILE)).equals(DATA));
  } finally {
    await plain.close();
    await hub.close();
  }
});

test('a symbolic link planted as the .part file is not written through', async () => {
  const hub = await fake(hubHandler());
  try {
    const h = home();
    fs.mkdirSync(h, { recursive: true });
    const victim = path.join(TMP, `secpull-${process.pid}-victim.txt`);
    fs.writeFileSync(victim, 'precious\n');
    fs.symlinkSync(victim, path.join(h, FILE + '.part'));
    const r = await pull([], { QWEN_EDGE_HOME: h, HF_ENDPOINT: hub.url });
    const now = fs.readFileSync(victim);
    assert.ok(now.equals(Buffer.from('precious\n')), `the file behind the link was changed: now ${now.length} bytes`);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /\.part: it is a symbolic link/);
    assert.ok(!fs.existsSync(path.join(h, FILE)));
  } finally {
    await hub.close();
  }
});

test('more bytes than the hub gives as the size: refused before they are written', async () => {
  const big = Buffer.concat([DATA, crypto.randomBytes(3 * DATA.length)]);
  const hub = await fake(hubHandler({ body: big }));
  try {
    const h = home();
    const r = await pull([], { QWEN_EDGE_HOME: h, HF_ENDPOINT: hub.url });
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /sends more than .*the size the hub gives/);
    const part = path.join(h, FILE + '.part');
    assert.ok(!fs.existsSync(part) || fs.statSync(part).size <= DATA.length, `.part has ${fs.existsSync(part) && fs.statSync(part).size} bytes`);
  } finally {
    await hub.close();
  }
});

test('no size from the server: the download stops at the cap (QWEN_EDGE_MAX_DOWNLOAD)', async () => {
  const MiB = 1 << 20;
  // HEAD is not allowed; GET: without Content-Length (chunked) 8 MiB, or with one that says 2 MiB
  const srv = await fake((req, res) => {
    if (req.method === 'HEAD') { res.writeHead(405); return res.end(); }
    if (req.url.startsWith('/announced/')) {
      res.writeHead(200, { 'Content-Length': String(2 * MiB) });
      return res.end(Buffer.alloc(2 * MiB, 1));
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
    let sent = 0;
    const more = () => {
      while (sent < 8 * MiB) {
        sent += 64 * 1024;
        if (!res.write(Buffer.alloc(64 * 1024, 2))) return res.once('drain', more);
      }
      res.end();
    };
    res.on('error', () => {});
    more();
  });
  try {
    for (const name of ['endless', 'announced']) {
      const h = home();
      const r = await pull([`${srv.url}/${name}/x.gguf`], { QWEN_EDGE_HOME: h, QWEN_EDGE_MAX_DOWNLOAD: String(MiB) });
      assert.equal(r.code, 1, `${name}: ${r.err}`);
      assert.match(r.err, /sends more than 1\.0 MB/);
      const part = path.join(h, 'x.gguf.part');
      const size = fs.existsSync(part) ? fs.statSync(part).size : 0;
      assert.ok(size <= MiB, `${name}: .part has ${size} bytes`);
      if (name === 'announced') assert.equal(size, 0, 'refused on the Content-Length, before any byte');
      assert.ok(!fs.existsSync(path.join(h, 'x.gguf')));
    }
  } finally {
    await srv.close();
  }
});

test('a model folder other users can write to is refused; one we create is not group/world-writable', async () => {
  const hub = await fake(hubHandler());
  try {
    const h = home();
    fs.mkdirSync(h, { recursive: true });
    fs.chmodSync(h, 0o777);
    const r = await pull([], { QWEN_EDGE_HOME: h, HF_ENDPOINT: hub.url });
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /refusing to use the model folder .*other users can write to it \(mode 0777\).*chmod go-w/);
    assert.equal(hub.requests.length, 0);
    assert.ok(!fs.existsSync(path.join(h, FILE)));
    const l = await run(BIN, ['list'], { QWEN_EDGE_HOME: h });
    assert.notEqual(l.code, 0);
    assert.match(l.err, /other users can write/);
    // with umask 000 the folders we make (and their missing parents) still come out 0755
    const h2 = path.join(home(), 'a', 'models');
    const r2 = await run('sh', ['-c', 'umask 000; exec "$0" pull -q', BIN], { QWEN_EDGE_HOME: h2, HF_ENDPOINT: hub.url });
    assert.equal(r2.code, 0, r2.err);
    for (const d of [h2, path.dirname(h2)]) assert.equal(fs.statSync(d).mode & 0o022, 0, `${d}: mode ${(fs.statSync(d).mode & 0o777).toString(8)}`);
    assert.ok(fs.readFileSync(path.join(h2, FILE)).equals(DATA));
    assert.equal(fs.statSync(path.join(h2, FILE + '.json')).mode & 0o022, 0);
  } finally {
    await hub.close();
  }
});

test('`make run` without network and without a model: fails within seconds, non-zero, says what to do', async () => {
  const port = await closedPort();
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
  // -o all: run the rule as it is, without building (QE_BIN is the binary under test)
  const args = ['--no-print-directory', '-C', root, '-o', 'all', 'run', `BUILD=${path.dirname(BIN)}`, 'ARGS=--port 0'];
  const r = await run('make', args, { QWEN_EDGE_HOME: home(), HF_ENDPOINT: `http://127.0.0.1:${port}` }, 30000);
  assert.notEqual(r.code, 0, r.err);
  assert.ok(r.ms < 10000, `took ${r.ms} ms`);
  assert.match(r.err, /cannot reach 127\.0\.0\.1 .*No model was downloaded\. What to do:/);
  assert.match(r.err, /make run ARGS="-m FILE\.gguf"/);
  assert.match(r.err, /HF_ENDPOINT=https:\/\/hf-mirror\.com make run/);
  assert.match(r.err, /qwen-edge pull --source modelscope, then make run\n/);
  assert.doesNotMatch(r.err, /curl:|\(\d+\) /);
  // through the mirror already (the proxy it would need is not there): the mirror is not suggested again
  const proxy = `http://127.0.0.1:${port}`;
  const r2 = await run('make', args, { QWEN_EDGE_HOME: home(), HF_ENDPOINT: 'https://hf-mirror.com', https_proxy: proxy, HTTPS_PROXY: proxy }, 30000);
  assert.notEqual(r2.code, 0, r2.err);
  assert.match(r2.err, /cannot reach hf-mirror\.com/);
  assert.doesNotMatch(r2.err, /HF_ENDPOINT=https:\/\/hf-mirror\.com/);
  assert.match(r2.err, /make run ARGS="-m FILE\.gguf"/);
});

test('a server that never answers the connection: given up after the connect timeout, not more', { skip: spawnSync('python3', ['-c', '1']).status !== 0 && 'no python3' }, async () => {
  // a listening socket whose accept queue is full drops new SYNs: the connection neither opens nor fails
  const py = spawn('python3', ['-c', `
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)
fill = []
for i in range(4):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    fill.append(c)
time.sleep(0.3)
print(s.getsockname()[1], flush=True)
time.sleep(60)
`]);
  try {
    const port = await new Promise((resolve, reject) => {
      py.stdout.once('data', (d) => resolve(Number(String(d).trim())));
      py.once('exit', () => reject(new Error('python helper exited')));
    });
    const r = await pull([], { QWEN_EDGE_HOME: home(), HF_ENDPOINT: `http://127.0.0.1:${port}` }, 40000);
    assert.equal(r.code, 1, r.err);
    assert.match(r.err, /cannot reach 127\.0\.0\.1 \(Timeout was reached\)/);
    assert.ok(r.ms < 14000, `took ${r.ms} ms`);
  } finally {
    py.kill();
  }
});

test('`serve -m missing.gguf` fails before it listens', async () => {
  const r = await run(BIN, ['serve', '-m', path.join(TMP, 'no-such-model.gguf'), '--port', '0'], { QWEN_EDGE_HOME: home() }, 10000);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /no-such-model\.gguf: no such file/);
  assert.doesNotMatch(r.err, /listening/);
  const r2 = await run(BIN, ['serve', '-m', 'missing.gguf', '--port', '0'], { QWEN_EDGE_HOME: home() }, 10000);
  assert.equal(r2.code, 1, r2.err);
  assert.equal(r2.err, 'qwen-edge serve: cannot load the model: missing.gguf: no such file\n');
});
