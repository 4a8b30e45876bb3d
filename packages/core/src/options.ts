/**
 * Open options are checked here, before any backend touches the OS.
 *
 * @module
 */
import { TapError, TapErrorCode, isTapError } from './errors.js';
import { isMulticastMac, parseMac, randomMac } from './codec/mac.js';
import { formatIPv4Address, parseIPv4Address } from './codec/ipv4.js';
import { formatIPv6Address, parseIPv6Address } from './codec/ipv6.js';
import type { InterfaceAddress, ResolvedOpenOptions, TapOpenOptions } from './types.js';

/** The MTU range a backend supports. */
export interface MtuLimits {
  readonly minMtu: number;
  readonly maxMtu: number;
}

/** Ethernet's smallest IPv4 MTU (RFC 791) and the largest a 16-bit length can express. */
export const MIN_MTU = 68;
export const MAX_MTU = 65535;
export const DEFAULT_MTU = 1500;
export const DEFAULT_RX_QUEUE_FRAMES = 1024;
const MAX_RX_QUEUE_FRAMES = 1 << 20;

// IFNAMSIZ is 16 on Linux and macOS, including the terminating NUL.
const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,15}$/;

function invalid(message: string, cause?: unknown): TapError {
  return new TapError(TapErrorCode.INVALID_OPTION, message, cause === undefined ? {} : { cause });
}

/**
 * Checks an interface name: 1–15 characters of `[A-Za-z0-9_.-]`, not `.` or `..`. With
 * `template`, the name may instead hold one `%d` (`tap%d`): the backend replaces it with the
 * lowest number that makes a free name, as the Linux kernel does.
 */
export function checkInterfaceName(name: unknown, options: { template?: boolean } = {}): string {
  const plain = typeof name === 'string' && NAME_PATTERN.test(name) && name !== '.' && name !== '..';
  const template =
    options.template === true &&
    typeof name === 'string' &&
    name.length <= 15 &&
    name.split('%d').length === 2 &&
    /^[A-Za-z0-9_.-]*$/.test(name.replace('%d', ''));
  if (!plain && !template) {
    throw invalid(
      `invalid interface name ${describeValue(name)}: use 1–15 characters of letters, digits, '_', '.', '-'` +
        (options.template === true
          ? ", or such a name with one '%d' for the lowest free number (tap%d)"
          : ''),
    );
  }
  return name;
}

/** Whether `name` is a template (`tap%d`): see {@link checkInterfaceName}. */
export function isNameTemplate(name: string): boolean {
  return name.includes('%d');
}

/**
 * Checks an MTU: not an integer (`'1500'`, `1500.5`) is `ERR_TAP_INVALID_OPTION`; an integer
 * outside the backend's range (which lies within 68–65535) is `ERR_TAP_MTU_UNSUPPORTED`.
 */
export function checkMtu(mtu: unknown, limits: MtuLimits): number {
  if (typeof mtu !== 'number' || !Number.isInteger(mtu)) {
    throw invalid(`invalid MTU: it must be an integer number of bytes, not ${describeValue(mtu)}`);
  }
  const min = Math.max(MIN_MTU, limits.minMtu);
  const max = Math.min(MAX_MTU, limits.maxMtu);
  if (mtu < min || mtu > max) {
    throw new TapError(
      TapErrorCode.MTU_UNSUPPORTED,
      `MTU ${mtu} is outside what this backend can carry (${min}–${max})`,
    );
  }
  return mtu;
}

/** Checks a device MAC: 6 bytes or `aa:bb:cc:dd:ee:ff`, unicast, not all zeros. Returns a copy. */
export function checkDeviceMac(mac: unknown): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = parseMac(mac as string | Uint8Array);
  } catch (error) {
    throw invalid(isTapError(error) ? error.message : `invalid MAC ${describe(mac)}`, error);
  }
  if (isMulticastMac(bytes)) {
    throw invalid(
      `invalid MAC ${describe(mac)}: a device MAC must be unicast (lowest bit of the first byte clear)`,
    );
  }
  if (bytes.every((b) => b === 0)) throw invalid('invalid MAC 00:00:00:00:00:00: it must not be all zeros');
  return bytes;
}

