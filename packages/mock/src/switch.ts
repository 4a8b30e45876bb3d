/**
 * The learning switch at the heart of a mock network. Internal: users see it through
 * {@link MockNetwork}.
 *
 * A frame's life: a port writes it (copied once) → it waits in the pending list → one
 * `setImmediate` per tick flushes the list: learn the source MAC, pick the egress ports
 * (known unicast: one; broadcast, multicast, unknown unicast: every other port), check each
 * port's MTU, apply faults → each port gets everything for it this tick as one batch.
 * Batching is what makes the mock fast: a tick costs one immediate, and a receiver one call
 * per batch rather than per frame.
 *
 * @module
 */
// Every frame in the switch is a Buffer: a copy the switch owns (see FrameCopier), delivered as is.
import type { ReceivedFrame as Frame, InterfaceAddress, LinkState, TapError } from '@tapkit/core';
import { FrameCopier } from './copy.js';
import type { ResolvedFaults } from './faults.js';
import type { Random } from './random.js';

/** What sits on the other side of a switch port: a device's engine (its PortSink) or a virtual host. */
export interface Endpoint {
  /** Frames for this port; ownership of the array and the frames passes. */
  receive(frames: Frame[]): void;
  /** The switch dropped frames meant for this port (its backlog was full). */
  dropped?(reason: string, count: number): void;
  /** The port's pending writes fell below the high-water mark. */
  writable?(): void;
  /** The switch removed the port: disconnected, or the network closed. */
  gone(error: TapError): void;
}

/** Switch-side state of one port. */
/** A device's port, a virtual host's, or a device's OS station (see MockNetwork.open). */
export type PortKind = 'device' | 'host' | 'station';

export class Link {
  /** A device port's OS station, which leaves the network with it and holds its addresses. */
  station: { detach(): void; setAddress(address: InterfaceAddress, present: boolean): void } | undefined;
  /** A device port's interface: up (frames pass) or down, and its addresses (CIDR strings). */
  up = true;
  addresses: string[] = [];
  /** Told every change of the name, MTU, up flag or addresses (the device's engine, through its port). */
  onChange: ((state: Partial<LinkState>) => void) | undefined;
  /** Set when the port's device starts (hosts: at once). Until then frames wait in the backlog. */
  endpoint: Endpoint | undefined;
  attached = true;
  /** Own fault override; undefined: the network's default. */
  faults: ResolvedFaults | undefined;
  /** Thrown by the port's next write (failNextWrite). */
  failNext: TapError | undefined;

  /** The receiver asked for a pause (its queue is full), or has not started yet. */
  paused: boolean;
  /** Frames held for a paused receiver, in order; bounded like a kernel's txqueuelen. */
  backlog: Frame[] = [];
  /** Frames written by this port not yet flushed through the switch. */
  pendingTx = 0;

  /** This tick's frames for the port. */
  outbox: Frame[] = [];
  /** A frame held back to be overtaken (reorder), and the tick it was held in. */
  held: Frame | undefined;
  heldTick = 0;
  /** This tick's delayed frames, by delay in ms: one timer per bucket, not per frame. */
  delayBuckets: Map<number, Frame[]> | undefined;
  readonly timers = new Set<ReturnType<typeof setTimeout>>();
  /** The switch's last FDB answer for a frame from this port (see Switch.#forward). */
  readonly memo: { version: number; src: number; dst: number; out: Link | undefined } = {
    version: -1,
    src: -1,
    dst: -1,
    out: undefined,
  };

  constructor(
    /** Changed by a rename (see Switch.rename). */
    public name: string,
    readonly kind: PortKind,
    readonly mac: Uint8Array,
    public mtu: number,
    /** At most this many frames per receive() call: half the device's receive queue. */
    readonly maxBatch: number,
    endpoint: Endpoint | undefined,
  ) {
    this.endpoint = endpoint;
    this.paused = endpoint === undefined;
  }
}

