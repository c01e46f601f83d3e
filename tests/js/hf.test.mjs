// hf.test.mjs — Hugging Face folders: random-weight Qwen2 folders of the tiny shape (bf16 single file, f16
// sharded with an index and a separate lm_head) written by lib/safetensors.mjs, converted by
// `qwen-edge convert`; `qwen-edge info` shows the right tensors; the tensor bytes in the GGUF (read with
// node-llama-cpp's own GGUF parser) equal the source; llama.cpp loads and runs the result; bad folders give
// one clear error and leave no output file; qwen-edge's engine and llama.cpp give the same greedy tokens on a
// converted folder, and `run -m DIR` (the loader converting the folder itself) gives the same as the GGUF.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { writeQwenFolder, readSafetensorsHeader, SHAPES } from './lib/safetensors.mjs';
import { greedy, tokenize, dispose } from './lib/llama.mjs';

const BIN = process.env.QE_BIN || 'build/qwen-edge';
const TMP = path.resolve(process.env.QE_TEST_TMP || 'build/tests/tmp', `hf-${process.pid}`);

function qe(args, env = {}) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', env: { ...process.env, QWEN_EDGE_HOME: path.join(TMP, 'home'), ...env }, maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let bf16; // {dir, cfg, tensors}
let f16;
before(() => {
  fs.rmSync(TMP, { recursive: true, force: true });
  fs.mkdirSync(TMP, { recursive: true });
  bf16 = writeQwenFolder(path.join(TMP, 'qwen-bf16'), { dtype: 'BF16', tied: true, seed: 1 });
  f16 = writeQwenFolder(path.join(TMP, 'qwen-f16'), { dtype: 'F16', tied: false, shards: 2, seed: 2 });
});
after(async () => {
  await dispose();
  fs.rmSync(TMP, { recursive: true, force: true });
});

// name -> {type, shape} from `qwen-edge info`
function infoTensors(out) {
  const m = new Map();
  for (const l of out.split('\n')) {
    const x = /^ {2}(\S+)\s+(\S+)\s+\[([\d, ]+)\]\s+\d+\s+\d+$/.exec(l);
    if (x) m.set(x[1], { type: x[2], shape: x[3].split(',').map((s) => Number(s)) });
  }
  return m;
}

const HF2GGUF = [
  [/^model\.embed_tokens\.weight$/, 'token_embd.weight'],
  [/^model\.layers\.(\d+)\.input_layernorm\.weight$/, 'blk.$1.attn_norm.weight'],
  [/^model\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)$/, 'blk.$1.attn_$2.$3'],
  [/^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$/, 'blk.$1.attn_output.weight'],
  [/^model\.layers\.(\d+)\.post_attention_layernorm\.weight$/, 'blk.$1.ffn_norm.weight'],
  [/^model\.layers\.(\d+)\.mlp\.(gate|up|down)_proj\.weight$/, 'blk.$1.ffn_$2.weight'],
  [/^model\.norm\.weight$/, 'output_norm.weight'],
  [/^lm_head\.weight$/, 'output.weight'],
];
const ggufName = (hf) => { for (const [re, to] of HF2GGUF) if (re.test(hf)) return hf.replace(re, to); return null; };

