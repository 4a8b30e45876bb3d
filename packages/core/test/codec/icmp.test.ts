import { describe, expect, it } from 'vitest';
import {
  buildIcmpEcho,
  IcmpType,
  parseIcmp,
  parseIcmpEcho,
  verifyIcmpChecksum,
} from '../../src/codec/index.js';
import { expectTapError, fromHex, inSlab, INVALID, KERNEL, toHex } from './helpers.js';

const request = KERNEL.icmpEchoRequest.subarray(34);
const reply = KERNEL.icmpEchoReply.subarray(34);

describe('ICMPv4 echo', () => {
  it('decodes the kernel echo request and reply', () => {
    expect(parseIcmpEcho(inSlab(request))).toEqual({
      type: IcmpType.EchoRequest,
      code: 0,
      checksum: 0x5cd5,
      identifier: 0x16a3,
      sequence: 1,
      data: fromHex('4142434400000000'),
    });
    expect(parseIcmpEcho(reply)?.type).toBe(IcmpType.EchoReply);
    expect(verifyIcmpChecksum(request)).toBe(true);
    expect(verifyIcmpChecksum(reply)).toBe(true);
  });

  it('rebuilds both kernel messages byte for byte', () => {
    const data = fromHex('4142434400000000');
    expect(toHex(buildIcmpEcho({ type: IcmpType.EchoRequest, identifier: 0x16a3, sequence: 1, data }))).toBe(
      toHex(request),
    );
    expect(toHex(buildIcmpEcho({ type: IcmpType.EchoReply, identifier: 0x16a3, sequence: 1, data }))).toBe(
      toHex(reply),
    );
  });

  it('round-trips odd-length data and extreme fields', () => {
    const data = Uint8Array.from({ length: 57 }, (_, i) => 255 - i);
    const bytes = buildIcmpEcho({ type: 8, identifier: 0xffff, sequence: 0xffff, data });
    expect(verifyIcmpChecksum(bytes)).toBe(true);
    expect(parseIcmpEcho(bytes)).toMatchObject({ identifier: 0xffff, sequence: 0xffff, data });
  });

  it('returns undefined for other types and throws MALFORMED when truncated', () => {
    expect(parseIcmpEcho(fromHex('0303 0000 00000000'))).toBeUndefined(); // port unreachable
    expect(parseIcmpEcho(fromHex('0b'))).toBeUndefined();
    expectTapError(() => parseIcmpEcho(new Uint8Array(0)));
    for (let n = 1; n < 8; n++) expectTapError(() => parseIcmpEcho(request.subarray(0, n)));
  });

  it('refuses non-echo types and bad fields with INVALID_ARGUMENT', () => {
    const ok = { type: 8, identifier: 1, sequence: 1, data: new Uint8Array(0) };
    expectTapError(() => buildIcmpEcho({ ...ok, type: 3 }), INVALID);
    expectTapError(() => buildIcmpEcho({ ...ok, type: 128 }), INVALID);
    expectTapError(() => buildIcmpEcho({ ...ok, identifier: 0x10000 }), INVALID);
    expectTapError(() => buildIcmpEcho({ ...ok, sequence: -1 }), INVALID);
  });
});

describe('parseIcmp / verifyIcmpChecksum', () => {
  it('decodes any message header', () => {
    const msg = parseIcmp(fromHex('0303 fcfc 00000000 4500'));
    expect(msg).toMatchObject({ type: 3, code: 3, checksum: 0xfcfc });
    expect(toHex(msg.body)).toBe('000000004500');
    for (let n = 0; n < 4; n++) expectTapError(() => parseIcmp(new Uint8Array(n)));
  });

  it('detects corruption and is false under 4 bytes', () => {
    const bad = request.slice();
    bad[10] = bad[10]! ^ 0x80;
    expect(verifyIcmpChecksum(bad)).toBe(false);
    expect(verifyIcmpChecksum(new Uint8Array(3))).toBe(false);
  });
});
