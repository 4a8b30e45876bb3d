// SocketWatcher: a notification socket (linux-tap's rtnetlink LinkWatcher, the macOS addons'
// PF_ROUTE RouteWatcher) polled on the environment's own loop, its messages handed to JS.
//
// JS: new Watcher({ onMessages(buffer), onError(error), ... }); watcher.close().
//   onMessages gets every datagram waiting, back to back in one Buffer (the messages are
//   self-delimiting: netlink's nlmsg_len, the routing socket's rtm_msglen). onError gets
//   ENOBUFS when the kernel dropped notifications (the socket's buffer overflowed; reading goes
//   on, and the JS side reads the whole state again), or any other error, after which the
//   watcher has stopped. The watcher never holds the loop, and is alive until close() (or the
//   environment's exit, LoopPoll's cleanup hook).
//
// A watcher derives from SocketWatcher<Self> (CRTP), takes its socket (non-blocking) and calls
// Watch(); it supplies `static constexpr const char* kSubject` (the socket's name in errors)
// and `static constexpr size_t kReceiveBytes` (room for the largest datagram).
#pragma once

#include "tapkit/errors.h"
#include "tapkit/napi_config.h"
#include "tapkit/poll.h"

#include <errno.h>
#include <sys/socket.h>
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

namespace tapkit {

template <typename Derived>
class SocketWatcher : public Napi::ObjectWrap<Derived> {
 public:
  using Wrap = Napi::ObjectWrap<Derived>;
  using Poll = LoopPoll<SocketWatcher>;
  friend Poll;

  static Napi::Function DefineWatcher(Napi::Env env, const char* name) {
    return Wrap::DefineClass(env, name, {Wrap::InstanceMethod("close", &SocketWatcher::Close)});
  }

  ~SocketWatcher() override { ReleaseOsResources(); }

 protected:
  // Checks options.onMessages / options.onError; call first (it can throw).
  SocketWatcher(const Napi::CallbackInfo& info, const char* resource) : Wrap(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throw Napi::TypeError::New(env, "options must be an object");
    Napi::Object options = info[0].As<Napi::Object>();
    if (!options.Get("onMessages").IsFunction() || !options.Get("onError").IsFunction()) {
      throw Napi::TypeError::New(env, "options.onMessages and options.onError must be functions");
    }
    onMessages_ = Napi::Persistent(options.Get("onMessages").As<Napi::Function>());
    onError_ = Napi::Persistent(options.Get("onError").As<Napi::Function>());
    async_ = std::make_unique<Napi::AsyncContext>(env, resource, this->Value());
  }

  // Takes `raw` (a non-blocking socket; closed if this throws) and starts polling it.
  void Watch(Napi::Env env, int raw) {
    FdGuard sock(raw);
    Poll* poll = Poll::Create(env, sock.get(), this, Derived::kSubject);
    // Watching the link is never a reason to keep the process alive: the device's fd is.
    uv_unref(reinterpret_cast<uv_handle_t*>(&poll->handle));
    int err = poll->Start(UV_READABLE);
    if (err != 0) {
      poll->Close();
      throw ErrnoError(env, -err, "uv_poll_start", std::string(), Derived::kSubject);
    }
    poll_ = poll;
    fd_ = sock.release();
    // Like a device's handle: alive until close().
    this->Ref();
  }

 private:
  // LoopPoll's owner interface.
  void OnPipeEnded() {}
  void ReleaseOsResources() { Poll::CloseWithFd(poll_, fd_); }

  // A socket whose buffer overflowed has ENOBUFS pending, which epoll reports as EPOLLERR: libuv
  // then stops the poll (status UV_EBADF). The read takes the error (and reports it: the state is
  // read again) and the poll starts over, or no later change would be seen.
  void HandlePoll(int status, int events) {
    bool watching = ReadMessages();
    if (status < 0 && watching && poll_ != nullptr && fd_ >= 0) poll_->Start(UV_READABLE);
  }

  void Close(const Napi::CallbackInfo& info) {
    bool open = fd_ >= 0;
    ReleaseOsResources();
    // Drop the callbacks: strong references to JS that holds this watcher would keep both alive.
    onMessages_.Reset();
    onError_.Reset();
    if (open) this->Unref();  // the wrapper may be collected now
  }

  // Reads every datagram waiting and hands them to JS in one Buffer. ENOBUFS (notifications
  // were lost) is reported, and reading goes on. False when another error ended watching.
  bool ReadMessages() {
    Napi::Env env(env_);
    Napi::HandleScope scope(env);
    this->Ref();  // JS called from here may close this watcher
    std::vector<uint8_t> messages;
    std::vector<uint8_t> buffer(Derived::kReceiveBytes);
    int error = 0;
    bool watching = true;
    while (fd_ >= 0) {
      ssize_t n = recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        error = errno;
        if (errno == ENOBUFS) continue;
        if (poll_ != nullptr) uv_poll_stop(&poll_->handle);  // any other error: the socket is done
        watching = false;
        break;
      }
      if (n == 0) break;  // a datagram socket's peer closed (a test's stand-in)
      messages.insert(messages.end(), buffer.data(), buffer.data() + n);
    }
    try {
      // MakeCallback: runs the microtasks the callbacks queue, as the device handles' do.
      if (!messages.empty()) {
        onMessages_.MakeCallback(this->Value(),
                                 {Napi::Buffer<uint8_t>::Copy(env, messages.data(), messages.size())}, *async_);
      }
      if (error != 0 && fd_ >= 0) {
        onError_.MakeCallback(this->Value(),
                              {ErrnoError(env, error, "recv", std::string(), Derived::kSubject).Value()}, *async_);
      }
    } catch (const Napi::Error& e) {
      // An exception from a callback: surface it as Node does for any callback's.
      this->Unref();
      napi_fatal_exception(env, e.Value());
      return false;
    }
    this->Unref();
    return watching;
  }

  napi_env env_;
  int fd_ = -1;
  Poll* poll_ = nullptr;
  Napi::FunctionReference onMessages_;
  Napi::FunctionReference onError_;
  std::unique_ptr<Napi::AsyncContext> async_;
};

}  // namespace tapkit
