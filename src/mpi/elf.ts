// The shared libraries an ELF file asks for (its DT_NEEDED entries) and where it says to look (DT_RUNPATH,
// DT_RPATH), read from the file's dynamic segment without running anything. Anything that is not a readable,
// well-formed ELF file gives undefined: the caller treats it as "not known".
import fs from 'node:fs';

export interface ElfDeps {
  needed: string[];
  /** DT_RUNPATH, else DT_RPATH, split at ':' ($ORIGIN left as written). */
  runpath: string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
/** Dynamic sections are small; this bounds what a corrupt header can make us read. */
const MAX_DYNAMIC = 64 * 1024;
const MAX_STRING = 4096;

class Reader {
  constructor(
    private readonly fd: number,
    private readonly is64: boolean,
    private readonly le: boolean,
  ) {}

  bytes(pos: number, len: number): Buffer | undefined {
    if (!Number.isSafeInteger(pos) || pos < 0 || len <= 0) return undefined;
    const b = Buffer.alloc(len);
    const n = fs.readSync(this.fd, b, 0, len, pos);
    return n === len ? b : undefined;
  }

  /** A word of the file's class (4 or 8 bytes) at off in b. */
  word(b: Buffer, off: number): number {
    if (this.is64) return Number(this.le ? b.readBigUInt64LE(off) : b.readBigUInt64BE(off));
    return this.le ? b.readUInt32LE(off) : b.readUInt32BE(off);
  }

  u16(b: Buffer, off: number): number {
    return this.le ? b.readUInt16LE(off) : b.readUInt16BE(off);
  }

  u32(b: Buffer, off: number): number {
    return this.le ? b.readUInt32LE(off) : b.readUInt32BE(off);
  }

  cstring(pos: number): string | undefined {
    const b = Buffer.alloc(MAX_STRING);
    const n = fs.readSync(this.fd, b, 0, MAX_STRING, pos);
    const end = b.subarray(0, n).indexOf(0);
    return end < 0 ? undefined : b.toString('latin1', 0, end);
  }
}

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

function segments(r: Reader, h: Buffer, is64: boolean): Segment[] | undefined {
  const phoff = r.word(h, is64 ? 0x20 : 0x1c);
  const phentsize = r.u16(h, is64 ? 0x36 : 0x2a);
  const phnum = r.u16(h, is64 ? 0x38 : 0x2c);
  if (phnum === 0 || phentsize < (is64 ? 56 : 32) || phnum > 4096) return undefined;
  const table = r.bytes(phoff, phentsize * phnum);
  if (!table) return undefined;
  const out: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    out.push(
      is64
        ? { type: r.u32(table, o), offset: r.word(table, o + 8), vaddr: r.word(table, o + 16), filesz: r.word(table, o + 32) }
        : { type: r.u32(table, o), offset: r.word(table, o + 4), vaddr: r.word(table, o + 8), filesz: r.word(table, o + 16) },
    );
  }
  return out;
}

/** The file offset of a virtual address, through the PT_LOAD segment that maps it. */
function fileOffset(segs: readonly Segment[], vaddr: number): number | undefined {
  for (const s of segs) {
    if (s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return vaddr - s.vaddr + s.offset;
  }
  return undefined;
}

/** DT_NEEDED and run path of an ELF file; undefined when it is not one (a script, a static binary has []). */
export function readElfDeps(file: string): ElfDeps | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const h = Buffer.alloc(64);
    if (fs.readSync(fd, h, 0, 64, 0) < 52) return undefined;
    if (h.readUInt32BE(0) !== 0x7f454c46) return undefined;
    const is64 = h[4] === 2;
    const le = h[5] === 1;
    if ((h[4] !== 1 && !is64) || (h[5] !== 1 && h[5] !== 2)) return undefined;
    const r = new Reader(fd, is64, le);
    const segs = segments(r, h, is64);
    if (!segs) return undefined;
    const dyn = segs.find((s) => s.type === PT_DYNAMIC);
    if (!dyn) return { needed: [], runpath: [] };
    const table = r.bytes(dyn.offset, Math.min(dyn.filesz, MAX_DYNAMIC));
    if (!table) return undefined;
    const ent = is64 ? 16 : 8;
    const neededOffs: number[] = [];
    let strtab: number | undefined;
    let rpath: number | undefined;
    let runpath: number | undefined;
    for (let o = 0; o + ent <= table.length; o += ent) {
      const tag = r.word(table, o);
      const val = r.word(table, o + ent / 2);
      if (tag === DT_NULL) break;
      if (tag === DT_NEEDED) neededOffs.push(val);
      else if (tag === DT_STRTAB) strtab = val;
      else if (tag === DT_RPATH) rpath = val;
      else if (tag === DT_RUNPATH) runpath = val;
    }
    if (strtab === undefined) return { needed: [], runpath: [] };
    const base = fileOffset(segs, strtab);
    if (base === undefined) return undefined;
    const str = (off: number): string | undefined => r.cstring(base + off);
    const needed = neededOffs.map(str).filter((s): s is string => s !== undefined && s !== '');
    const rp = runpath ?? rpath;
    const rpText = rp === undefined ? undefined : str(rp);
    return { needed, runpath: rpText ? rpText.split(':').filter((d) => d !== '') : [] };
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}
