/**
 * darwin-feth's own options, checked before anything touches the system, and the plan they
 * make: which slots to try, what MTU ceiling and NDRV send buffer the MTU needs.
 *
 * @module
 */
import { isAbsolute } from 'node:path';
import { TapErrorCode, type ResolvedOpenOptions, type TapOpenOptions } from '@tapkit/core';
import { backendError } from './errors.js';
import {
  DEFAULT_METRIC,
  FETH_MAX_MTU_LIMIT,
  FETH_MIN_MTU,
  MAX_LINK_HEADER,
  NDRV_DEFAULT_SNDBUF,
} from './facts.js';
import { checkFethName, slotForNetworkId, slotsFrom } from './naming.js';

/** Options of the darwin-feth backend: {@link TapOpenOptions} plus its own. */
export interface DarwinFethOptions extends TapOpenOptions {
  /**
   * `feth10000`–`feth19999`: the user-facing member's name (its I/O peer is `feth2xxxx`).
   * Fails with `ERR_TAP_NAME_IN_USE` if taken. Absent: see `networkId`.
   */
  name?: string;
  /**
   * A stable identity (a VPN's network id, a VM's name): the pair's names are derived from it,
   * so they stay the same across restarts while free. Not with `name`. Absent (and no name):
   * the lowest free pair.
   */
  networkId?: string | bigint;
  /**
   * The user-facing member's interface metric. Default 5000, as ZeroTier: a hint to software
   * that ranks interfaces (the macOS kernel itself does not route by metric).
   */
  metric?: number;
  /**
   * Where tapkit records the pairs it created (a JSON file per pair, with the owner's pid), so
   * that pairs left by a crashed process can be recognised and removed. Default
   * `$TAPKIT_RUNTIME_DIR`, else `/var/run/tapkit`.
   */
  runtimeDir?: string;
}

/** The MTU range darwin-feth can configure: IF_MINMTU to FETH_MAX_MTU_MAX. */
export const FETH_LIMITS = Object.freeze({ minMtu: FETH_MIN_MTU, maxMtu: FETH_MAX_MTU_LIMIT });

/** What an open will do, decided from the options alone. */
export interface FethPlan {
  /** The slot to try first; the following ones (wrapping around) after it, unless `explicit`. */
  readonly firstSlot: number;
  /** A name was asked for: its slot or nothing (a taken slot is an error). */
  readonly explicit: boolean;
  readonly networkId: string | undefined;
  readonly mtu: number;
  readonly metric: number;
  /** The largest frame the device accepts: MTU + 14 + 4 (an 802.1Q tag). */
  readonly maxFrame: number;
  /** SO_SNDBUF for the NDRV socket when the default (8192) cannot hold `maxFrame`. */
  readonly sendBufferSize: number | undefined;
}

/** The slots a plan tries, in order. */
export function planSlots(plan: FethPlan): Iterable<number> {
  return plan.explicit ? [plan.firstSlot] : slotsFrom(plan.firstSlot);
}

const MAX_NETWORK_ID_LENGTH = 256;
const MAX_METRIC = 0x7fffffff;

function invalid(message: string) {
  return backendError(TapErrorCode.INVALID_OPTION, message);
}

/** A network id as text: strings as given, bigints (ZeroTier-style 64-bit ids) as 16 hex digits. */
export function normaliseNetworkId(networkId: unknown): string {
  if (typeof networkId === 'bigint') {
    if (networkId < 0n || networkId >= 1n << 64n) throw invalid('networkId as a bigint must fit in 64 bits');
    return networkId.toString(16).padStart(16, '0');
  }
  if (typeof networkId !== 'string' || networkId.length === 0 || networkId.length > MAX_NETWORK_ID_LENGTH) {
    throw invalid(
      `networkId must be a non-empty string of at most ${MAX_NETWORK_ID_LENGTH} characters, or a bigint`,
    );
  }
  return networkId;
}

/** The runtime directory: the option, else `TAPKIT_RUNTIME_DIR`, else `/var/run/tapkit`. */
export function resolveRuntimeDir(
  option: unknown,
  fallback: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string {
  const dir = option ?? fallback ?? (env['TAPKIT_RUNTIME_DIR'] || undefined) ?? '/var/run/tapkit';
  if (typeof dir !== 'string' || !isAbsolute(dir)) {
    throw invalid(`runtimeDir must be an absolute path, not ${JSON.stringify(dir)}`);
  }
  return dir;
}

/** Checks darwin-feth's options (core has checked the shared ones) and plans the open. */
export function planFeth(options: ResolvedOpenOptions, raw: DarwinFethOptions): FethPlan {
  const { metric = DEFAULT_METRIC } = raw;
  if (typeof metric !== 'number' || !Number.isInteger(metric) || metric < 0 || metric > MAX_METRIC) {
    throw invalid(`metric must be an integer from 0 to ${MAX_METRIC}, not ${String(metric)}`);
  }
  if (options.name !== undefined && raw.networkId !== undefined) {
    throw invalid('pass name or networkId, not both: each decides the interface name');
  }
  const networkId = raw.networkId === undefined ? undefined : normaliseNetworkId(raw.networkId);
  let firstSlot = 0;
  if (options.name !== undefined) firstSlot = checkFethName(options.name).slot;
  else if (networkId !== undefined) firstSlot = slotForNetworkId(networkId);
  const maxFrame = options.mtu + MAX_LINK_HEADER;
  return Object.freeze({
    firstSlot,
    explicit: options.name !== undefined,
    networkId,
    mtu: options.mtu,
    metric,
    maxFrame,
    // NDRV sends are atomic: a frame larger than SO_SNDBUF fails with EMSGSIZE.
    sendBufferSize: maxFrame > NDRV_DEFAULT_SNDBUF ? Math.ceil(maxFrame / 1024) * 1024 : undefined,
  });
}
