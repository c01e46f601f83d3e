#!/usr/bin/env node
// kb_fts.mjs — chooses the knowledge base's FTS5 tokenizer by measurement: our "qe" tokenizer (CJK unigrams +
// bigrams, NFKC-case-folded words) against FTS5's built-in trigram, on the Chinese Debian Reference (HTML,
// text, PDF) and the Chinese man pages. Prints a Markdown table (recall@5, MRR, index size, ingest MB/s,
// query ms) — bench/kb_fts.md holds the last run. Also the ingest speed per format and, with
// QE_KB_BIG=MB (e.g. 100), search latency on a KB of that much text (the Debian Reference repeated).
//   node bench/kb_fts.mjs            (QE_BIN, QE_TEST_TMP as for the tests)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { kbData, run, searchBatch, titleQuestions, bodyQuestions, manQuestions, score, sectionMatch, docMatch } from '../tests/js/lib/kbdata.mjs';

const BIN = process.env.QE_BIN || 'build/qwen-edge';
const TMP = path.resolve(process.env.QE_TEST_TMP || 'build/tests/tmp');
const home = path.join(TMP, 'kb-bench-home');
fs.rmSync(home, { recursive: true, force: true });
fs.mkdirSync(home, { recursive: true });
const env = { ...process.env, QWEN_EDGE_HOME: home };
const data = kbData();
if (data.skip) { console.error(data.skip); process.exit(1); }

// CPU seconds (user + sys) of the ingest as well as wall time: on a shared machine the wall time measures the
// neighbours; /usr/bin/time gives the process's own CPU time.
const TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
function add(name, paths, fts) {
  const t0 = process.hrtime.bigint();
  const args = ['kb', 'add', name, ...paths, '--fts', fts, '-q'];
  const r = TIME ? spawnSync(TIME, ['-f', 'CPU %U %S', BIN, ...args], { env, encoding: 'utf8' }) : run(args, { env });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0 && r.code !== 0 && !/failed/.test(r.stdout ?? r.out)) throw new Error((r.stderr ?? r.err) + (r.stdout ?? r.out));
  const cm = (r.stderr || '').match(/CPU ([\d.]+) ([\d.]+)/);
  const cpu = cm ? +cm[1] + +cm[2] : s;
  const ls = run(['kb', 'ls', name], { env }).out;
  const m = ls.match(/([\d.]+) MB text, ([\d.]+) MB on disk/);
  return { s, cpu, text: +m[1], disk: +m[2] };
}
const mb = (p) => fs.statSync(p).isDirectory() ? fs.readdirSync(p).reduce((a, f) => a + fs.statSync(path.join(p, f)).size, 0) / 1e6 : fs.statSync(p).size / 1e6;

const titles = titleQuestions(data.html);
const htmlFiles = fs.readdirSync(data.html).map((f) => path.join(data.html, f));
const bodies = bodyQuestions(htmlFiles);
const man = manQuestions(data.man);
console.error(`questions: ${titles.length} titles, ${bodies.length} body sentences, ${man.length} man pages`);

const rows = [];
for (const fts of ['qe', 'trigram']) {
  const res = { fts };
  for (const [fmt, p] of [['html', data.html], ['txt', data.txt], ['pdf', data.pdf]]) {
    const st = add(`${fts}-${fmt}`, [p], fts);
    res[fmt] = { ...st, mbps: mb(p) / st.s, cpumbps: mb(p) / st.cpu, srcmb: mb(p) };
  }
  const manst = add(`${fts}-man`, [data.man], fts);
  res.man = manst;
  for (const fmt of ['html', 'txt', 'pdf']) {
    res[`${fmt}_title`] = score(titles, searchBatch(`${fts}-${fmt}`, titles.map((q) => q.q), { env }), sectionMatch);
  }
  res.body = score(bodies, searchBatch(`${fts}-html`, bodies.map((q) => q.q), { env }), sectionMatch);
  res.man_title = score(man, searchBatch(`${fts}-man`, man.map((q) => q.q), { env }), docMatch);
  rows.push(res);
}

const f2 = (x) => x.toFixed(2), f1 = (x) => x.toFixed(1);
const out = [];
out.push(`| tokenizer | questions | recall@5 | MRR | query wall p50 / p99 ms | query CPU p50 / p99 ms |`, `|---|---|---|---|---|---|`);
for (const r of rows) {
  for (const [label, s] of [['HTML, section titles', r.html_title], ['text, section titles', r.txt_title], ['PDF, section titles', r.pdf_title],
                            ['HTML, body sentences', r.body], ['man pages, NAME line', r.man_title]])
    out.push(`| ${r.fts} | ${label} (${s.n}) | ${f2(s.recall)} | ${f2(s.mrr)} | ${f2(s.p50)} / ${f2(s.p99)} | ${f2(s.cpu50)} / ${f2(s.cpu99)} |`);
}
out.push('', `| tokenizer | format | source MB | extracted text MB | DB MB | DB / text | ingest wall s | ingest CPU s | source MB/s (CPU) |`, `|---|---|---|---|---|---|---|---|---|`);
for (const r of rows)
  for (const fmt of ['html', 'txt', 'pdf'])
    out.push(`| ${r.fts} | ${fmt} | ${f2(r[fmt].srcmb)} | ${f2(r[fmt].text)} | ${f2(r[fmt].disk)} | ${f2(r[fmt].disk / r[fmt].text)} | ${f2(r[fmt].s)} | ${f2(r[fmt].cpu)} | ${f1(r[fmt].cpumbps)} |`);

// --- big KB: search latency and ingest MB/s on QE_KB_BIG MB of text -----------------------------------------
const big = +(process.env.QE_KB_BIG || 0);
if (big > 0) {
  const dir = path.join(TMP, 'kb-big');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const txt = fs.readFileSync(data.txt);
  const copies = Math.ceil(big * 1e6 / txt.length);
  // distinct files (a number in each) so no two documents are byte-identical
  for (let i = 0; i < copies; i++) fs.writeFileSync(path.join(dir, `copy${String(i).padStart(4, '0')}.txt`), Buffer.concat([Buffer.from(`copy ${i}\n\n`), txt]));
  const st = add('big', [dir], 'qe');
  const ans = searchBatch('big', [...titles, ...bodies].map((q) => q.q), { env });
  const s = score([...titles, ...bodies], ans, sectionMatch);
  out.push('', `Big KB: ${copies} copies of the text version, ${f1(st.text)} MB text, DB ${f1(st.disk)} MB (${f2(st.disk / st.text)}x), ` +
           `ingest ${f1(st.s)} s wall, ${f1(st.cpu)} s CPU = ${f1(mb(dir) / st.cpu)} MB/s of source per CPU second; ${ans.length} searches: ` +
           `recall@5 ${f2(s.recall)}, MRR ${f2(s.mrr)}, wall p50 ${f2(s.p50)} ms / p99 ${f2(s.p99)} ms, CPU p50 ${f2(s.cpu50)} ms / p99 ${f2(s.cpu99)} ms.`);
  fs.rmSync(dir, { recursive: true, force: true });
  run(['kb', 'rm', 'big'], { env }); // 200+ MB
}
console.log(out.join('\n'));
for (const r of rows) console.error(r.fts, 'html title misses:', r.html_title.misses.slice(0, 15).join(' | '));
