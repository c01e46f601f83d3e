// models.mjs — random-weight test models made with `qwen-edge mkmodel`, cached in QE_TEST_TMP by their arguments
// (a file is reused by every test that asks for the same shape, type, layout and seed within one `make test`).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const BIN = process.env.QE_BIN || 'build/qwen-edge';
const TMP = process.env.QE_TEST_TMP || 'build/tests/tmp';

export function makeModel({ shape = 'tiny', type = 'f16', layout = 'pure', seed = 1 } = {}) {
  const dir = path.join(TMP, 'models');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${shape}-${type}-${layout}-s${seed}.gguf`);
  // a binary newer than the file may write differently: remake
  if (!fs.existsSync(file) || fs.statSync(file).mtimeMs < fs.statSync(BIN).mtimeMs) {
    execFileSync(BIN, ['mkmodel', '-o', file, '--shape', shape, '--type', type, '--layout', layout, '--seed', String(seed)],
                 { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return file;
}
