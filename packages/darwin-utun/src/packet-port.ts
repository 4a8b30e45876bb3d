/**
 * The layer-3 side of the shim: a device that reads and writes bare IP packets (a utun, a Linux
 * tun, an in-memory pipe). It has the shape of core's `TapPort`, with packets where a
 * TapPort has frames, so that {@link createL2Shim} can turn it into one.
 *
 * @module
 */
import type { InterfaceAddress, LinkState, TapError } from '@tapkit/core';

/** Where a packet port delivers what happens on its side. The shim implements it. */
export interface PacketSink {
  /**
   * IPv4 or IPv6 packets received from the OS (told apart by the version nibble), a batch at a
   * time. The sink takes ownership of the array and the packets: the port must not reuse their
   * memory.
   */
  receive(packets: Uint8Array[]): void;
  /** The port's write queue dropped below its high-water mark. */
  writable(): void;
  /** Packets the port dropped, by reason. */
  dropped(reason: string, count?: number): void;
  /** Packets of the write in progress the port did not send: see core's `PortSink.notSent`. */
  notSent(reason: string, packets: number, bytes: number): void;
  /** The device went away. */
  gone(error: TapError): void;
  /** A non-fatal asynchronous error (e.g. a queued write the OS refused). */
  error(error: TapError): void;
  /** The interface changed: see core's `PortSink.link`. */
  link(state: Partial<LinkState>): void;
}

/** A layer-3 device: the OS object under a shim. */
export interface PacketPort {
  /** The interface name the OS knows. */
  readonly name: string;
  /** The largest packet the device carries. */
  readonly mtu: number;
  /**
   * Bytes before each delivered packet, in the same buffer, that belong to nobody else (not to
   * another packet, never written again by the port). With 14 or more, the shim writes the
   * Ethernet header there and hands the frame on without copying the packet. Default 0.
   */
  readonly headroom?: number;
  /** The interface's up flag and addresses at open, when the port knows them (see core's `TapPort`). */
  readonly up?: boolean | undefined;
  readonly addresses?: readonly string[] | undefined;
  /** The device is a real OS interface. Default false. */
  readonly osInterface?: boolean;
  /** Start delivering received packets to `sink`. Called once. */
  start(sink: PacketSink): void;
  /**
   * Sends an IP packet. The port must not keep a reference to `packet` after returning (copy it
   * if it queues). Returns false when its queue is over its high-water mark (then it calls
   * `sink.writable()` when it is not). Throws a TapError for a failure the user should see now.
   */
  write(packet: Uint8Array): boolean;
  /** Sends several packets; returns as `write`. Default: `write` each. */
  writeBatch?(packets: readonly Uint8Array[]): boolean;
  pause?(): void;
  resume?(): void;
  ref?(): void;
  unref?(): void;
  /**
   * Change the interface, as core's `TapPort` setters (the shim passes them through). Each is
   * optional: without it the device rejects with `ERR_TAP_UNSUPPORTED_OPERATION`.
   */
  setMtu?(mtu: number): Promise<void> | void;
  setUp?(up: boolean): Promise<void> | void;
  addAddress?(address: InterfaceAddress, options: { readonly dad: boolean }): Promise<void> | void;
  removeAddress?(address: InterfaceAddress): Promise<void> | void;
  /** Releases the device. Called once; must not throw for an already-gone device. */
  close(): Promise<void> | void;
}
