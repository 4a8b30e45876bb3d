/**
 * The native addon's data path, without a utun and without root: UtunHandle adopts one end of
 * an AF_UNIX datagram socketpair (packet-preserving, like a utun's control socket), and a second
 * UtunHandle on the other end plays the kernel.
 *
 * On macOS this is the addon the package builds. On Linux the same C++ files are compiled here
 * with g++ against native/linux-check/ (stand-ins for the Darwin-only headers, which only the
 * utun-creating and configuring calls use — those are not run): so the read loop, the slab and
 * gaps, the spill path, EAGAIN queueing and drain run for real on Linux too. What stays
 * unverified off macOS is only the kernel-control, ioctl and routing-socket code.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  EtherType,
  TapErrorCode,
  encodeDarwinAddressMessage,
  encodeDarwinIfInfo,
  parseCidr,
  type LinkChange,
  buildEthernet,
  buildIPv4,
  buildIcmpEcho,
  parseIPv4,
  parseMac,
  type TapDevice,
} from '@tapkit/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  UTUN_AF_INET,
  darwinUtun,
  parseUtunDatagram,
  type UtunHandle,
  type UtunHandleOptions,
  type UtunSystem,
} from '../src/index.js';
import { ADDON_PATH_VARIABLE, loadUtunAddon, type RawUtunAddon } from '../src/native.js';
import { EthernetHost } from './host.js';
import { hex, ip4, settle } from './helpers.js';
import { expectNoLeak, runCycleFixture } from '@tapkit/test-support';

const PACKAGE = fileURLToPath(new URL('..', import.meta.url));
/** The headers the backends share (errors.h, napi_config.h), as binding.gyp finds them. */
const NATIVE_COMMON = join(PACKAGE, '..', '..', 'native-common');
const SOURCES = ['addon.cc', 'netconf.cc', 'utun_handle.cc'].map((f) => join(PACKAGE, 'native', f));

