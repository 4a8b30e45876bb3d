/**
 * The darwin-feth port: the setup sequence that makes a feth pair, the data path (BPF in, NDRV
 * out) and the teardown that removes it.
 *
 * Setup, in order (each step undone if a later one fails):
 * 1. remove pairs dead tapkit processes left (their state files say whose they were);
 * 2. if the MTU is above `net.link.fake.max_mtu`, raise it: a feth's ceiling is fixed when it
 *    is created (it is never lowered again: it is a global knob other programs use too);
 * 3. claim a slot (its state file, written exclusively) and create `feth1xxxx` (user-facing)
 *    and `feth2xxxx` (I/O); a slot whose names exist is skipped (or, with `name`, refused);
 * 4. peer the I/O member with the user-facing one (SIOCSDRVSPEC), check the kernel's ceiling
 *    (SIOCGIFDEVMTU) and set the MTU on both, the MACs, the metric; bring the I/O member up,
 *    add the addresses, then set the user-facing member up or down (adding an IPv4 address
 *    brings a macOS interface up: feth_ioctl SIOCSIFADDR);
 * 5. open BPF on the I/O member (what the OS sends out of the user-facing member arrives
 *    there) and an NDRV socket on it (what tapkit writes goes out of it and arrives on the
 *    user-facing member as received), with SO_SNDBUF raised for frames over 8 KiB.
 *
 * Teardown (close, exit, signals, failed setup): close the BPF and NDRV fds, destroy the I/O
 * member then the user-facing one, remove the state file, unregister the exit cleanup. It is
 * synchronous and idempotent.
 *
 * @module
 */
import {
  DarwinInterfaceFollower,
  TapError,
  TapErrorCode,
  formatMac,
  randomMac,
  type Frame,
  type PortPipe,
  type PortSink,
  type InterfaceAddress,
  type ResolvedOpenOptions,
  type TapCapabilities,
  type TapPort,
  type NativeSystemError,
} from '@tapkit/core';
import { walkBpfBatch } from './bpf.js';
import { destroyInterfaces, sweepStalePairs } from './cleanup.js';
import { backendError, darwinError } from './errors.js';
import type { ExitCleanup } from './exit.js';
import {
  BACKEND,
  BPF_BUFFER_SIZE,
  BPF_ETHERNET_HDRLEN,
  FETH_MAX_MTU_LIMIT,
  FETH_MAX_MTU_SYSCTL_MIN,
  FETH_NO_JUMBO_MAX_MTU,
  MAX_MTU_SYSCTL,
  PAIR_SLOTS,
} from './facts.js';
import { pairForSlot } from './naming.js';
import { FETH_LIMITS, planFeth, planSlots, type DarwinFethOptions, type FethPlan } from './options.js';
import type { PairRecord, StateStore } from './state.js';
import type { BpfReader, DarwinSystem, NdrvWriter } from './system.js';

const ETHERNET_HEADER = 14;
const VLAN_TAG = 4;

/** What darwin-feth devices can do. */
export const FETH_CAPABILITIES: TapCapabilities = Object.freeze({
  layer: 2,
  minMtu: FETH_LIMITS.minMtu,
  maxMtu: FETH_LIMITS.maxMtu,
  multiQueue: false,
  offload: false,
  multicastGroups: true,
  osInterface: true,
});

/** Everything an open needs besides its options. */
export interface FethContext {
  readonly system: DarwinSystem;
  readonly store: StateStore;
  readonly exitCleanup: ExitCleanup;
  /** This process, as state files record it. */
  readonly pid: number;
  readonly processStart: number | undefined;
}

interface Closeable {
  close(): void;
}

/**
 * A claimed pair: its state file, the members created so far, the fds opened on them, and the
 * exit cleanup that removes them all if the process ends first.
 */
class FethPair {
  readonly record: PairRecord;
  readonly #ctx: FethContext;
  /** Members this pair created, in creation order: only these are ever destroyed. */
  readonly #created: string[] = [];
  readonly #resources: Closeable[] = [];
  readonly #unregister: () => void;
  #done = false;

  constructor(ctx: FethContext, record: PairRecord) {
    this.#ctx = ctx;
    this.record = record;
    this.#unregister = ctx.exitCleanup.add(() => this.teardown());
  }

