// mkmodel.test.mjs — `qwen-edge mkmodel` files as llama.cpp sees them: llama.cpp loads every type and mix,
// generates prompt-dependent greedy text, and reads our quantised blocks as the same numbers our decoders
// produce (logits of a file vs. the same weights passed through our encoder+decoder and stored as f32).
// Also `qwen-edge info` and the command-line errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { greedy, logits, unload, dispose } from './lib/llama.mjs';

const BIN = process.env.QE_BIN ?? path.resolve('build/qwen-edge');
const TMP = process.env.QE_TEST_TMP ?? path.resolve('build/tests/tmp');
fs.mkdirSync(TMP, { recursive: true });
after(() => dispose());

function run(args) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function mkmodel(name, args) {
  const file = path.join(TMP, `mk-${name}.gguf`);
  const r = run(['mkmodel', '-o', file, '--shape', 'tiny', ...args]);
  assert.equal(r.code, 0, `mkmodel ${args.join(' ')} failed: ${r.err}`);
  return file;
}

/** tensor name -> type, from `qwen-edge info`. */
function tensorTypes(file) {
  const r = run(['info', '-m', file]);
  assert.equal(r.code, 0, r.err);
  const types = {};
  let inTable = false;
  for (const line of r.out.split('\n')) {
    if (line.startsWith('tensors (')) { inTable = true; continue; }
    const m = inTable && line.match(/^\s+(\S+)\s+(\S+)\s+\[/);
    if (m) types[m[1]] = m[2];
  }
  return types;
}

function correlation(a, b) {
  let ma = 0, mb = 0;
  for (let i = 0; i < a.length; i++) { ma += a[i]; mb += b[i]; }
  ma /= a.length; mb /= b.length;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] - ma, y = b[i] - mb;
    sab += x * y; saa += x * x; sbb += y * y;
  }
  return sab / Math.sqrt(saa * sbb);
}

const PROMPTS = ['<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n', '今天天气很好，我们去公园吧'];

// llama.cpp loads each type and official mix, generates, and `qwen-edge info` shows the expected tensor types.
// tiny rows (256, 512) split into 256-weight super-blocks, so the official mixes use k-quants directly;
// use_more_bits(layer 1 of 2) is true, so layer 1's attn_v / ffn_down get more bits in the _M mixes.
const cases = [
  { type: 'f16', layout: 'pure', expect: { 'blk.0.attn_q.weight': 'f16', 'token_embd.weight': 'f16' } },
  { type: 'q8_0', layout: 'pure', expect: { 'blk.0.ffn_up.weight': 'q8_0', 'token_embd.weight': 'q8_0' } },
  { type: 'q4_0', layout: 'pure', expect: { 'blk.1.attn_v.weight': 'q4_0' } },
  { type: 'q5_0', layout: 'pure', expect: { 'blk.0.attn_output.weight': 'q5_0' } },
  { type: 'iq4_nl', layout: 'pure', expect: { 'blk.0.ffn_gate.weight': 'iq4_nl' } },
  { type: 'q4_k_m', layout: 'official', expect: { 'token_embd.weight': 'q4_K', 'blk.0.attn_v.weight': 'q4_K',
      'blk.1.attn_v.weight': 'q6_K', 'blk.0.ffn_down.weight': 'q4_K', 'blk.1.ffn_down.weight': 'q6_K', 'output.weight': 'q6_K',
      'blk.0.attn_q.bias': 'f32', 'output_norm.weight': 'f32' } },
  { type: 'q6_k', layout: 'official', expect: { 'blk.0.ffn_up.weight': 'q6_K', 'output.weight': 'q6_K' } },
];

for (const c of cases) {
  test(`mkmodel tiny ${c.type} ${c.layout}: llama.cpp loads and generates; info shows the types`, async () => {
    const file = mkmodel(`${c.type}-${c.layout}`, ['--type', c.type, '--layout', c.layout]);
    try {
      const types = tensorTypes(file);
      assert.equal(Object.keys(types).length, c.layout === 'official' ? 27 : 26);
      assert.equal('output.weight' in types, c.layout === 'official', 'output.weight only in the official layout');
      for (const [name, t] of Object.entries(c.expect)) assert.equal(types[name], t, `${name} type`);
      const a = await greedy(file, PROMPTS[0], 12);
      assert.equal(a.length, 12);
    } finally {
      await unload(file);
      fs.rmSync(file, { force: true });
    }
  });
}

