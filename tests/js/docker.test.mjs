// docker.test.mjs — there is no Docker engine here, so this checks what the image depends on, from the files parsed
// (not matched as text) and from running what can run without Docker:
//   - the build stage runs the README's build commands, and `make`'s default goal builds the file the runtime stage
//     copies (asked of make itself);
//   - the runtime stage installs a Debian package for every shared library the built binary needs, runs as a user
//     it creates (not root), exposes the port the server listens on, keeps models in a volume that is
//     QWEN_EDGE_HOME, serves on every interface, and bakes an optional model before the VOLUME line;
//   - the entry point, run with a stand-in qwen-edge, pulls QWEN_EDGE_MODEL before serve and passes other commands
//     through;
//   - .dockerignore keeps every tracked source file in the build context and leaves out build output, node_modules
//     and .git; compose.yaml publishes the exposed port on this machine only and mounts the volume.
// It does NOT prove that the image builds or runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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
      stages.at(-1).instr.push({ op: op.toUpperCase(), args: args.replace(/\s+/g, ' ').trim() });
    }
  }
  return stages;
}

// A shell command list "a b && c d" -> [['a', 'b'], ['c', 'd']] (the simple commands the Dockerfile and README use:
// words separated by blanks, joined with && or ;).
const commands = (s) => s.split(/&&|;/).map((c) => c.trim().split(/\s+/).filter(Boolean)).filter((c) => c.length);

const docker = parseDockerfile(fs.readFileSync('Dockerfile', 'utf8'));
const build = docker.find((s) => s.name === 'build');
const runtime = docker.at(-1);
const ops = (stage, op) => stage.instr.filter((i) => i.op === op).map((i) => i.args);

test('build stage: the README build commands; make builds the file the runtime stage copies', () => {
  assert.ok(build && build !== runtime, 'a stage named build before the runtime stage');
  // the README names the build in inline code: the command list that runs scripts/deps.sh with a mode
  const readme = fs.readFileSync('README.md', 'utf8');
  const named = [...readme.matchAll(/`([^`]*scripts\/deps\.sh[^`]*)`/g)].map((m) => commands(m[1]))
    .filter((cl) => cl.some((c) => c[0] === 'scripts/deps.sh' && c.length > 1));
  assert.ok(named.length, 'README names its build command');
  const readmeBuild = named[0];
  for (const n of named) assert.deepEqual(n, readmeBuild, 'README names one build');
  const buildRun = commands(ops(build, 'RUN').at(-1));
  assert.deepEqual(buildRun, readmeBuild);
  // the sources are in the context before the build runs, in the stage's WORKDIR
  const iCopy = build.instr.findIndex((i) => i.op === 'COPY' && i.args === '. .');
  const iRun = build.instr.findLastIndex((i) => i.op === 'RUN');
  assert.ok(iCopy >= 0 && iCopy < iRun, 'COPY . . before the build');
  const workdir = ops(build, 'WORKDIR').at(-1);
  assert.ok(workdir, 'WORKDIR');
  // deps.sh: a real script whose argument is one of its modes
  execFileSync('bash', ['-n', 'scripts/deps.sh']);
  const deps = buildRun.find((c) => c[0] === 'scripts/deps.sh');
  assert.ok(deps, 'the build installs its packages with scripts/deps.sh');
  assert.ok(fs.statSync('scripts/deps.sh').mode & 0o111, 'scripts/deps.sh is executable');
  // make with no target builds its default goal: ask make which that is and what it needs
  const mk = buildRun.find((c) => c[0] === 'make');
  assert.ok(mk, 'the build runs make');
  const goals = mk.slice(1).filter((a) => !a.startsWith('-') && !a.includes('='));
  const db = spawnSync('make', ['-pq'], { encoding: 'utf8', maxBuffer: 1 << 26 }).stdout;
  const goal = goals[0] ?? /^\.DEFAULT_GOAL := (\S+)/m.exec(db)?.[1];
  assert.ok(goal, 'make has a default goal');
  const prereqs = (t) => (new RegExp(`^${t.replace(/[.+]/g, '\\$&')}:(?!=)(.*)$`, 'm').exec(db)?.[1] ?? '').split(/\s+/).filter(Boolean);
  const copy = ops(runtime, 'COPY').map((a) => /^--from=build (\S+) (\S+)$/.exec(a)).find(Boolean);
  assert.ok(copy, 'the runtime stage copies from the build stage');
  const built = path.posix.relative(workdir, copy[1]);
  assert.ok(built === goal || prereqs(goal).includes(built), `make ${goal} builds ${built} (needs: ${prereqs(goal).join(' ')})`);
});

