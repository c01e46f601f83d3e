// corpus.mjs — a deterministic tokenizer test corpus, generated (nothing big is committed).
// corpusLines(): >= 10,000 single-line texts across the cases that break tokenizers: Chinese and English
// prose, code, emoji and ZWJ sequences, combining marks, NFC-sensitive text, many scripts, long digit runs,
// odd whitespace, contractions, special-token look-alikes. corpusDocs(): multi-line texts (newline
// handling). corpusBadBytes(): byte strings with invalid UTF-8 (no 0x0A byte).
// Same seed, same corpus: a failure can always be reproduced by its line number.

function rng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const zhPhrases = [
  "今天天气很好", "我们一起去公园散步吧", "人工智能正在改变世界", "这个问题的答案是什么", "请帮我写一首关于春天的诗",
  "中华人民共和国成立于一九四九年", "学而时习之，不亦说乎", "老师，我有一个问题想请教您", "北京是中国的首都",
  "深度学习模型需要大量的数据", "欢迎使用通义千问", "小明的妈妈有三个孩子", "他说：“你好！”然后就走了",
  "《红楼梦》是中国古典四大名著之一", "价格是￥128.50元", "请在下方输入您的问题", "机器翻译的质量越来越高",
  "床前明月光，疑是地上霜。举头望明月，低头思故乡。", "编程语言有很多种，比如C、Python和Java",
  "这家公司成立于2015年，总部位于杭州", "（注：以上内容仅供参考）", "第一章 总则", "一、二、三、四、五",
  "繁體中文也需要正確處理", "龍的傳人", "𠀀𠀁𪚥𰻞", "你好吗？我很好，谢谢！", "重新开始", "……",
];
const enWords = (
  "the of and to in is was for that with as on by at from his her they we you it this be are have had not but " +
  "what all were when there can an your which their said if do will each about how up out them then she many " +
  "some so these would other into has more two like him see time could no make than first been its who now " +
  "people my made over did down only way find use may water long little very after words called just where " +
  "most know tokenizer model language Qwen llama transformer byte-level encoding Unicode normalization"
).split(" ");
const contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D", "'lL", "n't", "'x", "'"];
const code = [
  "int main(int argc, char **argv) { return argc > 1 ? 0 : 1; }",
  "    for (size_t i = 0; i < n; i++) sum += a[i] * b[i];",
  "\tif (!p) return -ENOMEM;",
  "def fib(n):\n", "    return n if n < 2 else fib(n - 1) + fib(n - 2)",
  "const x = await fetch(`/api/v1/chat?q=${encodeURIComponent(q)}`);",
  "fn main() { let v: Vec<u32> = (0..10).map(|x| x * x).collect(); println!(\"{:?}\", v); }",
  "SELECT id, name FROM users WHERE created_at >= '2024-01-01' ORDER BY id DESC LIMIT 10;",
  "<div class=\"msg\"><span>&lt;b&gt;</span></div>", "#include <stdio.h>", "x+=1;y-=2;z*=3;w/=4;",
  "func (s *Server) Handle(w http.ResponseWriter, r *http.Request) {", "echo \"$HOME\" | sed -e 's/a/b/g' >> /tmp/x.log",
  "    }\r", "{\"role\": \"user\", \"content\": \"hi\"}", "a = [1, 2, 3]  # comment", "/* C comment */ // line",
  "!!!???...,,,;;;:::", "=>", "->", "::", "&&||", "0x7fffffff", "1e-9", "3.14159", "#!/usr/bin/env bash",
];
const scripts = [
  "مرحبا بالعالم، كيف حالك؟", "السلام عليكم ورحمة الله", "नमस्ते दुनिया, आप कैसे हैं?", "हिन्दी भाषा में लिखा गया पाठ",
  "สวัสดีครับ ยินดีต้อนรับ", "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ", "안녕하세요 세계", "한국어 토크나이저 테스트입니다",
  "こんにちは世界", "カタカナとひらがなと漢字が混ざっている文章です", "Привет, мир! Как дела?", "Γειά σου Κόσμε",
  "שלום עולם", "Xin chào thế giới, tiếng Việt có nhiều dấu", "Ελληνικά και English μαζί", "ไทย123abc中文",
  "Ünïcödé façade naïve coöperate", "Straße groß ẞ", "ǅemal ǈubljana", "ＡＢＣ１２３！", "ｶﾀｶﾅ", "①②③ ⅫⅣ",
  "ℌℍℎ ℵ ∑∫∂ √2 ≠ ≤ ≥ ∞", "÷×±∓", "₀₁₂ ⁰¹²", "٠١٢٣٤٥٦٧٨٩", "०१२३४५६७८९", "〇一二三",
];
const emoji = [
  "😀", "😂🤣", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇨🇳🇺🇸🇯🇵", "1️⃣#️⃣", "❤️", "🧑🏿‍💻", "👩‍❤️‍💋‍👨", "🐉🐲", "✨🎉🎊",
  "☺︎", "🫠", "🏴‍☠️", "🤷‍♂️", "🌍🌎🌏",
];
const nfc = [
  "Cafe\u0301", "e\u0301e\u0300e\u0302", "A\u030A", "\u212B", "\u2126", "\u212A", "o\u0308\u0304", "\u1100\u1161\u11A8",
  "\u1112\u1161\u11AB\u1100\u1173\u11AF", "a\u0328\u0301", "a\u0301\u0328", "q\u0307\u0323", "\u0958", "\u2000x\u2001",
  "\u0344", "\u1E9B\u0323", "\uFB2C", "\u00C5\u0301", "\u304B\u3099", "\u30CF\u309A", "\u0915\u093C", "\u09C7\u09BE",
  "\u0B47\u0B3E", "Z\u0351\u036B\u0343\u036A\u0302\u036B\u033D\u034F\u0334\u0319\u0324\u031E\u0349\u035A\u032F",
  "\u0301leading", "x\u20DD", "\u0E01\u0E34\u0E48", "\uAC00\u11A8", "\u3131\u314F",
];
const specials = [
  "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>", "<tool_call>", "</tool_call>",
  "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|file_sep|>", "<|vision_start|>", "<think>", "</think>",
  "<|im_sta", "<|im_start", "im_start|>", "<||>", "<|>", "<|<|im_end|>|>", "<<|endoftext|>>", "< |im_start| >",
  "<|IM_START|>", "<|im_start|><|im_start|>", "<tool_response>",
];
const spaces = [" ", "  ", "   ", "\t", "\t\t", " \t ", "\r", " \r ", "\u00A0", "\u3000", "\u2009", "\u202F", "\u2028",
  "\u200B", "\u2060", "\u00AD", "\u000B", "\u000C", "\u1680", "\u205F", "\u180E"];

