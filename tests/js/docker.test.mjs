// docker.test.mjs — there is no Docker engine here, so this checks what can be checked without one:
// the Dockerfile builds with the README's commands (scripts/deps.sh build && make, which is also what the
// Makefile's default target runs), the runtime stage installs a Debian package for every shared library
// the built binary needs, runs as a non-root user, exposes 8080 and serves on 0.0.0.0 with models in the
// /models volume; compose.yaml and .dockerignore agree. It does NOT prove the image builds or runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const BIN = process.env.QE_BIN || 'build/qwen-edge';

// Dockerfile -> stages of {from, name, instr: [{op, args}]}, with line continuations joined.
function parseDockerfile(text) {
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const stages = [];
  for (const l of lines) {
    const [, op, args] = /^(\S+)\s*(.*)$/.exec(l);
    if (op.toUpperCase() === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      stages.push({ from: m[1], name: m[2] || null, instr: [] });
    } else {
      assert.ok(stages.length, `instruction before FROM: ${l}`);
      stages.at(-1).instr.push({ op: op.toUpperCase(), args: args.replace(/\s+/g, ' ') });
    }
  }
  return stages;
}

const docker = parseDockerfile(fs.readFileSync('Dockerfile', 'utf8'));
const [build, runtime] = docker;
const runs = (stage) => stage.instr.filter((i) => i.op === 'RUN').map((i) => i.args);

test('build stage: debian:bookworm, the README/Makefile build commands', () => {
  assert.equal(docker.length, 2);
  assert.equal(build.from, 'debian:bookworm');
  const r = runs(build);
  assert.equal(r.at(-1), 'scripts/deps.sh build && make');
  // anything before it only installs npm for the chat page's libraries (optional, WEB_LIBS=0 skips it)
  for (const x of r.slice(0, -1)) assert.match(x, /^if \[ "\$WEB_LIBS" = 1 \]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends npm >\/dev\/null; fi$/);
  assert.ok(build.instr.findIndex((i) => i.op === 'COPY') < build.instr.findIndex((i) => i.args === 'scripts/deps.sh build && make'));
  // `make` alone would do the same: its default target installs with the same script first
  const mk = fs.readFileSync('Makefile', 'utf8');
  assert.match(mk, /^all: deps /m);
  assert.match(mk, /^deps:\n\t@scripts\/deps\.sh build$/m);
  if (fs.existsSync('README.md')) assert.match(fs.readFileSync('README.md', 'utf8'), /\bmake\b/);
});

test('runtime stage: slim, a package for every library the binary needs, non-root, 8080, /models', () => {
  assert.equal(runtime.from, 'debian:bookworm-slim');
  const install = runs(runtime).find((r) => r.includes('apt-get install'));
  assert.ok(install, 'runtime apt-get install');
  const pkgs = new Set(install.split('&&').find((s) => s.includes('apt-get install')).split(' ').filter((w) => w && !w.startsWith('-') && !['apt-get', 'install'].includes(w)));
  assert.ok(pkgs.has('ca-certificates'), 'https needs ca-certificates');
  const needed = execFileSync('readelf', ['-d', BIN], { encoding: 'utf8' })
    .split('\n').map((l) => /NEEDED.*\[(.+)\]/.exec(l)?.[1]).filter(Boolean);
  assert.ok(needed.length >= 3);
  const ldcache = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' });
  for (const lib of needed) {
    const m = new RegExp(`^\\s*${lib.replace(/[.+]/g, '\\$&')} \\(libc6,x86-64[^)]*\\) => (\\S+)`, 'm').exec(ldcache);
    assert.ok(m, `${lib} not in ldconfig`);
    const real = fs.realpathSync(m[1]);
    let owner;
    try { owner = execFileSync('dpkg', ['-S', real], { encoding: 'utf8' }); } catch { owner = execFileSync('dpkg', ['-S', m[1]], { encoding: 'utf8' }); }
    const pkg = owner.split(':')[0];
    if (pkg === 'libc6' || pkg === 'libgcc-s1') continue; // in every Debian image
    assert.ok(pkgs.has(pkg), `${lib} comes from ${pkg}, which the runtime stage does not install`);
  }
  const ops = (op) => runtime.instr.filter((i) => i.op === op).map((i) => i.args);
  const user = ops('USER').at(-1);
  assert.ok(user && user !== 'root' && user !== '0', 'runs as a non-root user');
  assert.ok(runs(runtime).some((r) => r.includes(`useradd`) && r.includes(user)));
  assert.deepEqual(ops('EXPOSE'), ['8080']);
  assert.ok(ops('ENV').includes('QWEN_EDGE_HOME=/models'));
  assert.deepEqual(ops('VOLUME'), ['/models']);
  assert.deepEqual(JSON.parse(ops('CMD').at(-1)), ['serve', '--host', '0.0.0.0']);
  // the optional baked model is pulled before VOLUME (later changes to a volume path are discarded)
  const idx = (pred) => runtime.instr.findIndex(pred);
  assert.ok(idx((i) => i.op === 'RUN' && i.args.includes('qwen-edge pull "$MODEL"')) < idx((i) => i.op === 'VOLUME'));
  assert.ok(runtime.instr.some((i) => i.op === 'COPY' && i.args.includes('--from=build /src/build/qwen-edge')));
});

test('entrypoint passes commands through and pulls QWEN_EDGE_MODEL before serve', () => {
  const ep = fs.readFileSync('docker/entrypoint.sh', 'utf8');
  assert.match(ep, /^#!\/bin\/sh/);
  execFileSync('sh', ['-n', 'docker/entrypoint.sh']); // syntax
  assert.match(ep, /path=\$\(qwen-edge pull "\$QWEN_EDGE_MODEL"\)/);
  assert.match(ep, /exec qwen-edge serve -m "\$path" "\$@"/);
  assert.match(ep, /exec qwen-edge "\$@"/);
});

test('compose.yaml and .dockerignore', () => {
  const c = fs.readFileSync('compose.yaml', 'utf8');
  assert.match(c, /^\s+- "127\.0\.0\.1:8080:8080"$/m, 'published on this machine only');
  assert.match(c, /- models:\/models/);
  assert.match(c, /^volumes:\n {2}models:/m);
  const ign = fs.readFileSync('.dockerignore', 'utf8').split('\n');
  for (const p of ['build/', 'node_modules/', '*.gguf', '.git']) assert.ok(ign.includes(p), `.dockerignore lacks ${p}`);
  // everything the build needs is NOT ignored
  for (const p of ['src', 'scripts', 'Makefile']) assert.ok(!ign.includes(p) && !ign.includes(p + '/'));
});
