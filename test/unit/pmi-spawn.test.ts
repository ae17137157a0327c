// Decoding MPI_Comm_spawn requests from both wires into one SpawnRequest shape (pmi-wire.md §4.1, §5).
import { describe, expect, it } from 'vitest';
import { decodeSpawnV1, decodeSpawnV2 } from '../../src/pmi/spawn.js';
import { SpawnAccumulator } from '../../src/pmi/wire1.js';
import { parseV2Body } from '../../src/pmi/wire2.js';

function gather(lines: string[]) {
  const acc = new SpawnAccumulator();
  for (const l of lines) {
    const r = acc.push(l);
    if (r.kind === 'done') return r.segments;
    if (r.kind === 'error') throw new Error(r.message);
  }
  throw new Error('request not finished');
}

describe('decodeSpawnV1', () => {
  it('decodes the 4.0.2 form (args before argcnt, preput repeated in every segment)', () => {
    const segs = gather([
      ...['mcmd=spawn', 'nprocs=2', 'execname=./worker', 'totspawns=2', 'spawnssofar=1', 'arg1=-v', 'arg2=a b', 'argcnt=2'],
      ...['preput_num=1', 'preput_key_0=PARENT_ROOT_PORT_NAME', 'preput_val_0=port#1', 'info_num=1', 'info_key_0=wdir', 'info_val_0=/w', 'endcmd'],
      ...['mcmd=spawn', 'nprocs=1', 'execname=./other', 'totspawns=2', 'spawnssofar=2', 'argcnt=0'],
      ...['preput_num=1', 'preput_key_0=PARENT_ROOT_PORT_NAME', 'preput_val_0=port#1', 'info_num=0', 'endcmd'],
    ]);
    expect(decodeSpawnV1(segs)).toEqual({
      ok: true,
      preput: [['PARENT_ROOT_PORT_NAME', 'port#1']],
      commands: [
        { command: './worker', args: ['-v', 'a b'], maxprocs: 2, info: [['wdir', '/w']] },
        { command: './other', args: [], maxprocs: 1, info: [] },
      ],
    });
  });

  it('decodes the main form (argcnt first, preput in the first segment only)', () => {
    const segs = gather([
      ...['mcmd=spawn', 'nprocs=3', 'execname=/bin/x', 'totspawns=2', 'spawnssofar=1', 'argcnt=1', 'arg1=z'],
      ...['preput_num=1', 'preput_key_0=k', 'preput_val_0=v', 'info_num=0', 'endcmd'],
      ...['mcmd=spawn', 'nprocs=1', 'execname=/bin/y', 'totspawns=2', 'spawnssofar=2', 'argcnt=0', 'info_num=0', 'endcmd'],
    ]);
    const d = decodeSpawnV1(segs);
    expect(d.ok && d.preput).toEqual([['k', 'v']]);
    expect(d.ok && d.commands.map((c) => [c.command, c.maxprocs, c.args])).toEqual([
      ['/bin/x', 3, ['z']],
      ['/bin/y', 1, []],
    ]);
  });

  it('counts args when argcnt is missing', () => {
    const segs = [new Map([['nprocs', '1'], ['execname', 'e'], ['arg1', 'a'], ['arg2', 'b']])];
    const d = decodeSpawnV1(segs);
    expect(d.ok && d.commands[0]?.args).toEqual(['a', 'b']);
  });

  it.each([
    [[['execname', 'e']], 'missing nprocs'],
    [[['nprocs', 'x'], ['execname', 'e']], 'bad nprocs'],
    [[['nprocs', '1']], 'missing execname'],
    [[['nprocs', '1'], ['execname', 'e'], ['argcnt', '2'], ['arg1', 'a']], 'missing arg2'],
    [[['nprocs', '1'], ['execname', 'e'], ['info_num', '1']], 'missing info_key_0'],
    [[['nprocs', '99999999'], ['execname', 'e']], 'too large'],
  ])('rejects %j', (entries, msg) => {
    const d = decodeSpawnV1([new Map(entries as Array<[string, string]>)]);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.error).toContain(msg);
  });

  it('rejects an empty request', () => {
    expect(decodeSpawnV1([]).ok).toBe(false);
  });
});

describe('decodeSpawnV2', () => {
  it('walks repeated keys per subcmd', () => {
    const m = parseV2Body(
      'cmd=spawn;thrid=0x1;ncmds=2;preputcount=1;ppkey0=PARENT_ROOT_PORT_NAME;ppval0=a;;b;' +
        'subcmd=./a;maxprocs=2;argc=2;argv0=x;argv1=y;infokeycount=1;infokey0=path;infoval0=/p;' +
        'subcmd=./b;maxprocs=1;argc=0;infokeycount=0;',
    )!;
    expect(decodeSpawnV2(m.pairs)).toEqual({
      ok: true,
      preput: [['PARENT_ROOT_PORT_NAME', 'a;b']],
      commands: [
        { command: './a', args: ['x', 'y'], maxprocs: 2, info: [['path', '/p']] },
        { command: './b', args: [], maxprocs: 1, info: [] },
      ],
    });
  });

  it.each([
    ['cmd=spawn;ncmds=2;subcmd=a;maxprocs=1;', 'ncmds=2 but 1'],
    ['cmd=spawn;subcmd=a;maxprocs=1;', 'missing ncmds'],
    ['cmd=spawn;ncmds=1;subcmd=a;', 'missing maxprocs'],
    ['cmd=spawn;ncmds=1;subcmd=a;maxprocs=1;argc=1;', 'missing argv0'],
    ['cmd=spawn;ncmds=1;preputcount=1;subcmd=a;maxprocs=1;', 'missing ppkey0'],
    ['cmd=spawn;ncmds=0;', 'ncmds=0'],
  ])('rejects %j', (body, msg) => {
    const d = decodeSpawnV2(parseV2Body(body)!.pairs);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.error).toContain(msg);
  });
});