const pick = (r, a) => a[Math.floor(r() * a.length)];
const int = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1));

function digits(r) {
  const n = pick(r, [1, 2, 3, 4, 7, 12, 20, 50, 100]);
  let s = "";
  for (let i = 0; i < n; i++) s += String(int(r, 0, 9));
  return pick(r, [s, s + "." + int(r, 0, 999), "-" + s, s.replace(/(\d)(?=(\d{3})+$)/g, "$1,"), "+86 " + s, "v" + s]);
}

function english(r) {
  let out = [];
  const n = int(r, 3, 25);
  for (let i = 0; i < n; i++) {
    let w = pick(r, enWords);
    const c = r();
    if (c < 0.1) w = w[0].toUpperCase() + w.slice(1);
    else if (c < 0.13) w = w.toUpperCase();
    if (r() < 0.12) w += pick(r, contractions);
    if (r() < 0.1) w += pick(r, [",", ".", "!", "?", ";", ":", "...", ")", "\""]);
    out.push(w);
  }
  return out.join(" ");
}

function chinese(r) {
  let s = "";
  const n = int(r, 1, 6);
  for (let i = 0; i < n; i++) s += pick(r, zhPhrases) + pick(r, ["，", "。", "！", "？", "；", "", "、", "：", " "]);
  return s;
}

// Code points from long-established blocks only: the Unicode versions of PCRE2, V8 and llama.cpp differ on
// characters assigned recently, which would test the libraries' ages rather than our code.
const blocks = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x5ff], [0x600, 0x6ff],
  [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f], [0x2100, 0x22ff], [0x2500, 0x25ff],
  [0x3000, 0x30ff], [0x4e00, 0x9fa5], [0xac00, 0xd7a3], [0xff00, 0xffef], [0x1f300, 0x1f64f], [0x20000, 0x2a6d6]];
