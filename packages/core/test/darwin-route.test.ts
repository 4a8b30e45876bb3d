/**
 * The macOS routing-socket codec: messages built byte by byte as xnu lays them out (not with the
 * encoder), the encoder against the decoder, and malformed input (never a throw).
 */
import { describe, expect, it } from 'vitest';
import {
  DARWIN_ROUTE as R,
  DarwinInterfaceFollower,
  darwinSaSize,
  decodeDarwinRouteMessages,
  encodeDarwinAddressMessage,
  encodeDarwinIfInfo,
  parseCidr,
} from '../src/index.js';

/** A message: the header's fields at xnu's offsets, then the bytes given. */
function header(size: number, type: number, fields: { addrs?: number; flags?: number; index: number }) {
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint16(0, size, true);
  out[2] = R.RTM_VERSION;
  out[3] = type;
  view.setInt32(4, fields.addrs ?? 0, true);
  view.setInt32(8, fields.flags ?? 0, true);
  view.setUint16(12, fields.index, true);
  return { out, view };
}

function ifInfo(index: number, flags: number, mtu: number): Uint8Array {
  const { out, view } = header(112, R.RTM_IFINFO, { index, flags });
  out[16] = 0x06; // ifi_type IFT_ETHER
  view.setUint32(16 + 8, mtu, true);
  view.setUint32(16 + 12, 5000, true); // ifi_metric
  return out;
}

/** RTM_NEWADDR of 10.9.0.1/24 on index 7 as rt_newaddrmsg sends it: NETMASK, IFP, IFA, BRD. */
function newAddr4(type: number = R.RTM_NEWADDR): Uint8Array {
  const { out } = header(80, type, { addrs: 0x04 | 0x10 | 0x20 | 0x80, index: 7 });
  out.set([7, 0, 0, 0, 255, 255, 255], 20); // trimmed mask, no family: 8 bytes of room
  out.set([20, R.AF_LINK, 7, 0, 6, 9, 6, 0, ...Buffer.from('feth10000')], 28); // sockaddr_dl
  out.set([16, R.AF_INET, 0, 0, 10, 9, 0, 1], 48);
  out.set([16, R.AF_INET, 0, 0, 10, 9, 0, 255], 64);
  return out;
}

/** RTM_NEWADDR of a link-local IPv6 address with its embedded scope, /64. */
function newAddr6(): Uint8Array {
  const { out } = header(20 + 16 + 28, R.RTM_NEWADDR, { addrs: 0x04 | 0x20, index: 9 });
  out.set([16, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255], 20); // trimmed to 16
  const ifa = [28, R.AF_INET6, 0, 0, 0, 0, 0, 0, 0xfe, 0x80, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42];
  out.set(ifa, 36);
  return out;
}

