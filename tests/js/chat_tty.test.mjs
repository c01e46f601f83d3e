// chat_tty.test.mjs — `qwen-edge chat` in a real terminal: tmux runs it in a pane (send-keys types, paste-buffer -p
// pastes the way a terminal does, capture-pane reads the screen). Line editing (arrow keys, Chinese backspace,
// Ctrl-L), the history across runs, a pasted block sent as one message, Ctrl-D, all under LANG=C (the chat falls
// back to C.UTF-8 itself).
// What was sent is checked by its answer: with greedy decoding the chat's first answer to a text equals
// `qwen-edge run -p TEXT` with the same options (both render the same ChatML prompt), so a matching answer on the
// screen proves the model got exactly that text (newlines included), not just that the screen shows it.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeModel } from './lib/models.mjs';

const BIN = path.resolve(process.env.QE_BIN || 'build/qwen-edge');
const HAVE_TMUX = spawnSync('tmux', ['-V']).status === 0;
const GEN = ['-n', '4', '--temp', '0', '-t', '1'];
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

let nSession = 0;
class Pane {
  // Starts `qwen-edge chat ARGS` in a new tmux server of its own (own socket: no clash with a user's tmux).
  constructor(home, args) {
    this.sock = `qe-test-${process.pid}-${nSession++}`;
    const env = { LANG: 'C', LC_ALL: '', HOME: home, QWEN_EDGE_HOME: home, TERM: 'xterm-256color' };
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    // after chat exits, EXIT=status on the next line shows where the cursor was left; then the pane stays for reading
    const cmd = ['env', '-i', `PATH=${process.env.PATH}`, ...envArgs, 'sh', '-c',
                 `"$0" "$@"; echo EXIT=$?; sleep 600`, BIN, 'chat', ...args].map(shq).join(' ');
    this.tmux('-u', '-f', '/dev/null', 'new-session', '-d', '-s', 't', '-x', '120', '-y', '40', cmd);
  }
  tmux(...a) { return execFileSync('tmux', ['-L', this.sock, ...a], { encoding: 'utf8' }); }
  keys(...k) { this.tmux('send-keys', '-t', 't', ...k); }
  text(s) { this.tmux('send-keys', '-t', 't', '-l', s); }
  paste(s) { this.tmux('set-buffer', '-b', 'p', s); this.tmux('paste-buffer', '-p', '-d', '-b', 'p', '-t', 't'); }
  screen() { return this.tmux('capture-pane', '-p', '-t', 't').replace(/\n+$/, ''); }
  prompts(screen = this.screen()) { return screen.split('\n').filter((l) => l.startsWith('>>>')).length; }
  async waitFor(pred, what, ms = 60000) {
    const t0 = Date.now();
    for (;;) {
      const s = this.screen();
      if (pred(s)) return s;
      if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}; screen:\n${s}`);
      await sleep(100);
    }
  }
  // waits until the chat shows its n-th prompt (it is then reading a line)
  async waitPrompts(n) { return this.waitFor((s) => this.prompts(s) >= n && /(^|\n)>>> ?$/.test(s), `prompt #${n}`); }
  close() { try { this.tmux('kill-server'); } catch { /* already gone */ } }
}
function shq(s) { return `'${String(s).replace(/'/g, `'\\''`)}'`; }

function homeDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-tty-'));
  fs.chmodSync(d, 0o700);
  return d;
}
// The chat's first answer to text: run with the same options prints the same tokens.
function answerOf(model, text) {
  return execFileSync(BIN, ['run', '-m', model, '-p', text, ...GEN], { encoding: 'utf8' }).replace(/\n$/, '');
}
// The answer as the screen shows it after the prompt line ">>> LINE": the lines up to the next prompt
function answerAfter(screen, line) {
  const lines = screen.split('\n');
  const i = lines.lastIndexOf(`>>> ${line}`);
  assert.ok(i >= 0, `no line ">>> ${line}" on the screen:\n${screen}`);
  const rest = [];
  for (let k = i + 1; k < lines.length && !lines[k].startsWith('>>>'); k++) rest.push(lines[k]);
  return rest.join('\n').replace(/ \[length limit\]\s*$/, '').replace(/\s+$/, '');
}
const norm = (s) => s.split('\n').map((l) => l.replace(/\s+$/, '')).join('\n').replace(/\s+$/, '');

test('arrow keys and Ctrl-A/E edit the line; what is sent is the edited text', { skip: !HAVE_TMUX && 'no tmux' }, async () => {
  const model = makeModel({ shape: 'tiny', type: 'q8_0' });
  const home = homeDir();
  const p = new Pane(home, ['-m', model, ...GEN]);
  try {
    await p.waitPrompts(1);
    p.text('hello world');
    p.keys('Left', 'Left', 'Left', 'Left', 'Left');
    p.text('big ');
    p.keys('C-a');
    p.text('Say ');
    p.keys('C-e');
    p.text('!');
    await p.waitFor((s) => s.endsWith('>>> Say hello big world!'), 'the edited line');
    p.keys('Enter');
    const s = await p.waitPrompts(2);
    assert.equal(norm(answerAfter(s, 'Say hello big world!')), norm(answerOf(model, 'Say hello big world!')));
    assert.doesNotMatch(s, /\^\[\[D|\^\[/, 'no raw escape sequences on the screen');
    // Ctrl-L clears the screen and redraws the prompt at the top
    p.text('draft');
    p.keys('C-l');
    await p.waitFor((s2) => s2.split('\n')[0] === '>>> draft', 'Ctrl-L: the prompt on the first line');
  } finally { p.close(); fs.rmSync(home, { recursive: true, force: true }); }
});

test('backspace over Chinese characters erases whole characters, no gaps', { skip: !HAVE_TMUX && 'no tmux' }, async () => {
  const model = makeModel({ shape: 'tiny', type: 'q8_0' });
  const home = homeDir();
  const p = new Pane(home, ['-m', model, ...GEN]);
  try {
    await p.waitPrompts(1);
    p.text('你好世界');
    await p.waitFor((s) => s.endsWith('>>> 你好世界'), 'the Chinese text');
    p.keys('BSpace', 'BSpace');
    p.text('吗？');
    await p.waitFor((s) => s.endsWith('>>> 你好吗？'), 'two characters erased, two typed');
    p.keys('Left', 'Left', 'BSpace');
    p.text('不好');
    await p.waitFor((s) => s.endsWith('>>> 你不好吗？'), 'editing in the middle of wide characters');
    p.keys('Enter');
    const s = await p.waitPrompts(2);
    assert.equal(norm(answerAfter(s, '你不好吗？')), norm(answerOf(model, '你不好吗？')), 'the model got exactly 你不好吗？');
  } finally { p.close(); fs.rmSync(home, { recursive: true, force: true }); }
});

test('a pasted block of several lines is one message, newlines kept; Ctrl-D leaves with a newline', { skip: !HAVE_TMUX && 'no tmux' }, async () => {
  const model = makeModel({ shape: 'tiny', type: 'q8_0' });
  const home = homeDir();
  const p = new Pane(home, ['-m', model, ...GEN]);
  const block = 'first line\nsecond line\n\tthird line';
  try {
    await p.waitPrompts(1);
    p.paste(block + '\n');
    await p.waitFor((s) => s.includes('third line'), 'the pasted block');
    await sleep(500);
    assert.equal(p.prompts(), 1, 'nothing was sent by the paste itself');
    p.text(' ok?');
    p.keys('Enter');
    const s = await p.waitPrompts(2);
    await sleep(1500); // a second or third message would show more prompts by now
    assert.equal(p.prompts(), 2, `one message, one answer:\n${p.screen()}`);
    const shown = s.split('\n').find((l) => l.startsWith('>>> first line')).slice(4);
    assert.equal(norm(answerAfter(s, shown)), norm(answerOf(model, block + ' ok?')), `the model got the three lines as one text; screen:\n${s}`);
    p.keys('C-d');
    const end = await p.waitFor((x) => /EXIT=\d+/.test(x), 'the chat to exit');
    assert.match(end, /\nEXIT=0$/m, 'after Ctrl-D the shell continues on a new line');
  } finally { p.close(); fs.rmSync(home, { recursive: true, force: true }); }
});

test('the history is kept across runs in $QWEN_EDGE_HOME/chat_history (mode 0600)', { skip: !HAVE_TMUX && 'no tmux' }, async () => {
  const model = makeModel({ shape: 'tiny', type: 'q8_0' });
  const home = homeDir();
  try {
    const p1 = new Pane(home, ['-m', model, ...GEN]);
    try {
      await p1.waitPrompts(1);
      p1.text('the first question'); p1.keys('Enter');
      await p1.waitPrompts(2);
      p1.text('第二个问题'); p1.keys('Enter');
      await p1.waitPrompts(3);
      p1.text('/quit'); p1.keys('Enter');
      await p1.waitFor((x) => /EXIT=0/.test(x), 'the first chat to exit');
    } finally { p1.close(); }
    const file = path.join(home, 'chat_history');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'only the user may read the history');
    const p2 = new Pane(home, ['-m', model, ...GEN]);
    try {
      await p2.waitPrompts(1);
      p2.keys('Up');
      await p2.waitFor((s) => s.endsWith('>>> /quit'), 'Up: the last line of the previous run');
      p2.keys('Up');
      await p2.waitFor((s) => s.endsWith('>>> 第二个问题'), 'Up again: the one before');
      p2.keys('Up');
      await p2.waitFor((s) => s.endsWith('>>> the first question'), 'and the first');
      p2.keys('Enter');
      const s = await p2.waitPrompts(2);
      assert.equal(norm(answerAfter(s, 'the first question')), norm(answerOf(model, 'the first question')));
    } finally { p2.close(); }
  } finally { fs.rmSync(home, { recursive: true, force: true }); }
});
