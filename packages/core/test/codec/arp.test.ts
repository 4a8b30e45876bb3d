import { describe, expect, it } from 'vitest';
import {
  ArpOp,
  buildArp,
  buildArpReply,
  formatIPv4Address,
  formatMac,
  parseArp,
  parseIPv4Address,
} from '../../src/codec/index.js';
import { expectTapError, fromHex, inSlab, INVALID, KERNEL, toHex } from './helpers.js';

const request = KERNEL.arpRequest.subarray(14);

describe('parseArp', () => {
  it('decodes the kernel request into views', () => {
    const bytes = inSlab(request);
    const arp = parseArp(bytes);
    expect(arp.op).toBe(ArpOp.Request);
    expect(formatMac(arp.senderMac)).toBe('02:fc:00:00:00:01');
    expect(formatIPv4Address(arp.senderIp)).toBe('192.0.2.2');
    expect(formatMac(arp.targetMac)).toBe('00:00:00:00:00:00');
    expect(formatIPv4Address(arp.targetIp)).toBe('192.0.2.78');
    expect(arp.targetIp.byteOffset).toBe(bytes.byteOffset + 24);
  });

  it('ignores Ethernet padding after the 28 bytes', () => {
    const padded = Uint8Array.from([...request, ...new Uint8Array(18)]);
    expect(formatIPv4Address(parseArp(padded).targetIp)).toBe('192.0.2.78');
  });

  it('throws MALFORMED when short or not Ethernet/IPv4', () => {
    for (let n = 0; n < 28; n++) expectTapError(() => parseArp(request.subarray(0, n)));
    for (const [at, value] of [
      [1, 6], // htype 6 (IEEE 802)
      [2, 0x86], // ptype 0x8600
      [4, 8], // hlen 8
      [5, 16], // plen 16
    ] as const) {
      const bad = request.slice();
      bad[at] = value;
      expectTapError(() => parseArp(bad));
    }
  });
});

describe('buildArp', () => {
  it('rebuilds the kernel request byte for byte (target MAC defaults to zeros)', () => {
    const built = buildArp({
      op: ArpOp.Request,
      senderMac: '02:fc:00:00:00:01',
      senderIp: parseIPv4Address('192.0.2.2'),
      targetIp: parseIPv4Address('192.0.2.78'),
    });
    expect(toHex(built)).toBe(toHex(request));
  });

  it('buildArpReply answers a request from the target', () => {
    const reply = parseArp(buildArpReply(parseArp(request), '02:00:00:00:00:4e'));
    expect(reply.op).toBe(ArpOp.Reply);
    expect(formatMac(reply.senderMac)).toBe('02:00:00:00:00:4e');
    expect(formatIPv4Address(reply.senderIp)).toBe('192.0.2.78');
    expect(formatMac(reply.targetMac)).toBe('02:fc:00:00:00:01');
    expect(formatIPv4Address(reply.targetIp)).toBe('192.0.2.2');
  });

  it('refuses bad inputs with INVALID_ARGUMENT', () => {
    const ok = {
      op: 1,
      senderMac: fromHex('020000000001'),
      senderIp: new Uint8Array(4),
      targetIp: new Uint8Array(4),
    };
    expectTapError(() => buildArp({ ...ok, senderIp: new Uint8Array(16) }), INVALID);
    expectTapError(() => buildArp({ ...ok, targetMac: 'xx' }), INVALID);
    expectTapError(() => buildArp({ ...ok, op: 0x10000 }), INVALID);
  });
});
