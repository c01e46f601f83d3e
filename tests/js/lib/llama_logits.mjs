// llama_logits.mjs — teacher-forced logits from llama.cpp (node-llama-cpp's controlledEvaluate), for parity tests.
// Returns, for every position i of ids, the logits llama.cpp gives for the token after ids[0..i]: either the full
// vocabulary (as a Map id -> logit) or only its top-k entries, to keep memory small over hundreds of positions.
import { loadModel } from './llama.mjs';

/**
 * @param {string} modelPath
 * @param {number[]} ids            the token sequence to run
 * @param {object} opt              full: positions (Set) that get the whole vocabulary; top: entries kept elsewhere
 * @returns {Promise<Map<number, number>[]>}  one Map (token id -> logit), sorted by logit descending
 */
export async function llamaLogits(modelPath, ids, { full = new Set(), top = 20, threads = 2, flashAttention = false } = {}) {
  const model = await loadModel(modelPath);
  const ctx = await model.createContext({ contextSize: Math.max(256, ids.length + 8), batchSize: 512, threads, sequences: 1, flashAttention });
  try {
    const seq = ctx.getSequence();
    const input = ids.map((t, i) => [t, { generateNext: { logits: full.has(i) ? true : { filter: { tokens: [], includeTop: top } } } }]);
    const out = await seq.controlledEvaluate(input);
    return out.map((o) => o?.next?.logits ?? new Map());
  } finally {
    await ctx.dispose();
  }
}