/** tensor name -> type from `mkmodel --plan` (no file written). */
function planTypes(args) {
  const r = run(['mkmodel', '--plan', ...args]);
  assert.equal(r.code, 0, r.err);
  return Object.fromEntries(r.out.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 2)));
}

// The official Qwen2.5-0.5B-Instruct-GGUF mixes: llama.cpp's llama_tensor_get_type rules, and its fallbacks
// for the 896-wide rows that do not split into 256-weight super-blocks (q2_K/q3_K -> iq4_nl, q4_K -> q5_0,
// q5_K -> q5_1, q6_K -> q8_0); ffn_down rows (4864) do split. use_more_bits(i, 24): i < 3, i >= 21,
// (i - 3) % 3 == 2.
test('official layout reproduces llama.cpp type mixes on the 0.5b shape', () => {
  const more = (i) => i < 3 || i >= 21 || (i - 3) % 3 === 2;
  const q4km = planTypes(['--shape', '0.5b', '--type', 'q4_k_m', '--layout', 'official']);
  assert.equal(q4km['token_embd.weight'], 'q5_0');
  assert.equal(q4km['output.weight'], 'q8_0');
  for (let i = 0; i < 24; i++) {
    assert.equal(q4km[`blk.${i}.attn_v.weight`], more(i) ? 'q8_0' : 'q5_0', `q4_k_m attn_v ${i}`);
    assert.equal(q4km[`blk.${i}.ffn_down.weight`], more(i) ? 'q6_K' : 'q4_K', `q4_k_m ffn_down ${i}`);
    for (const m of ['attn_q', 'attn_k', 'attn_output', 'ffn_gate', 'ffn_up']) assert.equal(q4km[`blk.${i}.${m}.weight`], 'q5_0');
    for (const m of ['attn_norm.weight', 'ffn_norm.weight', 'attn_q.bias', 'attn_k.bias', 'attn_v.bias']) assert.equal(q4km[`blk.${i}.${m}`], 'f32');
  }
  const q5km = planTypes(['--shape', '0.5b', '--type', 'q5_k_m', '--layout', 'official']);
  assert.equal(q5km['token_embd.weight'], 'q5_1');
  assert.equal(q5km['blk.0.attn_v.weight'], 'q8_0');
  assert.equal(q5km['blk.3.attn_v.weight'], 'q5_1');
  assert.equal(q5km['blk.3.ffn_down.weight'], 'q5_K');
  assert.equal(q5km['blk.5.ffn_down.weight'], 'q6_K');
  const q3km = planTypes(['--shape', '0.5b', '--type', 'q3_k_m', '--layout', 'official']);
  assert.equal(q3km['blk.0.attn_v.weight'], 'q5_1');     // q5_K for the first two layers
  assert.equal(q3km['blk.2.attn_v.weight'], 'q5_0');     // q4_K after
  assert.equal(q3km['blk.0.ffn_down.weight'], 'q5_K');   // i < n/16
  assert.equal(q3km['blk.1.ffn_down.weight'], 'q4_K');
  assert.equal(q3km['blk.7.attn_output.weight'], 'q5_0');
  assert.equal(q3km['blk.7.ffn_up.weight'], 'iq4_nl');
  const q2k = planTypes(['--shape', '0.5b', '--type', 'q2_k', '--layout', 'official']);
  assert.equal(q2k['blk.4.attn_v.weight'], 'q5_0');       // n_gqa 7 >= 4: q4_K
  assert.equal(q2k['blk.4.ffn_down.weight'], 'q3_K');
  assert.equal(q2k['blk.4.ffn_gate.weight'], 'iq4_nl');
  assert.equal(q2k['token_embd.weight'], 'iq4_nl');
  const q6k = planTypes(['--shape', '0.5b', '--type', 'q6_k', '--layout', 'official']);
  assert.equal(q6k['blk.9.ffn_down.weight'], 'q6_K');
  assert.equal(q6k['blk.9.ffn_up.weight'], 'q8_0');
  assert.equal(q6k['output.weight'], 'q8_0');
  for (const t of ['q8_0', 'q4_0', 'q5_0']) {
    const p = planTypes(['--shape', '0.5b', '--type', t, '--layout', 'official']);
    assert.equal(p['output.weight'], 'q8_0');
    assert.equal(p['token_embd.weight'], t);
  }
  assert.equal(planTypes(['--shape', '0.5b', '--type', 'f16', '--layout', 'official'])['output.weight'], 'f16');
  const pure = planTypes(['--shape', '0.5b', '--type', 'q8_0']);
  assert.ok(!('output.weight' in pure), 'pure layout ties the output head');
  assert.equal(Object.keys(pure).length, 2 + 24 * 12);
  // tiny: all rows split into super-blocks, so k-quants are used directly
  const tq2 = planTypes(['--shape', 'tiny', '--type', 'q2_k', '--layout', 'official']);
  assert.deepEqual([tq2['blk.0.ffn_gate.weight'], tq2['blk.0.attn_v.weight'], tq2['blk.0.attn_output.weight'], tq2['output.weight']],
    ['q2_K', 'q3_K', 'q3_K', 'q6_K']);
});

