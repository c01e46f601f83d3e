// tests/js/lib/server.mjs — starts `qwen-edge serve` on 127.0.0.1 and a free port for the end-to-end tests,
// with a tiny random-weight model made by `qwen-edge mkmodel --shape tiny` in QE_TEST_TMP.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeModel } from './models.mjs';

export const BIN = process.env.QE_BIN || path.resolve('build/qwen-edge');
export const TMP = process.env.QE_TEST_TMP || path.resolve('build/tests/tmp');

// The tiny model file (mkmodel --shape tiny, random weights), shared with the other tests through models.mjs's
// cache in QE_TEST_TMP (remade when the binary is newer).
export function tinyModel() {
  return makeModel({ shape: 'tiny' });
}

// Starts a server; resolves when /health says ok. opts.args: extra CLI args; opts.env: extra env.
export async function startServer(opts = {}) {
  const model = opts.model || tinyModel();
  const args = ['serve', '-m', model, '--host', '127.0.0.1', '--port', '0', '-t', '1', ...(opts.args || [])];
  const child = spawn(BIN, args, { env: { ...process.env, QWEN_EDGE_API_KEY: '', ...(opts.env || {}) }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 20000);
    child.stderr.on('data', (d) => {
      log += d;
      const m = /listening on http:\/\/[^:]+:(\d+)\//.exec(log);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${log}`)); });
  });
  const base = `http://127.0.0.1:${port}`;
  const t0 = Date.now();
  for (;;) {
    try {
      const r = await fetch(`${base}/health`);
      if (r.status === 200) break;
    } catch { /* not yet */ }
    if (Date.now() - t0 > 60000) throw new Error(`server not healthy:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const server = {
    port, base, child,
    get log() { return log; },
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const done = new Promise((r) => child.on('exit', (code, sig) => r(code ?? sig)));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15000);
      const code = await done;
      clearTimeout(t);
      return code;
    },
  };
  return server;
}

// Reads /metrics into { 'name{labels}': value }.
export async function metrics(base, headers = {}) {
  const r = await fetch(`${base}/metrics`, { headers });
  const text = await r.text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// Raw SSE: returns { events: [string], raw: Buffer } after the stream ends.
export async function rawSSE(base, pathname, body, headers = {}) {
  const r = await fetch(base + pathname, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const raw = Buffer.from(await r.arrayBuffer());
  return { status: r.status, headers: r.headers, raw };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