describe('darwin routing messages', () => {
  it('rounds sockaddrs to 4 bytes as xnu (SA_SIZE with uint32_t)', () => {
    expect([0, 1, 4, 5, 7, 8, 16, 20, 28].map(darwinSaSize)).toEqual([4, 4, 4, 8, 8, 8, 16, 20, 28]);
  });

  it('decodes RTM_IFINFO: index, IFF_UP, IFF_RUNNING, if_data.ifi_mtu', () => {
    const { messages, malformed } = decodeDarwinRouteMessages(ifInfo(12, 0x8843, 9000));
    expect(malformed).toBe(0);
    expect(messages).toEqual([
      { kind: 'link', index: 12, flags: 0x8843, up: true, running: true, mtu: 9000 },
    ]);
    expect(decodeDarwinRouteMessages(ifInfo(12, 0x8802, 1400)).messages[0]).toMatchObject({
      up: false,
      running: false,
      mtu: 1400,
    });
  });

  it('decodes RTM_NEWADDR / RTM_DELADDR with a trimmed mask and the link sockaddr', () => {
    expect(decodeDarwinRouteMessages(newAddr4()).messages).toEqual([
      { kind: 'address', index: 7, deleted: false, family: 4, cidr: '10.9.0.1/24' },
    ]);
    expect(decodeDarwinRouteMessages(newAddr4(R.RTM_DELADDR)).messages[0]).toMatchObject({ deleted: true });
  });

  it('decodes IPv6 addresses and clears a link-local address’s embedded scope', () => {
    expect(decodeDarwinRouteMessages(newAddr6()).messages).toEqual([
      { kind: 'address', index: 9, deleted: false, family: 6, cidr: 'fe80::42/64' },
    ]);
  });

  it('walks several messages and skips other types, versions and families', () => {
    const route = header(92, 0x1 /* RTM_ADD */, { index: 7 }).out;
    const oldVersion = ifInfo(7, 1, 1500);
    oldVersion[2] = 4;
    const link = header(20 + 20, R.RTM_NEWADDR, { addrs: 0x20, index: 7 }).out;
    link.set([20, R.AF_LINK], 20);
    const all = Buffer.concat([route, ifInfo(7, 1, 1500), oldVersion, link, newAddr4()]);
    const { messages, malformed } = decodeDarwinRouteMessages(all);
    expect(malformed).toBe(0);
    expect(messages.map((m) => m.kind)).toEqual(['link', 'address']);
  });

  it('takes a missing netmask as a host address and a zero-length one as /0', () => {
    const host = header(36, R.RTM_NEWADDR, { addrs: 0x20, index: 3 }).out;
    host.set([16, R.AF_INET, 0, 0, 192, 168, 1, 2], 20);
    const zero = header(40, R.RTM_NEWADDR, { addrs: 0x24, index: 3 }).out;
    zero.set([0, 0, 0, 0], 20); // sa_len 0 takes 4 bytes
    zero.set([16, R.AF_INET, 0, 0, 192, 168, 1, 2], 24);
    expect(
      decodeDarwinRouteMessages(Buffer.concat([host, zero])).messages.map(
        (m) => (m as { cidr: string }).cidr,
      ),
    ).toEqual(['192.168.1.2/32', '192.168.1.2/0']);
  });

  it('round-trips what the encoder makes (what the simulated kernels send)', () => {
    for (const cidr of [
      '10.0.0.1/24',
      '10.0.0.1/32',
      '10.0.0.1/0',
      'fd00::1/64',
      'fd00::1/128',
      '2001:db8::7/48',
    ]) {
      for (const deleted of [false, true]) {
        const bytes = encodeDarwinAddressMessage({ index: 300, deleted, address: parseCidr(cidr) });
        expect(bytes.length % 4).toBe(0);
        expect(decodeDarwinRouteMessages(bytes)).toEqual({
          messages: [{ kind: 'address', index: 300, deleted, family: cidr.includes(':') ? 6 : 4, cidr }],
          malformed: 0,
        });
      }
    }
    expect(Buffer.from(encodeDarwinIfInfo({ index: 12, flags: 0x8843, mtu: 9000 }))).toEqual(
      Buffer.from(ifInfo(12, 0x8843, 9000))
        .fill(0, 16, 16 + 8)
        .fill(0, 16 + 12, 16 + 16),
    );
    expect(
      Buffer.from(
        encodeDarwinAddressMessage({ index: 7, deleted: false, address: parseCidr('10.9.0.1/24') }),
      ),
    ).toEqual(
      Buffer.from([...newAddr4().subarray(0, 28), ...newAddr4().subarray(48)])
        .fill(0xa4, 4, 5)
        .fill(60, 0, 1),
    );
  });

  it('never throws on malformed or truncated input: counts it and keeps what came before', () => {
    const good = ifInfo(7, 1, 1500);
    const cases: [Uint8Array, number, number][] = [
      [new Uint8Array(0), 0, 0],
      [Uint8Array.of(1, 2, 3), 0, 1], // shorter than a length and type
      [Buffer.concat([good, Uint8Array.of(0, 0, 5, 14)]), 1, 1], // msglen 0: the walk stops
      [Buffer.concat([good, good.subarray(0, 60)]), 1, 1], // msglen past the end
      [header(40, R.RTM_IFINFO, { index: 7 }).out, 0, 1], // too short for if_msghdr
      [Uint8Array.of(12, 0, R.RTM_VERSION, R.RTM_NEWADDR, 0x20, 0, 0, 0, 0, 0, 0, 0), 0, 1], // < ifa_msghdr
    ];
    const shortSockaddr = header(24, R.RTM_NEWADDR, { addrs: 0x20, index: 7 }).out;
    shortSockaddr.set([16, R.AF_INET], 20); // sa_len 16, 4 bytes left
    cases.push([shortSockaddr, 0, 1]);
    const shortIn6 = header(32, R.RTM_NEWADDR, { addrs: 0x20, index: 7 }).out;
    shortIn6.set([12, R.AF_INET6], 20); // an in6 sockaddr too short for its address
    cases.push([shortIn6, 0, 1]);
    for (const [bytes, count, malformed] of cases) {
      const result = decodeDarwinRouteMessages(bytes);
      expect([result.messages.length, result.malformed]).toEqual([count, malformed]);
    }
    // Random bytes: never a throw.
    let seed = 1;
    for (let i = 0; i < 2000; i++) {
      const bytes = new Uint8Array(1 + (i % 200));
      for (let j = 0; j < bytes.length; j++) bytes[j] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      if (i % 2 === 0) bytes[2] = R.RTM_VERSION;
      if (i % 3 === 0) bytes[3] = R.RTM_NEWADDR;
      expect(() => decodeDarwinRouteMessages(bytes)).not.toThrow();
    }
  });
});

