// A proxy of another protocol version is named with both tsmpiexec versions (the hello carries the proxy's).
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../src/control/messages.js';
import { protocolMismatch } from '../../src/run/remote-proxy.js';

const ours = (JSON.parse(fs.readFileSync('package.json', 'utf8')) as { version: string }).version;

describe('protocolMismatch', () => {
  it('names both protocol and both tsmpiexec versions, and what to do', () => {
    expect(protocolMismatch(1, '0.0.9')).toBe(
      `proxy speaks protocol 1 (tsmpiexec 0.0.9), expected ${PROTOCOL_VERSION} (tsmpiexec ${ours}): install the same tsmpiexec on every host`,
    );
  });
  it('leaves the proxy release out when an older proxy did not send one', () => {
    expect(protocolMismatch(1, undefined)).toMatch(/^proxy speaks protocol 1, expected \d+ \(tsmpiexec /);
  });
});
