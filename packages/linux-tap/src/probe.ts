/**
 * Can linux-tap open a device here and now?
 *
 * @module
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { TapErrorCode, isTapError, unavailable, type ProbeResult } from '@tapkit/core';
import { loadAddon } from './addon.js';
import { BACKEND, PERMISSION_HINT, hasNetAdmin, tunAccessProblem } from './errors.js';

const TUN_PATH = '/dev/net/tun';

/**
 * Checks, in order: Linux; the addon loads; /dev/net/tun exists and opens; the process has
 * CAP_NET_ADMIN. Never throws.
 */
export async function probeLinuxTap(
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<ProbeResult> {
  if (process.platform !== 'linux') {
    return unavailable(
      BACKEND,
      TapErrorCode.UNSUPPORTED_PLATFORM,
      `it runs on Linux only, not ${process.platform}`,
    );
  }
  try {
    loadAddon(env);
  } catch (error) {
    if (isTapError(error)) return { available: false, reason: error.message, error };
    return unavailable(BACKEND, TapErrorCode.BACKEND_NOT_INSTALLED, String(error), error);
  }
  try {
    const handle = await open(TUN_PATH, constants.O_RDWR | constants.O_NONBLOCK);
    await handle.close();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') {
      const problem = tunAccessProblem(TUN_PATH);
      if (problem) {
        return unavailable(BACKEND, TapErrorCode.PERMISSION_DENIED, problem.reason, error, problem.fix);
      }
      return unavailable(
        BACKEND,
        TapErrorCode.PERMISSION_DENIED,
        `${TUN_PATH} cannot be opened (${code}). ${PERMISSION_HINT}`,
        error,
      );
    }
    return unavailable(
      BACKEND,
      TapErrorCode.KERNEL_SUPPORT_MISSING,
      `${TUN_PATH} cannot be opened (${code ?? String(error)}): load the tun module ('modprobe tun'), or in a ` +
        "container pass the device in ('--device /dev/net/tun')",
      error,
    );
  }
  try {
    if (!hasNetAdmin()) {
      return unavailable(
        BACKEND,
        TapErrorCode.PERMISSION_DENIED,
        `this process lacks CAP_NET_ADMIN. ${PERMISSION_HINT}`,
      );
    }
  } catch {
    // No /proc: let open() say what is wrong.
  }
  return { available: true };
}
