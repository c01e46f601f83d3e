// grammar.test.mjs — constrained decoding end to end: `qwen-edge run --json-schema` on a random-weight model (tiny
// shape, the real vocabulary: unconstrained, its output is garbage) for many schemas x seeds; every answer that
// finishes (exit 0, the grammar complete) must parse and validate against its schema with ajv, an independent
// validator. Answers cut by -n exit with 3 and are only counted. Also: --grammar (GBNF) and the error paths.
//   QE_GRAMMAR_SEEDS=20 for the full check (default 1 seed per schema, half of the schemas sampled wide, to keep `make test` short).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { makeModel } from './lib/models.mjs';

const BIN = process.env.QE_BIN || 'build/qwen-edge';
const TMP = process.env.QE_TEST_TMP || 'build/tests/tmp';
const SEEDS = Number(process.env.QE_GRAMMAR_SEEDS || 1);
const JOBS = Number(process.env.QE_GRAMMAR_JOBS || 2);

const obj = (properties, required = Object.keys(properties), extra = {}) =>
  ({ type: 'object', properties, required, additionalProperties: false, ...extra });
const S = { type: 'string' }, I = { type: 'integer' }, N = { type: 'number' }, B = { type: 'boolean' };

// 50+ schemas covering every supported keyword
const SCHEMAS = [
  obj({ name: S }),
  obj({ name: S, age: I }),
  obj({ a: S, b: I, c: N, d: B, e: { type: 'null' } }),
  obj({ name: S, age: I, email: S }, ['name']),
  obj({ x: I, y: I, z: I }, []),
  obj({ id: { type: 'string', format: 'uuid' } }),
  obj({ day: { type: 'string', format: 'date' } }),
  obj({ at: { type: 'string', format: 'date-time' } }),
  obj({ t: { type: 'string', format: 'time' } }),
  obj({ code: { type: 'string', pattern: '^[A-Z]{3}-\\d{2,4}$' } }),
  obj({ w: { type: 'string', pattern: '^(cat|dog|bird)s?$' } }),
  obj({ hex: { type: 'string', pattern: '^#[0-9a-f]{6}$' } }),
  obj({ v: { type: 'string', pattern: 'ab+c' } }),
  obj({ s: { type: 'string', minLength: 2, maxLength: 5 } }),
  obj({ s: { type: 'string', maxLength: 1 } }),
  obj({ s: { type: 'string', minLength: 3 } }),
  obj({ unit: { enum: ['celsius', 'fahrenheit'] } }),
  obj({ k: { enum: ['a', 1, null, true, 2.5] } }),
  obj({ k: { const: 'fixed' }, n: { const: 42 } }),
  obj({ n: { type: 'integer', minimum: 1, maximum: 14 } }),
  obj({ n: { type: 'integer', minimum: -50, maximum: 50 } }),
  obj({ n: { type: 'integer', minimum: 100 } }),
  obj({ n: { type: 'integer', maximum: -3 } }),
  obj({ n: { type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 1000 } }),
  obj({ p: { type: 'number', minimum: 0, maximum: 1 } }),
  obj({ lat: { type: 'number', minimum: -90, maximum: 90 }, lon: { type: 'number', minimum: -180, maximum: 180 } }),
  obj({ p: { type: 'number', exclusiveMinimum: 0 } }),
  obj({ p: { type: 'number', exclusiveMaximum: 0 } }),
  obj({ tags: { type: 'array', items: S } }),
  obj({ tags: { type: 'array', items: S, minItems: 1, maxItems: 3 } }),
  obj({ m: { type: 'array', items: { type: 'array', items: I, maxItems: 2 }, maxItems: 2 } }),
  obj({ xs: { type: 'array', items: { enum: ['r', 'g', 'b'] }, minItems: 2, maxItems: 2 } }),
  obj({ pts: { type: 'array', items: obj({ x: N, y: N }), maxItems: 3 } }),
  obj({ n: { type: ['integer', 'null'] } }),
  obj({ s: { type: ['string', 'null'], maxLength: 4 } }),
  obj({ v: { anyOf: [S, I] } }),
  obj({ v: { oneOf: [{ type: 'string', maxLength: 3 }, { type: 'boolean' }, { type: 'null' }] } }),
  obj({ shape: { oneOf: [obj({ kind: { const: 'circle' }, r: N }), obj({ kind: { const: 'square' }, side: N })] } }),
  obj({ meta: { type: 'object' } }),
  obj({ meta: { type: 'object', additionalProperties: I } }),
  obj({ any: {} }),
  obj({ any: true }),
  obj({ inner: obj({ deep: obj({ v: I }) }) }),
  { $defs: { p: obj({ n: S, age: I }) }, ...obj({ a: { $ref: '#/$defs/p' }, b: { $ref: '#/$defs/p' } }) },
  { definitions: { node: obj({ v: I, kids: { type: 'array', items: { $ref: '#/definitions/node' }, maxItems: 2 } }, ['v']) },
    $ref: '#/definitions/node' },
  { type: 'array', items: I, maxItems: 5 },
  { type: 'string', maxLength: 20 },
  { type: 'integer', minimum: 0, maximum: 9 },
  { enum: ['yes', 'no'] },
  { type: 'object', title: 'get_weather', description: 'Get the weather',
    properties: { location: { type: 'string', description: 'City' }, unit: { type: 'string', enum: ['c', 'f'] },
      days: { type: 'integer', minimum: 1, maximum: 7 } },
    required: ['location'], additionalProperties: false },
  { type: 'object', properties: { query: S, limit: I, filters: { type: 'object', properties: { lang: S, year: I } } } },
  obj({ quote: { type: 'string', pattern: '^"[a-z]+"\\\\$' } }),
  obj({ nl: { type: 'string', pattern: '^a\\nb\\tc$' } }),
  obj({ u: { type: 'string', pattern: '^[é-ü]+$' } }),
  obj({ s: { type: 'string' }, nullable: { type: 'integer', nullable: true } }),
];

