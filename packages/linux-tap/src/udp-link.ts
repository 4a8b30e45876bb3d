/**
 * A UDP link: a TapDevice whose wire is one UDP peer. Each frame written goes to the peer as one
 * datagram; each datagram from the peer is a received frame. It is what an overlay's tunnel end
 * is made of: `device.pipeTo(link)` and `link.pipeTo(device)` carry a tap device's frames to a
 * peer and back in native code, on the pipe threads tap-to-tap pipes use, never entering
 * JavaScript; or frames pass through your code (encryption, routing) with `batches()` and
 * `writeBatch()`, one call per batch instead of one `dgram` callback per datagram.
 *
 * @module
 */
import { isIP } from 'node:net';
import {
  TapError,
  TapErrorCode,
  abortError,
  checkOptionNames,
  createTapDevice,
  describeValue,
  parseCidr,
  resolveOpenOptions,
  systemErrorDetails,
  systemErrorFields,
  type TapCapabilities,
  type TapDevice,
  type TapPort,
} from '@tapkit/core';
import { loadAddon } from './addon.js';
import { openError } from './errors.js';
import { LinuxQueues } from './port.js';

/** The backend name a UDP link reports ({@link TapDevice.backend}). */
export const UDP_LINK_BACKEND = 'linux-udp';

/** A UDP endpoint: an IPv4 or IPv6 address and a port. */
export interface UdpEndpoint {
  readonly address: string;
  readonly port: number;
}

