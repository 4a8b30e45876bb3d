#include "rtnetlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tapkit/errors.h"

namespace tapkit {
namespace {

// Large enough for any one datagram the kernel sends on NETLINK_ROUTE (it sizes dumps to the
// reader's buffer, up to 32 KiB).
constexpr size_t kReceiveBytes = 64 * 1024;

int RouteSocket(Napi::Env env, int flags) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | flags, NETLINK_ROUTE);
  if (fd < 0) throw ErrnoError(env, errno, "socket", std::string(), "NETLINK_ROUTE");
  return fd;
}

}  // namespace

Napi::Value RtnetlinkRequest(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[0].As<Napi::Uint8Array>().ByteLength() < sizeof(struct nlmsghdr)) {
    throw Napi::TypeError::New(env, "message must be a Uint8Array holding a netlink message");
  }
  Napi::Uint8Array message = info[0].As<Napi::Uint8Array>();
  std::string request = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "rtnetlink";
  std::string subject = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : std::string();

  FdGuard sock(RouteSocket(env, 0));
  // The kernel answers rtnetlink requests before send returns; the timeout only guards
  // against a kernel that never does.
  struct timeval timeout = {5, 0};
  setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  if (sendto(sock.get(), message.Data(), message.ByteLength(), 0, reinterpret_cast<struct sockaddr*>(&kernel),
             sizeof kernel) < 0) {
    throw ErrnoError(env, errno, "sendto", subject, request.c_str());
  }
  std::vector<uint8_t> answer;
  std::vector<uint8_t> buffer(kReceiveBytes);
  for (;;) {
    ssize_t n = recv(sock.get(), buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw ErrnoError(env, errno, "recv", subject, request.c_str());
    }
    // Walked by hand, every length checked (NLMSG_OK mixes signed and unsigned).
    size_t left = static_cast<size_t>(n);
    for (const uint8_t* at = buffer.data(); left >= sizeof(struct nlmsghdr);) {
      const auto* header = reinterpret_cast<const struct nlmsghdr*>(at);
      size_t length = header->nlmsg_len;
      if (length < sizeof(struct nlmsghdr) || length > left) break;
      size_t step = std::min<size_t>(NLMSG_ALIGN(length), left);
      at += step;
      left -= step;
      if (header->nlmsg_type == NLMSG_DONE) {
        return Napi::Buffer<uint8_t>::Copy(env, answer.data(), answer.size());
      }
      if (header->nlmsg_type == NLMSG_ERROR) {
        if (header->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
          throw ErrnoError(env, EPROTO, "rtnetlink", subject, request.c_str());
        }
        int error = static_cast<const struct nlmsgerr*>(NLMSG_DATA(header))->error;
        if (error != 0) throw ErrnoError(env, -error, "rtnetlink", subject, request.c_str());
        return Napi::Buffer<uint8_t>::Copy(env, answer.data(), answer.size());  // the ack
      }
      const uint8_t* start = reinterpret_cast<const uint8_t*>(header);
      answer.insert(answer.end(), start, start + header->nlmsg_len);
      answer.resize(NLMSG_ALIGN(answer.size()));
      // A request that is neither a dump nor acked ends with its one answer.
      if ((header->nlmsg_flags & NLM_F_MULTI) == 0) {
        return Napi::Buffer<uint8_t>::Copy(env, answer.data(), answer.size());
      }
    }
  }
}

LinkWatcher::LinkWatcher(const Napi::CallbackInfo& info) : SocketWatcher<LinkWatcher>(info, "LinkWatcher") {
  Napi::Env env = info.Env();
  FdGuard sock(RouteSocket(env, SOCK_NONBLOCK));
  struct sockaddr_nl local;
  memset(&local, 0, sizeof local);
  local.nl_family = AF_NETLINK;
  local.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  if (bind(sock.get(), reinterpret_cast<struct sockaddr*>(&local), sizeof local) < 0) {
    throw ErrnoError(env, errno, "bind", std::string(), "NETLINK_ROUTE");
  }
  Watch(env, sock.release());
}

}  // namespace tapkit
