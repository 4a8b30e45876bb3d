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
    this.#switch.resume(link);
  }

  write(frame: Frame): boolean {
    this.#check();
    // The one copy: the caller may reuse its buffer as soon as write() returns.
    return this.#switch.ingress(this.#link, this.#switch.copier.copy(frame));
  }

  writeBatch(frames: readonly Frame[]): boolean {
    this.#check(); // an injected failure fails the whole batch, before any frame is sent
    let ok = true;
    for (const frame of frames) ok = this.#switch.ingress(this.#link, this.#switch.copier.copy(frame));
    return ok;
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
