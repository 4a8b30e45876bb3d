/**
 * Every error code troubleshooting.md documents, raised through the public API by the cause the
 * guide gives for it. A code without a cause here, or a cause that raises another code, fails.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createSimulatedUtunSystem, darwinUtun } from '@tapkit/darwin-utun';
import { linuxTap } from '@tapkit/linux-tap';
import { PRIVILEGE_PROBLEM, run } from '@tapkit/test-support';
import { describe, expect, it } from 'vitest';
import {
  buildUdpFrame,
  createMockNetwork,
  isTapError,
  openTap,
  parseEthernet,
  TapErrorCode,
  type TapErrorCodeValue,
  type TapOpenOptions,
} from '../src/index.js';

const guide = readFileSync(
  fileURLToPath(new URL('../../../docs/troubleshooting.md', import.meta.url)),
  'utf8',
);

/** A mock network with two devices (mock0, mock1) for the cause to use; closed after it. */
async function onMock<T>(cause: (net: ReturnType<typeof createMockNetwork>) => Promise<T> | T): Promise<T> {
  const net = createMockNetwork();
  try {
    return await cause(net);
  } finally {
    await net.close();
  }
}

const frame = (size = 60) =>
  buildUdpFrame({
    srcMac: '02:00:00:00:00:01',
    dstMac: '02:00:00:00:00:02',
    src: Uint8Array.of(10, 0, 0, 1),
    dst: Uint8Array.of(10, 0, 0, 2),
    srcPort: 1,
    dstPort: 2,
    payload: new Uint8Array(size - 42),
  });

/** What a cause that needs root gives without it: the test then checks nothing else. */
const privilegedOnly = Symbol('needs root');

const eperm = Object.assign(new Error('operation not permitted'), {
  code: 'EPERM',
  errno: -1,
  syscall: 'write',
});

/** The cause the guide gives for each code, acted out. */
const causes: Record<TapErrorCodeValue, () => unknown> = {
  // "The process lacks a privilege": the OS said EPERM.
  ERR_TAP_PERMISSION_DENIED: () =>
    onMock(async (net) => {
      const dev = await net.open();
      net.failNextWrite(dev.name, eperm);
      dev.writeBatch([frame()]);
    }),
  // "/dev/net/tun is missing": hidden under an empty /dev/net in a mount namespace of its own.
  ERR_TAP_KERNEL_SUPPORT_MISSING: async () => {
    if (PRIVILEGE_PROBLEM !== undefined) return privilegedOnly;
    const code =
      "import('@tapkit/linux-tap').then((m) => m.linuxTap.open()).catch((e) => console.log(e.code))";
    const script = `mount -t tmpfs tmpfs /dev/net && exec "${process.execPath}" --input-type=module -e "${code}"`;
    const out = await run('unshare', ['--mount', 'sh', '-c', script]);
    throw Object.assign(new Error(out), { name: 'TapError', code: out.trim() });
  },
  // "The addon did not load": TAPKIT_LINUX_ADDON points at no addon.
  ERR_TAP_BACKEND_NOT_INSTALLED: () => linuxTap.open({ env: { TAPKIT_LINUX_ADDON: '/nonexistent.node' } }),
  // "tried every backend of the platform list and none could open a device".
  ERR_TAP_NO_BACKEND: () =>
    openTap({ env: {} }, { platform: 'linux', load: () => Promise.reject(new Error('missing')) }),
  ERR_TAP_UNKNOWN_BACKEND: () => openTap({ backend: 'nope' }),
  // "openTap() on a platform tapkit has no backend for (Windows)".
  ERR_TAP_UNSUPPORTED_PLATFORM: () => openTap({ env: {} }, { platform: 'win32' }),
  // "The interface name asked for exists already".
  ERR_TAP_NAME_IN_USE: () =>
    onMock(async (net) => {
      await net.open({ name: 'tap0' });
      await net.open({ name: 'tap0' });
    }),
  ERR_TAP_INVALID_OPTION: () => openTap({ backend: 'mock', mtu: '1500' as unknown as number }),
  ERR_TAP_UNSUPPORTED_OPTION: () => openTap({ backend: 'mock', offload: true } as TapOpenOptions),
  ERR_TAP_MTU_UNSUPPORTED: () => openTap({ backend: 'mock', mtu: 67 }),
  ERR_TAP_FRAME_TOO_LARGE: () => onMock(async (net) => (await net.open({ mtu: 1500 })).write(frame(1515))),
  ERR_TAP_FRAME_TOO_SHORT: () => onMock(async (net) => (await net.open()).write(new Uint8Array(13))),
  ERR_TAP_INVALID_ARGUMENT: () => onMock(async (net) => (await net.open()).write('frame' as never)),
  ERR_TAP_CLOSED: () =>
    onMock(async (net) => {
      const dev = await net.open();
      await dev.close();
      dev.write(frame());
    }),
  // "a setter the system under darwin-utun does not supply" (a UtunSystem without removeAddress).
  ERR_TAP_UNSUPPORTED_OPERATION: async () => {
    const sim = createSimulatedUtunSystem();
    const system = {
      osInterface: false,
      openUtun: sim.openUtun.bind(sim),
      setMtu: sim.setMtu.bind(sim),
      setUp: sim.setUp.bind(sim),
      addAddress: sim.addAddress.bind(sim),
    };
    const dev = await darwinUtun.open({ system, addresses: ['10.0.0.1/24'] });
    try {
      await dev.removeAddress('10.0.0.1/24');
    } finally {
      await dev.close();
    }
  },
  ERR_TAP_BUSY: () =>
    onMock(async (net) => {
      const [a, b, c] = [await net.open(), await net.open(), await net.open()];
      void a.pipeTo(b).catch(() => {});
      await a.pipeTo(c);
    }),
  ERR_TAP_DEVICE_GONE: () =>
    onMock(async (net) => {
      const dev = await net.open();
      const reading = dev.read();
      net.disconnect(dev.name);
      await reading;
    }),
  ERR_TAP_ABORTED: () => onMock(async (net) => (await net.open()).read({ signal: AbortSignal.abort() })),
  // "thrown by the frame codecs' parse… functions".
  ERR_TAP_MALFORMED: () => parseEthernet(new Uint8Array(5)),
  // "The operating system refused something for a reason no other code covers" (EIO).
  ERR_TAP_SYSTEM: () =>
    onMock(async (net) => {
      const dev = await net.open();
      net.failNextWrite(dev.name);
      dev.writeBatch([frame()]);
    }),
};

describe('troubleshooting.md', () => {
  it('documents exactly the codes there are', () => {
    const headings = [...guide.matchAll(/^### (ERR_TAP_\w+)$/gm)].map((m) => m[1]);
    expect(headings.sort()).toEqual(Object.values(TapErrorCode).sort());
  });

  it.each(Object.entries(causes))('%s is raised by its documented cause', async (code, cause) => {
    let error: unknown;
    try {
      if ((await cause()) === privilegedOnly) error = privilegedOnly;
    } catch (e) {
      error = e;
    }
    if (error === privilegedOnly && process.env['TAPKIT_REQUIRE_PRIVILEGED'] !== '1') return;
    expect(isTapError(error) ? error.code : error).toBe(code);
  });
});
