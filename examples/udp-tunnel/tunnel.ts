/**
 * Example: a layer-2 tunnel over UDP — the core of a ZeroTier-like overlay. Each side joins a
 * TapDevice to a UDP socket: every Ethernet frame the OS sends out of the device travels, whole,
 * in one datagram to the other side, which writes it into its own device. The two devices then
 * behave as if one cable joined them: ARP, IPv6 neighbour discovery, ping, TCP, anything.
 *
 * Two ways to join them: startTunnel() passes every frame through JavaScript (node:dgram), which
 * is where an overlay would encrypt or route, on every platform; startLinkTunnel() joins the
 * device to a UDP link (Linux: `openUdpLink` from `@tapkit/linux-tap`) with two native pipes,
 * as fast as a C tunnel, no JavaScript per frame.
 *
 * What a real overlay adds on top: authentication and encryption (this sends frames in the
 * clear, to anyone who can reach the port — use it only on networks you trust), more than one
 * peer (learn which peer has which MAC, as the learning switch example does with ports), NAT
 * traversal, and path MTU handling.
 */
import type { Socket } from 'node:dgram';
import { isTapError, type TapDevice } from 'tapkit';

/** IPv4 (20) + UDP (8) around each frame, which carries its own 14-byte Ethernet header. */
export const ENCAPSULATION_OVERHEAD = 20 + 8 + 14;

/** The device MTU that keeps each datagram within an underlay MTU (no IP fragmentation). */
export function innerMtu(underlayMtu: number): number {
  return underlayMtu - ENCAPSULATION_OVERHEAD;
}

export interface TunnelOptions {
  readonly device: TapDevice;
  /** A bound UDP socket. */
  readonly socket: Socket;
  /** The other end. Datagrams from anywhere else are ignored. */
  readonly peer: { readonly address: string; readonly port: number };
}

export interface TunnelStats {
  /** Frames sent to the peer, and received from it. */
  framesOut: number;
  framesIn: number;
  /** Datagrams from someone other than the peer. */
  foreign: number;
  /** Datagrams that were not a frame the device accepts (too short, too long). */
  malformed: number;
  /** Frames dropped because the device's write queue was full (as a NIC drops). */
  congested: number;
  /** Datagrams the OS would not send (no route to the peer, …). */
  sendErrors: number;
}

export interface Tunnel {
  readonly stats: Readonly<TunnelStats>;
  /** Settles when the device closes (resolves) or fails (rejects). */
  readonly done: Promise<void>;
}

/** Joins `device` and `socket`. Close the device (or the socket) to stop. */
export function startTunnel({ device, socket, peer }: TunnelOptions): Tunnel {
  const stats: TunnelStats = {
    framesOut: 0,
    framesIn: 0,
    foreign: 0,
    malformed: 0,
    congested: 0,
    sendErrors: 0,
  };

  // Peer → device. Under backpressure, drop until the device drains: a tunnel is a link, and
  // links drop rather than queue without bound (TCP inside recovers).
  let congested = false;
  socket.on('message', (datagram, from) => {
    if (from.address !== peer.address || from.port !== peer.port) {
      stats.foreign++;
      return;
    }
    if (congested) {
      stats.congested++;
      return;
    }
    try {
      if (!device.write(datagram)) {
        congested = true;
        device.drain().then(
          () => (congested = false),
          () => undefined, // closed: the read loop below ends the tunnel
        );
      }
      stats.framesIn++;
    } catch (error) {
      if (isTapError(error, 'ERR_TAP_FRAME_TOO_SHORT') || isTapError(error, 'ERR_TAP_FRAME_TOO_LARGE')) {
        stats.malformed++;
      } else if (!isTapError(error, 'ERR_TAP_CLOSED')) {
        throw error;
      }
    }
  });

  // Device → peer: whole frames, one datagram each. Frames are views the device never reuses,
  // so they can be handed to send() as they are. One callback for all sends: no closure per frame.
  const sent = (error: Error | null) => {
    if (error) stats.sendErrors++;
  };
  const done = (async () => {
    for await (const batch of device.batches()) {
      for (const frame of batch) {
        socket.send(frame, peer.port, peer.address, sent);
        stats.framesOut++;
      }
    }
  })();
  return { stats, done };
}

/**
 * The same tunnel on a UDP link (a TapDevice whose wire is the peer: `openUdpLink` from
 * `@tapkit/linux-tap`): frames cross in native code both ways, never entering JavaScript. The
 * link's socket is connected, so the kernel itself drops datagrams from anyone but the peer; a
 * pipe under backpressure stops reading rather than dropping. Close the device to stop.
 */
export function startLinkTunnel({ device, link }: { device: TapDevice; link: TapDevice }): Tunnel {
  const done = Promise.all([device.pipeTo(link), link.pipeTo(device)]).then(() => undefined);
  const stats: Readonly<TunnelStats> = {
    get framesOut() {
      return link.stats().txFrames;
    },
    get framesIn() {
      return device.stats().txFrames;
    },
    foreign: 0,
    /** Datagrams the device would not take (too short, too long for its MTU). */
    get malformed() {
      return device.stats().drops['txError'] ?? 0;
    },
    congested: 0,
    get sendErrors() {
      return link.stats().drops['txError'] ?? 0;
    },
  };
  return { stats, done };
}
