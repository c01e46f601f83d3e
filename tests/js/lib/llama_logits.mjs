// llama_logits.mjs — teacher-forced reference from llama.cpp (node-llama-cpp's controlledEvaluate), for parity tests.
// For every position i of ids it returns llama.cpp's greedy next token after ids[0..i]; at the positions in `logitsAt`
// it also returns logits (the whole vocabulary, or only the top entries). Logits are requested at a few positions
// only: node-llama-cpp builds a JavaScript Map per position, ~40 ms each for 151,936 entries, while the greedy
// token costs nothing extra.
// Flash attention is off by default: its fp16 accumulation of V is lossier than the plain path qwen-edge reproduces.
import { loadModel } from './llama.mjs';

/**
 * @returns {Promise<{top1: number[], logits: Map<number, Map<number, number>>}>}
 *          top1[i] = llama.cpp's argmax at position i; logits.get(i) = Map(token id -> logit) at the chosen positions
 */
export async function llamaLogits(modelPath, ids, { logitsAt = new Set(), full = new Set(), top = 20, threads = 2,
                                                     flashAttention = false } = {}) {
  const model = await loadModel(modelPath);
  const ctx = await model.createContext({ contextSize: Math.max(256, ids.length + 8), batchSize: 512, threads,
                                          sequences: 1, flashAttention });
  try {
    const seq = ctx.getSequence();
    const input = ids.map((t, i) => {
      const next = { token: true, options: { temperature: 0 } };
      if (full.has(i)) next.logits = true;
      else if (logitsAt.has(i)) next.logits = { filter: { tokens: [], includeTop: top } };
      return [t, { generateNext: next }];
    });
    const out = await seq.controlledEvaluate(input);
    const logits = new Map();
    out.forEach((o, i) => { if (o?.next?.logits) logits.set(i, o.next.logits); });
    return { top1: out.map((o) => o?.next?.token ?? -1), logits };
  } finally {
    await ctx.dispose();
  }
}
