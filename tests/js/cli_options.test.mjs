// cli_options.test.mjs — every command checks its options against one table of ranges (src/cli/cli_util.c, the
// sampling ranges being the API's from sampler.h): a value outside is refused with exit status 2 and a message that
// names the option and its range, before any model is loaded. Also: one spelling per option across commands, the
// test-only options out of the user help, `serve` on a busy port suggesting --port, and messages that name the
// binary as it was run while it is not installed.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { makeModel } from './lib/models.mjs';

const BIN = process.env.QE_BIN || 'build/qwen-edge';

function qe(args, opts = {}) {
  return spawnSync(BIN, args, { encoding: 'utf8', timeout: 60000, input: '', ...opts });
}

// [command, option, value, the range the message must name]
const REFUSED = [];
for (const cmd of ['run', 'chat']) {
  REFUSED.push(
    [cmd, '-t', '0', /-t wants a whole number from 1 to 256/],
    [cmd, '-t', '2000', /-t wants a whole number from 1 to 256/],
    [cmd, '--threads', '99999', /--threads wants a whole number from 1 to 256/],
    [cmd, '-t', 'two', /-t wants a whole number/],
    [cmd, '-n', '0', /-n wants a whole number from 1 to/],
    [cmd, '-n', '-3', /-n wants a whole number from 1 to/],
    [cmd, '--max-tokens', '0', /--max-tokens wants a whole number from 1/],
    [cmd, '-c', '8', /-c wants a whole number from 16 to 1048576/],
    [cmd, '--ctx', '2000000', /--ctx wants a whole number from 16 to 1048576/],
    [cmd, '--temp', '5', /--temp wants a number from 0 to 2/],
    [cmd, '--temp', '-0.5', /--temp wants a number from 0 to 2/],
    [cmd, '--temp', 'nan', /--temp wants a number from 0 to 2/],
    [cmd, '--top-p', '1.5', /--top-p wants a number from 0 to 1/],
    [cmd, '--min-p', '-1', /--min-p wants a number from 0 to 1/],
    [cmd, '--top-k', '-1', /--top-k wants a whole number from 0 to/],
    [cmd, '--repeat-penalty', '0', /--repeat-penalty wants a number from 0.01 to 10/],
    [cmd, '--repeat-penalty', '11', /--repeat-penalty wants a number from 0.01 to 10/],
    [cmd, '--seed', '-1', /--seed wants a whole number from 0/],
    [cmd, '-t', undefined, /-t needs a value/],
  );
}
REFUSED.push(
  ['chat', '--memory-rounds', '-1', /--memory-rounds wants a whole number from 0 to 100000/],
  ['chat', '--rounds', '-1', /--rounds wants a whole number from 0 to 100000/],
  ['bench', '-t', '0', /-t wants a whole number from 1 to 256/],
  ['bench', '-t', '2000', /-t wants a whole number from 1 to 256/],
  ['bench', '-r', '0', /-r wants a whole number from 1 to 100/],
  ['serve', '-t', '0', /-t needs a number from 1 to 256/],
  ['serve', '-t', '2000', /-t needs a number from 1 to 256/],
  ['serve', '-c', '8', /-c needs a number from 16 to 1048576/],
  ['serve', '--port', '70000', /--port needs a number from 0 to 65535/],
  ['pull', '--retries', '200', /--retries wants a whole number from 0 to 100/],
  ['tokenize', '--rounds', 'x', /--rounds wants a whole number from 0 to 100000/],
  ['tokenize', '--budget', '0', /--budget wants a whole number from 1 to 1048576/],
);

test('every out-of-range option value is refused with exit status 2, naming the option and its range', () => {
  const model = makeModel({ shape: 'tiny', type: 'q8_0' });
  const failures = [];
  for (const [cmd, opt, val, want] of REFUSED) {
    const args = [cmd, ...(cmd === 'pull' ? [] : ['-m', model]), ...(cmd === 'run' ? ['-p', 'hi'] : []), opt,
                  ...(val === undefined ? [] : [val])];
    const r = qe(args, { timeout: 20000 });
    if (r.status !== 2 || !want.test(r.stderr) || r.stdout !== '')
      failures.push(`${args.join(' ')}: status ${r.status}, stderr ${JSON.stringify(r.stderr.slice(0, 200))}`);
  }
  assert.deepEqual(failures, [], 'refused options');
});

