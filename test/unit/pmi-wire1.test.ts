// PMI-1 line codec and mcmd=spawn accumulation (pmi-wire.md §1.2, §4, §4.1).
import { describe, expect, it } from 'vitest';
import { SpawnAccumulator, formatV1, isV1PutValueWhole, isV1Safe, parseV1Line } from '../../src/pmi/wire1.js';

const obj = (m: Map<string, string>) => Object.fromEntries(m);

describe('parseV1Line', () => {
  it.each([
    ['cmd=init pmi_version=1 pmi_subversion=1\n', 'init', { pmi_version: '1', pmi_subversion: '1' }],
    ['cmd=get_maxes', 'get_maxes', {}],
    ['cmd=put kvsname=kvs_1 key=-bcast-1-0 value=0A1B', 'put', { kvsname: 'kvs_1', key: '-bcast-1-0', value: '0A1B' }],
    // split at the FIRST '=': values may contain '='
    ['cmd=put kvsname=k key=a value=segments=3', 'put', { kvsname: 'k', key: 'a', value: 'segments=3' }],
    // backslashes pass through
    ['cmd=put kvsname=k key=a value=C:\\dir\\\\x', 'put', { kvsname: 'k', key: 'a', value: 'C:\\dir\\\\x' }],
    ['cmd=get   kvsname=k  key=hostname[0]  ', 'get', { kvsname: 'k', key: 'hostname[0]' }],
    ['cmd=put kvsname=k key=e value=', 'put', { kvsname: 'k', key: 'e', value: '' }],
    // first duplicate wins; a bare token is a key with an empty value
    ['cmd=abort exitcode=3 exitcode=4 loose', 'abort', { exitcode: '3', loose: '' }],
    ['cmd=x a=1\r\n', 'x', { a: '1' }],
  ])('%j', (line, cmd, fields) => {
    const m = parseV1Line(line);
    expect(m).toBeDefined();
    expect(m?.cmd).toBe(cmd);
    expect(m?.multi).toBe(false);
    expect(obj(m!.fields)).toEqual(fields);
  });

  it('keeps the value that follows a backslash-space as its own token', () => {
    expect(obj(parseV1Line('cmd=put value=x\\ y')!.fields)).toEqual({ value: 'x\\', y: '' });
  });

  it('recognises mcmd=', () => {
    expect(parseV1Line('mcmd=spawn')).toEqual({ cmd: 'spawn', multi: true, fields: new Map() });
  });

  it.each(['', '\n', 'init', 'cmd=', 'key=cmd=init', ' =x', 'mcmd', 'foo=bar cmd=init', '    23cmd=fullinit;'])(
    'rejects %j',
    (line) => {
      expect(parseV1Line(line)).toBeUndefined();
    },
  );
});

describe('formatV1', () => {
  it('formats the exact replies 4.0.2 reads', () => {
    expect(formatV1('response_to_init', [['rc', 0], ['pmi_version', 1], ['pmi_subversion', 1]])).toBe(
      'cmd=response_to_init rc=0 pmi_version=1 pmi_subversion=1\n',
    );
    expect(formatV1('barrier_out')).toBe('cmd=barrier_out\n');
    expect(formatV1('get_result', [['rc', 0], ['value', '']])).toBe('cmd=get_result rc=0 value=\n');
  });

  it('round-trips through the parser', () => {
    const line = formatV1('get_result', [['rc', 0], ['value', 'a=b=c']]);
    expect(obj(parseV1Line(line)!.fields)).toEqual({ rc: '0', value: 'a=b=c' });
  });

  it.each([['value', 'a b'], ['value', 'a\nb'], ['k=x', 'v'], ['', 'v']])('refuses %j=%j', (k, v) => {
    expect(() => formatV1('x', [[k, v]])).toThrow(TypeError);
  });

  it('isV1Safe', () => {
    expect(isV1Safe('abc=def')).toBe(true);
    expect(isV1Safe('')).toBe(true);
    expect(isV1Safe('a b')).toBe(false);
    expect(isV1Safe('a\r')).toBe(false);
  });
});

