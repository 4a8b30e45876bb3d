/**
 * A device's port on the mock switch: the {@link TapPort} that core's engine turns into a
 * TapDevice.
 *
 * @module
 */
import {
  TapError,
  TapErrorCode,
  type Frame,
  type InterfaceAddress,
  type PortSink,
  type TapCapabilities,
  type TapPort,
} from '@tapkit/core';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Link, Switch } from './switch.js';

/** What the mock can do: layer 2, one queue, no offload, no OS interface. */
export const MOCK_CAPABILITIES: TapCapabilities = Object.freeze({
  layer: 2,
  minMtu: 68,
  maxMtu: 65535,
  multiQueue: false,
  offload: false,
  multicastGroups: false,
  osInterface: false,
});

/** A change to a device port's interface: see {@link changeLink}. */
export interface LinkChangeRequest {
  readonly name?: string;
  readonly mtu?: number;
  readonly up?: boolean;
  readonly add?: InterfaceAddress;
  readonly remove?: InterfaceAddress;
}

/**
 * Changes a device port's interface, as an admin (the network's verbs) or the device's own
 * setters do, and tells the device. Arguments are checked by the caller; what depends on the
 * network's state (a name in use, an address there already or not there) is checked here.
 */
export function changeLink(sw: Switch, link: Link, change: LinkChangeRequest): void {
  const { name, mtu, up, add, remove } = change;
  if (name !== undefined && name !== link.name && sw.links.has(name)) {
    throw new TapError(TapErrorCode.NAME_IN_USE, `a port named ${name} exists already on the network`);
  }
  if (add !== undefined && link.addresses.includes(add.cidr)) {
    throw new TapError(TapErrorCode.INVALID_ARGUMENT, `${link.name} has the address ${add.cidr} already`);
  }
  if (remove !== undefined && !link.addresses.includes(remove.cidr)) {
    throw new TapError(TapErrorCode.INVALID_ARGUMENT, `${link.name} has no address ${remove.cidr}`);
  }
  if (name !== undefined) sw.rename(link, name);
  if (mtu !== undefined) link.mtu = mtu;
  if (up !== undefined) link.up = up;
  if (add !== undefined) {
    link.addresses = [...link.addresses, add.cidr];
    link.station?.setAddress(add, true);
  }
  if (remove !== undefined) {
    link.addresses = link.addresses.filter((cidr) => cidr !== remove.cidr);
    link.station?.setAddress(remove, false);
  }
  link.onChange?.({ name: link.name, mtu: link.mtu, up: link.up, addresses: link.addresses });
}

export class MockPort implements TapPort {
  readonly capabilities = MOCK_CAPABILITIES;
  readonly #switch: Switch;
  readonly #link: Link;
  /**
   * Holds the event loop while the device is open, as a real device's fd does: a message port
   * with a listener is a ref'd handle. (Not a timer: fake timers would replace it, and
   * `runAllTimers()` would never end.)
   */
  readonly #keepAlive: MessagePort;
  #sink: PortSink | undefined;

  constructor(sw: Switch, link: Link) {
    this.#switch = sw;
    this.#link = link;
    // The other end stays open (closing it would close this one) and unlistened (not ref'd).
    const { port1 } = new MessageChannel();
    port1.on('message', () => {});
    this.#keepAlive = port1;
  }

  get name(): string {
    return this.#link.name;
  }

  get mac(): Uint8Array {
    return this.#link.mac;
  }

  get mtu(): number {
    return this.#link.mtu;
  }

  get up(): boolean {
    return this.#link.up;
  }

  get addresses(): readonly string[] {
    return this.#link.addresses;
  }

  // The setters: what an admin would do to the interface (see MockNetwork.setMtu and the rest).
  setMtu(mtu: number): void {
    this.#change({ mtu });
  }

  setUp(up: boolean): void {
    this.#change({ up });
  }

  addAddress(address: InterfaceAddress): void {
    this.#change({ add: address });
  }

  removeAddress(address: InterfaceAddress): void {
    this.#change({ remove: address });
  }

  #change(change: LinkChangeRequest): void {
    if (!this.#link.attached) {
      throw new TapError(
        TapErrorCode.DEVICE_GONE,
        `mock port ${this.#link.name} is no longer on its network`,
      );
    }
    changeLink(this.#switch, this.#link, change);
  }

  start(sink: PortSink): void {
    const link = this.#link;
    if (!link.attached) {
      // Removed between open and start (the network closed, or the port was disconnected).
      sink.gone(
        new TapError(TapErrorCode.DEVICE_GONE, `mock port ${link.name} was removed before it started`),
      );
      return;
    }
    // Frames that arrived between attach and start wait in the backlog; start lets them through.
    link.endpoint = sink;
    link.onChange = (state) => sink.link(state);
    this.#sink = sink;
    this.#switch.resume(link);
  }

  write(frame: Frame): boolean {
    this.#check();
    if (!this.#link.up) return this.#down([frame]);
    // The one copy: the caller may reuse its buffer as soon as write() returns.
    return this.#switch.ingress(this.#link, this.#switch.copier.copy(frame));
  }

  writeBatch(frames: readonly Frame[]): boolean {
    this.#check(); // an injected failure fails the whole batch, before any frame is sent
    if (!this.#link.up) return this.#down(frames);
    let ok = true;
    for (const frame of frames) ok = this.#switch.ingress(this.#link, this.#switch.copier.copy(frame));
    return ok;
  }

  /** Writes to a down interface are dropped, as the kernel's tap refuses them (EIO). */
  #down(frames: readonly Frame[]): boolean {
    const bytes = frames.reduce((sum, frame) => sum + frame.length, 0);
    this.#sink?.notSent('interfaceDown', frames.length, bytes);
    return true;
  }

  #check(): void {
    const link = this.#link;
    if (link.failNext !== undefined) {
      const error = link.failNext;
      link.failNext = undefined;
      throw error;
    }
    if (!link.attached) {
      throw new TapError(TapErrorCode.DEVICE_GONE, `mock port ${link.name} is no longer on its network`);
    }
  }

  pause(): void {
    this.#switch.pause(this.#link);
  }

  resume(): void {
    this.#switch.resume(this.#link);
  }

  unref(): void {
    this.#keepAlive.unref();
  }

  ref(): void {
    this.#keepAlive.ref();
  }

  close(): void {
    this.#keepAlive.close();
    this.#switch.detach(this.#link);
  }
}
