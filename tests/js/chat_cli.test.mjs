// chat_cli.test.mjs — `qwen-edge chat` driven through a pipe: two turns, a reset, quit. Greedy decoding makes the
// answers deterministic, so memory is visible in the output. Answers of a random-weight model may contain newlines,
// so the checks compare whole outputs (a conversation's output is the concatenation of its answers).
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { makeModel } from './lib/models.mjs';

const BIN = process.env.QE_BIN || 'build/qwen-edge';
const RESET = '(conversation cleared / 已重新开始)\n';

function chat(model, lines, extra = []) {
  return execFileSync(BIN, ['chat', '-m', model, '-n', '12', '--temp', '0', '-t', '2', ...extra],
                      { input: lines.join('\n') + '\n', encoding: 'utf8', timeout: 60000 });
}

test('chat through a pipe: two turns, a reset, quit', () => {
  const model = makeModel({ shape: 'tiny', type: 'q8_0' });
  const twoTurns = chat(model, ['Hello there', 'What did I just say?']);
  const fresh = chat(model, ['What did I just say?']);
  const firstOnly = chat(model, ['Hello there']);
  assert.ok(twoTurns.startsWith(firstOnly), 'the first answer does not depend on what comes later');
  assert.notEqual(twoTurns, firstOnly + fresh, 'the second turn sees the first (memory)');
  const all = chat(model, ['Hello there', 'What did I just say?', '重新开始', 'What did I just say?', '/quit', 'never read']);
  assert.equal(all, twoTurns + RESET + fresh, 'after 重新开始 the question is answered as in a new conversation; nothing after /quit');
  const slash = chat(model, ['Hello there', 'What did I just say?', '/reset', 'What did I just say?']);
  assert.equal(slash, all, '/reset does the same');
});

test('chat: /system, unknown commands, end of input', () => {
  const model = makeModel({ shape: 'tiny', type: 'q8_0' });
  const out = chat(model, ['/nonsense', '/system You are terse.', 'hi']);
  assert.match(out, /^\(unknown command \/nonsense/);
  assert.match(out, /\(system prompt set; conversation cleared\)\n/);
  const withFlag = chat(model, ['hi'], ['--system', 'You are terse.']);
  assert.ok(out.endsWith(withFlag), '/system TEXT equals starting with --system TEXT');
});

test('chat: the memory window keeps the last N rounds', () => {
  const model = makeModel({ shape: 'tiny', type: 'q8_0' });
  const qs = ['alpha alpha', 'beta beta', 'gamma gamma'];
  const r1 = chat(model, qs, ['--rounds', '1']), r3 = chat(model, qs);
  const r1two = chat(model, qs.slice(0, 2), ['--rounds', '1']), r3two = chat(model, qs.slice(0, 2));
  assert.equal(r1two, r3two, 'with one earlier round both windows see the same prompt');
  assert.ok(r1.startsWith(r1two) && r3.startsWith(r3two));
  assert.notEqual(r1, r3, 'at the third turn, --rounds 1 has forgotten round 1 and the default (3) has not');
});