test('values at the edges of the ranges are accepted', () => {
  const model = makeModel({ shape: 'tiny', type: 'q8_0' });
  const r = qe(['run', '-m', model, '-p', 'hi', '-n', '1', '-t', '1', '-c', '64', '--temp', '2', '--top-p', '1',
                '--top-k', '0', '--min-p', '0', '--repeat-penalty', '10', '--seed', '18446744073709551615']);
  assert.equal(r.status, 0, r.stderr);
  const c = qe(['chat', '-m', model, '-n', '2', '--temp', '0', '-t', '1', '--memory-rounds', '0'], { input: 'hi\n' });
  assert.equal(c.status, 0, c.stderr);
  const old = qe(['chat', '-m', model, '-n', '2', '--temp', '0', '-t', '1', '--rounds', '1'], { input: 'hi\n' });
  assert.equal(old.status, 0, 'the old spelling --rounds is still accepted: ' + old.stderr);
});

test('one spelling per option in every --help; test-only options are not in the user help', () => {
  const help = {};
  for (const cmd of ['run', 'chat', 'serve', 'bench']) {
    const r = qe([cmd, '--help']);
    assert.equal(r.status, 0);
    help[cmd] = r.stdout;
  }
  for (const cmd of ['run', 'chat', 'serve', 'bench']) {
    assert.match(help[cmd], /-t, --threads N +compute threads, 1 to 256/, `${cmd}: -t, --threads`);
    assert.match(help[cmd], /-m, --model MODEL +a GGUF file, a Hugging Face folder, a model name or a URL/, `${cmd}: -m`);
  }
  for (const cmd of ['run', 'chat', 'serve']) assert.match(help[cmd], /-c, --ctx N/, `${cmd}: -c, --ctx`);
  for (const cmd of ['run', 'chat']) {
    assert.match(help[cmd], /-n, --max-tokens N/, `${cmd}: -n, --max-tokens`);
    assert.match(help[cmd], /--temp T +temperature, 0 to 2/, `${cmd}: --temp range`);
  }
  for (const cmd of ['chat', 'serve']) assert.match(help[cmd], /--memory-rounds N/, `${cmd}: --memory-rounds`);
  assert.doesNotMatch(help.chat, /--rounds/, 'chat: the old --rounds is an alias, not documented');
  assert.doesNotMatch(help.run, /--eval-ids|--logits-out|--eval-greedy|--eval-chunk/, 'run: test-only options hidden');
});

test('serve on a busy port says so and suggests --port', async () => {
  const model = makeModel({ shape: 'tiny', type: 'q8_0' });
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((ok) => blocker.once('listening', ok));
  const port = blocker.address().port;
  try {
    const r = await new Promise((ok) => {
      // async: the blocking server must keep its port while qwen-edge tries it
      import('node:child_process').then(({ execFile }) =>
        execFile(BIN, ['serve', '-m', model, '--port', String(port)], { timeout: 30000 },
                 (err, stdout, stderr) => ok({ status: err ? err.code : 0, stderr })));
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`port ${port} is taken.*--port N`, 's'));
    assert.match(r.stderr, /--port 0 for any free port/);
  } finally {
    blocker.close();
  }
});

test('before `make install`, the messages name the binary as it was run (build/qwen-edge pull)', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-self-'));
  fs.chmodSync(home, 0o700);
  const env = { ...process.env, QWEN_EDGE_HOME: home, HF_ENDPOINT: 'http://127.0.0.1:1' };
  delete env.QWEN_EDGE_MAKE_RUN;
  try {
    const bin = path.resolve(BIN);
    const dir = path.dirname(bin);
    const notInstalled = spawnSync(bin, ['run', '-p', 'hi'], { encoding: 'utf8', timeout: 60000,
      env: { ...env, PATH: env.PATH.split(':').filter((d) => d && path.resolve(d) !== dir).join(':') } });
    assert.equal(notInstalled.status, 1);
    assert.ok(notInstalled.stderr.includes(`HF_ENDPOINT=https://hf-mirror.com ${bin} pull`), notInstalled.stderr);
    assert.ok(notInstalled.stderr.includes(`(${bin} serve -m FILE.gguf)`), notInstalled.stderr);
    const onPath = spawnSync('qwen-edge', ['run', '-p', 'hi'], { encoding: 'utf8', timeout: 60000,
      env: { ...env, PATH: `${dir}:${env.PATH}` } });
    assert.equal(onPath.status, 1);
    assert.ok(onPath.stderr.includes('HF_ENDPOINT=https://hf-mirror.com qwen-edge pull'), onPath.stderr);
    assert.ok(!onPath.stderr.includes(bin), 'installed (on the PATH): plain qwen-edge');
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
});