test('runtime stage: a package for every library the binary needs', () => {
  const install = ops(runtime, 'RUN').flatMap(commands).find((c) => c[0] === 'apt-get' && c[1] === 'install');
  assert.ok(install, 'runtime apt-get install');
  const pkgs = new Set(install.slice(2).filter((w) => !w.startsWith('-')));
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
});

test('runtime stage: non-root user it creates, the server port, models in the volume, every interface', () => {
  const user = ops(runtime, 'USER').at(-1);
  assert.ok(user && user !== 'root' && user !== '0', 'runs as a non-root user');
  const useradd = ops(runtime, 'RUN').flatMap(commands).find((c) => c[0] === 'useradd');
  assert.ok(useradd && useradd.at(-1) === user, `useradd creates ${user}`);
  // CMD is serve's arguments; the port is --port or serve's default (from its --help)
  const cmd = JSON.parse(ops(runtime, 'CMD').at(-1));
  assert.equal(cmd[0], 'serve');
  const arg = (name) => { const i = cmd.indexOf(name); return i >= 0 ? cmd[i + 1] : undefined; };
  assert.equal(arg('--host'), '0.0.0.0', 'listens on every interface (a container port is reached from outside)');
  const help = execFileSync(BIN, ['serve', '--help'], { encoding: 'utf8' });
  const port = arg('--port') ?? /--port N\s+port \(default (\d+)/.exec(help)?.[1];
  assert.deepEqual(ops(runtime, 'EXPOSE'), [port]);
  // models live in the volume: QWEN_EDGE_HOME is the VOLUME path
  const env = Object.fromEntries(ops(runtime, 'ENV').map((e) => e.split('=')));
  assert.deepEqual(ops(runtime, 'VOLUME'), [env.QWEN_EDGE_HOME]);
  // the optional baked model is pulled before VOLUME (later changes to a volume path are discarded)
  const idx = (pred) => runtime.instr.findIndex(pred);
  const bake = idx((i) => i.op === 'RUN' && commands(i.args).some((c) => c.includes('qwen-edge') && c.includes('pull')));
  assert.ok(bake >= 0 && bake < idx((i) => i.op === 'VOLUME'));
});

// Runs docker/entrypoint.sh with a stand-in qwen-edge that logs its arguments (and prints a path for pull).
function entrypoint(args, env = {}, pullFails = false) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qe-entry-'));
  const log = path.join(dir, 'log');
  fs.writeFileSync(path.join(dir, 'qwen-edge'),
    `#!/bin/sh\necho "$*" >> '${log}'\n[ "$1" = pull ] && { ${pullFails ? 'exit 3' : 'echo /models/pulled.gguf'}; }\nexit 0\n`, { mode: 0o755 });
  const r = spawnSync('sh', ['docker/entrypoint.sh', ...args], {
    encoding: 'utf8', env: { PATH: `${dir}:${process.env.PATH}`, ...env } });
  const calls = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [];
  fs.rmSync(dir, { recursive: true, force: true });
  return { status: r.status, calls };
}

