// A small pool of worker threads for short parallel regions (tens of
// microseconds each, e.g. the block matmuls of one decoding step), where
// waking Dispatch workers through the kernel costs as much as the work.
//
// A region is `chunks` independent pieces of work. The calling thread and
// the pool threads claim pieces one at a time until none is left, so a pool
// thread that is late (descheduled on a busy machine) costs nothing: the
// caller does its pieces. Idle pool threads spin (with PAUSE) for a while
// before sleeping on a condition variable, so back-to-back regions start
// without a system call.
#ifndef HEED_PARALLEL_H
#define HEED_PARALLEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Piece `chunk` of `chunks`.
typedef void (*heed_parallel_body)(void *context, int64_t chunk, int64_t chunks);

/// Runs body(context, c, chunks) once for every c in 0 ..< chunks, on the
/// calling thread and the pool's, and returns when all have finished. Regions
/// from different threads are serialised; a body that starts a region runs
/// that region inline. A body must not wait for another thread that starts a
/// region (that thread would wait for this region to end: a deadlock).
void heed_parallel_run(heed_parallel_body body, void *context, int64_t chunks);

/// The CPUs this process may run on (sched_getaffinity where available), at
/// most 64: the pool has one thread fewer.
int64_t heed_parallel_max_workers(void);

/// Completion counters for work that other threads wait on (the flash
/// forward's packing of each head, which its compute items need):
/// heed_flag_add publishes everything the thread wrote before it (release);
/// heed_flag_wait returns once *flag ≥ value, and the caller then sees what
/// was written before the adds that got it there (acquire). It spins with
/// PAUSE, yielding now and then.
void heed_flag_add(int64_t *flag, int64_t amount);
void heed_flag_wait(const int64_t *flag, int64_t value);

#ifdef __cplusplus
}
#endif

#endif