/** Switch counters. */
export interface MockNetworkStats {
  /** Frames that entered the switch. */
  readonly frames: number;
  /** Known unicast frames sent to their one port. */
  readonly forwarded: number;
  /** Broadcast, multicast and unknown unicast frames sent to every other port. */
  readonly flooded: number;
  /** Frames handed to ports (each copy of a flooded or duplicated frame counts). */
  readonly delivered: number;
  /** Fault actions taken. */
  readonly duplicated: number;
  readonly reordered: number;
  readonly delayed: number;
  /** Entries in the forwarding database. */
  readonly fdbEntries: number;
  /**
   * Frames dropped, by reason: `mtuExceeded` (larger than the egress port's MTU allows),
   * `linkDown` (the egress device's interface is down),
   * `loss` (fault), `backlogFull` (a paused receiver's backlog was full), `filtered` (unicast
   * to a MAC learned on the port it came from). Reasons with no drop are absent.
   */
  readonly drops: Readonly<Record<string, number>>;
}

/** Something that records frames passing the switch (a capture). */
export interface Tap {
  /** Only frames from and to this port; undefined: every frame entering the switch. */
  readonly link: Link | undefined;
  record(frame: Frame): void;
  close(): Promise<void>;
}

export interface SwitchOptions {
  readonly name: string;
  readonly random: Random;
  readonly txHighWater: number;
  readonly backlogFrames: number;
}

const VLAN = 0x8100;
const QINQ = 0x88a8;

/** The 48-bit MAC at `offset` as a number: a cheap, exact Map key. */
function macKey(frame: Frame, o: number): number {
  return (
    ((frame[o]! << 8) | frame[o + 1]!) * 0x1_0000_0000 +
    (((frame[o + 2]! << 24) | (frame[o + 3]! << 16) | (frame[o + 4]! << 8) | frame[o + 5]!) >>> 0)
  );
}

function macText(key: number): string {
  return key
    .toString(16)
    .padStart(12, '0')
    .replace(/(..)(?!$)/g, '$1:');
}

/** The largest frame a port with this MTU takes: header + MTU, plus 4 when 802.1Q tagged. */
function frameLimit(frame: Frame, mtu: number): number {
  const type = (frame[12]! << 8) | frame[13]!;
  return mtu + 14 + (type === VLAN || type === QINQ ? 4 : 0);
}

export class Switch {
  readonly name: string;
  readonly txHighWater: number;
  readonly backlogFrames: number;
  /** Ports by name, in attach order (flooding follows it, so runs are reproducible). */
  readonly links = new Map<string, Link>();
  readonly copier = new FrameCopier();
  closed = false;

  readonly #random: Random;
  readonly #fdb = new Map<number, Link>();
  /** Bumped on every FDB change: invalidates the ports' lookup memos. */
  #fdbVersion = 0;
  #faults: ResolvedFaults | undefined;
  readonly #taps: Tap[] = [];

  // Double-buffered pending list (parallel arrays: no object per frame).
  #pendingFrames: Frame[] = [];
  #pendingFrom: Link[] = [];
  #spareFrames: Frame[] = [];
  #spareFrom: Link[] = [];
  #immediate: ReturnType<typeof setImmediate> | undefined;
  #tick = 0;

  /** Ports with frames in their outbox / a held frame / delay buckets / a backlog to drain / a blocked writer. */
  #dirty: Link[] = [];
  readonly #holding = new Set<Link>();
  #bucketed: Link[] = [];
  readonly #draining = new Set<Link>();
  readonly #blocked = new Set<Link>();

  #frames = 0;
  #forwarded = 0;
  #flooded = 0;
  #delivered = 0;
  #duplicated = 0;
  #reordered = 0;
  #delayed = 0;
  readonly #drops = new Map<string, number>();

  constructor(options: SwitchOptions) {
    this.name = options.name;
    this.#random = options.random;
    this.txHighWater = options.txHighWater;
    this.backlogFrames = options.backlogFrames;
  }