  create(name: string): void {
    this.#ctx.system.createInterface(name);
    this.#created.push(name);
  }

  /** A member was renamed (by someone else): teardown destroys it under its new name. */
  renamed(from: string, to: string): void {
    const at = this.#created.indexOf(from);
    if (at >= 0) this.#created[at] = to;
  }

  adopt<T extends Closeable>(resource: T): T {
    this.#resources.push(resource);
    return resource;
  }

  /**
   * Removes everything; returns what failed. When an interface could not be destroyed the state
   * file stays, so a later open or `tapkit cleanup` can finish the job.
   */
  teardown(): TapError[] {
    if (this.#done) return [];
    this.#done = true;
    this.#unregister();
    for (const resource of this.#resources.splice(0).reverse()) {
      try {
        resource.close();
      } catch {
        // Closing an fd cannot fail in a way that matters here.
      }
    }
    const failures = destroyInterfaces(this.#ctx.system, this.#created.splice(0).reverse());
    if (failures.length === 0) {
      try {
        this.#ctx.store.remove(this.record.user);
      } catch (error) {
        failures.push(darwinError(error, `remove the state file of ${this.record.user}`));
      }
    }
    return failures;
  }
}

/** Raises `net.link.fake.max_mtu` to `mtu` if it is lower. Returns its value, undefined where it does not exist. */
function ensureMtuCeiling(system: DarwinSystem, mtu: number): number | undefined {
  if (mtu <= FETH_MAX_MTU_SYSCTL_MIN) return undefined; // every feth carries 1500
  let current: number;
  try {
    current = system.sysctlGet(MAX_MTU_SYSCTL);
  } catch (error) {
    // Before macOS 10.15 there is no such sysctl: the ceiling is fixed (see facts.ts).
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw darwinError(error, `read ${MAX_MTU_SYSCTL}`);
  }
  if (current >= mtu) return current;
  try {
    system.sysctlSet(MAX_MTU_SYSCTL, mtu);
  } catch (error) {
    throw darwinError(error, `raise ${MAX_MTU_SYSCTL} from ${current} to ${mtu} for MTU ${mtu}`);
  }
  return mtu;
}

function ceilingError(name: string, mtu: number, max: number, sysctl: number | undefined): TapError {
  let why: string;
  if (sysctl === undefined)
    why = 'this macOS fixes the feth MTU ceiling (no net.link.fake.max_mtu before 10.15)';
  else if (max === FETH_NO_JUMBO_MAX_MTU)
    why = 'the kernel has no 16 KiB mbuf clusters, which caps feth at 4082';
  else {
    why =
      `${MAX_MTU_SYSCTL} was ${max} when ${name} was created, not the ${sysctl} tapkit set: ` +
      'it was lowered by another program meanwhile';
  }
  return backendError(
    TapErrorCode.MTU_UNSUPPORTED,
    `MTU ${mtu} is above what ${name} can carry (${max}): ${why}. The largest feth MTU is ${FETH_MAX_MTU_LIMIT}.`,
  );
}

/** Claims the first free slot of the plan and creates its two members. */
function createPair(ctx: FethContext, plan: FethPlan, userMac: Uint8Array): FethPair {
  const { system } = ctx;
  const existing = new Set(system.listInterfaces().map((info) => info.name));
  for (const slot of planSlots(plan)) {
    const names = pairForSlot(slot);
    const taken = existing.has(names.user) || existing.has(names.io);
    const record: PairRecord = {
      version: 1,
      backend: BACKEND,
      slot,
      user: names.user,
      io: names.io,
      userMac: formatMac(userMac),
      ioMac: formatMac(randomMac()),
      pid: ctx.pid,
      processStart: ctx.processStart ?? 0,
      createdAt: new Date().toISOString(),
      ...(plan.networkId === undefined ? {} : { networkId: plan.networkId }),
    };
    let claimed = false;
    try {
      claimed = !taken && ctx.store.claim(record);
    } catch (error) {
      throw darwinError(error, `record the pair ${names.user}/${names.io} in ${ctx.store.dir}`);
    }
    if (!claimed) {
      if (plan.explicit) {
        throw backendError(
          TapErrorCode.NAME_IN_USE,
          `${names.user} or ${names.io} exists already or is claimed by another tapkit process`,
        );
      }
      continue;
    }
    const pair = new FethPair(ctx, record);
    try {
      pair.create(names.user);
      pair.create(names.io);
      return pair;
    } catch (error) {
      pair.teardown();
      // Someone else made one of the names since we listed them: try the next slot.
      if ((error as { code?: unknown }).code === 'EEXIST' && !plan.explicit) continue;
      throw darwinError(error, `create the feth pair ${names.user}/${names.io}`);
    }
  }
  throw backendError(
    TapErrorCode.NAME_IN_USE,
    `all ${PAIR_SLOTS} feth pairs tapkit may use are taken (feth10000–feth29999); see 'tapkit cleanup'`,
  );
}

/** Step 4 of the setup sequence. */
function configurePair(
  system: DarwinSystem,
  pair: FethPair,
  plan: FethPlan,
  options: ResolvedOpenOptions,
  sysctl: number | undefined,
): void {
  const { user, io } = pair.record;
  const step = (what: string, call: () => void) => {
    try {
      call();
    } catch (error) {
      throw darwinError(error, what);
    }
  };
  step(`peer ${io} with ${user}`, () => system.setPeer(io, user));
  let ceiling = 0;
  step(`read the MTU range of ${user}`, () => {
    ceiling = system.getDeviceMtu(user).max;
  });
  if (ceiling < plan.mtu) throw ceilingError(user, plan.mtu, ceiling, sysctl);
  for (const name of [user, io])
    step(`set the MTU of ${name} to ${plan.mtu}`, () => system.setMtu(name, plan.mtu));
  step(`set the MAC of ${user}`, () => system.setMac(user, options.mac));
  step(`set the MAC of ${io}`, () => system.setMac(io, parseRecordedMac(pair.record.ioMac)));
  step(`set the metric of ${user}`, () => system.setMetric(user, plan.metric));
  step(`bring ${io} up`, () => system.setUp(io, true));
  for (const address of options.addresses) {
    step(`add the address ${address.cidr} to ${user}`, () =>
      system.addAddress(user, address.family, address.address, address.prefixLength),
    );
  }
  step(`bring ${user} ${options.up ? 'up' : 'down'}`, () => system.setUp(user, options.up));
}

function parseRecordedMac(mac: string): Uint8Array {
  return Uint8Array.from(mac.split(':'), (hex) => parseInt(hex, 16));
}

/** The port of an open darwin-feth device. */
class FethPort implements TapPort {
  readonly name: string;
  readonly mac: Uint8Array;
  /** The MTU asked for at open: the BPF and NDRV buffers are sized for it, so setMtu goes no higher. */
  readonly #openMtu: number;
  #mtu: number;
  readonly capabilities = FETH_CAPABILITIES;
  readonly #system: DarwinSystem;
  readonly #pair: FethPair;
  readonly #options: ResolvedOpenOptions;
  #bpf: BpfReader | undefined;
  #ndrv: NdrvWriter | undefined;
  #sink: PortSink | undefined;
  /** The user-facing member as the routing socket reports it (see {@link follow}). */
  #follower: DarwinInterfaceFollower | undefined;
  /** The member was destroyed before the device started: the sink hears it on start. */
  #goneBeforeStart: TapError | undefined;
  #closed = false;

  constructor(system: DarwinSystem, pair: FethPair, options: ResolvedOpenOptions) {
    this.#system = system;
    this.#pair = pair;
    this.#options = options;
    this.name = pair.record.user;
    this.mac = Uint8Array.from(options.mac);
    this.#openMtu = this.#mtu = options.mtu;
  }

  get mtu(): number {
    return this.#mtu;
  }

  get up(): boolean | undefined {
    return this.#follower?.up;
  }

  get addresses(): readonly string[] | undefined {
    return this.#follower && [...this.#follower.addresses];
  }

  /**
   * Frames longer than the open MTU's do not fit the BPF and NDRV buffers: when someone else
   * raises the MTU above it, writes stay checked against the open MTU.
   */
  get maxFrameLength(): number | undefined {
    return this.#mtu > this.#openMtu ? this.#openMtu + 18 : undefined;
  }

  /**
   * Starts following the user-facing member through the routing socket: MTU, up flag and
   * addresses changed by anyone (`ifconfig`, another program) are reported to the engine, and a
   * destroyed member ends the device. The state starts from what the interface reports now.
   */
  follow(): void {
    const system = this.#system;
    const index = system.interfaceIndex(this.name);
    if (index === 0)
      throw backendError(TapErrorCode.DEVICE_GONE, `${this.name} vanished while it was set up`);
    const info = system.listInterfaces().find((i) => i.name === this.name);
    this.#follower = new DarwinInterfaceFollower(
      {
        index,
        name: this.name,
        mtu: info?.mtu ?? this.#mtu,
        up: info?.up ?? this.#options.up,
        addresses: this.#options.addresses.map((a) => a.cidr),
      },
      (i) => system.interfaceName(i),
    );
    this.#mtu = this.#follower.mtu;
    this.#pair.adopt(
      system.watchRoutes({
        onMessages: (bytes) => this.#routed(bytes),
        onError: (error) => this.#routeError(error),
      }),
    );
  }

