// The simulated kernel's own semantics, pinned: the tests of the backend are only as good as
// this model of xnu (see src/facts.ts for where each behaviour was read).
import { describe, expect, it } from 'vitest';
import { walkBpfBatch } from '../src/bpf.js';
import { SimulatedDarwinKernel } from './kernel.js';

function code(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

function pair(k: SimulatedDarwinKernel, a = 'feth10000', b = 'feth20000'): void {
  k.createInterface(a);
  k.createInterface(b);
  k.setPeer(b, a);
  k.setUp(a, true);
  k.setUp(b, true);
}

describe('simulated darwin kernel', () => {
  it('clones feth<unit> up to 32767, with the default MAC "feth" + unit, once per name', () => {
    const k = new SimulatedDarwinKernel();
    k.createInterface('feth32767');
    expect([...k.interfaces.get('feth32767')!.mac!]).toEqual([0x66, 0x65, 0x74, 0x68, 0x7f, 0xff]);
    expect(code(() => k.createInterface('feth32767'))).toBe('EEXIST');
    expect(code(() => k.createInterface('feth32768'))).toBe('ENXIO');
    expect(code(() => k.createInterface('bond0'))).toBe('EINVAL');
    expect(code(() => k.destroyInterface('feth1'))).toBe('ENXIO');
  });

  it('peers with EBUSY, ENXIO and EINVAL as feth_config does, and unpeers on destroy', () => {
    const k = new SimulatedDarwinKernel();
    pair(k);
    k.createInterface('feth3');
    expect(code(() => k.setPeer('feth3', 'feth10000'))).toBe('EBUSY');
    expect(code(() => k.setPeer('feth3', 'feth4'))).toBe('ENXIO');
    expect(code(() => k.setPeer('feth3', 'en0'))).toBe('EINVAL');
    expect(k.getPeer('feth20000')).toBe('feth10000');
    k.destroyInterface('feth10000');
    expect(k.getPeer('feth20000')).toBe('');
  });

  it('fixes the MTU ceiling at creation from net.link.fake.max_mtu (1500–16370)', () => {
    const k = new SimulatedDarwinKernel();
    k.createInterface('feth1');
    k.sysctlSet('net.link.fake.max_mtu', 9000);
    k.createInterface('feth2');
    expect(k.getDeviceMtu('feth1')).toEqual({ current: 1500, min: 72, max: 2048 });
    expect(k.getDeviceMtu('feth2').max).toBe(9000);
    expect(code(() => k.setMtu('feth1', 4000))).toBe('EINVAL');
    expect(code(() => k.setMtu('feth2', 71))).toBe('EINVAL');
    expect(code(() => k.sysctlSet('net.link.fake.max_mtu', 16371))).toBe('EINVAL');
    expect(code(() => k.sysctlSet('net.link.fake.max_mtu', 1499))).toBe('EINVAL');
    expect(
      code(() => new SimulatedDarwinKernel({ maxMtuSysctl: null }).sysctlGet('net.link.fake.max_mtu')),
    ).toBe('ENOENT');
  });

  it('refuses privileged calls to non-root processes', () => {
    const k = new SimulatedDarwinKernel();
    pair(k);
    k.root = false;
    const noop = { bufferSize: 4096, onRead: () => undefined, onError: () => undefined };
    expect(code(() => k.createInterface('feth5'))).toBe('EPERM');
    expect(code(() => k.setPeer('feth20000', ''))).toBe('EPERM');
    expect(code(() => k.setMtu('feth10000', 1400))).toBe('EPERM');
    expect(code(() => k.sysctlSet('net.link.fake.max_mtu', 9000))).toBe('EPERM');
    expect(code(() => k.openBpf('feth20000', noop))).toBe('EACCES');
    expect(code(() => k.openNdrv('feth20000', { sendBufferSize: undefined }))).toBe('EPERM');
    expect(k.getPeer('feth20000')).toBe('feth10000'); // reading is allowed
  });

  it('packs several records per BPF read with hdrlen 18 and 4-byte alignment', async () => {
    const k = new SimulatedDarwinKernel();
    pair(k);
    const reads: ArrayBuffer[] = [];
    const bpf = k.openBpf('feth20000', {
      bufferSize: 4096,
      onRead: (buffer) => reads.push(buffer),
      onError: () => undefined,
    });
    bpf.resume();
    for (const size of [61, 62, 60]) k.sendFromStack('feth10000', new Uint8Array(size).fill(size));
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads).toHaveLength(1);
    const read = new Uint8Array(reads[0]!);
    const view = new DataView(reads[0]!);
    expect([view.getUint32(8, true), view.getUint32(12, true), view.getUint16(16, true)]).toEqual([
      61, 61, 18,
    ]);
    expect(view.getUint16(80 + 16, true)).toBe(18); // second record at WORDALIGN(18 + 61) = 80
    expect(read.length).toBe(80 + 80 + 18 + 60); // the last record is not padded
    expect(walkBpfBatch(reads[0]!, [read.length]).frames.map((f) => f.length)).toEqual([61, 62, 60]);
    bpf.close();
  });

  it('truncates a packet larger than the BPF buffer (caplen < datalen)', async () => {
    const k = new SimulatedDarwinKernel();
    pair(k);
    let walk: ReturnType<typeof walkBpfBatch> | undefined;
    const bpf = k.openBpf('feth20000', {
      bufferSize: 64,
      onRead: (buffer, ends) => (walk = walkBpfBatch(buffer, ends)),
      onError: () => undefined,
    });
    bpf.resume();
    k.sendFromStack('feth10000', new Uint8Array(100));
    await new Promise((resolve) => setImmediate(resolve));
    expect(walk).toMatchObject({ frames: [], truncated: 1, error: undefined });
    bpf.close();
  });

  it('shows BPF only inbound packets unless BIOCSSEESENT is 1', async () => {
    const k = new SimulatedDarwinKernel();
    pair(k);
    const seen = { in: 0, all: 0 };
    const onError = () => undefined;
    const inbound = k.openBpf('feth20000', { bufferSize: 4096, onRead: () => seen.in++, onError });
    const all = k.openBpfWith(
      'feth20000',
      { bufferSize: 4096, onRead: () => seen.all++, onError },
      { seeSent: true },
    );
    inbound.resume();
    all.resume();
    k.openNdrv('feth20000', { sendBufferSize: undefined }).write(new Uint8Array(60)); // outbound on feth20000
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual({ in: 0, all: 1 });
    inbound.close();
    all.close();
  });

  it('refuses NDRV frames larger than the send buffer (8192 by default) with EMSGSIZE', () => {
    const k = new SimulatedDarwinKernel();
    pair(k);
    const small = k.openNdrv('feth20000', { sendBufferSize: undefined });
    expect(code(() => small.write(new Uint8Array(8193)))).toBe('EMSGSIZE');
    expect(small.write(new Uint8Array(8192).fill(0xff))).toBe(true);
    const large = k.openNdrv('feth20000', { sendBufferSize: 16 * 1024 });
    expect(large.write(new Uint8Array(9018).fill(0xff))).toBe(true);
    expect(k.interfaces.get('feth10000')!.received.map((f) => f.length)).toEqual([8192, 9018]);
    k.destroyInterface('feth20000');
    expect(code(() => large.write(new Uint8Array(60)))).toBe('EPIPE');
  });

  it('drops frames sent out of an unpeered or down feth', () => {
    const k = new SimulatedDarwinKernel();
    pair(k);
    k.setUp('feth10000', false);
    k.openNdrv('feth20000', { sendBufferSize: undefined }).write(new Uint8Array(60).fill(0xff));
    k.setUp('feth10000', true);
    k.setPeer('feth20000', '');
    k.openNdrv('feth20000', { sendBufferSize: undefined }).write(new Uint8Array(60).fill(0xff));
    expect(k.interfaces.get('feth10000')!.received).toEqual([]);
  });
});