/** Compiles the addon for this Linux box (cached by source hash), or says why it cannot. */
async function buildForLinux(): Promise<string> {
  const require = createRequire(import.meta.url);
  const napiInclude = dirname(require.resolve('node-addon-api/package.json'));
  const nodeInclude = [
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ].find((dir) => existsSync(join(dir, 'node_api.h')));
  if (nodeInclude === undefined) throw new Error("Node's headers (node_api.h) are not installed");
  const check = join(PACKAGE, 'native', 'linux-check');
  const hash = createHash('sha256');
  // Every header counts too, the shared ones included (tapkit/napi_config.h configures
  // node-addon-api for all the sources).
  const headers = readdirSync(join(PACKAGE, 'native')).filter((f) => f.endsWith('.h'));
  const common = readdirSync(join(NATIVE_COMMON, 'tapkit')).filter((f) => f.endsWith('.h'));
  const inputs = [
    ...SOURCES,
    ...headers.sort().map((f) => join(PACKAGE, 'native', f)),
    ...common.sort().map((f) => join(NATIVE_COMMON, 'tapkit', f)),
  ];
  for (const file of [...inputs, join(check, 'prelude.h')]) {
    hash.update(readFileSync(file));
  }
  const dir = join(tmpdir(), 'tapkit-utun-native-check');
  mkdirSync(dir, { recursive: true });
  const output = join(dir, `tapkit_utun-${hash.digest('hex').slice(0, 16)}.node`);
  if (!existsSync(output)) {
    await promisify(execFile)('g++', [
      ...['-std=c++17', '-shared', '-fPIC', '-O1', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      ...[
        '-DNAPI_VERSION=8',
        '-DNAPI_CPP_EXCEPTIONS',
        `-I${check}`,
        `-I${NATIVE_COMMON}`,
        '-include',
        join(check, 'prelude.h'),
      ],
      ...[`-I${nodeInclude}`, `-I${napiInclude}`, ...SOURCES, '-o', output],
    ]);
  }
  return output;
}

async function loadAddon(): Promise<RawUtunAddon | string> {
  try {
    if (process.platform === 'darwin') return loadUtunAddon();
    if (process.platform !== 'linux') return `no way to build the addon on ${process.platform}`;
    return createRequire(import.meta.url)(await buildForLinux()) as RawUtunAddon;
  } catch (error) {
    return `the addon could not be built or loaded: ${(error as Error).message.split('\n')[0]}`;
  }
}

/** The file of the addon loadAddon() loads, for a child process to load. */
async function addonFile(): Promise<string> {
  if (process.platform !== 'darwin') return buildForLinux();
  const override = process.env[ADDON_PATH_VARIABLE];
  if (override !== undefined && override !== '') return override;
  const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as { resolve(dir: string): string };
  return nodeGypBuild.resolve(PACKAGE);
}

const addon = await loadAddon();
const skip = typeof addon === 'string' ? addon : undefined;
const itNative = (name: string, body: () => Promise<void>) => {
  if (skip === undefined) it(name, body);
  else if (process.env['TAPKIT_REQUIRE_NATIVE'] === '1') it(name, () => expect.fail(skip));
  else it.skip(`${name} [skipped: ${skip}]`, body);
};

const native = () => addon as RawUtunAddon;
const handles: UtunHandle[] = [];
afterEach(() => {
  for (const handle of handles.splice(0)) handle.close();
});

/** A handle on `fd` that records what it reads, as datagrams (family header included). */
function kernelSide(fd: number) {
  const offsets = new Uint32Array(2 * 64);
  const read: Uint8Array[] = [];
  const batches: number[] = [];
  const drains: number[] = [];
  const handle = new (native().UtunHandle)({
    fd,
    batchPackets: 64,
    offsets,
    datagramReserve: 1504,
    slabBytes: 128 * 1024,
    onRead: (slab, count) => {
      batches.push(count);
      for (let i = 0; i < count; i++)
        read.push(new Uint8Array(slab, offsets[2 * i], offsets[2 * i + 1]! - offsets[2 * i]!));
    },
    onDrain: () => drains.push(Date.now()),
    onError: (error) => {
      throw error;
    },
  });
  handles.push(handle);
  return { handle, read, batches, drains };
}

/** A UtunSystem whose utun is one end of a datagram pair; the other end is returned as `kernel`. */
function pairedSystem(): { system: UtunSystem; kernel: ReturnType<typeof kernelSide> } {
  const [ours, theirs] = native().datagramPair();
  const kernel = kernelSide(theirs);
  const system: UtunSystem = {
    osInterface: false,
    openUtun: (options: UtunHandleOptions) => {
      const handle = new (native().UtunHandle)({ ...options, fd: ours });
      handles.push(handle);
      return handle;
    },
    setMtu: () => undefined,
    setUp: () => undefined,
    addAddress: () => undefined,
  };
  return { system, kernel };
}

/** The device's MAC (its OS side), and the program's own. */
const MAC = parseMac('02:00:00:00:00:02');
const USER_MAC = parseMac('02:00:00:00:00:03');
const OS4 = ip4('10.9.0.1');
const USER4 = ip4('10.9.0.2');
const udp = (size: number) =>
  buildIPv4({ src: OS4, dst: USER4, protocol: 17, payload: new Uint8Array(size).fill(size & 0xff) });

describe('the native addon over a datagram socketpair', () => {
  beforeAll(() => {
    if (skip !== undefined) console.warn(`native tests skipped: ${skip}`);
  });

  itNative('delivers datagrams in batches with a gap before each, and frames them in place', async () => {
    const { system, kernel } = pairedSystem();
    const dev = await darwinUtun.open({ system, mac: MAC, addresses: ['10.9.0.1/24'], rxQueueFrames: 4096 });
    const sizes = Array.from({ length: 300 }, (_, i) => 20 + ((i * 37) % 1400));
    for (const size of sizes) kernel.handle.write(UTUN_AF_INET, udp(size));
    const frames: Uint8Array[] = [];
    while (frames.length < sizes.length)
      frames.push(...(await dev.readBatch(undefined, { signal: AbortSignal.timeout(3000) })));
    sizes.forEach((size, i) => expect(hex(frames[i]!.subarray(14)), `packet ${i}`).toBe(hex(udp(size))));
    // Frames sit 14 bytes before their packet in the addon's slab: no copies were made.
    expect(new Set(frames.map((f) => f.buffer)).size).toBeLessThan(sizes.length / 10);
    expect(frames.every((f) => f.byteOffset % 8 === 0)).toBe(true); // datagram at 8k + gap, frame 14 before its packet
    await dev.close();
  });

  itNative('writes one datagram per packet, family header first', async () => {
    const { system, kernel } = pairedSystem();
    const dev = await darwinUtun.open({ system, mac: MAC, addresses: ['10.9.0.1/24'] });
    kernel.handle.resume();
    const frame = (size: number) =>
      buildEthernet({ dst: MAC, src: USER_MAC, etherType: EtherType.IPv4, payload: udp(size) });
    dev.write(frame(10));
    dev.writeBatch([frame(20), frame(1400)]);
    for (let i = 0; i < 50 && kernel.read.length < 3; i++) await settle();
    expect(kernel.read.map((d) => hex(d.subarray(0, 4)))).toEqual(['00000002', '00000002', '00000002']);
    expect(kernel.read.map((d) => hex(parseUtunDatagram(d)!))).toEqual(
      [udp(10), udp(20), udp(1400)].map(hex),
    );
    await dev.close();
  });

  itNative('takes a datagram larger than expected whole, through the spill area', async () => {
    const { system, kernel } = pairedSystem();
    const dev = await darwinUtun.open({ system, mac: MAC, mtu: 1500 });
    kernel.handle.write(UTUN_AF_INET, udp(20));
    kernel.handle.write(UTUN_AF_INET, udp(9000)); // the MTU was raised behind our back
    kernel.handle.write(UTUN_AF_INET, udp(30));
    const got: Uint8Array[] = [];
    while (got.length < 2)
      got.push(...(await dev.readBatch(undefined, { signal: AbortSignal.timeout(3000) })));
    // The device's MTU is 1500: the 9000-byte packet arrives intact at the shim, which drops it.
    expect(got.map((f) => hex(f.subarray(14)))).toEqual([hex(udp(20)), hex(udp(30))]);
    expect(dev.stats().drops).toEqual({ oversize: 1 });
    await dev.close();
  });

  itNative('queues behind EAGAIN, says false over the high-water mark, and drains', async () => {
    const { system, kernel } = pairedSystem();
    const dev = await darwinUtun.open({ system, mac: MAC });
    const frame = buildEthernet({
      dst: MAC,
      src: USER_MAC,
      etherType: EtherType.IPv4,
      payload: udp(1400),
    });
    let writes = 0;
    while (dev.write(frame)) writes++; // the kernel side does not read: the socket fills
    expect(writes).toBeGreaterThan(10);
    const drained = dev.drain();
    kernel.handle.resume();
    await drained;
    for (let i = 0; i < 200 && kernel.read.length < writes + 1; i++) await settle();
    expect(kernel.read).toHaveLength(writes + 1);
    expect(kernel.read.every((d) => hex(parseUtunDatagram(d)!) === hex(udp(1400)))).toBe(true);
    await dev.close();
  });

  itNative('runs a host behind the shim against a "kernel" on the other end', async () => {
    const { system, kernel } = pairedSystem();
    const dev: TapDevice = await darwinUtun.open({ system, mac: MAC, addresses: ['10.9.0.1/24'] });
    // The kernel side answers echo requests.
    kernel.handle.resume();
    const host = new EthernetHost(dev, { ipv4: USER4 });
    const answer = setInterval(() => {
      for (const datagram of kernel.read.splice(0)) {
        const ip = parseIPv4(parseUtunDatagram(datagram)!);
        if (ip.protocol !== 1 || ip.payload[0] !== 8) continue;
        const e = ip.payload;
        const reply = buildIcmpEcho({
          type: 0,
          identifier: (e[4]! << 8) | e[5]!,
          sequence: (e[6]! << 8) | e[7]!,
          data: e.subarray(8),
        });
        kernel.handle.write(
          UTUN_AF_INET,
          buildIPv4({ src: ip.dst, dst: ip.src, protocol: 1, payload: reply }),
        );
      }
    }, 5);
    try {
      for (let seq = 1; seq <= 5; seq++) await host.ping(OS4, USER4, seq);
    } finally {
      clearInterval(answer);
      host.stop();
    }
    expect(host.stats.echoRepliesSeen).toBe(5);
    await dev.close();
  });

  // A worker ending with handles open and busy used to take the whole process down: libuv ran
  // a handle's close callback after the worker's environment was gone and the addon unloaded
  // (SIGSEGV); a terminate() during a callback aborted in node-addon-api. Each case runs 20
  // workers in a child process of its own, so a crash fails the test instead of the runner.
  for (const how of ['exit', 'terminate'] as const) {
    const ending = how === 'exit' ? 'process.exit() in the worker' : 'worker.terminate()';
    itNative(`survives workers ended by ${ending} with handles open, and leaks no fd`, async () => {
      const file = await addonFile();
      const fds = () => readdirSync('/dev/fd').length;
      const before = fds();
      const fixture = fileURLToPath(new URL('./fixtures/worker-exit.mjs', import.meta.url));
      const result = spawnSync(process.execPath, [fixture, file, how, '20'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(result.signal, result.stderr).toBeNull();
      expect(result.status, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout) as { codes: number[]; fdsBefore: number; fdsAfter: number };
      expect(report.codes).toEqual(new Array(20).fill(how === 'exit' ? 0 : 1));
      // The process the workers ran in has every fd of theirs closed, and so has this one.
      expect(report.fdsAfter).toBe(report.fdsBefore);
      expect(fds()).toBe(before);
    });
  }

  itNative('closes idempotently; writes after close fail with EBADF', async () => {
    const [fd] = native().datagramPair();
    const handle = kernelSide(fd).handle;
    handle.close();
    handle.close();
    expect(() => handle.write(UTUN_AF_INET, udp(10))).toThrow(
      expect.objectContaining({ code: 'EBADF', syscall: 'write' }) as Error,
    );
  });

  for (const mode of ['close', 'traffic']) {
    itNative(`2,000 devices on UtunHandles (${mode}) leave no memory or fds behind`, async () => {
      // In a child process under --expose-gc, through the backend (see test/fixtures/cycles.ts).
      const fixture = fileURLToPath(new URL('./fixtures/cycles.ts', import.meta.url));
      const figures = await runCycleFixture(fixture, ['native', '2000', mode, await addonFile()]);
      expect(figures.cycles).toBe(2000);
      expectNoLeak(figures);
    });
  }

  itNative(
    'RouteWatcher: routing messages written to its socket reach the device as link events; close frees the fd',
    async () => {
      // The addon's RouteWatcher adopts one end of a datagram pair instead of a PF_ROUTE socket;
      // the test writes routing messages (xnu's layout) into the other end, as the kernel would.
      const [ours, theirs] = native().datagramPair();
      const { system } = pairedSystem();
      let index = 7;
      const dev = await darwinUtun.open({
        system: {
          ...system,
          watchRoutes: (options) => new (native().RouteWatcher)({ ...options, fd: ours }),
          interfaceIndex: () => 7,
          interfaceName: (i) => (i === index ? 'utun0' : undefined),
        },
        addresses: ['10.9.0.1/24'],
      });
      try {
        const changes: LinkChange[] = [];
        dev.on('link', (change) => changes.push(change));
        writeSync(theirs, encodeDarwinIfInfo({ index: 7, flags: 0x8051, mtu: 9000 }));
        writeSync(theirs, encodeDarwinIfInfo({ index: 8, flags: 0x8051, mtu: 1280 })); // another interface
        writeSync(
          theirs,
          encodeDarwinAddressMessage({ index: 7, deleted: false, address: parseCidr('fd00::9/64') }),
        );
        for (let i = 0; i < 50 && dev.addresses.length < 2; i++)
          await new Promise((resolve) => setTimeout(resolve, 10));
        expect(dev.mtu).toBe(9000);
        expect(dev.addresses).toEqual(['10.9.0.1/24', 'fd00::9/64']);
        const events = changes.length;
        writeSync(theirs, Uint8Array.of(9, 9, 9)); // garbage: ignored
        await new Promise((resolve) => setTimeout(resolve, 50));
        expect(changes).toHaveLength(events);
        const closed = new Promise<unknown>((resolve) => dev.once('close', resolve));
        index = 0; // the interface is gone
        writeSync(theirs, encodeDarwinIfInfo({ index: 7, flags: 0, mtu: 9000 }));
        expect(await closed).toMatchObject({ code: TapErrorCode.DEVICE_GONE });
      } finally {
        await dev.close();
        closeSync(theirs);
      }
      expect(() => fstatSync(ours)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    },
  );
});
