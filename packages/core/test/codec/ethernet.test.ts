import { describe, expect, it } from 'vitest';
import {
  buildEthernet,
  EtherType,
  formatMac,
  parseEthernet,
  writeEthernetHeader,
} from '../../src/codec/index.js';
import { expectTapError, fromHex, inSlab, INVALID, KERNEL, toHex } from './helpers.js';

describe('parseEthernet', () => {
  it('decodes a kernel ARP frame', () => {
    const eth = parseEthernet(KERNEL.arpRequest);
    expect(formatMac(eth.dst)).toBe('ff:ff:ff:ff:ff:ff');
    expect(formatMac(eth.src)).toBe('02:fc:00:00:00:01');
    expect(eth.etherType).toBe(EtherType.ARP);
    expect(eth.vlan).toBeUndefined();
    expect(eth.headerLength).toBe(14);
    expect(eth.payload.length).toBe(28);
  });

  it('returns views into the frame, also for a frame inside a slab', () => {
    const frame = inSlab(KERNEL.arpRequest);
    const eth = parseEthernet(frame);
    expect(eth.payload.buffer).toBe(frame.buffer);
    expect(eth.payload.byteOffset).toBe(frame.byteOffset + 14);
    expect(eth.src.byteOffset).toBe(frame.byteOffset + 6);
    expect(eth.payload.length).toBe(28); // not the slab's trailing garbage
    frame[14] = 0x55;
    expect(eth.payload[0]).toBe(0x55);
  });

  it('decodes one 802.1Q tag', () => {
    // pcp 5, dei 1, vid 100 → TCI 0xb064; inner type IPv6
    const frame = fromHex('ffffffffffff 020000000001 8100 b064 86dd cafe');
    const eth = parseEthernet(frame);
    expect(eth.vlan).toEqual({ pcp: 5, dei: true, vid: 100 });
    expect(eth.etherType).toBe(EtherType.IPv6);
    expect(eth.headerLength).toBe(18);
    expect(toHex(eth.payload)).toBe('cafe');
  });

  it('leaves an 802.1ad outer tag undecoded', () => {
    const eth = parseEthernet(fromHex('ffffffffffff 020000000001 88a8 0064 8100 0065 0800'));
    expect(eth.etherType).toBe(EtherType.QinQ);
    expect(eth.vlan).toBeUndefined();
    expect(toHex(eth.payload)).toBe('006481000065' + '0800');
  });

  it('throws MALFORMED under 14 bytes and for a truncated tag', () => {
    for (let n = 0; n < 14; n++) expectTapError(() => parseEthernet(new Uint8Array(n)));
    const tagged = fromHex('ffffffffffff 020000000001 8100 b064 86dd');
    for (let n = 14; n < 18; n++) expectTapError(() => parseEthernet(tagged.subarray(0, n)));
    expect(parseEthernet(tagged).payload.length).toBe(0);
  });

  it('refuses non-bytes with INVALID_ARGUMENT', () => {
    expectTapError(() => parseEthernet('frame' as unknown as Uint8Array), INVALID);
  });
});

describe('buildEthernet', () => {
  it('rebuilds the kernel ARP frame from its parts', () => {
    const eth = parseEthernet(KERNEL.arpRequest);
    const built = buildEthernet({
      dst: 'ff:ff:ff:ff:ff:ff',
      src: eth.src,
      etherType: EtherType.ARP,
      payload: eth.payload,
    });
    expect(Buffer.isBuffer(built)).toBe(true);
    expect(built.equals(KERNEL.arpRequest)).toBe(true);
  });

  it('round-trips a VLAN tag', () => {
    for (const vlan of [
      { pcp: 0, dei: false, vid: 0 },
      { pcp: 7, dei: true, vid: 4095 },
      { pcp: 3, dei: false, vid: 42 },
    ]) {
      const frame = buildEthernet({
        dst: '33:33:00:00:00:01',
        src: '02-00-00-00-00-02',
        etherType: 0x86dd,
        vlan,
        payload: Uint8Array.of(1, 2),
      });
      expect(frame.length).toBe(20);
      const eth = parseEthernet(frame);
      expect(eth.vlan).toEqual(vlan);
      expect(eth.etherType).toBe(0x86dd);
      expect([...eth.payload]).toEqual([1, 2]);
    }
  });

  it('pads to 60 bytes only when asked, and never shortens', () => {
    const opts = {
      dst: 'ff:ff:ff:ff:ff:ff',
      src: '02:00:00:00:00:01',
      etherType: 0x0806,
      payload: new Uint8Array(28).fill(7),
    };
    expect(buildEthernet(opts).length).toBe(42);
    const padded = buildEthernet({ ...opts, padTo60: true });
    expect(padded.length).toBe(60);
    expect(padded.subarray(42).every((b) => b === 0)).toBe(true);
    expect(buildEthernet({ ...opts, payload: new Uint8Array(100), padTo60: true }).length).toBe(114);
  });

  it('refuses bad inputs with INVALID_ARGUMENT', () => {
    const ok = {
      dst: 'ff:ff:ff:ff:ff:ff',
      src: '02:00:00:00:00:01',
      etherType: 0x0800,
      payload: new Uint8Array(0),
    };
    expectTapError(() => buildEthernet({ ...ok, dst: 'ff:ff' }), INVALID);
    expectTapError(() => buildEthernet({ ...ok, src: new Uint8Array(4) }), INVALID);
    expectTapError(() => buildEthernet({ ...ok, etherType: 0x10000 }), INVALID);
    expectTapError(() => buildEthernet({ ...ok, etherType: -1 }), INVALID);
    expectTapError(() => buildEthernet({ ...ok, vlan: { pcp: 8, dei: false, vid: 1 } }), INVALID);
    expectTapError(() => buildEthernet({ ...ok, vlan: { pcp: 0, dei: false, vid: 4096 } }), INVALID);
    expectTapError(() => buildEthernet({ ...ok, payload: [1, 2] as unknown as Uint8Array }), INVALID);
  });

  it('writeEthernetHeader writes into an existing buffer at an offset', () => {
    const out = new Uint8Array(40).fill(0xee);
    const n = writeEthernetHeader(out, 4, {
      dst: 'ff:ff:ff:ff:ff:ff',
      src: '02:00:00:00:00:01',
      etherType: 0x0800,
      vlan: { pcp: 1, dei: false, vid: 2 },
    });
    expect(n).toBe(18);
    expect(toHex(out.subarray(0, 24))).toBe(
      'eeeeeeee' + 'ffffffffffff020000000001' + '81002002' + '0800' + 'eeee',
    );
  });
});