/** Options of {@link openUdpLink}. */
export interface UdpLinkOptions {
  /** Where the link's socket is bound: an address of this host, and a port (default 0: a free one). */
  readonly local: { readonly address: string; readonly port?: number };
  /** The peer: frames written go to it; datagrams from anywhere else are not received. */
  readonly remote: UdpEndpoint;
  /**
   * The MTU of the frames carried: a frame of up to `mtu + 14` bytes (+4 with a VLAN tag) is
   * one datagram. 68–65489; default 1500. Keep datagrams within the underlay's MTU (an
   * Ethernet underlay of 1500 carries frames of an MTU up to 1458 over IPv4, 1438 over IPv6,
   * unfragmented).
   */
  readonly mtu?: number;
  /** The receive queue's bound, in frames, as {@link TapOpenOptions.rxQueueFrames}. */
  readonly rxQueueFrames?: number;
  /** Aborts the open. */
  readonly signal?: AbortSignal;
  /** Where `TAPKIT_LINUX_ADDON` is read from. Default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** A TapDevice whose wire is a UDP peer: see {@link openUdpLink}. */
export interface UdpLink extends TapDevice {
  /** The bound address and port (the port the kernel chose, for `port: 0`). */
  readonly local: UdpEndpoint;
  readonly remote: UdpEndpoint;
}

const OPTIONS: readonly (keyof UdpLinkOptions)[] = [
  'local',
  'remote',
  'mtu',
  'rxQueueFrames',
  'signal',
  'env',
];

/** The largest frame in one UDP datagram over IPv4 (65,507 bytes), less an Ethernet header and a VLAN tag. */
const UDP_LINK_LIMITS = Object.freeze({ minMtu: 68, maxMtu: 65_507 - 14 - 4 });

/** What a UDP link can do: layer-2 frames, one queue, no OS interface. */
export const UDP_LINK_CAPABILITIES: TapCapabilities = Object.freeze({
  layer: 2,
  minMtu: UDP_LINK_LIMITS.minMtu,
  maxMtu: UDP_LINK_LIMITS.maxMtu,
  multiQueue: false,
  offload: false,
  multicastGroups: false,
  osInterface: false,
});

/** The link's port: the one queue is the socket. A link is not a station: its `mac` is empty. */
class UdpLinkPort extends LinuxQueues implements TapPort {
  readonly mac = new Uint8Array(0);
  readonly capabilities = UDP_LINK_CAPABILITIES;
}

function invalid(message: string): TapError {
  return new TapError(TapErrorCode.INVALID_OPTION, message, { backend: UDP_LINK_BACKEND });
}

function checkEndpoint(
  value: unknown,
  what: string,
  anyPort: boolean,
): UdpEndpoint & { bytes: Uint8Array; family: 4 | 6 } {
  const endpoint = value as Partial<UdpEndpoint> | undefined;
  if (typeof endpoint !== 'object' || endpoint === null) {
    throw invalid(`${what} must be { address, port }, not ${describeValue(value)}`);
  }
  const family = typeof endpoint.address === 'string' ? isIP(endpoint.address) : 0;
  if (family !== 4 && family !== 6) {
    throw invalid(`${what}.address must be an IPv4 or IPv6 address, not ${describeValue(endpoint.address)}`);
  }
  const port = endpoint.port ?? (anyPort ? 0 : undefined);
  if (!Number.isInteger(port) || port! < (anyPort ? 0 : 1) || port! > 65535) {
    throw invalid(
      `${what}.port must be an integer from ${anyPort ? 0 : 1} to 65535, not ${describeValue(port)}`,
    );
  }
  const parsed = parseCidr(`${endpoint.address}/${family === 4 ? 32 : 128}`);
  return { address: endpoint.address!, port: port!, family, bytes: parsed.address };
}

/** `192.0.2.1:4789`, `[2001:db8::1]:4789`. */
function formatEndpoint(endpoint: UdpEndpoint): string {
  return isIP(endpoint.address) === 6
    ? `[${endpoint.address}]:${endpoint.port}`
    : `${endpoint.address}:${endpoint.port}`;
}

/** The socket could not be had: a local address in use or not on this host gets its own code. */
function socketError(error: unknown, what: string): TapError {
  const { code } = systemErrorFields(error);
  if (code === 'EADDRINUSE') {
    return new TapError(
      TapErrorCode.BUSY,
      `${what}: the local address is in use`,
      systemErrorDetails(error, UDP_LINK_BACKEND),
    );
  }
  if (code === 'EADDRNOTAVAIL') {
    return new TapError(
      TapErrorCode.INVALID_OPTION,
      `${what}: the local address is not one of this host's`,
      systemErrorDetails(error, UDP_LINK_BACKEND),
    );
  }
  return openError(error, what);
}

/**
 * Opens a UDP link: a socket bound to `local` and connected to `remote`, as a TapDevice (layer
 * 2, no OS interface, an empty `mac`). Needs no privileges. Datagrams from other senders are not
 * received; a datagram the peer refuses (nobody listens there yet) is lost, as UDP's are, and
 * the link goes on. Linux only for now.
 *
 * @example
 * ```ts
 * // One end of an L2 overlay: the tap device's frames to the peer and back, in native code.
 * const tap = await linuxTap.open({ name: 'ovl0', addresses: ['10.99.0.1/24'] });
 * const link = await openUdpLink({ local: { address: '192.0.2.1', port: 4789 }, remote: { address: '192.0.2.2', port: 4789 } });
 * await Promise.all([tap.pipeTo(link), link.pipeTo(tap)]);
 * ```
 */
// async although nothing is awaited: every failure becomes a rejection, never a throw.
export async function openUdpLink(options: UdpLinkOptions): Promise<UdpLink> {
  if (typeof options !== 'object' || options === null) throw invalid('openUdpLink() takes an options object');
  checkOptionNames(options, OPTIONS, 'openUdpLink()', UDP_LINK_BACKEND);
  const { mtu, rxQueueFrames, signal } = resolveOpenOptions(
    { mtu: options.mtu, rxQueueFrames: options.rxQueueFrames, signal: options.signal },
    UDP_LINK_LIMITS,
  );
  const local = checkEndpoint(options.local, 'local', true);
  const remote = checkEndpoint(options.remote, 'remote', false);
  if (local.family !== remote.family) throw invalid('local and remote must both be IPv4 or both IPv6');
  if (signal?.aborted) throw abortError('openUdpLink()', signal);
  const addon = loadAddon(options.env ?? process.env);
  const what = `open a UDP link to ${formatEndpoint(remote)}`;
  if (addon.openUdpSocket === undefined) {
    throw new TapError(
      TapErrorCode.UNSUPPORTED_OPERATION,
      `${what}: this build of the addon predates UDP links`,
      {
        backend: UDP_LINK_BACKEND,
      },
    );
  }
  let fd: number;
  let port: number;
  try {
    [fd, port] = addon.openUdpSocket(
      local.family,
      local.bytes,
      local.port,
      remote.family,
      remote.bytes,
      remote.port,
    );
  } catch (error) {
    throw socketError(error, what);
  }
  const bound = Object.freeze({ address: local.address, port });
  const link = new UdpLinkPort(addon, 'tap', mtu);
  link.adoptSocket(fd, `udp:${formatEndpoint(bound)}`);
  const device = createTapDevice(link, { backend: UDP_LINK_BACKEND, rxQueueFrames, up: true, addresses: [] });
  return Object.defineProperties(device, {
    local: { value: bound, enumerable: true },
    remote: { value: Object.freeze({ address: remote.address, port: remote.port }), enumerable: true },
  }) as UdpLink;
}