  #routed(bytes: Uint8Array): void {
    const follower = this.#follower;
    if (this.#closed || follower === undefined) return;
    const before = follower.name;
    const result = follower.apply(bytes);
    if (follower.name !== before) this.#pair.renamed(before, follower.name);
    if (result.gone) {
      const error = backendError(
        TapErrorCode.DEVICE_GONE,
        `${this.name} was destroyed (its index ${follower.index} names no interface now)`,
      );
      if (this.#sink) this.#sink.gone(error);
      else this.#goneBeforeStart = error;
    } else if (result.changed) {
      this.#report();
    }
  }

  /** ENOBUFS: routing messages were lost, so read what can be read again. Otherwise watching ended. */
  #routeError(error: NativeSystemError): void {
    if (this.#closed || error.code !== 'ENOBUFS') return;
    this.#readBack();
  }

  /** Reads the member's MTU and up flag back (addresses cannot be listed here: see the README). */
  #readBack(): void {
    try {
      const info = this.#system.listInterfaces().find((i) => i.name === this.name);
      if (info && this.#follower) {
        this.#follower.mtu = info.mtu;
        this.#follower.up = info.up;
      }
    } catch {
      // the state stays as last seen
    }
    this.#report();
  }

  #report(): void {
    const follower = this.#follower;
    if (follower === undefined) return;
    this.#mtu = follower.mtu;
    this.#updateFrameLimit();
    this.#sink?.link(follower.state());
  }

  // The setters the pair's ioctl configuration can do; changes made by others arrive through
  // the routing socket (follow()).
  setMtu(mtu: number): void {
    this.#open();
    if (mtu > this.#openMtu) {
      throw backendError(
        TapErrorCode.MTU_UNSUPPORTED,
        `cannot raise the MTU of ${this.name} to ${mtu}: its buffers and the feth MTU ceiling were sized ` +
          `for the MTU it was opened with (${this.#openMtu}); open it with mtu: ${mtu} to go that high`,
      );
    }
    const { user, io } = this.#pair.record;
    for (const name of [user, io])
      this.#configure(`set the MTU of ${name} to ${mtu}`, () => this.#system.setMtu(name, mtu));
    this.#mtu = mtu;
    if (this.#follower) this.#follower.mtu = mtu;
    this.#updateFrameLimit();
  }

  /**
   * Tells the NDRV socket which frames native pipes into it may send: what the engine's
   * checkFrame() lets a write through at this MTU (14 bytes to MTU + 14, 4 more with a VLAN
   * tag), never above the open MTU the buffers were sized for. A frame outside is refused and
   * counted (`txError`), as by the engine's JS pipe.
   */
  #updateFrameLimit(): void {
    const mtu = Math.min(this.#mtu, this.#openMtu);
    this.#ndrv?.setFrameLimit?.(ETHERNET_HEADER, mtu + ETHERNET_HEADER, VLAN_TAG);
  }

  /**
   * A pipe in native code, between two open darwin-feth ports: a thread reads this port's BPF
   * fd and sends each whole frame to the destination's NDRV socket. Undefined (the engine
   * forwards in JS) for any other destination, or an addon without pipes.
   */
  pipeTo(destination: TapPort): PortPipe | undefined {
    if (!(destination instanceof FethPort) || destination === this || this.#closed || destination.#closed) {
      return undefined;
    }
    const bpf = this.#bpf;
    const ndrv = destination.#ndrv;
    if (!bpf?.pipeTo || !bpf.pipeCounts || !ndrv?.setFrameLimit) return undefined;
    destination.#updateFrameLimit();
    try {
      bpf.pipeTo(ndrv);
    } catch (error) {
      throw darwinError(error, `pipe ${this.name} to ${destination.name}`);
    }
    let stopped = false;
    return {
      counts: () => {
        const [frames, bytes, , refused, noBuffers, truncated, runts, malformed] = bpf.pipeCounts!();
        const drops: Record<string, number> = {};
        if (refused > 0) drops.txError = refused;
        if (noBuffers > 0) drops.txNoBuffers = noBuffers;
        const sourceDrops: Record<string, number> = {};
        if (truncated > 0) sourceDrops.rxTruncated = truncated;
        if (runts > 0) sourceDrops.rxRunt = runts;
        if (malformed > 0) sourceDrops.rxMalformed = malformed;
        return { frames, bytes, refused, drops, sourceDrops };
      },
      stop: () => {
        if (stopped) return;
        stopped = true;
        if (!this.#closed) bpf.pipeTo!(null);
      },
    };
  }

  setUp(up: boolean): void {
    this.#open();
    this.#configure(`bring ${this.name} ${up ? 'up' : 'down'}`, () => this.#system.setUp(this.name, up));
  }

  addAddress(address: InterfaceAddress): void {
    this.#open();
    this.#configure(`add the address ${address.cidr} to ${this.name}`, () =>
      this.#system.addAddress(this.name, address.family, address.address, address.prefixLength),
    );
    this.#follower?.addresses.add(address.cidr);
  }

  removeAddress(address: InterfaceAddress): void {
    this.#open();
    this.#configure(`remove the address ${address.cidr} from ${this.name}`, () =>
      this.#system.removeAddress(this.name, address.family, address.address, address.prefixLength),
    );
    this.#follower?.addresses.delete(address.cidr);
  }

  #configure(what: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      throw darwinError(error, what);
    }
    // Read the interface back: a change can bring others (an IPv4 address brings it up).
    try {
      const info = this.#system.listInterfaces().find((i) => i.name === this.name);
      if (info && this.#follower) {
        this.#follower.up = info.up;
        this.#follower.mtu = info.mtu;
      }
      if (info) this.#sink?.link({ mtu: info.mtu, up: info.up });
    } catch {
      // the change was made; the engine records what it asked for
    }
  }

  /** Step 5: the fds on the I/O member. */
  attach(plan: FethPlan): void {
    const io = this.#pair.record.io;
    try {
      this.#bpf = this.#pair.adopt(
        this.#system.openBpf(io, {
          bufferSize: BPF_BUFFER_SIZE,
          onRead: (buffer, chunkEnds) => this.#received(buffer, chunkEnds),
          onError: (error) => this.#failed(error),
        }),
      );
    } catch (error) {
      throw darwinError(error, `open BPF on ${io}`);
    }
    if (this.#bpf.bufferSize < plan.maxFrame + BPF_ETHERNET_HDRLEN) {
      // The kernel capped the buffer below one frame: every large frame would arrive truncated.
      throw backendError(
        TapErrorCode.MTU_UNSUPPORTED,
        `the kernel granted a BPF buffer of ${this.#bpf.bufferSize} bytes, too small for MTU ${plan.mtu}`,
      );
    }
    try {
      this.#ndrv = this.#pair.adopt(this.#system.openNdrv(io, { sendBufferSize: plan.sendBufferSize }));
    } catch (error) {
      throw darwinError(error, `open an AF_NDRV socket on ${io}`);
    }
    this.#updateFrameLimit();
  }

  start(sink: PortSink): void {
    this.#sink = sink;
    if (this.#goneBeforeStart) {
      sink.gone(this.#goneBeforeStart);
      return;
    }
    // Changes reported between open and start.
    if (this.#follower) sink.link(this.#follower.state());
    this.#bpf?.resume();
  }

  #received(buffer: ArrayBuffer, chunkEnds: Uint32Array): void {
    const sink = this.#sink;
    if (this.#closed || sink === undefined) return;
    const walk = walkBpfBatch(buffer, chunkEnds);
    if (walk.truncated > 0) sink.dropped('rxTruncated', walk.truncated);
    if (walk.runts > 0) sink.dropped('rxRunt', walk.runts);
    if (walk.frames.length > 0) sink.receive(walk.frames);
    if (walk.error) {
      sink.dropped('rxMalformed');
      sink.error(walk.error);
    }
  }

  #failed(error: unknown): void {
    // Reading has stopped, so the device cannot work on. Most often ENXIO: the pair was destroyed.
    if (!this.#closed) this.#sink?.gone(darwinError(error, `read from ${this.#pair.record.io}`));
  }

  write(frame: Frame): boolean {
    const ndrv = this.#open();
    try {
      if (!ndrv.write(frame)) this.#sink?.dropped('txNoBuffers');
    } catch (error) {
      throw this.#writeError(error);
    }
    return true;
  }

  writeBatch(frames: readonly Frame[]): boolean {
    const ndrv = this.#open();
    try {
      const dropped = ndrv.writeBatch(frames);
      if (dropped > 0) this.#sink?.dropped('txNoBuffers', dropped);
    } catch (error) {
      throw this.#writeError(error);
    }
    return true;
  }

  #open(): NdrvWriter {
    if (this.#closed || this.#ndrv === undefined) {
      throw new TapError(TapErrorCode.CLOSED, `device ${this.name} is closed`, { backend: BACKEND });
    }
    return this.#ndrv;
  }

  #writeError(error: unknown): TapError {
    const failure = darwinError(error, `write to ${this.name}`);
    if (failure.code === TapErrorCode.DEVICE_GONE) this.#sink?.gone(failure);
    return failure;
  }

  pause(): void {
    this.#bpf?.pause();
  }

  resume(): void {
    if (!this.#closed) this.#bpf?.resume();
  }

  multicastGroups(): Promise<string[]> {
    try {
      const groups = this.#system
        .multicastMemberships()
        .filter((m) => m.interfaceName === this.name) // exact: feth10001 is not feth1000
        .map((m) => formatMac(m.mac));
      return Promise.resolve([...new Set(groups)].sort());
    } catch (error) {
      return Promise.reject(darwinError(error, `list the multicast groups of ${this.name}`));
    }
  }

  ref(): void {
    this.#bpf?.ref();
  }

  unref(): void {
    this.#bpf?.unref();
  }

  /**
   * Never throws synchronously: the engine also calls this from `gone()`, inside a BPF
   * callback, where a throw would become an uncaught exception. A teardown that left something
   * behind rejects instead.
   */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const failures = this.#pair.teardown();
    if (failures.length === 0) return Promise.resolve();
    return Promise.reject(
      new TapError(
        failures[0]!.code,
        `${this.name} was closed but not fully removed: ${failures.map((f) => f.message).join('; ')}. ` +
          "Its record is kept: 'tapkit cleanup' (or the next open) will retry.",
        { backend: BACKEND, cause: failures[0], errors: failures },
      ),
    );
  }
}

/**
 * Opens a darwin-feth port: the whole setup sequence (see the module comment). Options are
 * resolved by core; `raw` carries darwin-feth's own.
 */
export function openFethPort(
  ctx: FethContext,
  options: ResolvedOpenOptions,
  raw: DarwinFethOptions,
): TapPort {
  const plan = planFeth(options, raw);
  const { system } = ctx;
  try {
    // Best effort: what cannot be removed now, 'tapkit cleanup' reports; what cannot be read
    // now (the runtime directory), the claim below reports.
    sweepStalePairs(ctx, ctx.store, { dryRun: false });
  } catch {
    // See above.
  }
  const sysctl = ensureMtuCeiling(system, plan.mtu);
  const pair = createPair(ctx, plan, options.mac);
  try {
    configurePair(system, pair, plan, options, sysctl);
    const port = new FethPort(system, pair, options);
    try {
      port.follow();
    } catch (error) {
      throw darwinError(error, `watch the routing socket for ${pair.record.user}`);
    }
    port.attach(plan);
    return port;
  } catch (error) {
    pair.teardown();
    throw darwinError(error, `open ${pair.record.user}`);
  }
}
