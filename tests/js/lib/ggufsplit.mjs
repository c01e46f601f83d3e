// ggufsplit.mjs — splits a GGUF file into parts the way llama.cpp's gguf-split does (for the pull tests of
// split models): part k of n is PREFIX-0000k-of-0000n.gguf; part 1 has all metadata plus split.no (u16),
// split.count (u16) and split.tensors.count (i32); later parts have only those three keys; each part holds
// a run of the tensors with offsets relative to its own data section. Works on the raw bytes: the metadata
// section of part 1 is copied as is.
import fs from 'node:fs';

const SIZES = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

function reader(buf) {
  let p = 0;
  const r = {
    get pos() { return p; },
    u32() { const v = buf.readUInt32LE(p); p += 4; return v; },
    u64() { const v = Number(buf.readBigUInt64LE(p)); p += 8; return v; },
    str() { const n = r.u64(); const s = buf.toString('utf8', p, p + n); p += n; return s; },
    skip(type) {
      if (type === 8) { r.str(); return; }
      if (type === 9) { const t = r.u32(); const n = r.u64(); for (let i = 0; i < n; i++) r.skip(t); return; }
      p += SIZES[type];
    },
  };
  return r;
}

function kvBytes(key, type, valueBuf) {
  const k = Buffer.from(key, 'utf8');
  const head = Buffer.alloc(8 + k.length + 4);
  head.writeBigUInt64LE(BigInt(k.length), 0);
  k.copy(head, 8);
  head.writeUInt32LE(type, 8 + k.length);
  return Buffer.concat([head, valueBuf]);
}
const u16 = (v) => { const b = Buffer.alloc(2); b.writeUInt16LE(v); return b; };
const i32 = (v) => { const b = Buffer.alloc(4); b.writeInt32LE(v); return b; };

/** Splits `file` into `n` parts named `${prefix}-0000k-of-0000n.gguf`; returns their paths. */
export function splitGguf(file, prefix, n) {
  const buf = fs.readFileSync(file);
  const r = reader(buf);
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error('not GGUF');
  r.u32(); r.u32(); // magic, version
  const nTensors = r.u64();
  const nKv = r.u64();
  const kvStart = r.pos;
  let alignment = 32;
  for (let i = 0; i < nKv; i++) {
    const key = r.str();
    const type = r.u32();
    if (key === 'general.alignment') alignment = buf.readUInt32LE(r.pos);
    r.skip(type);
  }
  const kvRaw = buf.subarray(kvStart, r.pos);
  const tensors = [];
  for (let i = 0; i < nTensors; i++) {
    const start = r.pos;
    const name = r.str();
    const nd = r.u32();
    for (let d = 0; d < nd; d++) r.u64();
    r.u32();
    const offPos = r.pos;
    const offset = r.u64();
    tensors.push({ name, info: buf.subarray(start, offPos), offset });
  }
  const dataStart = Math.ceil(r.pos / alignment) * alignment;
  for (let i = 0; i < tensors.length; i++) tensors[i].end = i + 1 < tensors.length ? tensors[i + 1].offset : buf.length - dataStart;

  const per = Math.ceil(tensors.length / n);
  const paths = [];
  for (let k = 0; k < n; k++) {
    const part = tensors.slice(k * per, (k + 1) * per);
    const kvs = [kvBytes('split.no', 2, u16(k)), kvBytes('split.count', 2, u16(n)), kvBytes('split.tensors.count', 5, i32(tensors.length))];
    const meta = k === 0 ? [kvRaw, ...kvs] : kvs;
    const head = Buffer.alloc(24);
    head.write('GGUF', 0, 'latin1');
    head.writeUInt32LE(3, 4);
    head.writeBigUInt64LE(BigInt(part.length), 8);
    head.writeBigUInt64LE(BigInt((k === 0 ? nKv : 0) + 3), 16);
    const infos = [];
    const datas = [];
    let off = 0;
    for (const t of part) {
      const o = Buffer.alloc(8);
      o.writeBigUInt64LE(BigInt(off));
      infos.push(t.info, o);
      const d = buf.subarray(dataStart + t.offset, dataStart + t.end);
      datas.push(d);
      off += d.length; // sizes between offsets are already padded to the alignment
    }
    let header = Buffer.concat([head, ...meta, ...infos]);
    const pad = (alignment - (header.length % alignment)) % alignment;
    header = Buffer.concat([header, Buffer.alloc(pad)]);
    const p = `${prefix}-${String(k + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.gguf`;
    fs.writeFileSync(p, Buffer.concat([header, ...datas]));
    paths.push(p);
  }
  return paths;
}
