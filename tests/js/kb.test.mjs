// kb.test.mjs — `qwen-edge kb` end to end on real Chinese text (Debian's debian-reference-zh-cn and manpages-zh,
// fetched by tests/js/lib/kbdata.mjs): retrieval quality from the documents' own structure (a section's title
// and a sentence of its body must find that section; a man page's NAME line must find that page) as recall@5
// and MRR; the same top section from the HTML, text and PDF versions; kill -9 in the middle of an ingest
// (file intact, committed documents whole, a re-run finishes); FAQ answers verbatim, rewording, hand-off;
// per-file errors for broken files; the CLI's list/ls/rm/search --json and name checks.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { kbData, run as runBin, searchBatch, titleQuestions, bodyQuestions, manQuestions, score, sectionMatch, docMatch, lastHeading } from './lib/kbdata.mjs';
import { makeModel } from './lib/models.mjs';

const BIN = process.env.QE_BIN ?? path.resolve('build/qwen-edge');
const TMP = path.resolve(process.env.QE_TEST_TMP ?? 'build/tests/tmp');
const home = path.join(TMP, 'kb-test-home');
const env = { ...process.env, QWEN_EDGE_HOME: home };
const run = (args, opts = {}) => runBin(args, { env, ...opts });
let data;

before(() => {
  fs.rmSync(home, { recursive: true, force: true });
  fs.mkdirSync(home, { recursive: true });
  data = kbData();
});

function add(name, paths, extra = []) {
  const r = run(['kb', 'add', name, ...paths, '-q', ...extra]);
  assert.equal(r.code, 0, r.err + r.out);
  return r;
}

test('retrieval on the Debian Reference (HTML, text, PDF) and the man pages: recall@5 and MRR', (t) => {
  if (data.skip) return t.skip(data.skip);
  add('ref-html', [data.html]);
  add('ref-txt', [data.txt]);
  add('ref-pdf', [data.pdf]);
  add('man', [data.man]);
  const titles = titleQuestions(data.html);
  const bodies = bodyQuestions(fs.readdirSync(data.html).map((f) => path.join(data.html, f)), { every: 3 });
  const man = manQuestions(data.man);
  assert.ok(titles.length > 300 && bodies.length > 100 && man.length > 200, `${titles.length} ${bodies.length} ${man.length}`);
  const answers = {};
  const report = [];
  for (const fmt of ['html', 'txt', 'pdf']) {
    answers[fmt] = searchBatch(`ref-${fmt}`, titles.map((q) => q.q), { env });
    const s = score(titles, answers[fmt], sectionMatch);
    report.push(`${fmt} titles (${s.n}): recall@5 ${s.recall.toFixed(3)}, MRR ${s.mrr.toFixed(3)}`);
    assert.ok(s.recall >= (fmt === 'pdf' ? 0.85 : 0.9), `${fmt}: recall@5 ${s.recall} (misses: ${s.misses.slice(0, 10).join(' | ')})`);
  }
  const b = score(bodies, searchBatch('ref-html', bodies.map((q) => q.q), { env }), sectionMatch);
  report.push(`HTML body sentences (${b.n}): recall@5 ${b.recall.toFixed(3)}, MRR ${b.mrr.toFixed(3)}`);
  assert.ok(b.recall >= 0.9, `body recall@5 ${b.recall}: ${b.misses.slice(0, 5).join(' | ')}`);
  const m = score(man, searchBatch('man', man.map((q) => q.q), { env }), docMatch);
  report.push(`man pages NAME line (${m.n}): recall@5 ${m.recall.toFixed(3)}, MRR ${m.mrr.toFixed(3)}`);
  assert.ok(m.recall >= 0.9, `man recall@5 ${m.recall}: ${m.misses.slice(0, 5).join(' | ')}`);
  // the same document as HTML, text and PDF: the same top section for a title question
  let same = 0, answered = 0;
  titles.forEach((q, i) => {
    const tops = ['html', 'txt', 'pdf'].map((f) => answers[f][i].hits[0] && lastHeading(answers[f][i].hits[0].heading));
    if (tops.every(Boolean)) { answered++; if (tops[0] === tops[1] && tops[1] === tops[2]) same++; }
  });
  report.push(`same top section in HTML, text and PDF: ${same}/${answered}`);
  assert.ok(same / answered >= 0.8, `only ${same}/${answered} title questions have the same top section in all three formats`);
  // PDF hits carry page numbers
  assert.ok(answers.pdf.some((a) => a.hits[0] && a.hits[0].page > 0));
  t.diagnostic(report.join('; '));
  console.log('kb retrieval:', report.join('\n  '));
});

