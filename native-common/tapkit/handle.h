// FdHandle: what every backend's handle does with its fd, whatever the fd is: owning it, polling
// it on the environment's own loop, reading frames straight into a slab JS will own and handing
// a batch over in one call, queueing writes the kernel refuses with EAGAIN, pause/resume,
// ref/unref, and closing it (by JS, or at a worker's or the process's exit).
//
// A backend's handle derives from FdHandle<Self> (CRTP) and supplies only what is its own:
//   ssize_t ReadFrame(struct iovec iov[2]);   one read into [slab tail, spill]: the frame's
//                                             length, 0 for nothing to hand on, -1 with errno
//   size_t FrameStart(size_t used) const;     where the next frame goes in a slab `used` full
//   void RecordFrame(uint32_t i, size_t start, size_t end);  frame i's bounds into offsets_
// A backend whose reads are not one frame each (BPF: a read is a buffer of records) supplies
//   void OnReadable(Napi::Env env);          reads what it can and hands it to onRead_
// instead, with InitCallbacks and its own buffer as spill_. Optionally (the defaults do nothing)
// a native pipe:
//   bool Piping() const;                      a thread of its own reads the fd now
//   void Unlink();                            ends its pipes before the fd closes
// It opens and configures its fd, then calls Open(); its destructor calls ReleaseOsResources().
#pragma once

#include "tapkit/args.h"
#include "tapkit/errors.h"
#include "tapkit/io.h"
#include "tapkit/napi_config.h"
#include "tapkit/poll.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace tapkit {

template <typename Derived>
class FdHandle : public Napi::ObjectWrap<Derived> {
 public:
  using Wrap = Napi::ObjectWrap<Derived>;

  // The JS methods every handle has: name, resume, pause, ref, unref, close.
  static std::vector<typename Wrap::PropertyDescriptor> CommonMethods() {
    return {
        Wrap::InstanceAccessor("name", &FdHandle::GetName, nullptr),
        Wrap::InstanceMethod("resume", &FdHandle::Resume),
        Wrap::InstanceMethod("pause", &FdHandle::Pause),
        Wrap::InstanceMethod("ref", &FdHandle::RefLoop),
        Wrap::InstanceMethod("unref", &FdHandle::UnrefLoop),
        Wrap::InstanceMethod("close", &FdHandle::Close),
    };
  }

 protected:
  explicit FdHandle(const Napi::CallbackInfo& info) : Wrap(info), env_(info.Env()) {}

  using Poll = LoopPoll<FdHandle>;
  friend Poll;

  // The read side's shape and the callbacks (options.onRead/onDrain/onError). Call before
  // taking any OS resource: everything here can throw.
  void InitReader(Napi::Object options, uint32_t batch, size_t reserve, size_t slabBytes,
                  Napi::Uint32Array offsets, size_t spillBytes, const char* resource) {
    InitCallbacks(options, true, resource);
    batch_ = batch;
    reserve_ = reserve;
    slabBytes_ = slabBytes;
    offsetsRef_ = Napi::Persistent(offsets);
    offsets_ = offsets.Data();
    spillBytes_ = spillBytes;
    spill_.reset(new uint8_t[spillBytes]);
  }

  // options.onRead, options.onError and (for a handle that writes) options.onDrain.
  void InitCallbacks(Napi::Object options, bool writes, const char* resource) {
    onRead_ = Napi::Persistent(FunctionOption(options, "onRead"));
    if (writes) onDrain_ = Napi::Persistent(FunctionOption(options, "onDrain"));
    onError_ = Napi::Persistent(FunctionOption(options, "onError"));
    async_ = std::make_unique<Napi::AsyncContext>(options.Env(), resource, this->Value());
  }

  // Takes `fd` (closing it if this throws) and starts polling it: from here the handle is open.
  void Open(Napi::Env env, int raw) {
    FdGuard fd(raw);
    poll_ = Poll::Create(env, fd.get(), this, name_);
    fd_ = fd.release();
    // Like a socket, an open device is not garbage: the wrapper lives until close().
    this->Ref();
    openRef_ = true;
  }

  // Stops polling, closes the fd. Calls no JS, so it is safe from the environment's cleanup hook
  // and the destructor; safe to call more than once.
  void ReleaseOsResources() {
    self().Unlink();  // before the fd closes: no pipe thread may touch it after
    closed_ = true;
    reading_ = false;
    Poll::CloseWithFd(poll_, fd_);
    queue_.clear();
    queuedBytes_ = 0;
  }

