// llama.mjs — llama.cpp (via node-llama-cpp and its prebuilt CPU binary) as the reference implementation for
// tests: load a GGUF, tokenize, greedy-generate, read logits. One llama instance per process, models cached
// by path. Never downloads or builds anything.
import { getLlama } from 'node-llama-cpp';

let llamaPromise = null;
const models = new Map();

/** The shared llama.cpp instance (CPU only, prebuilt @node-llama-cpp/linux-x64 binary). */
export function llama() {
  llamaPromise ??= getLlama({ gpu: false, build: 'never', usePrebuiltBinaries: true, skipDownload: true,
    logLevel: 'error', progressLogs: false });
  return llamaPromise;
}

/** Loads (once) and returns the model at path. */
export async function loadModel(modelPath) {
  if (!models.has(modelPath)) {
    const l = await llama();
    models.set(modelPath, l.loadModel({ modelPath, gpuLayers: 0 }));
  }
  return models.get(modelPath);
}

/** Token ids of text (special tokens like <|im_start|> are parsed as special tokens). */
export async function tokenize(modelPath, text, { special = true } = {}) {
  const model = await loadModel(modelPath);
  return Array.from(model.tokenize(text, special));
}

/** Text of token ids. */
export async function detokenize(modelPath, ids) {
  const model = await loadModel(modelPath);
  return model.detokenize(ids, true);
}

/**
 * Greedy (temperature 0) generation: returns the next n token ids after the prompt (a string or token ids).
 * Stops early only at end-of-generation tokens when stopAtEog is true.
 */
export async function greedy(modelPath, prompt, n, { contextSize = 512, stopAtEog = false, threads = 1 } = {}) {
  const model = await loadModel(modelPath);
  const tokens = typeof prompt === 'string' ? model.tokenize(prompt, true) : prompt;
  // flash attention off: its fp16 accumulation of V is lossier than the plain path we compare against
  const ctx = await model.createContext({ contextSize, threads, sequences: 1, flashAttention: false });
  try {
    const seq = ctx.getSequence();
    const out = [];
    for await (const t of seq.evaluate(tokens, { temperature: 0 })) {
      if (stopAtEog && model.isEogToken(t)) break;
      out.push(t);
      if (out.length >= n) break;
    }
    return out;
  } finally {
    await ctx.dispose();
  }
}

/** Frees one model (loaded models keep their weights in memory until unloaded). */
export async function unload(modelPath) {
  const m = models.get(modelPath);
  if (!m) return;
  models.delete(modelPath);
  await (await m).dispose();
}

/** Disposes every model and the llama instance (call at the end of a test file). */
export async function dispose() {
  for (const m of models.values()) (await m).dispose();
  models.clear();
  if (llamaPromise) await (await llamaPromise).dispose();
  llamaPromise = null;
}

/**
 * Raw logits (Float32Array of n_vocab) for the next token after the prompt (a string or token ids).
 */
export async function logits(modelPath, prompt, { contextSize = 512, threads = 1 } = {}) {
  const model = await loadModel(modelPath);
  const tokens = typeof prompt === 'string' ? Array.from(model.tokenize(prompt, true)) : prompt;
  const ctx = await model.createContext({ contextSize, threads, sequences: 1, flashAttention: false });
  try {
    const seq = ctx.getSequence();
    const items = tokens.map((t, i) => (i === tokens.length - 1 ? [t, { generateNext: { logits: true } }] : t));
    const res = await seq.controlledEvaluate(items);
    const map = res[res.length - 1]?.next?.logits;
    if (!map) throw new Error('llama.cpp returned no logits');
    let n = 0;
    for (const tok of map.keys()) n = Math.max(n, tok + 1);
    const out = new Float32Array(n);
    for (const [tok, v] of map) out[tok] = v;
    return out;
  } finally {
    await ctx.dispose();
  }
}