test('search --json gives one object per hit; the previous turn keeps a follow-up on topic', (t) => {
  const dir = path.join(TMP, 'kb-small');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'printer.md'), '# 打印机手册\n\n## 安装驱动\n\n第一步：下载驱动程序。\n\n第二步：运行安装程序，按提示完成。\n\n## 更换墨盒\n\n打开前盖，取出旧墨盒。\n');
  fs.writeFileSync(path.join(dir, 'router.txt'), '路由器手册\n\n1. 重置路由器\n\n按住复位键十秒钟。第二步：等待指示灯闪烁。\n');
  const model = makeModel();
  add('small', [dir], ['-m', model]);
  assert.match(run(['kb', 'ls', 'small']).out, /2 documents, .*tokens: model tokenizer/);
  let r = run(['kb', 'search', 'small', '更换墨盒', '--json', '-k', '2']);
  assert.equal(r.code, 0, r.err);
  const hits = r.out.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(hits.length >= 1 && hits.length <= 2);
  for (const h of hits) for (const k of ['doc', 'heading', 'page', 'text', 'score']) assert.ok(k in h, `hit lacks ${k}`);
  assert.equal(hits[0].heading, '打印机手册 > 更换墨盒');
  assert.equal(path.basename(hits[0].doc), 'printer.md');
  r = run(['kb', 'search', 'small', '那第二步呢？', '--prev', '打印机驱动怎么安装', '--json', '-k', '1']);
  assert.equal(JSON.parse(r.out.trim()).heading, '打印机手册 > 安装驱动');
  // a grounded answer (random weights: the text is noise; the prompt, the engine run and the sources are real)
  r = run(['kb', 'ask', 'small', '怎么更换墨盒', '--generate', '-m', model, '-n', '4', '--json']);
  assert.equal(r.code, 0, r.err);
  const g = JSON.parse(r.out.trim());
  assert.equal(g.type, 'generated');
  assert.equal(typeof g.answer, 'string');
  assert.equal(g.sources[0].n, 1);
  assert.equal(g.sources[0].heading, '打印机手册 > 更换墨盒');
  // list / rm of one document / rm of the KB
  assert.match(run(['kb', 'list']).out, /small\s+2 docs/);
  r = run(['kb', 'rm', 'small', 'router.txt']);
  assert.equal(r.code, 0, r.err);
  assert.match(run(['kb', 'ls', 'small']).out, /1 documents/);
  assert.equal(run(['kb', 'rm', 'small', 'nope.txt']).code, 1);
  assert.equal(run(['kb', 'rm', 'small']).code, 0);
  r = run(['kb', 'search', 'small', 'x']);
  assert.equal(r.code, 1);
  assert.match(r.err, /no knowledge base named 'small'/);
  r = run(['kb', 'add', '../evil', dir]);
  assert.equal(r.code, 1);
  assert.match(r.err, /not a valid KB name/);
  assert.ok(!fs.existsSync(path.join(home, 'evil.sqlite')));
});

test('kill -9 during an ingest: the file is intact, committed documents are whole, a re-run finishes', async (t) => {
  if (data.skip) return t.skip(data.skip);
  const dir = path.join(TMP, 'kb-kill');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const txt = fs.readFileSync(data.txt);
  const N = 12;
  for (let i = 0; i < N; i++) fs.writeFileSync(path.join(dir, `part${String(i).padStart(2, '0')}.txt`), Buffer.concat([Buffer.from(`第 ${i} 份\n\n`), txt]));
  const child = spawn(BIN, ['kb', 'add', 'killed', dir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if ((out.match(/^added /gm) || []).length >= 2 && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', resolve);
    child.on('error', reject);
  });
  const committed = (out.match(/^added /gm) || []).length;
  assert.ok(committed >= 2 && committed < N, `killed after ${committed} of ${N} documents`);
  let r = run(['kb', 'check', 'killed']);
  assert.equal(r.code, 0, r.err);
  const docs = (run(['kb', 'ls', 'killed']).out.match(/^text /gm) || []).length;
  assert.ok(docs >= committed && docs < N, `${docs} documents after the kill (${committed} reported)`);
  r = run(['kb', 'add', 'killed', dir]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`${N - docs} added, 0 updated, ${docs} unchanged`));
  assert.equal(run(['kb', 'check', 'killed']).code, 0);
  assert.match(run(['kb', 'ls', 'killed']).out, new RegExp(`${N} documents`));
  // a changed file is replaced, a deleted one removed
  fs.appendFileSync(path.join(dir, 'part00.txt'), '\n新增的一段。\n');
  fs.rmSync(path.join(dir, 'part01.txt'));
  r = run(['kb', 'add', 'killed', dir, '-q']);
  assert.match(r.out, new RegExp(`0 added, 1 updated, ${N - 2} unchanged, 1 removed`));
  run(['kb', 'rm', 'killed']);
});