test('entry point: pulls QWEN_EDGE_MODEL before serve, passes other commands through', () => {
  const serve = JSON.parse(ops(runtime, 'CMD').at(-1));
  assert.deepEqual(entrypoint(serve, { QWEN_EDGE_MODEL: 'qwen2.5-0.5b-instruct:q4_k_m' }).calls,
    ['pull qwen2.5-0.5b-instruct:q4_k_m', `serve -m /models/pulled.gguf ${serve.slice(1).join(' ')}`]);
  assert.deepEqual(entrypoint(serve).calls, [serve.join(' ')], 'no QWEN_EDGE_MODEL: serve downloads the default itself');
  assert.deepEqual(entrypoint(['serve', '-m', 'x.gguf'], { QWEN_EDGE_MODEL: 'y' }).calls, ['serve -m x.gguf'], 'an explicit -m wins');
  assert.deepEqual(entrypoint(['list'], { QWEN_EDGE_MODEL: 'y' }).calls, ['list']);
  const failed = entrypoint(serve, { QWEN_EDGE_MODEL: 'nope' }, true);
  assert.notEqual(failed.status, 0, 'a failed pull stops the container');
  assert.deepEqual(failed.calls, ['pull nope'], 'and does not serve');
});

// Docker's .dockerignore rules: patterns are anchored at the context root, * and ? stay within one path element,
// ** spans elements, a trailing / is dropped, and a pattern that matches a folder excludes everything in it.
function dockerIgnored(patterns) {
  const res = patterns.map((p) => {
    const clean = p.replace(/^\/+|\/+$/g, '');
    const re = clean.split('**').map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')).join('.*');
    return new RegExp(`^${re}$`);
  });
  return (file) => {
    const parts = file.split('/');
    for (let i = 1; i <= parts.length; i++) if (res.some((re) => re.test(parts.slice(0, i).join('/')))) return true;
    return false;
  };
}

test('.dockerignore keeps every tracked file and drops build output; compose.yaml agrees with the Dockerfile', () => {
  const patterns = fs.readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  assert.ok(!patterns.some((p) => p.startsWith('!')), 'no exceptions (this matcher does not handle them)');
  const ignored = dockerIgnored(patterns);
  const tracked = execFileSync('git', ['ls-files'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  assert.ok(tracked.length > 50);
  const lost = tracked.filter(ignored);
  assert.deepEqual(lost, [], 'tracked files left out of the build context');
  // a host build/ in the context would make `make` in the image think it is up to date
  for (const p of ['build/qwen-edge', 'build/libqwen.a', 'node_modules/openai/package.json', '.git/HEAD', 'model.gguf'])
    assert.ok(ignored(p), `${p} is not in the build context`);

  // compose.yaml: the service publishes the exposed port and mounts a named volume on the image's VOLUME
  const c = fs.readFileSync('compose.yaml', 'utf8');
  // the items of a block list "key:\n  - item" (comment lines skipped)
  const list = (key) => [...(new RegExp(`^ +${key}:\\n((?: +(?:- |#).*\\n)+)`, 'm').exec(c)?.[1] ?? '').matchAll(/^ +- "?([^"\n]+?)"?\s*$/gm)].map((m) => m[1]);
  const exposed = ops(runtime, 'EXPOSE')[0];
  const published = list('ports').map((p) => p.split(':')).find((p) => p.at(-1) === exposed);
  assert.ok(published, `compose publishes ${exposed}`);
  // the container listens on every interface (it must), so the host side is this machine only (docs/SERVER.md)
  assert.equal(published.length, 3, 'the published port names a host address');
  assert.equal(published[0], '127.0.0.1', 'published on this machine only');
  const mount = list('volumes').map((v) => v.split(':')).find((v) => v[1] === ops(runtime, 'VOLUME')[0]);
  assert.ok(mount, 'compose mounts the image volume');
  assert.match(c, new RegExp(`^volumes:\\n +${mount[0]}:`, 'm'), `the named volume ${mount[0]} is declared`);
});
