/**
 * The live state of a device's interface — name, MTU, up flag, addresses — read and changed
 * through rtnetlink and followed through its notifications, for the engine's `link` events.
 *
 * @module
 */
import type { InterfaceAddress, LinkState, TapError } from '@tapkit/core';
import type { RawAddon, RawLinkWatcher } from './addon.js';
import { MTU_REQUEST, changeError } from './errors.js';
import {
  decodeMessages,
  deleteAddressMessage,
  getAddresses,
  getLink,
  newAddressMessage,
  request,
  setLinkMessage,
  type LinkSettings,
  type RouteMessage,
} from './rtnetlink.js';

/** One interface, by index (which a rename keeps), as this thread's network namespace sees it. */
export class InterfaceLink {
  readonly index: number;
  readonly #addon: RawAddon;
  #name: string;
  #mtu: number;
  #up: boolean;
  /** In the kernel's order; a Set keeps it and makes a repeated notification a no-op. */
  #addresses = new Set<string>();
  #watcher: RawLinkWatcher | undefined;
  /** Where changes go once the device has started (the engine's sink). */
  #report: ((state: Partial<LinkState>) => void) | undefined;

  /**
   * Finds the interface `name` and starts watching it at once, so that no change made from
   * here on (configuring it included) is missed. Throws the addon's system error.
   */
  constructor(addon: RawAddon, name: string) {
    this.#addon = addon;
    const link = getLink(addon, name);
    this.index = link.index;
    this.#name = link.name;
    this.#mtu = link.mtu;
    this.#up = link.up;
    this.#watcher = new addon.LinkWatcher({
      onMessages: (bytes) => this.#apply(decodeMessages(bytes)),
      // ENOBUFS: notifications were lost; read the whole state again. Otherwise the socket is
      // done: the state stays as last seen (setters still work).
      onError: (error) => {
        if (error.code === 'ENOBUFS') this.refresh();
      },
    });
  }

  get name(): string {
    return this.#name;
  }

  get mtu(): number {
    return this.#mtu;
  }

  get up(): boolean {
    return this.#up;
  }

  get addresses(): string[] {
    return [...this.#addresses];
  }

  /** From now on, changes are reported to `report`. */
  start(report: (state: Partial<LinkState>) => void): void {
    this.#report = report;
  }

  /** Reads the whole state from the kernel (after configuring, or after lost notifications). */
  refresh(): void {
    let addresses: string[];
    try {
      const link = getLink(this.#addon, this.index);
      addresses = getAddresses(this.#addon, this.index, link.name);
      this.#name = link.name;
      this.#mtu = link.mtu;
      this.#up = link.up;
    } catch {
      return; // gone, or moved to another namespace: the device's fd says so, if it matters
    }
    this.#addresses = new Set(addresses);
    this.#changed();
  }

  /** Sets what `settings` gives, in one request. Throws the addon's system error. */
  setLink(settings: LinkSettings): void {
    // An MTU alone is labelled as such: its EINVAL means the kernel refused that MTU.
    const label =
      settings.mtu !== undefined && settings.mac === undefined && settings.up === undefined
        ? MTU_REQUEST
        : undefined;
    request(this.#addon, setLinkMessage(this.index, settings), this.#name, label);
    if (settings.mtu !== undefined) this.#mtu = settings.mtu;
    if (settings.up !== undefined) this.#up = settings.up;
    this.#changed();
  }

  /** Adds an address (with `nodad`, an IPv6 one is usable at once). Throws the addon's system error. */
  addAddress(address: InterfaceAddress, nodad: boolean): void {
    request(this.#addon, newAddressMessage(this.index, address, { nodad }), this.#name);
    this.#addresses.add(address.cidr);
    this.#changed();
  }

  /** Removes an address. Throws the addon's system error. */
  removeAddress(address: InterfaceAddress): void {
    request(this.#addon, deleteAddressMessage(this.index, address), this.#name);
    this.#addresses.delete(address.cidr);
    this.#changed();
  }

  /** TapPort's setters: what the engine calls, with errors that say what failed. */
  readonly setters = {
    setMtu: (mtu: number) => this.#try(`set MTU ${mtu}`, () => this.setLink({ mtu })),
    setUp: (up: boolean) => this.#try(up ? 'bring up' : 'bring down', () => this.setLink({ up })),
    addAddress: (address: InterfaceAddress, options: { readonly dad: boolean }) =>
      this.#try(`add address ${address.cidr}`, () => this.addAddress(address, !options.dad)),
    removeAddress: (address: InterfaceAddress) =>
      this.#try(`remove address ${address.cidr}`, () => this.removeAddress(address)),
  };

  #try(what: string, action: () => void): Promise<void> {
    try {
      action();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(changeError(error, `${what} on ${this.#name}`));
    }
  }

  /** Applies notifications about this interface (others are ignored). */
  #apply(messages: readonly RouteMessage[]): void {
    let changed = false;
    for (const message of messages) {
      if (message.index !== this.index) continue;
      if (message.kind === 'link') {
        // A deleted link (or one moved to another namespace) ends the device through its fd.
        if (message.deleted) continue;
        if (message.name !== undefined) this.#name = message.name;
        if (message.mtu !== undefined) this.#mtu = message.mtu;
        this.#up = message.up;
      } else if (message.deleted) {
        this.#addresses.delete(message.cidr);
      } else {
        this.#addresses.add(message.cidr);
      }
      changed = true;
    }
    if (changed) this.#changed();
  }

  #changed(): void {
    this.#report?.({ name: this.#name, mtu: this.#mtu, up: this.#up, addresses: this.addresses });
  }

  /** Stops watching; idempotent. */
  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#report = undefined;
  }
}

/** Settings of an interface to change at open: those given, in this order. */
export interface LinkConfig extends LinkSettings {
  readonly addresses: readonly InterfaceAddress[];
}

/**
 * Sets the MTU, MAC, addresses (IPv6 ones without duplicate address detection: usable at once)
 * and up flag given on the interface `index`, through rtnetlink. A step that fails throws what
 * `failed` makes of the addon's error and of what the step was doing.
 */
export function configureLink(
  addon: RawAddon,
  index: number,
  name: string,
  config: LinkConfig,
  failed: (error: unknown, what: string) => TapError,
): void {
  const step = (what: string, message: Uint8Array, label?: string): void => {
    try {
      request(addon, message, name, label);
    } catch (error) {
      throw failed(error, what);
    }
  };
  const { mtu, mac, up } = config;
  // An MTU alone is labelled as such: its EINVAL means the kernel refused that MTU.
  if (mtu !== undefined) step(`set MTU ${mtu}`, setLinkMessage(index, { mtu }), MTU_REQUEST);
  if (mac) step('set MAC', setLinkMessage(index, { mac }));
  for (const address of config.addresses) {
    step(`add address ${address.cidr}`, newAddressMessage(index, address, { nodad: true }));
  }
  if (up !== undefined) step(up ? 'bring up' : 'bring down', setLinkMessage(index, { up }));
}