test('FAQ: verbatim answer, a reworded question matches, an unrelated one does not, hand-off phrases', () => {
  const dir = path.join(TMP, 'kb-faq');
  fs.mkdirSync(dir, { recursive: true });
  const answer = '在登录页点击"忘记密码"，输入手机号，\n按短信验证码重置。';
  fs.writeFileSync(path.join(dir, 'faq.csv'), `question,answer,alternates\n如何重置密码？,"${answer.replace(/"/g, '""')}",忘记密码怎么办\n退货政策是什么,七天无理由退货。,\n`);
  fs.writeFileSync(path.join(dir, 'faq.md'), '# 常见问题\n\n## 营业时间是几点？\n\n每天 9:00-18:00。\n');
  let r = run(['kb', 'faq', 'shop', path.join(dir, 'faq.csv')]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /2 FAQ entries/);
  assert.equal(run(['kb', 'faq', 'shop', path.join(dir, 'faq.md')]).code, 0);
  const ask = (q, extra = []) => JSON.parse(run(['kb', 'ask', 'shop', q, '--json', ...extra]).out.trim().split('\n')[0]);
  let a = ask('如何重置密码？');
  assert.equal(a.type, 'faq');
  assert.equal(a.answer, answer);
  assert.equal(path.basename(a.source), 'faq.csv');
  assert.equal(ask('怎么重置密码').type, 'faq');
  assert.equal(ask('密码忘记了怎么办？').answer, answer);
  assert.equal(ask('你们营业时间是几点').answer, '每天 9:00-18:00。');
  assert.equal(ask('今天天气怎么样').type, 'search');
  assert.equal(ask('如何安装打印机').type, 'search');
  for (const q of ['我要转人工', '人工客服在吗？', 'I need a human agent']) assert.equal(ask(q).type, 'handoff', q);
  assert.equal(ask('人工智能是什么').type, 'search');
  assert.equal(ask('找你们经理', ['--handoff', '经理,主管']).type, 'handoff');
  // a broken FAQ file names the line
  fs.writeFileSync(path.join(dir, 'bad.csv'), 'question,answer\n只有问题\n');
  r = run(['kb', 'faq', 'shop', path.join(dir, 'bad.csv')]);
  assert.equal(r.code, 1);
  assert.match(r.err, /line 2/);
});

// zlib.crc32 is Node >= 20.15; the table version for older ones
const crc32 = zlib.crc32 ?? ((buf) => {
  let c = ~0;
  for (const b of buf) { c ^= b; for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1)); }
  return ~c >>> 0;
});

/** A .zip with one stored-deflated member (enough for a .docx): local header, data, central directory. */
function zipFile(name, content) {
  const data = zlib.deflateRawSync(content, { level: 9 });
  const crc = crc32(content);
  const nb = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc, 14); local.writeUInt32LE(data.length, 18); local.writeUInt32LE(content.length, 22); local.writeUInt16LE(nb.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 4); central.writeUInt16LE(20, 6); central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc, 16); central.writeUInt32LE(data.length, 20); central.writeUInt32LE(content.length, 24); central.writeUInt16LE(nb.length, 28);
  const end = Buffer.alloc(22);
  const cdOff = 30 + nb.length + data.length;
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(1, 8); end.writeUInt16LE(1, 10);
  end.writeUInt32LE(46 + nb.length, 12); end.writeUInt32LE(cdOff, 16);
  return Buffer.concat([local, nb, data, central, nb, end]);
}

test('broken files get an error each and the rest of the folder goes in', (t) => {
  const dir = path.join(TMP, 'kb-bad');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'good.txt'), '一个正常的文件。\n');
  const doc = '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>合同条款</w:t></w:r></w:p></w:body></w:document>';
  fs.writeFileSync(path.join(dir, 'good.docx'), zipFile('word/document.xml', Buffer.from(doc)));
  fs.writeFileSync(path.join(dir, 'empty.txt'), '');
  fs.writeFileSync(path.join(dir, 'gbk.txt'), Buffer.from([0xc4, 0xe3, 0xba, 0xc3, 0x0a])); // 你好 in GBK
  fs.writeFileSync(path.join(dir, 'broken.pdf'), '%PDF-1.4\n1 0 obj << /Type /Catalog >>\ngarbage\n');
  fs.writeFileSync(path.join(dir, 'bomb.docx'), zipFile('word/document.xml', Buffer.alloc(100 << 20, 0x20)));
  fs.writeFileSync(path.join(dir, 'notzip.docx'), 'this is not a zip');
  fs.writeFileSync(path.join(dir, 'picture.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
  assert.ok(fs.statSync(path.join(dir, 'bomb.docx')).size < 1 << 20);
  const r = run(['kb', 'add', 'bad', dir]);
  assert.equal(r.code, 1, 'some files failed: exit 1');
  const err = r.err;
  assert.match(err, /empty\.txt: empty file/);
  assert.match(err, /gbk\.txt: not valid UTF-8/);
  assert.match(err, /broken\.pdf: not a readable PDF/);
  assert.match(err, /bomb\.docx: .*zip bomb/);
  assert.match(err, /notzip\.docx: not a \.docx/);
  assert.match(r.out, /skipped\s+\S*picture\.png: unsupported format/);
  assert.match(r.out, /2 added, 0 updated, 0 unchanged, 0 removed, 5 failed, 1 skipped/);
  const s = run(['kb', 'search', 'bad', '合同条款', '--json']);
  assert.equal(path.basename(JSON.parse(s.out.trim().split('\n')[0]).doc), 'good.docx');
  assert.equal(run(['kb', 'check', 'bad']).code, 0);
});
