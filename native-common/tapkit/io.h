// What every fd loop of the addons treats alike.
#pragma once

#include <errno.h>

namespace tapkit {

// Whether a call that failed with `err` is simply made again: EINTR; or ECONNREFUSED from a
// connected datagram socket (a UDP link), which is how the kernel reports, once, on the next
// call, that the peer refused an earlier datagram (ICMP port unreachable). That call did
// nothing else (no datagram read or sent) and the socket goes on. A device never says it.
inline bool CallAgain(int err) { return err == EINTR || err == ECONNREFUSED; }

// Whether a failed read is made again: CallAgain's, and the other errors a connected datagram
// socket reports once for ICMP about an earlier datagram (host or network unreachable,
// administratively prohibited). Only for reads: a write can get these from routing on every
// call, so a write that says one fails (the frame is refused and counted).
inline bool ReadAgain(int err) {
  return CallAgain(err) || err == EHOSTUNREACH || err == ENETUNREACH || err == EHOSTDOWN || err == ENETDOWN ||
         err == ENOPROTOOPT;
}

}  // namespace tapkit