test('convert a bf16 folder (tied): names, shapes, types and metadata', () => {
  const out = path.join(TMP, 'bf16.gguf');
  const r = qe(['convert', bf16.dir, '-o', out]);
  assert.equal(r.code, 0, r.err);
  assert.ok(!fs.existsSync(out + '.part'));
  const info = qe(['info', '-m', out]);
  assert.equal(info.code, 0, info.err);
  const t = infoTensors(info.out);
  assert.equal(t.size, 1 + 12 * 2 + 1, [...t.keys()].join(' '));
  assert.deepEqual(t.get('token_embd.weight'), { type: 'bf16', shape: [256, 151936] });
  assert.deepEqual(t.get('blk.1.attn_k.weight'), { type: 'bf16', shape: [256, 128] });
  assert.deepEqual(t.get('blk.1.attn_k.bias'), { type: 'f32', shape: [128] });
  assert.deepEqual(t.get('blk.0.attn_output.weight'), { type: 'bf16', shape: [256, 256] });
  assert.deepEqual(t.get('blk.0.ffn_down.weight'), { type: 'bf16', shape: [512, 256] });
  assert.deepEqual(t.get('blk.0.ffn_up.weight'), { type: 'bf16', shape: [256, 512] });
  assert.deepEqual(t.get('output_norm.weight'), { type: 'f32', shape: [256] });
  assert.ok(!t.has('output.weight'), 'tied: no output.weight');
  for (const [k, v] of [['general.architecture', '"qwen2"'], ['qwen2.block_count', '2'], ['qwen2.embedding_length', '256'],
    ['qwen2.feed_forward_length', '512'], ['qwen2.attention.head_count', '4'], ['qwen2.attention.head_count_kv', '2'],
    ['qwen2.rope.freq_base', '1e\\+06'], ['qwen2.context_length', '32768'], ['general.file_type', '32'],
    ['tokenizer.ggml.model', '"gpt2"'], ['tokenizer.ggml.pre', '"qwen2"'], ['tokenizer.ggml.eos_token_id', '151645'],
    ['tokenizer.ggml.padding_token_id', '151643'], ['tokenizer.ggml.bos_token_id', '151643'], ['tokenizer.ggml.add_bos_token', 'false'],
    ['general.name', '"qwen2-tiny-bf16"']])
    assert.match(info.out, new RegExp(`^ {2}${k.replace(/\./g, '\\.')}\\s+\\S+\\s+${v}`, 'm'), k);
  assert.match(info.out, /tokenizer\.ggml\.tokens\s+\[string\] x 151936/);
  assert.match(info.out, /tokenizer\.chat_template\s+string\s+"\{% for message in messages %\}/);
});

test('the GGUF holds exactly the source weights (read with llama.cpp\'s GGUF parser)', async () => {
  const out = path.join(TMP, 'bf16.gguf');
  const gi = await readGgufFileInfo(out, { readTensorInfo: true, ignoreKeys: ['tokenizer.ggml.tokens', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges'] });
  const base = gi.infoEndOffset;
  assert.ok(base > 0, `data offset ${base}`);
  const byName = new Map(gi.fullTensorInfo.map((t) => [t.name, t]));
  const gguf = fs.openSync(out, 'r');
  const st = readSafetensorsHeader(path.join(bf16.dir, 'model.safetensors'));
  const src = fs.openSync(path.join(bf16.dir, 'model.safetensors'), 'r');
  try {
    let checked = 0;
    for (const [name, h] of Object.entries(st.tensors)) {
      if (name === '__metadata__') continue;
      const g = byName.get(ggufName(name));
      assert.ok(g, `${name} -> ${ggufName(name)} missing`);
      assert.deepEqual(g.dimensions.map(Number), [...h.shape].reverse(), name);
      const n = h.data_offsets[1] - h.data_offsets[0];
      const a = Buffer.alloc(n);
      fs.readSync(src, a, 0, n, st.offset + h.data_offsets[0]);
      if (h.shape.length === 2) {
        const b = Buffer.alloc(n);
        fs.readSync(gguf, b, 0, n, base + Number(g.offset));
        assert.ok(a.equals(b), `${name}: bytes differ`);
      } else { // 1-D: f32 of the bf16 values, exactly
        const b = Buffer.alloc(n * 2);
        fs.readSync(gguf, b, 0, n * 2, base + Number(g.offset));
        for (let i = 0; i < n / 2; i++) assert.equal(b.readUInt32LE(4 * i), a.readUInt16LE(2 * i) << 16 >>> 0, `${name}[${i}]`);
      }
      checked++;
    }
    assert.equal(checked, 26);
  } finally {
    fs.closeSync(gguf);
    fs.closeSync(src);
  }
});

test('convert a sharded f16 folder with lm_head to q8_0; llama.cpp loads and runs it', async () => {
  const out = path.join(TMP, 'f16-q8.gguf');
  const r = qe(['convert', f16.dir, '-o', out, '--type', 'q8_0']);
  assert.equal(r.code, 0, r.err);
  const t = infoTensors(qe(['info', '-m', out]).out);
  assert.deepEqual(t.get('output.weight'), { type: 'q8_0', shape: [256, 151936] });
  assert.deepEqual(t.get('token_embd.weight'), { type: 'q8_0', shape: [256, 151936] });
  assert.deepEqual(t.get('blk.1.ffn_gate.weight'), { type: 'q8_0', shape: [256, 512] });
  assert.deepEqual(t.get('blk.1.ffn_norm.weight'), { type: 'f32', shape: [256] });
  const ids = await greedy(out, 'Hello, world', 8);
  assert.equal(ids.length, 8);
  for (const id of ids) assert.ok(Number.isInteger(id) && id >= 0 && id < 151936);
  // the bf16 file loads too (running it is slow on CPUs without bf16 instructions, so only tokenize)
  assert.deepEqual(await tokenize(path.join(TMP, 'bf16.gguf'), '<|im_start|>user'), [151644, 872]);
});

test('convert --type: f16 and f32 work, k-quants are refused clearly', () => {
  for (const ty of ['f16', 'f32']) {
    const out = path.join(TMP, `bf16-${ty}.gguf`);
    const r = qe(['convert', bf16.dir, '-o', out, '--type', ty]);
    assert.equal(r.code, 0, r.err);
    assert.equal(infoTensors(qe(['info', '-m', out]).out).get('blk.0.attn_q.weight').type, ty);
    fs.rmSync(out);
  }
  // k-quants: written uniformly if quant.c can quantize them, else refused with a clear message
  const x = path.join(TMP, 'x.gguf');
  const r = qe(['convert', bf16.dir, '-o', x, '--type', 'q4_K']);
  if (r.code === 0) assert.equal(infoTensors(qe(['info', '-m', x]).out).get('blk.0.ffn_up.weight').type, 'q4_K');
  else assert.match(r.err, /converting to q4_K is not implemented/);
  fs.rmSync(x, { force: true });
  const r2 = qe(['convert', bf16.dir, '-o', path.join(TMP, 'x.gguf'), '--type', 'q9']);
  assert.equal(r2.code, 2);
  assert.match(r2.err, /unknown --type 'q9'/);
});

// --- bad folders: one clear line each, and no output file ---------------------------------------------
function badFolder(name, edit, opts = {}) {
  const dir = path.join(TMP, name);
  writeQwenFolder(dir, { shape: 'micro', dtype: 'F32', ...opts });
  edit(dir);
  const out = path.join(TMP, `${name}.gguf`);
  const r = qe(['convert', dir, '-o', out]);
  assert.equal(r.code, 1, `${name}: ${r.err}`);
  assert.ok(!fs.existsSync(out) && !fs.existsSync(out + '.part'), `${name}: output left behind`);
  assert.equal(r.err.trim().split('\n').length, 1, r.err);
  return r.err;
}
const editConfig = (dir, f) => {
  const p = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(p, 'utf8'));
  f(c);
  fs.writeFileSync(p, JSON.stringify(c));
};

test('bad folders give clear errors', () => {
  assert.match(badFolder('more-layers', (d) => editConfig(d, (c) => { c.num_hidden_layers = 3; })),
    /tensor model\.layers\.2\.input_layernorm\.weight is missing \(config\.json: 3 layers\)/);
  assert.match(badFolder('wrong-ffn', (d) => editConfig(d, (c) => { c.intermediate_size = 160; })),
    /tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[128, 64\], config\.json implies \[160, 64\]/);
  assert.match(badFolder('llama', (d) => editConfig(d, (c) => { c.architectures = ['LlamaForCausalLM']; })),
    /model LlamaForCausalLM is not supported: qwen-edge runs Qwen2ForCausalLM/);
  assert.match(badFolder('rope-linear', (d) => editConfig(d, (c) => { c.rope_scaling = { type: 'linear', factor: 2 }; })),
    /rope_scaling type "linear" is not supported \(only yarn\)/);
  assert.match(badFolder('no-hidden', (d) => editConfig(d, (c) => { delete c.hidden_size; })), /"hidden_size" is missing/);
  assert.match(badFolder('bad-heads', (d) => editConfig(d, (c) => { c.num_key_value_heads = 3; })), /do not divide evenly/);
  assert.match(badFolder('truncated', (d) => {
    const p = path.join(d, 'model.safetensors');
    fs.truncateSync(p, fs.statSync(p).size - 100);
  }), /model\.safetensors: tensor '[^']+': data_offsets \[\d+, \d+\] reach past the end of the data .*truncated file\?/);
  assert.match(badFolder('garbage', (d) => fs.writeFileSync(path.join(d, 'model.safetensors'), Buffer.from('not a model at all'))),
    /model\.safetensors: header length \d+ does not fit the file/);
  assert.match(badFolder('bad-config-json', (d) => fs.writeFileSync(path.join(d, 'config.json'), '{"hidden_size": 64,')),
    /config\.json: not valid JSON/);
  assert.match(badFolder('no-lm-head', (d) => editConfig(d, (c) => { c.tie_word_embeddings = false; })),
    /lm_head\.weight is missing and config\.json does not say tie_word_embeddings/);
  assert.match(badFolder('no-weights', (d) => fs.rmSync(path.join(d, 'model.safetensors'))),
    /no model\.safetensors or model\.safetensors\.index\.json/);
  assert.match(badFolder('bad-index', (d) => {
    const p = path.join(d, 'model.safetensors.index.json');
    const ix = JSON.parse(fs.readFileSync(p, 'utf8'));
    ix.weight_map['model.norm.weight'] = '../../etc/passwd';
    fs.writeFileSync(p, JSON.stringify(ix));
  }, { shards: 2 }), /weight_map\["model\.norm\.weight"\] is not a file name in the folder/);
  assert.match(badFolder('missing-shard', (d) => fs.rmSync(path.join(d, 'model-00002-of-00002.safetensors')), { shards: 2 }),
    /model-00002-of-00002\.safetensors/);
  assert.match(badFolder('no-tokenizer', (d) => fs.rmSync(path.join(d, 'tokenizer.json'))), /no tokenizer\.json/);
  const r = qe(['convert', path.join(TMP, 'nowhere'), '-o', path.join(TMP, 'n.gguf')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /is not a Hugging Face model folder \(no config\.json\)/);
});

// --- the converted model in our engine and in llama.cpp ------------------------------------------------
const PROMPT = 'The quick brown fox jumps over the lazy dog. 人工智能正在改变世界。';

test('qwen-edge and llama.cpp generate the same greedy tokens from a converted folder (q8_0)', async () => {
  const out = path.join(TMP, 'bf16-q8.gguf');
  const r = qe(['convert', bf16.dir, '-o', out, '--type', 'q8_0']);
  assert.equal(r.code, 0, r.err);
  const ids = await tokenize(out, PROMPT);
  assert.ok(ids.length > 10);
  const ref = await greedy(out, ids, 16);
  const ours = execFileSync(BIN, ['run', '-m', out, '--eval-greedy', ids.join(' '), '-n', '16', '-t', '2'], { encoding: 'utf8' })
    .trim().split(/\s+/).map(Number);
  assert.deepEqual(ours, ref);
  assert.ok(new Set(ref).size > 4, `the random model should not just repeat itself: ${ref}`);
});

test('run -m DIR (a safetensors folder) answers like run -m on its converted GGUF', (t) => {
  const gguf = path.join(TMP, 'bf16.gguf'); // `convert` with the default type keep, as the loader does
  const args = ['--raw', '--ids', '-n', '16', '--temp', '0', '-t', '2', '-p', PROMPT];
  const fromFile = qe(['run', '-m', gguf, ...args]);
  assert.equal(fromFile.code, 0, fromFile.err);
  const fromDir = qe(['run', '-m', bf16.dir, ...args]);
  if (/not wired yet/.test(fromDir.err)) {
    t.todo('src/model.c does not call qe_hf_convert_cached yet (the lead wires it)');
    return;
  }
  assert.equal(fromDir.code, 0, fromDir.err);
  assert.equal(fromDir.out.trim(), fromFile.out.trim());
  assert.equal(fromFile.out.trim().split(/\s+/).length, 16);
  // converted once into the cache; the second run reuses it
  const cache = path.join(TMP, 'home', 'cache');
  const files = fs.readdirSync(cache).filter((f) => f.endsWith('.gguf'));
  assert.equal(files.length, 1, files.join(' '));
  const again = qe(['run', '-m', bf16.dir, ...args]);
  assert.equal(again.out.trim(), fromFile.out.trim());
  assert.doesNotMatch(again.err, /converting/);
});

test('rope_scaling yarn in config.json is written as llama.cpp\'s converter writes it', () => {
  const dir = path.join(TMP, 'qwen-yarn');
  writeQwenFolder(dir, { dtype: 'BF16', seed: 3 });
  const p = path.join(dir, 'config.json');
  const c = JSON.parse(fs.readFileSync(p, 'utf8'));
  c.rope_scaling = { factor: 4.0, original_max_position_embeddings: 32768, type: 'yarn' };
  fs.writeFileSync(p, JSON.stringify(c));
  const out = path.join(TMP, 'yarn.gguf');
  const r = qe(['convert', dir, '-o', out, '--type', 'q8_0']);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /YaRN rope scaling \(factor 4\)/);
  const info = qe(['info', '-m', out]).out;
  assert.match(info, /qwen2\.rope\.scaling\.type\s+string\s+"yarn"/);
  assert.match(info, /qwen2\.rope\.scaling\.factor\s+f32\s+4\b/);
  assert.match(info, /qwen2\.rope\.scaling\.original_context_length\s+u32\s+32768/);
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(out);
});
