// LoopPoll: an fd's poll on the environment's own loop, with the lifecycle every handle needs.
//
// libuv can still hold the poll handle after its owner is gone (uv_close completes on a later
// loop turn), so it lives in its own allocation, freed by the close callback, and points back to
// its owner only while open. The allocation also holds the environment's async cleanup hook,
// removed only once the handle has closed: Node then keeps turning the loop at the environment's
// exit until the close callback has run. (With a plain cleanup hook it did not wait: a worker's
// environment was freed and the addon unloaded with the close still pending, and libuv then
// called the close callback in unmapped code: a segfault.) pipeEnded, signalled by a pipe's
// thread whose read failed (the interface was deleted), runs the owner's error path on the
// loop; it shares the allocation and is closed with it.
//
// Owner supplies HandlePoll(status, events), OnPipeEnded() and ReleaseOsResources() (which the
// environment's exit calls while the owner is open, and which must call Close()).
#pragma once

#include "tapkit/errors.h"
#include "tapkit/napi_config.h"

#include <unistd.h>
#include <uv.h>

#include <memory>
#include <string>

namespace tapkit {

template <typename Owner>
struct LoopPoll {
  uv_poll_t handle;
  uv_async_t pipeEnded;
  Owner* owner;
  napi_async_cleanup_hook_handle hook;
  int open;  // libuv handles not yet closed: the allocation goes with the last

  // Polls `fd` (nothing yet: start it with uv_poll_start) for `owner`, and closes it at the
  // environment's exit. Throws without taking anything.
  static LoopPoll* Create(Napi::Env env, int fd, Owner* owner, const std::string& subject) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      throw Napi::Error::New(env, "no event loop for this environment");
    }
    auto poll = std::make_unique<LoopPoll>();
    int err = uv_poll_init(loop, &poll->handle, fd);
    if (err != 0) throw ErrnoError(env, -err, "uv_poll_init", subject);
    poll->handle.data = poll.get();
    poll->owner = nullptr;
    poll->hook = nullptr;
    poll->open = 1;
    err = uv_async_init(loop, &poll->pipeEnded, OnPipeEnded);
    if (err == 0) {
      poll->pipeEnded.data = poll.get();
      poll->open = 2;
      uv_unref(reinterpret_cast<uv_handle_t*>(&poll->pipeEnded));  // the poll alone holds the loop
    }
    if (err != 0 || napi_add_async_cleanup_hook(env, OnEnvironmentExit, poll.get(), &poll->hook) != napi_ok) {
      poll->hook = nullptr;
      poll.release()->Close();
      if (err != 0) throw ErrnoError(env, -err, "uv_async_init", subject);
      throw Napi::Error::New(env, "could not register an environment cleanup hook");
    }
    poll->owner = owner;
    return poll.release();
  }

  int Start(int events) { return uv_poll_start(&handle, events, OnPoll); }

  // Detaches the owner and closes the handles; the allocation goes once libuv is done with them.
  // uv_close stops the poll first, so the fd may be closed right after.
  void Close() {
    owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&handle), OnClosed);
    if (open == 2) uv_close(reinterpret_cast<uv_handle_t*>(&pipeEnded), OnClosed);
  }

  // Closes `poll` (if open) and then `fd`: what an owner's ReleaseOsResources() does with them.
  static void CloseWithFd(LoopPoll*& poll, int& fd) {
    if (poll != nullptr) {
      poll->Close();
      poll = nullptr;
    }
    if (fd >= 0) {
      close(fd);
      fd = -1;
    }
  }

 private:
  static void OnEnvironmentExit(napi_async_cleanup_hook_handle hook, void* arg) {
    LoopPoll* poll = static_cast<LoopPoll*>(arg);
    // Still open: close it now. Otherwise its close is already pending, and OnClosed removes
    // the hook, which tells Node this cleanup is done.
    if (poll->owner != nullptr) poll->owner->ReleaseOsResources();
  }

  // The last thing libuv does with the poll's handles: only then may the environment go away.
  static void OnClosed(uv_handle_t* handle) {
    LoopPoll* poll = static_cast<LoopPoll*>(handle->data);
    if (--poll->open > 0) return;
    if (poll->hook != nullptr) napi_remove_async_cleanup_hook(poll->hook);
    delete poll;
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    Owner* owner = static_cast<LoopPoll*>(handle->data)->owner;
    if (owner != nullptr) owner->HandlePoll(status, events);
  }

  static void OnPipeEnded(uv_async_t* async) {
    Owner* owner = static_cast<LoopPoll*>(async->data)->owner;
    if (owner != nullptr) owner->OnPipeEnded();
  }
};

}  // namespace tapkit
