// torsh-jit MSL harness: runs a kernel's threadgroups on OS threads (see msl_shim/metal_stdlib).
//
// A dispatch of G threadgroups of T threads starts T OS threads. Thread t runs the kernel
// for thread position t of threadgroup 0, 1, ..., G-1 in turn, and the T threads meet at
// a barrier after each threadgroup, so one threadgroup runs at a time: its threads share
// the kernel's `threadgroup` variables (static storage, see the shim) with no other
// threadgroup. threadgroup_barrier() is a pthread barrier of the T threads;
// simd_shuffle_xor() is an exchange through memory among the threads of the SIMD-group
// (32 consecutive threads), between two barriers of those threads. A thread that skips a
// barrier its threadgroup reaches deadlocks here as it would hang or misbehave on a GPU.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

typedef unsigned int uint;
typedef void (*tj_thread_fn)(void* const* buffers, uint tid, uint gid, uint ngroups);

namespace {
struct Dispatch {
  tj_thread_fn fn;
  void* const* buffers;
  uint groups, threads;
  pthread_barrier_t all;
  std::vector<pthread_barrier_t> simd;     // one per SIMD-group
  std::vector<uint> slots;                 // one exchange slot per thread
};
struct Thread {
  Dispatch* d;
  uint tid;
};
thread_local Thread* self = nullptr;

void* run_thread(void* arg) {
  Thread* t = static_cast<Thread*>(arg);
  self = t;
  for (uint g = 0; g < t->d->groups; ++g) {
    t->d->fn(t->d->buffers, t->tid, g, t->d->groups);
    pthread_barrier_wait(&t->d->all);      // the next threadgroup starts when this one ended
  }
  return nullptr;
}

void fail(const char* what) {
  fprintf(stderr, "torsh-jit MSL harness: %s\n", what);
  abort();
}
}  // namespace

extern "C" void tj_msl_threadgroup_barrier(void) {
  if (!self) fail("threadgroup_barrier outside a kernel");
  pthread_barrier_wait(&self->d->all);
}

extern "C" uint tj_msl_simd_shuffle_xor(uint value, uint mask) {
  if (!self) fail("simd_shuffle_xor outside a kernel");
  Dispatch* d = self->d;
  const uint base = self->tid & ~31u, lane = self->tid & 31u, other = lane ^ mask;
  if (other >= 32 || base + other >= d->threads) fail("simd_shuffle_xor: lane out of the SIMD-group");
  pthread_barrier_t* b = &d->simd[self->tid / 32];
  d->slots[self->tid] = value;
  pthread_barrier_wait(b);                 // every lane has written
  const uint got = d->slots[base + other];
  pthread_barrier_wait(b);                 // every lane has read before the next exchange
  return got;
}

extern "C" void tj_msl_run(tj_thread_fn fn, void* const* buffers, uint groups, uint threads) {
  if (threads == 0 || groups == 0) return;
  Dispatch d;
  d.fn = fn;
  d.buffers = buffers;
  d.groups = groups;
  d.threads = threads;
  d.slots.assign(threads, 0);
  d.simd.resize((threads + 31) / 32);
  if (pthread_barrier_init(&d.all, nullptr, threads)) fail("pthread_barrier_init");
  for (uint s = 0; s < d.simd.size(); ++s) {
    const uint n = threads - 32 * s < 32 ? threads - 32 * s : 32;
    if (pthread_barrier_init(&d.simd[s], nullptr, n)) fail("pthread_barrier_init");
  }
  std::vector<Thread> ts(threads);
  std::vector<pthread_t> ids(threads);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 20);
  for (uint t = 0; t < threads; ++t) {
    ts[t] = Thread{&d, t};
    if (pthread_create(&ids[t], &attr, run_thread, &ts[t])) fail("pthread_create");
  }
  for (uint t = 0; t < threads; ++t) pthread_join(ids[t], nullptr);
  pthread_attr_destroy(&attr);
  pthread_barrier_destroy(&d.all);
  for (auto& b : d.simd) pthread_barrier_destroy(&b);
}