  // Poll for what is wanted now: readable while reading, writable while frames are queued.
  void UpdatePoll() {
    if (poll_ == nullptr) return;
    int want = 0;
    if (!failed_) {
      if (reading_ && !self().Piping()) want |= UV_READABLE;  // a pipe's thread reads instead
      if (!queue_.empty()) want |= UV_WRITABLE;
    }
    if (want == pollEvents_) return;
    pollEvents_ = want;
    if (want == 0) {
      uv_poll_stop(&poll_->handle);
    } else {
      int err = poll_->Start(want);
      if (err != 0) throw ErrnoError(Napi::Env(env_), -err, "uv_poll_start", name_);
    }
  }

  // An open handle holds the loop (unless unref()ed) through its poll. While a pipe's thread
  // does the reading, the poll may be stopped, and a stopped handle holds nothing: pipeEnded
  // holds the loop then, as a socket being read would.
  void UpdateLoopRef() {
    if (poll_ == nullptr) return;
    uv_handle_t* async = reinterpret_cast<uv_handle_t*>(&poll_->pipeEnded);
    if (self().Piping() && loopRef_) {
      uv_ref(async);
    } else {
      uv_unref(async);
    }
  }

  // One frame out: `header` then `data`, in one write (a tap/tun, a utun or a SOCK_SEQPACKET
  // socket takes a whole frame or none). Once anything is queued, later frames queue behind it
  // to keep their order.
  void Send(Napi::Env env, const uint8_t* header, size_t headerLength, const uint8_t* data, size_t length) {
    if (queue_.empty()) {
      struct iovec iov[2] = {{const_cast<uint8_t*>(header), headerLength}, {const_cast<uint8_t*>(data), length}};
      for (;;) {
        ssize_t n = headerLength == 0 ? write(fd_, data, length) : writev(fd_, iov, 2);
        if (n >= 0) return;
        if (CallAgain(errno)) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        throw ErrnoError(env, errno, "write", name_);
      }
    }
    std::vector<uint8_t> frame(headerLength + length);
    if (headerLength > 0) memcpy(frame.data(), header, headerLength);
    if (length > 0) memcpy(frame.data() + headerLength, data, length);
    queuedBytes_ += frame.size();
    queue_.push_back(std::move(frame));
    UpdatePoll();
  }

  // Sends each frame of a JS batch; an error names the frame (frames before it were sent).
  template <typename SendOne>
  static void SendEach(Napi::Env env, uint32_t count, SendOne sendOne) {
    for (uint32_t i = 0; i < count; i++) {
      try {
        sendOne(i);
      } catch (Napi::Error& error) {
        error.Set("index", Napi::Number::New(env, i));
        throw;
      }
    }
  }

  void ThrowIfClosed(Napi::Env env) const {
    if (closed_) throw ErrnoError(env, EBADF, "write", name_);
  }

  Napi::Value QueuedBytes(Napi::Env env) const { return Napi::Number::New(env, static_cast<double>(queuedBytes_)); }

  // The hooks' defaults: one frame a read, no native pipe.
  void OnReadable(Napi::Env env) { ReadFrames(env); }
  int PollError(int status) const { return -status; }  // what to report if a read says nothing
  bool Piping() const { return false; }
  void Unlink() {}

  // Reading cannot go on: poll no more, and tell JS once.
  void FailRead(Napi::Env env, int err) {
    if (failed_) return;
    failed_ = true;
    UpdatePoll();
    ReportError(env, err, "read");
  }

  // Hands JS what was read, as the backend's onRead takes it.
  void CallOnRead(const std::initializer_list<napi_value>& args) {
    // MakeCallback, not Call: it runs the microtask queue afterwards (promises resolved by the
    // batch settle now) and gives async_hooks a resource.
    onRead_.MakeCallback(this->Value(), args, *async_);
  }

  napi_env env_;
  std::string name_;
  int fd_ = -1;
  Poll* poll_ = nullptr;
  bool reading_ = false;
  bool closed_ = false;
  bool failed_ = false;  // the fd reported an error: poll no more
  bool loopRef_ = true;  // the handle holds the event loop (ref()), unless unref()ed

  // Receive: frames are read straight into a slab (an ArrayBuffer JS will own), each where the
  // backend's FrameStart puts it; a batch is handed to JS as (slab, count), with the frames'
  // bounds in offsets_ (as the backend's RecordFrame writes them). Memory once handed to JS is
  // never written again.
  uint32_t* offsets_ = nullptr;
  size_t spillBytes_ = 0;
  std::unique_ptr<uint8_t[]> spill_;

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  const Derived& self() const { return static_cast<const Derived&>(*this); }

