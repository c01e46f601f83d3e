// model_errors.test.mjs — bad model files through the real binary: each case exits non-zero with one clear line
// that names the file and what is wrong, and never crashes (no signal, no sanitizer report, no stack).
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeModel } from './lib/models.mjs';

const BIN = process.env.QE_BIN || 'build/qwen-edge';
const TMP = process.env.QE_TEST_TMP || 'build/tests/tmp';
const dir = path.join(TMP, 'bad-models');
fs.mkdirSync(dir, { recursive: true });

function runBad(file, pattern) {
  for (const args of [['run', '-m', file, '-p', 'hi', '-n', '1'], ['info', '-m', file]]) {
    if (args[0] === 'info' && pattern.runOnly) continue;
    const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.signal, null, `${args[0]}: no crash (${r.signal})`);
    assert.notEqual(r.status, 0, `${args[0]}: exit code`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `${args[0]}: one line, got:\n${r.stderr}`);
    assert.ok(lines[0].includes(path.basename(file)), `${args[0]}: names the file: ${lines[0]}`);
    assert.match(lines[0], pattern.re ?? pattern, `${args[0]}: says what is wrong`);
  }
}

function variant(name, mutate) {
  const good = fs.readFileSync(makeModel({ shape: 'tiny', type: 'q8_0' }));
  const bad = mutate(Buffer.from(good));
  const file = path.join(dir, name);
  fs.writeFileSync(file, bad);
  return file;
}

function replaceOnce(buf, from, to) {
  const i = buf.indexOf(Buffer.from(from));
  assert.ok(i >= 0, `found ${from}`);
  assert.equal(Buffer.from(from).length, Buffer.from(to).length);
  Buffer.from(to).copy(buf, i);
  return buf;
}

test('missing file', () => runBad(path.join(dir, 'no-such-model.gguf'), /no such file|not found|does not exist/i));
// shaped like a hub reference (owner/repo/file.gguf) but under a local folder: a mistyped path, not a download
test('missing file under an existing folder', () => runBad('build/no-such-dir/model.gguf', /no such file/));
test('empty file', () => runBad(variant('empty.gguf', () => Buffer.alloc(0)), /empty/i));
test('not a GGUF file (bad magic)', () => runBad(variant('magic.gguf', (b) => { b.write('JUNK', 0); return b; }), /GGUF|magic/i));
test('truncated in the tensor data', () => runBad(variant('truncated.gguf', (b) => b.subarray(0, Math.floor(b.length * 0.6))), /truncat|past the end|beyond|end of (the )?file|outside/i));
test('truncated in the metadata', () => runBad(variant('truncated-meta.gguf', (b) => b.subarray(0, 4000)), /truncat|past the end|beyond|end of (the )?file/i));
test('wrong architecture', () => runBad(variant('llama-arch.gguf', (b) => replaceOnce(b, 'qwen2\x0c', 'llama\x0c')),
  { re: /architecture 'llama' is not supported/, runOnly: true }));
test('missing tensor', () => runBad(variant('missing-tensor.gguf', (b) => replaceOnce(b, 'blk.1.ffn_up.weight', 'blk.1.ffn_XX.weight')),
  { re: /tensor blk\.1\.ffn_up\.weight is missing/, runOnly: true }));
test('a directory that is not a model folder', () => runBad(dir, /config\.json|not a (model|GGUF)|directory|folder/i));
