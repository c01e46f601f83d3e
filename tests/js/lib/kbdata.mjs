// kbdata.mjs — real Chinese text for the knowledge-base tests and benchmark: Debian's debian-reference-zh-cn
// (the Debian Reference as HTML, text and PDF) and manpages-zh (Chinese man pages), fetched with
// `apt-get download` and unpacked with `dpkg-deb -x` into QE_TEST_TMP/kbdata (cached; never committed).
// Question sets are built from the documents' own structure: a section's title must find that section, a
// sentence of its body must find it too; a man page's NAME line must find that page.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const TMP = process.env.QE_TEST_TMP || 'build/tests/tmp';
const BIN = process.env.QE_BIN || 'build/qwen-edge';

/** Downloads and unpacks the two packages once. Returns null (with the reason) when apt cannot fetch them. */
export function kbData() {
  const dir = path.resolve(TMP, 'kbdata');
  const done = path.join(dir, 'unpacked');
  if (!fs.existsSync(done)) {
    fs.mkdirSync(dir, { recursive: true });
    const get = () => spawnSync('apt-get', ['download', 'debian-reference-zh-cn', 'manpages-zh'], { cwd: dir, encoding: 'utf8' });
    let r = get();
    // a machine whose package lists were never fetched (scripts/deps.sh runs apt-get update only when it
    // installs something) knows neither package yet: fetch the lists once and try again
    if (r.status !== 0 && spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8' }).status === 0) r = get();
    const debs = fs.readdirSync(dir).filter((f) => f.endsWith('.deb'));
    if (debs.length < 2) return { skip: `apt-get download failed: ${(r.stderr || r.error || '').toString().slice(0, 300)}` };
    for (const d of debs) execFileSync('dpkg-deb', ['-x', path.join(dir, d), path.join(dir, 'x')]);
    fs.writeFileSync(done, '');
  }
  const ref = path.join(dir, 'x/usr/share/debian-reference');
  const out = path.join(dir, 'prepared');
  if (!fs.existsSync(path.join(out, 'ok'))) {
    fs.rmSync(out, { recursive: true, force: true });
    fs.mkdirSync(path.join(out, 'html'), { recursive: true });
    fs.mkdirSync(path.join(out, 'man'), { recursive: true });
    // chapters only: index.html is one big table of contents
    for (const f of fs.readdirSync(ref)) if (/^ch\d+\.zh-cn\.html$/.test(f)) fs.copyFileSync(path.join(ref, f), path.join(out, 'html', f));
    fs.writeFileSync(path.join(out, 'debian-reference.txt'), execFileSync('gzip', ['-dc', path.join(ref, 'debian-reference.zh-cn.txt.gz')], { maxBuffer: 64 << 20 }));
    fs.copyFileSync(path.join(ref, 'debian-reference.zh-cn.pdf'), path.join(out, 'debian-reference.pdf'));
    const mandir = path.join(dir, 'x/usr/share/man/zh_CN/man1');
    for (const f of fs.readdirSync(mandir)) {
      if (!f.endsWith('.1.gz')) continue;
      const roff = execFileSync('gzip', ['-dc', path.join(mandir, f)], { maxBuffer: 16 << 20 }).toString('utf8');
      const md = roffToMarkdown(roff);
      if (md) fs.writeFileSync(path.join(out, 'man', f.replace(/\.1\.gz$/, '.md')), md);
    }
    fs.writeFileSync(path.join(out, 'ok'), '');
  }
  return { dir: out, html: path.join(out, 'html'), txt: path.join(out, 'debian-reference.txt'),
           pdf: path.join(out, 'debian-reference.pdf'), man: path.join(out, 'man') };
}

/** A man page's roff source as Markdown (.SH -> ##, fonts and escapes stripped): enough for search. */
export function roffToMarkdown(roff) {
  const out = [];
  let name = '';
  for (let line of roff.split('\n')) {
    if (line.startsWith('.\\"') || line.startsWith("'\\\"")) continue;
    line = line.replace(/\\f[BIRP]|\\f\(..|\\\/|\\,|\\&|\\\^|\\\||\\0/g, '').replace(/\\-/g, '-').replace(/\\e/g, '\\').replace(/\\\(co/g, '©')
      .replace(/\\\(..|\\\*.|\\\[[^\]]*\]/g, '');
    const m = line.match(/^\.(\w+)\s*(.*)$/);
    if (m) {
      const [, req, arg] = m;
      if (req === 'SH' || req === 'SS') out.push('', `${req === 'SH' ? '##' : '###'} ${arg.replace(/"/g, '')}`, '');
      else if (req === 'TH') name = arg.split(/\s+/)[0].replace(/"/g, '').toLowerCase();
      else if (req === 'PP' || req === 'P' || req === 'LP' || req === 'TP' || req === 'IP' || req === 'sp' || req === 'br') out.push('');
      else if (['B', 'I', 'BR', 'RB', 'IR', 'RI', 'BI', 'IB'].includes(req)) out.push(arg.replace(/"/g, ''));
      continue;
    }
    out.push(line);
  }
  const body = out.join('\n').replace(/\n{3,}/g, '\n\n').trim();
  return name && body ? `# ${name}\n\n${body}\n` : '';
}

export function run(args, opts = {}) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...opts });
  return { code: r.status, out: r.stdout, err: r.stderr, signal: r.signal };
}

/** Runs queries through `kb search --batch`: [{query, ms, hits}]. */
export function searchBatch(name, queries, { k = 5, env } = {}) {
  const input = queries.map((q) => JSON.stringify(typeof q === 'string' ? q : q)).join('\n') + '\n';
  const r = run(['kb', 'search', name, '--batch', '-k', String(k)], { input, env });
  if (r.code !== 0) throw new Error(`kb search --batch failed: ${r.err}`);
  return r.out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

const decode = (s) => s.replace(/<[^>]+>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
  .replace(/&#39;|&apos;/g, "'").replace(/&nbsp;|\u00a0/g, ' ').replace(/&amp;/g, '&').replace(/\s+/g, ' ').trim();

/** Title of a section without its number: "1.1.1. shell 提示符" -> "shell 提示符". */
export const bareTitle = (h) => h.replace(/\u00a0/g, ' ').replace(/^第\s*\d+\s*章\s*/, '').replace(/^[\d.]+\s*/, '').replace(/\s+/g, ' ').trim();
/** The last component of a hit's heading path, bare. */
export const lastHeading = (heading) => bareTitle((heading || '').split(' > ').pop());

/** Title questions from the HTML chapters: the h2-h4 titles that occur once. */
export function titleQuestions(htmlDir) {
  const count = new Map();
  for (const f of fs.readdirSync(htmlDir).sort()) {
    const html = fs.readFileSync(path.join(htmlDir, f), 'utf8');
    for (const m of html.matchAll(/<h([234]) class="title"[^>]*>([\s\S]*?)<\/h\1>/g)) {
      const t = bareTitle(decode(m[2]));
      if (t.length >= 2) count.set(t, (count.get(t) || 0) + 1);
    }
  }
  return [...count].filter(([, n]) => n === 1).map(([t]) => ({ q: t, expect: t }));
}

/** Body questions: one sentence (12-60 characters) from a chunk of each section, from `kb extract`. */
export function bodyQuestions(files, { every = 1 } = {}) {
  const qs = [];
  const seen = new Set();
  for (const f of files) {
    const r = run(['kb', 'extract', f]);
    if (r.code !== 0) throw new Error(r.err);
    const lines = r.out.trim().split('\n').slice(1).map((l) => JSON.parse(l));
    for (const c of lines) {
      const sec = lastHeading(c.heading);
      if (!sec || seen.has(sec)) continue;
      const sentences = c.text.split(/[。！？\n]/).map((s) => s.trim()).filter((s) => [...s].length >= 12 && [...s].length <= 60 && /[\u4e00-\u9fff]{6}/.test(s));
      if (!sentences.length) continue;
      seen.add(sec);
      qs.push({ q: sentences[Math.floor(sentences.length / 2)], expect: sec });
    }
  }
  return qs.filter((_, i) => i % every === 0);
}

/** recall@k and MRR of answers (from searchBatch) against questions, matching with match(hit, question). */
export function score(questions, answers, match, k = 5) {
  let found = 0, rr = 0;
  const misses = [];
  questions.forEach((q, i) => {
    const hits = answers[i].hits.slice(0, k);
    const rank = hits.findIndex((h) => match(h, q));
    if (rank >= 0) { found++; rr += 1 / (rank + 1); } else misses.push(q.q);
  });
  const ms = answers.map((a) => a.ms).sort((a, b) => a - b), cpu = answers.map((a) => a.cpu_ms).sort((a, b) => a - b);
  const pct = (v, p) => v[Math.min(v.length - 1, Math.floor(p * v.length))];
  return { n: questions.length, recall: found / questions.length, mrr: rr / questions.length, p50: pct(ms, 0.5), p99: pct(ms, 0.99),
           cpu50: pct(cpu, 0.5), cpu99: pct(cpu, 0.99), misses };
}

// a hit anywhere inside the section counts: a section with only subsections has no chunk of its own
export const sectionMatch = (h, q) => (h.heading || "").split(" > ").some((c) => bareTitle(c) === q.expect);
export const docMatch = (h, q) => path.basename(h.doc) === q.expect;

/** Man page questions: the NAME line's description -> that page; a sentence of its description -> that page. */
export function manQuestions(manDir) {
  const qs = [];
  for (const f of fs.readdirSync(manDir).sort()) {
    const md = fs.readFileSync(path.join(manDir, f), 'utf8');
    const name = md.match(/^## [^\n]*\n+([^\n]+)/m);
    const m = name && name[1].match(/^\S+(?:,\s*\S+)*\s+-+\s+(.+)$/);
    if (m && /[\u4e00-\u9fff]{2}/.test(m[1]) && [...m[1]].length >= 4) qs.push({ q: m[1].trim(), expect: f, kind: 'title' });
  }
  return qs;
}
