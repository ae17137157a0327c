// PMI-2 framing and body codec (pmi-wire.md §1.3, §3.3).
import { describe, expect, it } from 'vitest';
import { escapeV2, formatV2, formatV2Body, frameV2, parseV2Body, parseV2Header } from '../../src/pmi/wire2.js';

const hdr = (s: string) => Buffer.from(s, 'latin1');

describe('parseV2Header', () => {
  it.each([
    ['    23', 23],
    ['44    ', 44],
    ['000007', 7],
    ['  12  ', 12],
    ['999999', 999999],
    ['5\0\0\0\0\0', 5],
  ])('%j -> %d', (h, n) => {
    expect(parseV2Header(hdr(h))).toBe(n);
  });

  it.each(['      ', 'cmd=in', ' 1 2  ', '12a   ', '-12   ', '\n12345'])('rejects %j', (h) => {
    expect(parseV2Header(hdr(h))).toBeUndefined();
  });

  it('needs exactly 6 bytes', () => {
    expect(parseV2Header(hdr('12'))).toBeUndefined();
    expect(parseV2Header(hdr('1234567'))).toBeUndefined();
  });
});

describe('parseV2Body', () => {
  it('parses main fullinit', () => {
    const m = parseV2Body('cmd=fullinit;pmirank=0;');
    expect(m?.cmd).toBe('fullinit');
    expect(m?.pairs).toEqual([['pmirank', '0']]);
  });

  it('parses the 4.0.2 fullinit with 6 junk bytes counted in the length', () => {
    const body = 'cmd=fullinit;pmirank=0;threaded=FALSE;';
    expect(body.length).toBe(38);
    for (const junk of ['\0\0\0\0\0\0', 'x7\u00ff=ab', 'abcdef', '\x01\x02;\x03\x04\x05'.replace(';', 'Z')]) {
      const m = parseV2Body(body + junk);
      expect(m?.cmd).toBe('fullinit');
      expect(Object.fromEntries(m!.fields)).toEqual({ pmirank: '0', threaded: 'FALSE' });
    }
  });

  it('unescapes ;; and keeps = in values', () => {
    const m = parseV2Body('cmd=kvs-put;key=a;value=x;;y=z;;;');
    expect(m?.fields.get('value')).toBe('x;y=z;');
    expect(m?.fields.get('key')).toBe('a');
  });

  it('takes the first duplicate in fields but keeps all pairs in order', () => {
    const m = parseV2Body('cmd=spawn;subcmd=a;argc=0;subcmd=b;argc=1;argv0=x;');
    expect(m?.fields.get('subcmd')).toBe('a');
    expect(m?.pairs.map(([k]) => k)).toEqual(['subcmd', 'argc', 'subcmd', 'argc', 'argv0']);
  });

  it('drops an unterminated trailing pair', () => {
    expect(parseV2Body('cmd=kvs-get;key=a;srcid=-')?.pairs).toEqual([['key', 'a']]);
  });

  it.each(['', 'cmd=', 'cmd=x', 'key=cmd;', 'junk', ';;;', 'cmd=;'])('rejects %j', (b) => {
    expect(parseV2Body(b)).toBeUndefined();
  });
});

describe('formatV2', () => {
  it('writes the exact fullinit-response of pmi-wire.md §3.3', () => {
    expect(
      formatV2('fullinit-response', [
        ['pmi-version', 2],
        ['pmi-subversion', 0],
        ['rank', 0],
        ['size', 2],
        ['appnum', 0],
        ['debugged', 'FALSE'],
        ['pmiverbose', 'FALSE'],
        ['rc', 0],
      ]),
    ).toBe('   113cmd=fullinit-response;pmi-version=2;pmi-subversion=0;rank=0;size=2;appnum=0;debugged=FALSE;pmiverbose=FALSE;rc=0;');
  });

  it('right-aligns the byte length (not the UTF-16 length)', () => {
    const framed = formatV2('x', [['v', 'é']]);
    expect(framed.slice(0, 6)).toBe('    11');
    expect(Buffer.byteLength(framed.slice(6))).toBe(11);
  });

  it('escapes ; and round-trips', () => {
    expect(escapeV2('a;b;;')).toBe('a;;b;;;;');
    const body = formatV2Body('kvs-get-response', [['value', 'a;b'], ['found', 'TRUE']]);
    expect(body).toBe('cmd=kvs-get-response;value=a;;b;found=TRUE;');
    const m = parseV2Body(body);
    expect(Object.fromEntries(m!.fields)).toEqual({ value: 'a;b', found: 'TRUE' });
  });

  it('refuses a body too long for the header', () => {
    expect(() => frameV2('x'.repeat(1_000_000))).toThrow(RangeError);
  });
});