// llama.cpp reads our blocks as the numbers our decoders give: a file with every type (--layout mixed) vs. the
// same weights passed through our encoder+decoder and stored as f32. llama.cpp quantises activations for
// quantised weights, so the logits are not identical (measured correlation 0.9997-0.9998 per type); a decoder
// that misreads any part of a block drops the correlation far below (an unrelated model gives ~0).
test('llama.cpp decodes every quant type exactly as our reference decoders do', async () => {
  const file = mkmodel('mixed', ['--layout', 'mixed']);
  const ref = mkmodel('mixed-f32', ['--layout', 'mixed', '--as-f32']);
  const other = mkmodel('mixed-seed2', ['--layout', 'mixed', '--as-f32', '--seed', '2']);
  try {
    const types = new Set(Object.values(tensorTypes(file)));
    for (const t of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'iq4_nl', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K'])
      assert.ok(types.has(t), `mixed layout has no ${t} tensor`);
    for (const prompt of PROMPTS) {
      const la = await logits(file, prompt), lb = await logits(ref, prompt), lc = await logits(other, prompt);
      assert.equal(la.length, 151936);
      const r = correlation(la, lb), r0 = correlation(la, lc);
      assert.ok(r > 0.999, `logits vs. their f32 decoding: correlation ${r}`);
      assert.ok(Math.abs(r0) < 0.2, `an unrelated model correlates ${r0}: the check cannot tell`);
    }
  } finally {
    for (const f of [file, ref, other]) { await unload(f); fs.rmSync(f, { force: true }); }
  }
});

test('greedy output of a random model depends on the prompt and rarely repeats', async () => {
  for (const layout of ['pure', 'official']) {
    const file = mkmodel(`vary-${layout}`, ['--type', 'q8_0', '--layout', layout]);
    try {
      const outs = [];
      for (const p of PROMPTS) {
        const toks = await greedy(file, p, 64);
        const distinct = new Set(toks).size;
        let adjacent = 0;
        for (let i = 1; i < toks.length; i++) if (toks[i] === toks[i - 1]) adjacent++;
        assert.ok(distinct >= 40, `${layout}: only ${distinct} distinct tokens in 64`);
        assert.ok(adjacent <= 4, `${layout}: ${adjacent} adjacent repeats in 64`);
        outs.push(toks.join(','));
      }
      assert.notEqual(outs[0], outs[1], `${layout}: two prompts gave the same continuation`);
    } finally {
      await unload(file);
      fs.rmSync(file, { force: true });
    }
  }
});

test('mkmodel is deterministic for a seed and different across seeds', () => {
  const hash = (f) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
  const a = mkmodel('seed-a', ['--type', 'q4_0', '--seed', '7']);
  const ha = hash(a);
  const b = mkmodel('seed-a', ['--type', 'q4_0', '--seed', '7']);
  assert.equal(hash(b), ha);
  const c = mkmodel('seed-c', ['--type', 'q4_0', '--seed', '8']);
  assert.notEqual(hash(c), ha);
  for (const f of [a, c]) fs.rmSync(f, { force: true });
});

test('mkmodel metadata matches llama.cpp qwen2 conventions', () => {
  const file = mkmodel('meta', ['--type', 'q8_0']);
  try {
    const r = run(['info', '-m', file]);
    assert.equal(r.code, 0, r.err);
    const want = [
      /general\.architecture\s+string\s+"qwen2"/, /qwen2\.block_count\s+u32\s+2/, /qwen2\.context_length\s+u32\s+32768/,
      /qwen2\.embedding_length\s+u32\s+256/, /qwen2\.feed_forward_length\s+u32\s+512/,
      /qwen2\.attention\.head_count\s+u32\s+4/, /qwen2\.attention\.head_count_kv\s+u32\s+2/,
      /qwen2\.rope\.freq_base\s+f32\s+1e\+06/, /qwen2\.attention\.layer_norm_rms_epsilon\s+f32\s+1e-06/,
      /tokenizer\.ggml\.model\s+string\s+"gpt2"/, /tokenizer\.ggml\.pre\s+string\s+"qwen2"/,
      /tokenizer\.ggml\.tokens\s+\[string\] x 151936: "!"/, /tokenizer\.ggml\.token_type\s+\[i32\] x 151936/,
      /tokenizer\.ggml\.merges\s+\[string\] x \d+: "Ġ Ġ"/, /tokenizer\.ggml\.eos_token_id\s+u32\s+151645/,
      /tokenizer\.ggml\.padding_token_id\s+u32\s+151643/, /tokenizer\.ggml\.bos_token_id\s+u32\s+151643/,
      /tokenizer\.ggml\.add_bos_token\s+bool\s+false/, /tokenizer\.chat_template\s+string\s+"\{%- if tools %\}/,
      /general\.file_type\s+u32\s+7/,
    ];
    for (const re of want) assert.match(r.out, re);
    assert.match(r.out, /blk\.1\.attn_k\.weight\s+q8_0\s+\[256, 128\]/);
    assert.match(r.out, /blk\.0\.ffn_down\.weight\s+q8_0\s+\[512, 256\]/);
    assert.match(r.out, /token_embd\.weight\s+q8_0\s+\[256, 151936\]/);
    assert.match(r.out, /blk\.0\.attn_k\.bias\s+f32\s+\[128\]/);
  } finally {
    fs.rmSync(file, { force: true });
  }
});

test('llama.cpp sees the real Qwen2.5 vocabulary: special tokens, padding', async () => {
  const file = mkmodel('vocab', ['--type', 'q8_0']);
  try {
    const { tokenize, detokenize } = await import('./lib/llama.mjs');
    assert.deepEqual(await tokenize(file, '<|im_start|>user\n'), [151644, 872, 198]);
    assert.deepEqual(await tokenize(file, 'Hello world'), [9707, 1879]);
    assert.equal(await detokenize(file, [151645]), '<|im_end|>');
    const r = run(['info', '-m', file]);
    assert.match(r.out, /token_type\s+\[i32\] x 151936: 1, 1, 1/);
  } finally {
    await unload(file);
    fs.rmSync(file, { force: true });
  }
});

test('mkmodel and info reject bad input with one clear line', () => {
  let r = run(['mkmodel', '-o', path.join(TMP, 'x.gguf'), '--type', 'q9_9']);
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown --type 'q9_9'/);
  r = run(['mkmodel', '-o', path.join(TMP, 'x.gguf'), '--shape', '0.5b', '--type', 'q4_k_m']);
  assert.equal(r.code, 1);
  assert.match(r.err, /896 weights, not a multiple of q4_K's block of 256; use --layout official/);
  r = run(['mkmodel', '-o', path.join(TMP, 'x.gguf'), '--shape', 'tiny', '--vocab', '/nonexistent/tokenizer.json']);
  assert.equal(r.code, 1);
  assert.match(r.err, /nonexistent\/tokenizer\.json/);
  assert.ok(!fs.existsSync(path.join(TMP, 'x.gguf')) && !fs.existsSync(path.join(TMP, 'x.gguf.part')));
  r = run(['mkmodel', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.out, /--layout/);

  const bad = path.join(TMP, 'bad.gguf');
  fs.writeFileSync(bad, Buffer.from('GGUF\x01\x00\x00\x00', 'latin1'));
  r = run(['info', '-m', bad]);
  assert.equal(r.code, 1);
  assert.equal(r.err.trim().split('\n').length, 1);
  assert.match(r.err, /version 1 is not supported/);
  fs.writeFileSync(bad, '');
  r = run(['info', '-m', bad]);
  assert.equal(r.code, 1);
  assert.match(r.err, /empty/);
  r = run(['info', '-m', TMP]);
  assert.equal(r.code, 1);
  assert.match(r.err, /directory/);
  fs.rmSync(bad, { force: true });
});