describe('SpawnAccumulator', () => {
  // 4.0.2 form: args before argcnt, preputs in every segment, one write per line.
  const seg402 = (i: number, total: number) => [
    'mcmd=spawn',
    'nprocs=2',
    `execname=./child${i}`,
    `totspawns=${total}`,
    `spawnssofar=${i}`,
    'arg1=--x=1',
    'arg2=two words',
    'argcnt=2',
    'preput_num=1',
    'preput_key_0=PARENT_ROOT_PORT_NAME',
    'preput_val_0=tag#0$',
    'info_num=1',
    'info_key_0=wdir',
    'info_val_0=/tmp',
    'endcmd',
  ];

  it('gathers segments until spawnssofar == totspawns', () => {
    const acc = new SpawnAccumulator();
    const lines = [...seg402(1, 2), ...seg402(2, 2)];
    const results = lines.map((l) => acc.push(l));
    expect(results.slice(0, -1).every((r) => r.kind === 'more')).toBe(true);
    const last = results[results.length - 1];
    expect(last?.kind).toBe('done');
    if (last?.kind !== 'done') return;
    expect(last.segments).toHaveLength(2);
    expect(last.segments[1]?.get('execname')).toBe('./child2');
    expect(last.segments[0]?.get('arg2')).toBe('two words');
    expect(last.segments[0]?.get('arg1')).toBe('--x=1');
    expect(acc.active).toBe(false);
  });

  it('is reusable after a finished request and reports activity in between', () => {
    const acc = new SpawnAccumulator();
    for (const l of seg402(1, 1)) acc.push(l);
    expect(acc.active).toBe(false);
    acc.push('mcmd=spawn');
    expect(acc.active).toBe(true);
    for (const l of seg402(1, 1).slice(1)) acc.push(l);
    expect(acc.active).toBe(false);
  });

  it('stays active between segments', () => {
    const acc = new SpawnAccumulator();
    for (const l of seg402(1, 3)) acc.push(l);
    expect(acc.active).toBe(true);
  });

  it.each([
    [['nprocs=1'], 'expected mcmd=spawn'],
    [['mcmd=spawn', 'nprocs=1', 'endcmd'], 'totspawns'],
    [['mcmd=spawn', 'noequals'], 'bad spawn line'],
    [['mcmd=spawn', 'totspawns=1', 'spawnssofar=2', 'endcmd'], 'totspawns'],
  ])('fails on %j', (lines, msg) => {
    const acc = new SpawnAccumulator();
    const rs = lines.map((l) => acc.push(l));
    const last = rs[rs.length - 1];
    expect(last?.kind).toBe('error');
    if (last?.kind === 'error') expect(last.message).toContain(msg);
    expect(acc.push('mcmd=spawn').kind).toBe('error');
  });

  it('refuses an unbounded request', () => {
    const acc = new SpawnAccumulator();
    acc.push('mcmd=spawn');
    let r = acc.push('x=' + 'a'.repeat(600_000));
    expect(r.kind).toBe('more');
    r = acc.push('y=' + 'a'.repeat(600_000));
    expect(r.kind).toBe('error');
  });
});

describe('isV1PutValueWhole', () => {
  it('accepts a put whose value is the last word, and refuses one a space would cut', () => {
    expect(isV1PutValueWhole('cmd=put kvsname=k key=a value=x=y\n')).toBe(true);
    expect(isV1PutValueWhole('cmd=put kvsname=k key=a value=\n')).toBe(true);
    expect(isV1PutValueWhole('cmd=put kvsname=k key=a value=x y\n')).toBe(false);
    expect(isV1PutValueWhole('cmd=put kvsname=k key=a value=x \n')).toBe(false);
    expect(isV1PutValueWhole('cmd=put value=x kvsname=k key=a\n')).toBe(false);
  });
});