  Napi::Value GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }

  void Resume(const Napi::CallbackInfo& info) {
    if (closed_) return;
    reading_ = true;
    UpdatePoll();
  }

  void Pause(const Napi::CallbackInfo& info) {
    if (closed_) return;
    reading_ = false;
    UpdatePoll();
  }

  void RefLoop(const Napi::CallbackInfo& info) {
    loopRef_ = true;
    if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
    UpdateLoopRef();
  }

  void UnrefLoop(const Napi::CallbackInfo& info) {
    loopRef_ = false;
    if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(&poll_->handle));
    UpdateLoopRef();
  }

  // close(): the number of frames still queued (EAGAIN), which are dropped: the caller counts
  // them.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    size_t unsent = queue_.size();
    if (closed_ && !openRef_) return Napi::Number::New(info.Env(), 0);
    ReleaseOsResources();
    ReleaseJsReferences();
    if (openRef_) {
      openRef_ = false;
      this->Unref();
    }
    return Napi::Number::New(info.Env(), static_cast<double>(unsent));
  }

  // Lets go of everything JS lent this handle. The callbacks are strong references, and they
  // close over the port that holds this handle's wrapper: kept after close, that cycle went
  // through a GC root, and no closed device (port, engine, slab) was ever freed. A closed handle
  // calls no JS.
  void ReleaseJsReferences() {
    DropSlab();
    onRead_.Reset();
    onDrain_.Reset();
    onError_.Reset();
    offsetsRef_.Reset();
    offsets_ = nullptr;
    spill_.reset();
  }

  // A pipe's read failed: as if the poll had reported the fd's error.
  void OnPipeEnded() {
    if (self().Piping()) HandlePoll(UV_EIO, 0);
  }

  void HandlePoll(int status, int events) {
    Napi::Env env(env_);
    Napi::HandleScope scope(env);
    // JS called from here may close this handle and drop the last reference to the wrapper:
    // keep it alive until we are done with `this`.
    this->Ref();
    try {
      if (status < 0) {
        // libuv reports EPOLLERR as UV_EBADF and stops the handle (a pipe's thread, as UV_EIO).
        // A read says what happened (EBADFD: the interface was deleted under the fd).
        int err = self().PollError(status);
        if (read(fd_, spill_.get(), spillBytes_) < 0 && errno != EAGAIN && errno != EINTR) err = errno;
        pollEvents_ = 0;  // libuv stopped it
        uv_poll_stop(&poll_->handle);
        if (ReadAgain(err)) {
          UpdatePoll();  // a UDP link's ICMP news of an earlier datagram (POLLERR): it goes on
        } else {
          FailRead(env, err);
        }
      } else {
        if ((events & UV_WRITABLE) != 0 && !closed_) FlushQueue(env);
        if ((events & UV_READABLE) != 0 && !closed_ && reading_ && !self().Piping()) self().OnReadable(env);
      }
    } catch (const Napi::Error& error) {
      // A JS callback threw: report it as uncaught, as Node does for its own callbacks.
      napi_fatal_exception(env_, error.Value());
    }
    this->Unref();
  }

  void SetSlab(Napi::ArrayBuffer slab) {
    slab_.Reset(slab, 1);
    slabData_ = static_cast<uint8_t*>(slab.Data());
    slabSize_ = slab.ByteLength();
    slabUsed_ = 0;
  }

  // A fresh slab, not zero-filled: every byte JS is shown is one a read() wrote (frames are
  // views of exactly what was read), and zeroing each slab cost up to 15% of a relay's CPU.
  // node::Buffer's allocation is uninitialised (Buffer.allocUnsafeSlow's); the slab is its
  // ArrayBuffer.
  static Napi::ArrayBuffer NewSlab(Napi::Env env, size_t size) {
    napi_value buffer;
    void* data = nullptr;
    napi_value arrayBuffer;
    if (napi_create_buffer(env, size, &data, &buffer) != napi_ok ||
        napi_get_typedarray_info(env, buffer, nullptr, nullptr, nullptr, &arrayBuffer, nullptr) != napi_ok) {
      throw Napi::Error::New(env, "could not allocate a receive slab");
    }
    return Napi::ArrayBuffer(env, arrayBuffer);
  }

  void DropSlab() {
    slab_.Reset();
    slabData_ = nullptr;
    slabSize_ = 0;
    slabUsed_ = 0;
  }

  bool SlabFull() const { return slabData_ == nullptr || self().FrameStart(slabUsed_) + reserve_ > slabSize_; }

  // Reads up to batch_ frames (or until EAGAIN), each straight into the slab's free tail, and
  // hands them to JS in one call. A fresh slab is taken when the tail could not hold the largest
  // frame expected; the batch is delivered before that, as a batch lives in one slab.
  void ReadFrames(Napi::Env env) {
    // JS may have transferred the slab (postMessage, structuredClone) since the last batch: its
    // memory is no longer ours to write.
    if (slabData_ != nullptr && slab_.Value().IsDetached()) DropSlab();
    pending_ = 0;
    for (uint32_t budget = batch_; budget > 0 && reading_ && !closed_; budget--) {
      if (SlabFull()) {
        Deliver(env);
        if (closed_ || !reading_) return;
        SetSlab(NewSlab(env, slabBytes_));
      }
      size_t start = self().FrameStart(slabUsed_);
      size_t room = slabSize_ - start;
      struct iovec iov[2] = {{slabData_ + start, room}, {spill_.get(), spillBytes_}};
      ssize_t n = self().ReadFrame(iov);
      if (n < 0) {
        int err = errno;
        if (err == EINTR) {
          budget++;
          continue;
        }
        if (ReadAgain(err)) continue;  // reported once; the budget bounds an fd that says it again
        if (err == EAGAIN || err == EWOULDBLOCK) break;
        Deliver(env);
        if (!closed_) FailRead(env, err);
        return;
      }
      if (n == 0) continue;  // nothing to hand on (the backend said so)
      size_t length = static_cast<size_t>(n);
      if (length > room) {
        // It spilled: give the frame a slab of its own. The new slab is allocated (and the
        // frame moved) before JS runs, while the old slab is certainly still ours.
        size_t first = self().FrameStart(0);
        Napi::ArrayBuffer big = NewSlab(env, std::max(slabBytes_, first + length + reserve_));
        uint8_t* bigData = static_cast<uint8_t*>(big.Data());
        memcpy(bigData + first, slabData_ + start, room);
        memcpy(bigData + first + room, spill_.get(), length - room);
        Deliver(env);
        if (closed_) return;
        SetSlab(big);
        start = first;
      }
      self().RecordFrame(pending_++, start, start + length);
      slabUsed_ = start + length;
    }
    Deliver(env);
    // A slab too full for another frame is let go now, so it is freed with its last frame.
    if (slabData_ != nullptr && SlabFull()) DropSlab();
  }

  // Hands the pending frames to JS: onRead(slab, count), bounds in offsets.
  void Deliver(Napi::Env env) {
    if (pending_ == 0) return;
    uint32_t count = pending_;
    pending_ = 0;
    CallOnRead({slab_.Value(), Napi::Number::New(env, count)});
    if (slabData_ != nullptr && slab_.Value().IsDetached()) DropSlab();
  }

  void ReportError(Napi::Env env, int err, const char* syscall) {
    Napi::Error error = ErrnoError(env, err, syscall, name_);
    onError_.MakeCallback(this->Value(), {error.Value()}, *async_);
  }

  // Writable again: send what was queued; when all went, stop polling for writable and tell JS.
  void FlushQueue(Napi::Env env) {
    while (!queue_.empty()) {
      const std::vector<uint8_t>& frame = queue_.front();
      if (write(fd_, frame.data(), frame.size()) < 0) {
        int err = errno;
        if (CallAgain(err)) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) return;
        queuedBytes_ -= frame.size();
        queue_.pop_front();
        ReportError(env, err, "write");  // the frame is dropped; the others still go
        if (closed_) return;
        continue;
      }
      queuedBytes_ -= frame.size();
      queue_.pop_front();
    }
    UpdatePoll();
    onDrain_.MakeCallback(this->Value(), {}, *async_);
  }

  int pollEvents_ = 0;
  bool openRef_ = false;  // the wrapper is held strongly while open

  uint32_t batch_ = 0;
  size_t reserve_ = 0;  // room needed before a read: the largest frame expected
  size_t slabBytes_ = 0;
  Napi::Reference<Napi::ArrayBuffer> slab_;
  uint8_t* slabData_ = nullptr;
  size_t slabSize_ = 0;
  size_t slabUsed_ = 0;
  Napi::Reference<Napi::Uint32Array> offsetsRef_;
  uint32_t pending_ = 0;  // frames read but not yet handed to JS

  // Send: frames the kernel would not take yet (EAGAIN), copied (with their header), in order.
  std::deque<std::vector<uint8_t>> queue_;
  size_t queuedBytes_ = 0;

  Napi::FunctionReference onRead_;
  Napi::FunctionReference onDrain_;
  Napi::FunctionReference onError_;
  std::unique_ptr<Napi::AsyncContext> async_;
};

}  // namespace tapkit