// formats by hand (ajv itself ships none): strict versions of what the grammar promises
const daysIn = (y, m) => [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];
const isDate = (s) => { const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s); return !!m && +m[2] >= 1 && +m[2] <= 12 && +m[3] >= 1 && +m[3] <= daysIn(+m[1], +m[2]); };
const isTime = (s) => /^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/.test(s);
function makeAjv() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajv.addFormat('date', isDate);
  ajv.addFormat('time', isTime);
  ajv.addFormat('date-time', (s) => { const i = s.indexOf('T'); return i > 0 && isDate(s.slice(0, i)) && isTime(s.slice(i + 1)); });
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  return ajv;
}

function run(args) {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 120000, maxBuffer: 1 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error ? (error.code ?? 1) : 0, stdout, stderr }));
  });
}

// runs fn over items with at most n at a time
async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (next < items.length) { const i = next++; await fn(items[i], i); } }));
}

test('run --json-schema: every finished answer validates (ajv)', { timeout: 1800000 }, async () => {
  const model = makeModel({ shape: 'tiny', type: 'f16' });
  const dir = path.join(TMP, 'grammar');
  fs.mkdirSync(dir, { recursive: true });
  const ajv = makeAjv();
  const jobs = [];
  SCHEMAS.forEach((schema, i) => {
    const file = path.join(dir, `schema${i}.json`);
    fs.writeFileSync(file, JSON.stringify(schema));
    const validate = ajv.compile(schema);
    for (let s = 0; s < SEEDS; s++) jobs.push({ i, file, validate, seed: 1000 * i + s, wide: (i + s) % 2 === 1 });
  });
  const counts = { finished: 0, valid: 0, cut: 0 };
  const failures = [];
  const t0 = Date.now();
  await pool(jobs, JOBS, async (j) => {
    // every other job samples wider (temperature 1, no top-k / top-p) to walk more of each grammar
    const wide = j.wide ? ['--temp', '1', '--top-k', '0', '--top-p', '1'] : [];
    const r = await run(['run', '-m', model, '--json-schema', j.file, '-p', 'Reply in JSON.', '--seed', String(j.seed),
                         '-n', '160', '-t', '1', ...wide]);
    if (r.code === 3) { counts.cut++; return; }
    if (r.code !== 0) { failures.push(`schema ${j.i} seed ${j.seed}: exit ${r.code}: ${r.stderr}`); return; }
    counts.finished++;
    let v;
    try { v = JSON.parse(r.stdout); } catch (e) { failures.push(`schema ${j.i} seed ${j.seed}: not JSON: ${r.stdout}`); return; }
    if (j.validate(v)) counts.valid++;
    else failures.push(`schema ${j.i} seed ${j.seed}: ${r.stdout.trim()} — ${ajv.errorsText(j.validate.errors)}`);
  });
  console.log(`# grammar: ${SCHEMAS.length} schemas x ${SEEDS} seeds: ${counts.finished} finished, ${counts.valid} valid, ` +
              `${counts.cut} cut by -n, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  assert.deepEqual(failures, []);
  assert.ok(counts.finished >= jobs.length / 2, `too few answers finished (${counts.finished} of ${jobs.length})`);
});

test('run --grammar (GBNF) follows the grammar', async () => {
  const model = makeModel({ shape: 'tiny', type: 'f16' });
  const file = path.join(TMP, 'grammar', 'yesno.gbnf');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, 'root ::= ("yes" | "no") ", " [0-9]{1,3} "%"\n');
  for (let seed = 1; seed <= 4; seed++) {
    const r = await run(['run', '-m', model, '--grammar', file, '-p', 'Sure?', '--seed', String(seed), '-n', '40', '-t', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^(yes|no), [0-9]{1,3}%\n$/);
  }
});

test('run: bad schemas and grammars are clear errors', async () => {
  const dir = path.join(TMP, 'grammar');
  fs.mkdirSync(dir, { recursive: true });
  const cases = [
    ['--json-schema', '{"type":"array","uniqueItems":true}', /unsupported keyword 'uniqueItems'/],
    ['--json-schema', '{"type":"string","minLength":5,"maxLength":2}', /never be satisfied/],
    ['--json-schema', '{"type":', /not valid JSON/],
    ['--grammar', 'root ::= "a" [z-a]', /line 1, column 15: character range is out of order/],
    ['--grammar', 'root ::= missing', /'missing' is used but not defined/],
  ];
  for (const [flag, text, re] of cases) {
    const file = path.join(dir, 'bad.txt');
    fs.writeFileSync(file, text);
    // no model needed: the grammar is compiled first
    const r = await run(['run', '-m', '/nonexistent.gguf', flag, file, '-p', 'x']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
  }
});
