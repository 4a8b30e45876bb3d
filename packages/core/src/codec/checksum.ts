/**
 * The Internet checksum (RFC 1071): the ones'-complement of the ones'-complement sum of the
 * data taken as big-endian 16-bit words, an odd last byte padded with zero.
 *
 * Compose sums over several pieces (a pseudo-header, then the segment) with
 * {@link checksumPartial} and finish once with {@link finishChecksum}. Only the last piece may
 * have an odd length: word alignment restarts at every piece.
 *
 * @module
 */

/**
 * Adds `data[start..end)` to a running sum and returns the new sum (not inverted; folded just
 * enough to stay a small non-negative integer). Pass the result to {@link finishChecksum}.
 */
export function checksumPartial(data: Uint8Array, sum = 0, start = 0, end = data.length): number {
  if (end > data.length) end = data.length; // never read past the view
  let i = start;
  for (const last = end - 1; i < last; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (i < end) sum += data[i]! << 8;
  // One end-around-carry fold keeps the sum far below 2^53 for any realistic length.
  // `& 0xffff` is exact even above 2^32 (ToInt32 keeps the low bits).
  return (sum & 0xffff) + Math.floor(sum / 0x10000);
}

/** Folds a running sum to 16 bits and inverts it: the value to store in a checksum field. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/**
 * The Internet checksum of `data`, starting from the running sum `initial`. Over data that
 * includes a correct checksum field the result is 0.
 */
export function internetChecksum(data: Uint8Array, initial = 0): number {
  return finishChecksum(checksumPartial(data, initial));
}

/**
 * The running sum of a TCP/UDP/ICMPv6 pseudo-header: IPv4 (RFC 768) for 4-byte addresses,
 * IPv6 (RFC 8200 §8.1) for 16-byte ones. Both reduce to the same word sum: the addresses, the
 * protocol, and the upper-layer length (its high and low 16 bits).
 */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  return (
    checksumPartial(dst, checksumPartial(src)) + protocol + Math.floor(length / 0x10000) + (length & 0xffff)
  );
}
