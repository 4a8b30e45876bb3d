/**
 * The peer MAC: the Ethernet address the OS side of a shim speaks from.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { TapError, TapErrorCode, checkDeviceMac, formatMac, macEquals, type MacInput } from '@tapkit/core';

/**
 * The default peer MAC for a device MAC: the first 6 bytes of SHA-256("tapkit-l2-shim-peer" +
 * mac), made unicast and locally administered. Deterministic, so a device opened with the same
 * MAC always sees its OS side at the same address (neighbour caches stay right across
 * reopens), and never equal to `mac`.
 */
export function derivePeerMac(mac: MacInput): Uint8Array {
  const device = checkDeviceMac(mac);
  const digest = createHash('sha256').update('tapkit-l2-shim-peer').update(device).digest();
  const peer = Uint8Array.from(digest.subarray(0, 6));
  peer[0] = (peer[0]! & 0xfc) | 0x02; // unicast, locally administered
  if (macEquals(peer, device)) peer[5] = peer[5]! ^ 0x01; // 2^-46, but cheap to rule out
  return peer;
}

/** Checks an explicit peer MAC: a unicast MAC that is not the device's own. Returns a copy. */
export function checkPeerMac(peerMac: unknown, deviceMac: Uint8Array): Uint8Array {
  let peer: Uint8Array;
  try {
    peer = checkDeviceMac(peerMac);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TapError(TapErrorCode.INVALID_OPTION, `invalid peerMac: ${reason}`, { cause: error });
  }
  if (macEquals(peer, deviceMac)) {
    throw new TapError(
      TapErrorCode.INVALID_OPTION,
      `invalid peerMac ${formatMac(peer)}: it must differ from the device's own MAC`,
    );
  }
  return peer;
}
