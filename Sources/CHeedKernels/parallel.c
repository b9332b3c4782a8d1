// The worker pool of heed_parallel.h.
//
// `state` packs the region's generation (high 32 bits) and the next unclaimed
// piece (low 32 bits). The caller publishes body/context/chunks, then stores
// (generation + 1, 0); everyone claims pieces with a compare-and-swap that
// also checks the generation, so a pool thread waking up late cannot claim a
// piece of a later region with an earlier view. The caller returns once
// `completed` reaches `chunks`; a claimed piece is always completed, so no
// thread touches the region's context after that. Body, context and chunks
// are read only after a successful claim, when the region cannot have ended.
#define _GNU_SOURCE
#include "heed_parallel.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

enum {
    MAX_WORKERS = 64,
    IDLE_SPINS = 1 << 15,      // PAUSEs a pool thread spins before sleeping (≈ 0.5 ms)
    WAIT_SPINS = 1 << 8,       // PAUSEs the caller spins between sched_yield calls while pieces finish
};

static struct {
    pthread_once_t once;
    int64_t threads;                    // pool threads
    pthread_mutex_t region;             // one region at a time
    pthread_mutex_t lock;               // guards the condition variable
    pthread_cond_t wake;
    _Atomic uint64_t state;             // generation << 32 | next piece
    _Atomic int64_t completed;          // pieces finished in the current region
    _Atomic int64_t sleeping;           // pool threads waiting on `wake`
    heed_parallel_body body;
    void *context;
    _Atomic int64_t chunks;             // read before a claim, so atomic (a stale value fails the claim)
} pool = { .once = PTHREAD_ONCE_INIT, .region = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER,
           .wake = PTHREAD_COND_INITIALIZER };

static _Thread_local int inside_region = 0;

/// Claims and runs pieces of generation `generation` until none is left.
static void work(uint64_t generation) {
    for (;;) {
        uint64_t state = atomic_load(&pool.state);
        if ((state >> 32) != generation) return;
        // chunks is read before the claim; it belongs to this generation only
        // if the claim succeeds (the CAS re-checks the generation).
        int64_t chunks = atomic_load_explicit(&pool.chunks, memory_order_relaxed);
        uint64_t piece = state & 0xFFFFFFFFu;
        if ((int64_t)piece >= chunks) return;
        if (!atomic_compare_exchange_weak(&pool.state, &state, state + 1)) continue;
        pool.body(pool.context, (int64_t)piece, chunks);
        atomic_fetch_add(&pool.completed, 1);
    }
}

static void *worker_main(void *argument) {
    (void)argument;
    uint64_t seen = 0;
    inside_region = 1;
    for (;;) {
        uint64_t generation = atomic_load(&pool.state) >> 32;
        for (int spins = 0; generation == seen; spins++) {
            if (spins < IDLE_SPINS) {
                CPU_RELAX();
            } else {
                pthread_mutex_lock(&pool.lock);
                atomic_fetch_add(&pool.sleeping, 1);
                while ((generation = atomic_load(&pool.state) >> 32) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
                atomic_fetch_sub(&pool.sleeping, 1);
                pthread_mutex_unlock(&pool.lock);
                break;
            }
            generation = atomic_load(&pool.state) >> 32;
        }
        seen = generation;
        work(generation);
    }
    return NULL;
}

static int64_t cpu_count(void) {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
#endif
    long count = sysconf(_SC_NPROCESSORS_ONLN);
    return count > 0 ? count : 1;
}

static void start_pool(void) {
    int64_t workers = cpu_count();
    if (workers > MAX_WORKERS) workers = MAX_WORKERS;
    for (int64_t i = 1; i < workers; i++) {
        pthread_t thread;
        pthread_attr_t attributes;
        pthread_attr_init(&attributes);
        pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attributes, worker_main, NULL);
        pthread_attr_destroy(&attributes);
        if (failed) break;          // use the threads that did start
        pool.threads++;
    }
}

int64_t heed_parallel_max_workers(void) {
    pthread_once(&pool.once, start_pool);
    return pool.threads + 1;
}

void heed_parallel_run(heed_parallel_body body, void *context, int64_t chunks) {
    if (chunks <= 0) return;
    if (chunks == 1 || inside_region || heed_parallel_max_workers() == 1) {
        for (int64_t c = 0; c < chunks; c++) body(context, c, chunks);
        return;
    }
    pthread_mutex_lock(&pool.region);
    pool.body = body;
    pool.context = context;
    atomic_store_explicit(&pool.chunks, chunks, memory_order_relaxed);
    atomic_store(&pool.completed, 0);
    uint64_t generation = (atomic_load(&pool.state) >> 32) + 1;
    // Sequentially consistent, like a sleeper's `sleeping` increment and
    // generation re-check: either this thread sees the sleeper, or the sleeper
    // sees the new generation before it waits.
    atomic_store(&pool.state, generation << 32);
    if (atomic_load(&pool.sleeping) > 0) {
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    inside_region = 1;
    work(generation);
    inside_region = 0;
    for (int spins = 1; atomic_load(&pool.completed) < chunks; spins++) {
        if (spins % WAIT_SPINS == 0) sched_yield(); else CPU_RELAX();
    }
    pthread_mutex_unlock(&pool.region);
}

void heed_flag_add(int64_t *flag, int64_t amount) { __atomic_fetch_add(flag, amount, __ATOMIC_RELEASE); }

void heed_flag_wait(const int64_t *flag, int64_t value) {
    for (int spins = 1; __atomic_load_n(flag, __ATOMIC_ACQUIRE) < value; spins++) {
        if (spins % WAIT_SPINS == 0) sched_yield(); else CPU_RELAX();
    }
}
