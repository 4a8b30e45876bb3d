/**
 * What `tapkit list` and `tapkit cleanup` report, on every platform. These shapes are the
 * `--json` output: add fields, never change the meaning of one.
 *
 * @module
 */

/**
 * What an interface is. `physical` is hardware (a NIC, Wi-Fi); everything else except
 * `loopback` is virtual. Linux reports the kernel's own kind names (`veth`, `macvlan`,
 * `wireguard`, …) where it knows them; `virtual` is a virtual interface of unknown kind.
 */
export type InterfaceKind =
  'loopback' | 'physical' | 'tap' | 'tun' | 'veth' | 'bridge' | 'feth' | 'utun' | 'virtual' | (string & {});

/** A process that has an interface open. */
export interface InterfaceOwner {
  readonly pid: number;
  /** Its command name (`/proc/<pid>/comm` on Linux). */
  readonly command: string;
  /** The process has tapkit's native addon loaded. */
  readonly tapkit: boolean;
}

/** Why tapkit counts an interface as its own. */
export type TapkitEvidence =
  /** Linux: the interface's alias carries tapkit's marker (see marker.ts). */
  | 'alias'
  /** Linux: a process holding the device has tapkit's addon loaded. */
  | 'process'
  /** macOS: darwin-feth's record of the pair. */
  | 'record';

/** tapkit's side of an interface: present when tapkit made (or holds) it. */
export interface TapkitInfo {
  readonly backend: string;
  readonly evidence: TapkitEvidence;
  /** Linux: a persistent device (it outlives its process). */
  readonly persistent?: boolean;
  /** The process the interface belongs to, per tapkit's own record, and whether it still runs. */
  readonly ownerPid?: number;
  readonly owner?: 'self' | 'alive' | 'dead';
  /** macOS feth: which member of the pair this is (`user` carries the addresses; `io` is tapkit's). */
  readonly role?: 'user' | 'io';
}

/** One interface of this system (of this network namespace, on Linux). */
export interface InterfaceEntry {
  readonly name: string;
  readonly kind: InterfaceKind;
  /** Not hardware and not loopback: an interface to keep out of service registries and the like. */
  readonly virtual: boolean;
  readonly up: boolean;
  readonly mtu: number | undefined;
  readonly mac: string | undefined;
  /** Addresses in CIDR form. */
  readonly addresses: readonly string[];
  /** veth peer, feth peer: a name, or `#<ifindex>` for a peer in another network namespace. */
  readonly peer?: string;
  /** The bridge (or bond) this interface is a port of. */
  readonly master?: string;
  /** macOS: the interface metric (tapkit's feth devices use 5000). */
  readonly metric?: number;
  /** tun/tap: the processes that have it open; undefined where this could not be found out. */
  readonly owners?: readonly InterfaceOwner[];
  /** Set when tapkit made the interface. */
  readonly tapkit?: TapkitInfo;
}

/** `tapkit list`. */
export interface InterfaceList {
  readonly platform: string;
  readonly interfaces: readonly InterfaceEntry[];
  /** Things the user should know: e.g. owners of other users' processes could not be read. */
  readonly notes: readonly string[];
}

/** One interface `tapkit cleanup` removed, would remove, or left. */
export interface CleanupItem {
  readonly name: string;
  readonly backend: string;
  /** For a feth pair, the I/O member removed with it. */
  readonly peer?: string;
  readonly ownerPid?: number;
  /** Why it was (or would be) removed, or why it stays. */
  readonly reason: string;
}

/** A removal that failed. */
export interface CleanupFailure {
  /** The interface, when known (darwin-feth names it in the message). */
  readonly name?: string;
  readonly code: string;
  readonly message: string;
}

/** `tapkit cleanup`. */
export interface CleanupResult {
  readonly platform: string;
  readonly dryRun: boolean;
  /** Removed (or, with dryRun, to be removed). */
  readonly removed: readonly CleanupItem[];
  /** tapkit's, but left alone, with the reason. */
  readonly kept: readonly CleanupItem[];
  readonly failed: readonly CleanupFailure[];
  readonly notes: readonly string[];
}