describe('DarwinInterfaceFollower', () => {
  const start = { index: 7, name: 'feth10000', mtu: 1500, up: true, addresses: ['10.0.0.1/24'] };
  const bytes = (...messages: Uint8Array[]) => Buffer.concat(messages);

  it('applies its own interface’s messages, reports whether anything changed, and ignores others', () => {
    const follower = new DarwinInterfaceFollower(start, () => 'feth10000');
    expect(follower.apply(bytes(ifInfo(8, 0, 9000)))).toEqual({ changed: false, gone: false, malformed: 0 });
    expect(follower.apply(bytes(ifInfo(7, 0x8843, 1500)))).toMatchObject({ changed: false });
    const added = encodeDarwinAddressMessage({ index: 7, deleted: false, address: parseCidr('fd00::1/64') });
    expect(follower.apply(bytes(ifInfo(7, 0x8842, 9000), added))).toMatchObject({ changed: true });
    expect(follower.state()).toEqual({
      name: 'feth10000',
      mtu: 9000,
      up: false,
      addresses: ['10.0.0.1/24', 'fd00::1/64'],
    });
    expect(follower.apply(added)).toMatchObject({ changed: false }); // repeated: a no-op
    const removed = encodeDarwinAddressMessage({
      index: 7,
      deleted: true,
      address: parseCidr('10.0.0.1/24'),
    });
    follower.apply(removed);
    expect(follower.state().addresses).toEqual(['fd00::1/64']);
  });

  it('takes the name by index at each RTM_IFINFO: another name is a rename, none (or a throw) is gone', () => {
    let name: string | undefined = 'feth31000';
    const follower = new DarwinInterfaceFollower(start, () => {
      if (name === 'throw') throw new Error('ENXIO');
      return name;
    });
    expect(follower.apply(ifInfo(7, 1, 1500))).toMatchObject({ changed: true, gone: false });
    expect(follower.name).toBe('feth31000');
    name = undefined;
    expect(follower.apply(ifInfo(7, 0, 1500))).toMatchObject({ changed: false, gone: true });
    name = 'throw';
    expect(follower.apply(ifInfo(7, 0, 1500))).toMatchObject({ gone: true });
    // Address messages of a gone interface need no lookup; other interfaces' none at all.
    expect(follower.apply(ifInfo(9, 0, 1500))).toMatchObject({ gone: false });
  });

  it('counts malformed input and never throws', () => {
    const follower = new DarwinInterfaceFollower(start, () => 'feth10000');
    expect(follower.apply(Uint8Array.of(1, 0, 5, 14, 9))).toMatchObject({ changed: false, malformed: 1 });
  });
});
