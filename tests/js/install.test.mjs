// install.test.mjs — `make install DESTDIR=…` puts a stripped qwen-edge and its man page (made from the --help texts
// by mk/man.sh) under PREFIX; the installed binary runs from there (the chat page is inside it); `make uninstall`
// takes both away again.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const BUILD = path.dirname(path.resolve(process.env.QE_BIN || path.join(ROOT, 'build/qwen-edge')));

test('make install DESTDIR=… PREFIX=/usr, then the installed binary and man page, then make uninstall', () => {
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-install-'));
  try {
    const make = (target) => execFileSync('make', ['-s', '-C', ROOT, `BUILD=${BUILD}`, target, `DESTDIR=${dest}`, 'PREFIX=/usr'],
                                          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600000 });
    make('install');
    const bin = path.join(dest, 'usr/bin/qwen-edge'), man = path.join(dest, 'usr/share/man/man1/qwen-edge.1');
    assert.ok(fs.statSync(bin).mode & 0o111, 'the binary is executable');
    assert.ok(fs.statSync(bin).size < fs.statSync(path.join(BUILD, 'qwen-edge')).size, 'the installed copy is stripped');
    const help = execFileSync(bin, ['--help'], { encoding: 'utf8' });
    assert.match(help, /usage: qwen-edge <command>/);
    assert.match(execFileSync(bin, ['chat', '--help'], { encoding: 'utf8' }), /--memory-rounds N/);

    const page = fs.readFileSync(man, 'utf8');
    assert.match(page, /^\.TH QWEN\\-EDGE 1/m);
    for (const cmd of ['serve', 'chat', 'run', 'pull', 'list', 'bench']) assert.match(page, new RegExp(`^\\.SS qwen\\\\-edge ${cmd}$`, 'm'));
    if (spawnSync('man', ['--version']).status === 0) {
      const shown = execFileSync('man', ['-l', man], { encoding: 'utf8', env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '120', LANG: 'C.UTF-8' } });
      assert.match(shown, /qwen-edge chat/);
      assert.match(shown, /-t, --threads N +compute threads, 1 to 256/, 'options keep their ASCII hyphens and columns');
      assert.match(shown, /重新开始/, 'UTF-8 text survives');
    }

    make('uninstall');
    assert.ok(!fs.existsSync(bin) && !fs.existsSync(man), 'uninstall removes both');
  } finally {
    fs.rmSync(dest, { recursive: true, force: true });
  }
});