/** Parses `10.0.0.1/24` or `fd00::1/64`. The prefix length is required. */
export function parseCidr(cidr: unknown): InterfaceAddress {
  if (typeof cidr !== 'string') throw invalid(`invalid address ${describe(cidr)}: expected a CIDR string`);
  const slash = cidr.lastIndexOf('/');
  if (slash < 0) {
    throw invalid(
      `invalid address ${JSON.stringify(cidr)}: add a prefix length, e.g. 10.0.0.1/24 or fd00::1/64`,
    );
  }
  const host = cidr.slice(0, slash);
  const prefixText = cidr.slice(slash + 1);
  const family = host.includes(':') ? 6 : 4;
  let address: Uint8Array;
  try {
    address = family === 4 ? parseIPv4Address(host) : parseIPv6Address(host);
  } catch (error) {
    throw invalid(
      `invalid address ${JSON.stringify(cidr)}: ${isTapError(error) ? error.message : String(error)}`,
      error,
    );
  }
  const maxPrefix = family === 4 ? 32 : 128;
  const prefixLength = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefixLength >= 0 && prefixLength <= maxPrefix)) {
    throw invalid(`invalid address ${JSON.stringify(cidr)}: the prefix length must be 0–${maxPrefix}`);
  }
  const text = family === 4 ? formatIPv4Address(address) : formatIPv6Address(address);
  return Object.freeze({ family, address, prefixLength, cidr: `${text}/${prefixLength}` });
}

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * A value as an error message should show it, with its type: `the string "1500"`, `the number
 * 1500.5`, `null`, `an object`, `a Uint8Array of 5 bytes`.
 */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (value instanceof Uint8Array) return `a ${value.constructor.name} of ${value.length} bytes`;
  switch (typeof value) {
    case 'string':
      return `the string ${JSON.stringify(value)}`;
    case 'number':
    case 'bigint':
    case 'boolean':
      return `the ${typeof value} ${String(value)}`;
    case 'object':
      return Array.isArray(value) ? 'an array' : 'an object';
    default:
      return `a ${typeof value}`;
  }
}

/**
 * Validates and normalises the options every backend shares. Throws `ERR_TAP_INVALID_OPTION`
 * (or `ERR_TAP_MTU_UNSUPPORTED`) naming the bad option; touches nothing outside the process.
 */
export function resolveOpenOptions(
  options: TapOpenOptions | undefined,
  limits: MtuLimits,
): ResolvedOpenOptions {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw invalid('open options must be an object');
  }
  const o = options ?? {};
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw invalid('signal must be an AbortSignal');
  if (o.addresses !== undefined && !Array.isArray(o.addresses))
    throw invalid('addresses must be an array of CIDR strings');
  if (o.up !== undefined && typeof o.up !== 'boolean') throw invalid('up must be a boolean');
  const rxQueueFrames = o.rxQueueFrames ?? DEFAULT_RX_QUEUE_FRAMES;
  if (!Number.isInteger(rxQueueFrames) || rxQueueFrames < 1 || rxQueueFrames > MAX_RX_QUEUE_FRAMES) {
    throw invalid(
      `rxQueueFrames must be an integer from 1 to ${MAX_RX_QUEUE_FRAMES}, not ${describeValue(o.rxQueueFrames)}`,
    );
  }
  return Object.freeze({
    name: o.name === undefined ? undefined : checkInterfaceName(o.name, { template: true }),
    mtu: checkMtu(o.mtu ?? Math.min(DEFAULT_MTU, limits.maxMtu), limits),
    mac: o.mac === undefined ? randomMac() : checkDeviceMac(o.mac),
    addresses: Object.freeze((o.addresses ?? []).map(parseCidr)),
    up: o.up ?? true,
    rxQueueFrames,
    signal: o.signal,
  });
}
