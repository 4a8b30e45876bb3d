/**
 * Example: a userspace learning switch joining several TapDevices, as an Ethernet switch joins
 * its ports. It learns which port each source MAC lives behind; a frame for a known unicast MAC
 * goes out of that port only, everything else (broadcast, multicast, unknown unicast) is
 * flooded out of every other port. Entries age out, so a host that moves is found again.
 */
import { isTapError, type Frame, type TapDevice } from 'tapkit';

export interface SwitchOptions {
  /** How long a learned MAC is trusted without hearing from it, ms. Default 300 000 (as 802.1D). */
  readonly agingMs?: number;
  /** The clock. Default `Date.now`. */
  readonly now?: () => number;
}

export interface SwitchStats {
  /** Frames received from all ports. */
  received: number;
  /** Frames sent out of exactly one port (a learned destination). */
  forwarded: number;
  /** Frames sent out of every other port (broadcast, multicast, unknown destination). */
  flooded: number;
  /** Frames whose destination is behind the port they came from: not sent anywhere. */
  filtered: number;
  /** Copies dropped because a port's write queue was full. */
  congested: number;
  /** Copies dropped because they were larger than the egress port's MTU allows. */
  tooLarge: number;
}

interface Entry {
  port: number;
  seen: number;
}

/** A MAC as a number (48 bits fit a double exactly): a cheap Map key. */
function macAt(frame: Frame, offset: number): number {
  return (
    frame[offset]! * 2 ** 40 +
    frame[offset + 1]! * 2 ** 32 +
    ((frame[offset + 2]! << 24) >>> 0) +
    (frame[offset + 3]! << 16) +
    (frame[offset + 4]! << 8) +
    frame[offset + 5]!
  );
}

export class LearningSwitch {
  readonly #ports: readonly TapDevice[];
  readonly #fdb = new Map<number, Entry>();
  readonly #congested: boolean[];
  readonly #agingMs: number;
  readonly #now: () => number;
  readonly #stats: SwitchStats = {
    received: 0,
    forwarded: 0,
    flooded: 0,
    filtered: 0,
    congested: 0,
    tooLarge: 0,
  };
  /** Settles when every port has closed (or rejects with the first port's failure). */
  readonly done: Promise<void>;

  constructor(ports: readonly TapDevice[], options: SwitchOptions = {}) {
    this.#ports = ports;
    this.#congested = ports.map(() => false);
    this.#agingMs = options.agingMs ?? 300_000;
    this.#now = options.now ?? Date.now;
    this.done = Promise.all(ports.map((_, port) => this.#run(port))).then(() => undefined);
  }

  async #run(port: number): Promise<void> {
    for await (const batch of this.#ports[port]!.batches()) {
      for (const frame of batch) this.#switch(port, frame);
    }
  }

  #switch(from: number, frame: Frame): void {
    this.#stats.received++;
    const now = this.#now();
    // Learn the source, unless it is a group address (no station sends from one).
    if ((frame[6]! & 1) === 0) this.#fdb.set(macAt(frame, 6), { port: from, seen: now });
    const group = (frame[0]! & 1) === 1;
    const entry = group ? undefined : this.#fdb.get(macAt(frame, 0));
    if (entry && now - entry.seen <= this.#agingMs) {
      if (entry.port === from) {
        this.#stats.filtered++;
        return;
      }
      this.#stats.forwarded++;
      this.#send(entry.port, frame);
      return;
    }
    this.#stats.flooded++;
    for (let port = 0; port < this.#ports.length; port++) if (port !== from) this.#send(port, frame);
  }

  /** Writes a frame out of a port; while the port is congested, drops (a switch has no infinite buffers). */
  #send(port: number, frame: Frame): void {
    const device = this.#ports[port]!;
    if (this.#congested[port] || device.closed) {
      this.#stats.congested++;
      return;
    }
    try {
      if (device.write(frame)) return;
    } catch (error) {
      if (isTapError(error, 'ERR_TAP_FRAME_TOO_LARGE')) this.#stats.tooLarge++;
      else if (!isTapError(error, 'ERR_TAP_CLOSED')) throw error;
      return;
    }
    this.#congested[port] = true;
    device.drain().then(
      () => (this.#congested[port] = false),
      () => undefined, // closed: its read loop ends
    );
  }

  stats(): SwitchStats {
    return { ...this.#stats };
  }

  /** The forwarding database: MAC → port index, entries that have not aged out. */
  fdb(): Map<string, number> {
    const now = this.#now();
    const table = new Map<string, number>();
    for (const [mac, entry] of this.#fdb) {
      if (now - entry.seen > this.#agingMs) continue;
      table.set(
        mac
          .toString(16)
          .padStart(12, '0')
          .replace(/(..)(?!$)/g, '$1:'),
        entry.port,
      );
    }
    return table;
  }

  async close(): Promise<void> {
    await Promise.all(this.#ports.map((device) => device.close()));
  }
}
