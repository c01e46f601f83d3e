// bench/llama_bench.mjs — the llama.cpp side of bench/compare: the same measurements as `qwen-edge bench`
// (prefill of P tokens in one batch, N tokens decoded one at a time, B parallel sequences) through node-llama-cpp's
// prebuilt CPU backend. Prints one JSON object like `qwen-edge bench --json`. --depth D: D tokens are in each
// sequence's context (evaluated, not timed) before the decode test, as `qwen-edge bench --depth`.
//   node bench/llama_bench.mjs -m FILE [-t 2] [-p 512] [-n 128] [-r 3] [--parallel B] [--depth D]
import {getLlama} from 'node-llama-cpp';

const args = process.argv.slice(2);
const opt = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const modelPath = opt('-m');
const threads = +opt('-t', 2), nPrompt = +opt('-p', 512), nGen = +opt('-n', 128), reps = +opt('-r', 3);
const parallel = +opt('--parallel', 1), depth = +opt('--depth', 0);
if (!modelPath) { console.error('usage: node bench/llama_bench.mjs -m FILE [-t N] [-p N] [-n N] [-r N] [--parallel B] [--depth D]'); process.exit(2); }

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const t0 = performance.now();
const llama = await getLlama({gpu: false, build: 'never', logLevel: 'error', maxThreads: threads});
const model = await llama.loadModel({modelPath, useMmap: true});
const tLoad = (performance.now() - t0) / 1000;
let rng = 1234567n;
const randTok = () => { rng = (rng * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n); return Number((rng >> 33n) % 150000n); };
const prompt = Array.from({length: Math.max(nPrompt, 8)}, randTok);
const deepPrompt = Array.from({length: depth}, randTok);

const pp = [], tg = [];
for (let r = 0; r < reps; r++) {
  const ctx = await model.createContext({contextSize: Math.max(nPrompt, 64) + depth + nGen + 16, batchSize: Math.max(512, parallel),
                                        sequences: parallel, threads: {ideal: threads, min: threads}});
  if (nPrompt > 0) {
    const seq = ctx.getSequence();
    const s = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, nPrompt));
    pp.push(nPrompt / ((performance.now() - s) / 1000));
    seq.dispose();
  }
  if (nGen > 0) {
    const seqs = Array.from({length: parallel}, () => ctx.getSequence());
    for (const seq of seqs) if (depth > 0) await seq.evaluateWithoutGeneratingNewTokens(deepPrompt);
    // every sequence starts from one token and decodes nGen more; the sequences run concurrently, so llama.cpp
    // batches their decode steps together, as its server does
    const s = performance.now();
    await Promise.all(seqs.map(async (seq, b) => {
      let n = 0;
      for await (const _ of seq.evaluate([prompt[b]], {temperature: 0})) { if (++n >= nGen) break; }
    }));
    tg.push(nGen * parallel / ((performance.now() - s) / 1000));
    seqs.forEach((q) => q.dispose());
  }
  await ctx.dispose();
}
const fs = await import('node:fs');
console.log(JSON.stringify({engine: 'llama.cpp', version: '3.22.1', threads, n_prompt: nPrompt, n_gen: nGen, parallel, depth,
  pp_tok_s: pp.length ? +median(pp).toFixed(2) : 0, tg_tok_s: tg.length ? +median(tg).toFixed(2) : 0,
  model_bytes: fs.statSync(modelPath).size, load_s: +tLoad.toFixed(3),
  peak_rss_mb: +(process.resourceUsage().maxRSS / 1024).toFixed(1)}));
await model.dispose();
await llama.dispose();