  // ---- ports ----

  attach(link: Link): void {
    this.links.set(link.name, link);
  }

  /** Renames a port, keeping its place in the flooding order. */
  rename(link: Link, name: string): void {
    const links = [...this.links.values()];
    this.links.clear();
    link.name = name;
    for (const l of links) this.links.set(l.name, l);
  }

  /** Removes a port: its FDB entries, pending deliveries and timers go with it. Idempotent. */
  detach(link: Link): void {
    if (!link.attached) return;
    link.attached = false;
    this.links.delete(link.name);
    for (const timer of link.timers) clearTimeout(timer);
    link.timers.clear();
    link.backlog = [];
    link.outbox = [];
    link.held = undefined;
    this.#holding.delete(link);
    this.#draining.delete(link);
    this.#blocked.delete(link);
    for (const [key, owner] of this.#fdb) if (owner === link) this.#fdb.delete(key);
    this.#fdbVersion++;
    link.station?.detach();
  }

  /** Detaches a port and tells its endpoint why. */
  remove(link: Link, error: TapError): void {
    if (!link.attached) return;
    this.detach(link);
    link.endpoint?.gone(error);
  }

  pause(link: Link): void {
    link.paused = true;
  }

  resume(link: Link): void {
    link.paused = false;
    if (link.backlog.length > 0 && link.attached) {
      this.#draining.add(link);
      this.#schedule();
    }
  }

  // ---- ingress ----

  /**
   * A frame from `from`, owned by the switch from now on. Returns false once the port has
   * `txHighWater` frames pending; its endpoint's `writable()` is called when they are flushed.
   */
  ingress(from: Link, frame: Frame): boolean {
    this.#pendingFrames.push(frame);
    this.#pendingFrom.push(from);
    this.#schedule();
    if (++from.pendingTx < this.txHighWater) return true;
    this.#blocked.add(from);
    return false;
  }

  #schedule(): void {
    if (this.#immediate === undefined && !this.closed) this.#immediate = setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#immediate = undefined;
    const tick = ++this.#tick;
    const frames = this.#pendingFrames;
    const from = this.#pendingFrom;
    // Frames written while this tick's batches are delivered wait for the next tick.
    this.#pendingFrames = this.#spareFrames;
    this.#pendingFrom = this.#spareFrom;
    const n = frames.length;
    this.#frames += n;
    for (let i = 0; i < n; i++) {
      const link = from[i]!;
      link.pendingTx--;
      this.#forward(link, frames[i]!);
    }
    frames.length = 0;
    from.length = 0;
    this.#spareFrames = frames;
    this.#spareFrom = from;

    // A frame held for reordering that nothing overtook this tick goes out now, last.
    for (const link of this.#holding) if (link.heldTick < tick) this.#release(link);

    const dirty = this.#dirty;
    this.#dirty = [];
    for (const link of dirty) {
      const batch = link.outbox;
      link.outbox = [];
      if (this.closed) return;
      this.#hand(link, batch);
    }
    for (const link of this.#bucketed) link.delayBuckets = undefined;
    this.#bucketed = [];

    for (const link of this.#draining) this.#drainBacklog(link);
    for (const link of this.#blocked) {
      if (link.pendingTx < this.txHighWater) {
        this.#blocked.delete(link);
        link.endpoint?.writable?.();
      }
    }
    if (this.#holding.size > 0 || this.#draining.size > 0) this.#schedule();
  };

  /** Learns, then sends one frame to its egress port(s). */
  #forward(src: Link, frame: Frame): void {
    // Learn unicast sources only (a multicast source address is bogus); a station that moved
    // is re-learned on its new port. -1: nothing to learn / look up.
    const srcKey = (frame[6]! & 1) === 0 && src.attached ? macKey(frame, 6) : -1;
    const dstKey = (frame[0]! & 1) === 0 ? macKey(frame, 0) : -1;
    let out: Link | undefined;
    const memo = src.memo;
    // A port mostly sends runs of frames between the same two stations: while the FDB is
    // unchanged, the last answer for the same pair stands and the FDB is not touched.
    if (memo.version === this.#fdbVersion && memo.src === srcKey && memo.dst === dstKey) out = memo.out;
    else {
      if (srcKey >= 0 && this.#fdb.get(srcKey) !== src) {
        this.#fdb.set(srcKey, src);
        this.#fdbVersion++;
      }
      out = dstKey >= 0 ? this.#fdb.get(dstKey) : undefined;
      memo.version = this.#fdbVersion;
      memo.src = srcKey;
      memo.dst = dstKey;
      memo.out = out;
    }
    for (const tap of this.#taps) if (tap.link === undefined || tap.link === src) tap.record(frame);

    if (out !== undefined) {
      // A switch never sends a frame back out of the port it came in on.
      if (out === src) this.#drop('filtered');
      else {
        this.#forwarded++;
        this.#egress(out, frame, false);
      }
      return;
    }
    this.#flooded++;
    // The first port that takes the frame gets the original; every further one its own copy.
    let taken = false;
    for (const link of this.links.values()) {
      if (link !== src && this.#egress(link, frame, taken)) taken = true;
    }
  }

  /** MTU check and faults on the way out to `link`. Returns whether the frame (or a copy) went on. */
  #egress(link: Link, frame: Frame, copy: boolean): boolean {
    if (frame.length > frameLimit(frame, link.mtu)) {
      this.#drop('mtuExceeded');
      return false;
    }
    if (!link.up) {
      this.#drop('linkDown'); // a down interface takes nothing, as a NIC without link
      return false;
    }
    const faults = link.faults ?? this.#faults;
    if (faults === undefined || !faults.active) {
      this.#stage(link, copy ? this.copier.copy(frame) : frame);
      return true;
    }
    // The PRNG is drawn only for faults that are set, always in this order: same seed and
    // same traffic, same outcome.
    if (faults.loss > 0 && this.#random() < faults.loss) {
      this.#drop('loss');
      return false;
    }
    const own = copy ? this.copier.copy(frame) : frame;
    const twice = faults.duplicate > 0 && this.#random() < faults.duplicate;
    this.#reorder(link, own, faults);
    if (twice) {
      this.#duplicated++;
      this.#reorder(link, this.copier.copy(own), faults);
    }
    return true;
  }

  /** Holds the frame back (to be overtaken by the next one), or sends it and then any held one. */
  #reorder(link: Link, frame: Frame, faults: ResolvedFaults): void {
    if (faults.reorder > 0 && link.held === undefined && this.#random() < faults.reorder) {
      link.held = frame;
      link.heldTick = this.#tick;
      this.#holding.add(link);
      this.#reordered++;
      return;
    }
    this.#delay(link, frame, faults);
    if (link.held !== undefined) this.#release(link);
  }

  #release(link: Link): void {
    const held = link.held!;
    link.held = undefined;
    this.#holding.delete(link);
    const faults = link.faults ?? this.#faults;
    if (faults?.delayed) this.#delay(link, held, faults);
    else this.#stage(link, held);
  }

  #delay(link: Link, frame: Frame, faults: ResolvedFaults): void {
    if (!faults.delayed) {
      this.#stage(link, frame);
      return;
    }
    let ms = faults.delayMs;
    if (faults.jitterMs > 0) ms += (this.#random() * 2 - 1) * faults.jitterMs;
    ms = Math.max(0, Math.round(ms));
    this.#delayed++;
    const buckets = (link.delayBuckets ??= new Map<number, Frame[]>());
    let bucket = buckets.get(ms);
    if (bucket === undefined) {
      if (buckets.size === 0) this.#bucketed.push(link);
      const frames: Frame[] = (bucket = []);
      buckets.set(ms, frames);
      const timer = setTimeout(() => {
        link.timers.delete(timer);
        this.#hand(link, frames);
      }, ms);
      link.timers.add(timer);
    }
    bucket.push(frame);
  }

  #stage(link: Link, frame: Frame): void {
    if (link.outbox.length === 0) this.#dirty.push(link);
    link.outbox.push(frame);
  }

  /**
   * Gives a port its frames: at once, at most `maxBatch` per receive() call while it is not
   * paused, and the rest into its backlog (bounded; beyond it frames are dropped and counted).
   */
  #hand(link: Link, frames: Frame[]): void {
    if (!link.attached || frames.length === 0) return;
    for (const tap of this.#taps) if (tap.link === link) for (const frame of frames) tap.record(frame);
    let i = 0;
    if (link.backlog.length === 0) {
      // The engine drops what overflows its receive queue within one call, then pauses the
      // port: in calls of at most half the queue, a receiver that stops reading fills its
      // queue exactly and the rest waits here instead of being lost.
      const max = link.maxBatch;
      while (i < frames.length && !link.paused && link.attached) {
        const part = i === 0 && frames.length <= max ? frames : frames.slice(i, i + max);
        i += part.length;
        this.#delivered += part.length;
        link.endpoint!.receive(part);
      }
      if (i === frames.length || !link.attached) return;
    }
    const room = this.backlogFrames - link.backlog.length;
    const end = Math.min(frames.length, i + room);
    for (; i < end; i++) link.backlog.push(frames[i]!);
    if (end < frames.length) {
      const lost = frames.length - end;
      this.#drop('backlogFull', lost);
      link.endpoint?.dropped?.('backlogFull', lost);
    }
    if (!link.paused) {
      this.#draining.add(link);
      this.#schedule();
    }
  }

  /**
   * Delivers the next part of a resumed port's backlog: `maxBatch` (half the device's receive
   * queue) per tick. The engine resumes a port once half its queue is free, so that part fits.
   */
  #drainBacklog(link: Link): void {
    if (!link.attached || link.paused) {
      this.#draining.delete(link);
      return;
    }
    const part = link.backlog.splice(0, link.maxBatch);
    if (link.backlog.length === 0) this.#draining.delete(link);
    if (part.length === 0) return;
    this.#delivered += part.length;
    link.endpoint!.receive(part);
  }

  #drop(reason: string, count = 1): void {
    this.#drops.set(reason, (this.#drops.get(reason) ?? 0) + count);
  }

  // ---- configuration and inspection ----

  setFaults(faults: ResolvedFaults | undefined, link?: Link): void {
    if (link) link.faults = faults;
    else this.#faults = faults;
  }

  addTap(tap: Tap): void {
    this.#taps.push(tap);
  }

  get taps(): readonly Tap[] {
    return this.#taps;
  }

  removeTap(tap: Tap): void {
    const at = this.#taps.indexOf(tap);
    if (at >= 0) this.#taps.splice(at, 1);
  }

  fdb(): { mac: string; port: string }[] {
    return [...this.#fdb].map(([key, link]) => ({ mac: macText(key), port: link.name }));
  }

  stats(): MockNetworkStats {
    return {
      frames: this.#frames,
      forwarded: this.#forwarded,
      flooded: this.#flooded,
      delivered: this.#delivered,
      duplicated: this.#duplicated,
      reordered: this.#reordered,
      delayed: this.#delayed,
      fdbEntries: this.#fdb.size,
      drops: Object.fromEntries(this.#drops),
    };
  }

  /** Removes every port (telling each endpoint `error`) and stops the tick. */
  close(error: TapError): void {
    if (this.closed) return;
    this.closed = true;
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    this.#pendingFrames = [];
    this.#pendingFrom = [];
    for (const link of [...this.links.values()]) this.remove(link, error);
    this.#taps.length = 0;
  }
}
