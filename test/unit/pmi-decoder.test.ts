// The per-connection byte decoder: message boundaries, v1/v2 detection per message, limits.
import { describe, expect, it } from 'vitest';
import { PmiDecoder, type PmiFrame } from '../../src/pmi/decoder.js';

/** Feed `data` in pieces of `step` bytes; collect frames and the first error. */
function feed(data: Buffer | string, step: number, d = new PmiDecoder()): { frames: PmiFrame[]; error?: string } {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const frames: PmiFrame[] = [];
  for (let i = 0; i < buf.length; i += step) {
    const r = d.push(buf.subarray(i, i + step));
    frames.push(...r.frames);
    if (r.error !== undefined) return { frames, error: r.error };
  }
  return { frames };
}

// A PMI-2 conversation as 4.0.2 starts it: a v1 init line, then length-prefixed frames (left-aligned body+6
// header with junk), then one as main writes it.
const pmi2Stream = Buffer.concat([
  Buffer.from('cmd=init pmi_version=2 pmi_subversion=0\n'),
  Buffer.from('44    cmd=fullinit;pmirank=0;threaded=FALSE;'),
  Buffer.from([0xde, 0xad, 0x3b, 0x00, 0x3d, 0x7f]),
  Buffer.from('    23cmd=fullinit;pmirank=0;'),
  Buffer.from('    14cmd=kvs-fence;'),
]);

describe('PmiDecoder', () => {
  it.each([1, 2, 3, 7, 1000])('splits v1 lines fed in %d-byte pieces', (step) => {
    const { frames, error } = feed('cmd=init pmi_version=1 pmi_subversion=1\ncmd=get_maxes\n\ncmd=barrier_in\n', step);
    expect(error).toBeUndefined();
    expect(frames).toEqual([
      { kind: 'v1', line: 'cmd=init pmi_version=1 pmi_subversion=1', mcmd: false },
      { kind: 'v1', line: 'cmd=get_maxes', mcmd: false },
      { kind: 'v1', line: 'cmd=barrier_in', mcmd: false },
    ]);
  });

  it.each([1, 5, 6, 13, 4096])('tells v1 and v2 apart per message (%d-byte pieces)', (step) => {
    const { frames, error } = feed(pmi2Stream, step);
    expect(error).toBeUndefined();
    expect(frames.map((f) => f.kind)).toEqual(['v1', 'v2', 'v2', 'v2']);
    const v2 = frames.filter((f): f is Extract<PmiFrame, { kind: 'v2' }> => f.kind === 'v2');
    expect(v2[0]?.body.startsWith('cmd=fullinit;pmirank=0;threaded=FALSE;')).toBe(true);
    expect(Buffer.byteLength(v2[0]!.body, 'utf8')).toBeGreaterThanOrEqual(38);
    expect(v2[1]?.body).toBe('cmd=fullinit;pmirank=0;');
    expect(v2[2]?.body).toBe('cmd=kvs-fence;');
  });

  it('keeps every line of an mcmd block as v1, even lines that look like nothing', () => {
    const block = 'mcmd=spawn\nnprocs=2\nexecname=./a\narg1=has spaces = and;\ntotspawns=1\nspawnssofar=1\nendcmd\ncmd=get_maxes\n';
    for (const step of [1, 4, 999]) {
      const { frames, error } = feed(block, step);
      expect(error).toBeUndefined();
      expect(frames.map((f) => (f.kind === 'v1' ? [f.line, f.mcmd] : f.body))).toEqual([
        ['mcmd=spawn', true],
        ['nprocs=2', true],
        ['execname=./a', true],
        ['arg1=has spaces = and;', true],
        ['totspawns=1', true],
        ['spawnssofar=1', true],
        ['endcmd', true],
        ['cmd=get_maxes', false],
      ]);
    }
  });

  it('keeps multi-byte UTF-8 split across chunks intact', () => {
    const { frames } = feed('cmd=put kvsname=k key=a value=ünï€\n', 1);
    expect(frames[0]).toEqual({ kind: 'v1', line: 'cmd=put kvsname=k key=a value=ünï€', mcmd: false });
  });

  it('rejects a v1 line over 64 KiB without waiting for its newline', () => {
    const d = new PmiDecoder();
    let r = d.push(Buffer.from('cmd=put value=' + 'a'.repeat(60_000)));
    expect(r.error).toBeUndefined();
    r = d.push(Buffer.from('a'.repeat(6_000)));
    expect(r.error).toMatch(/longer than 65536/);
  });

  it('accepts a v1 line of exactly the limit', () => {
    const line = 'cmd=put value=' + 'a'.repeat(65536 - 14);
    const { frames, error } = feed(line + '\n', 10_000);
    expect(error).toBeUndefined();
    expect(frames[0]?.kind === 'v1' && frames[0].line.length).toBe(65536);
  });

  it('rejects a v2 body over 64 KiB from the header alone', () => {
    const { error } = feed('65537 ', 6);
    expect(error).toMatch(/exceeds 65536/);
  });

  it.each(['hello world\n', '\x00\x01\x02\x03\x04\x05', 'GET / HTTP/1.1\r\n', '     0', 'cmx=init\n'])(
    'reports garbage %j as an error and stays dead',
    (g) => {
      const d = new PmiDecoder();
      const r = d.push(Buffer.from(g, 'latin1'));
      expect(r.error).toBeDefined();
      const again = d.push(Buffer.from('cmd=get_maxes\n'));
      expect(again.frames).toEqual([]);
      expect(again.error).toBe(r.error);
    },
  );

  it('waits while the first bytes are still a prefix of cmd= or mcmd=', () => {
    const d = new PmiDecoder();
    expect(d.push(Buffer.from('mcm'))).toEqual({ frames: [] });
    expect(d.push(Buffer.from('d=spawn\n')).frames).toEqual([{ kind: 'v1', line: 'mcmd=spawn', mcmd: true }]);
  });

  it('honours custom limits', () => {
    const d = new PmiDecoder({ maxLine: 8 });
    expect(d.push(Buffer.from('cmd=abcdefgh\n')).error).toMatch(/longer than 8/);
  });
});