function randomUnicode(r) {
  let s = "";
  const n = int(r, 1, 30);
  for (let i = 0; i < n; i++) {
    const [lo, hi] = pick(r, blocks);
    const cp = int(r, lo, hi);
    if (cp === 0x0a) continue;
    s += String.fromCodePoint(cp);
  }
  return s;
}

function mixed(r) {
  const parts = [];
  const n = int(r, 2, 8);
  for (let i = 0; i < n; i++) {
    const k = int(r, 0, 10);
    parts.push([chinese, english, () => pick(r, code), () => pick(r, scripts), () => pick(r, emoji),
      () => pick(r, nfc), () => pick(r, specials), digits, () => pick(r, spaces), randomUnicode,
      () => pick(r, contractions)][k](r));
  }
  return parts.join(pick(r, ["", " ", "  ", "\t", pick(r, spaces)]));
}

export function corpusLines(seed = 20250101) {
  const r = rng(seed);
  const lines = [""];
  const fixed = [...zhPhrases, ...code.map((c) => c.replace(/\n/g, "")), ...scripts, ...emoji, ...nfc, ...specials,
    ...spaces, ...contractions];
  for (const s of fixed) lines.push(s.replace(/\n/g, " "));
  const gens = [chinese, english, mixed, mixed, mixed, digits, randomUnicode, (r) => pick(r, code).replace(/\n/g, ""),
    (r) => pick(r, spaces).repeat(int(r, 1, 40)) + english(r) + pick(r, spaces).repeat(int(r, 0, 10)),
    (r) => pick(r, scripts) + " " + pick(r, scripts), (r) => pick(r, emoji).repeat(int(r, 1, 5)) + chinese(r),
    (r) => pick(r, nfc) + english(r) + pick(r, nfc)];
  while (lines.length < 10500) lines.push(pick(r, gens)(r).replace(/\n/g, " "));
  // a few long lines (a long CJK run is one pre-token: exercises the BPE heap)
  lines.push(chinese(r).repeat(40), "9".repeat(3000), "a".repeat(5000), " ".repeat(2000) + "x", "😀".repeat(500));
  return lines;
}

export function corpusDocs(seed = 7) {
  const r = rng(seed);
  const lines = corpusLines(seed + 1);
  const docs = ["\n", "\n\n", "\r\n", " \n", "\n ", "a\nb", "a \n b", "a\n\n\nb", "x\r\n\r\ny", "\t\n\t", "line \n\n  indented",
    "<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"];
  for (let i = 0; i < 600; i++) {
    const n = int(r, 2, 8);
    let d = "";
    for (let k = 0; k < n; k++) d += pick(r, lines) + pick(r, ["\n", "\n\n", "\r\n", " \n", "\n    ", "\n\t", "  \n\n ", "\u2028"]);
    docs.push(d);
  }
  return docs;
}

export function corpusBadBytes(seed = 99) {
  const r = rng(seed);
  const bad = [[0x80], [0xbf], [0xc0, 0x80], [0xc1, 0xbf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80],
    [0xf5], [0xff], [0xfe], [0xe4, 0xbd], [0xe4], [0xf0, 0x9f, 0x98], [0xf0, 0x9f], [0xc3], [0xe2, 0x82, 0x28], [0x00]];
  const out = [];
  for (let i = 0; i < 400; i++) {
    const parts = [];
    const n = int(r, 1, 6);
    for (let k = 0; k < n; k++) {
      if (r() < 0.5) parts.push(Buffer.from(pick(r, [english, chinese, digits])(r), "utf8"));
      else parts.push(Buffer.from(pick(r, bad)));
    }
    out.push(Buffer.concat(parts));
  }
  return out;
}

// Whitespace on which the references disagree among themselves: HF's Rust tokenizers (Oniguruma) and
// llama.cpp count U+0085 as \s and U+FEFF not; JavaScript's \s (used by transformers.js) the other way
// round. We follow Rust HF and llama.cpp, so these lines are compared with llama.cpp only.
export function whitespaceEdge() {
  const out = [];
  for (const w of ["\u0085", "\uFEFF"])
    for (const f of [(x) => `a${x} b`, (x) => `a ${x}b`, (x) => `x${x}${x}y`, (x) => `${x}`, (x) => `end ${x}`, (x) => `中${x}文 ${x}1`])
      out.push(f(w));
  return out;
}
