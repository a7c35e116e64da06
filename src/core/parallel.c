/* crater core: splits a flat kernel's range over crater.set_num_threads() threads.
 * Large elementwise ops and optimizer steps are memory-bound, and on this 2-core machine
 * a second thread nearly halves them (examples/bench); small tensors stay on the caller.
 * The threads are a persistent pool: a job hands each worker its range, the caller runs
 * the first, and the workers spin a little (~400 us) before they sleep, so the short
 * jobs of a training step are handed over without a thread creation or a futex wake.
 * The matrix products run on the same pool (src/ops/matmul.c keeps OpenBLAS on one
 * thread), so no two pools spin against each other on the cores. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "tensor.h"

#define MAXTHREADS 16
#define GRAIN ((size_t)1 << 18) /* elements per thread below which threads don't pay */
/* How long an idle worker polls before it sleeps: past the gaps between one training
 * step's jobs (the MLP bench slept 2-3 times a batch at 100 us, 0.5 at 400 us, and ran
 * 2-3% faster in runs alternating the two in one process; the CNN the same). */
#define SPIN_NS 400000

static struct {
  pthread_mutex_t mu; /* guards sleeping workers and the caller waiting */
  pthread_cond_t work, done;
  pthread_mutex_t busy; /* one job at a time; another caller runs its job alone */
  int started; /* workers created (ids 1..started) */
  atomic_int go[MAXTHREADS]; /* worker id is asked to help with the current job */
  int sleepers; /* workers waiting on `work` (under mu) */
  bool waiting; /* the caller waits on `done` (under mu) */
  _Atomic uint64_t ticket; /* job << 16 | chunks << 8 | next chunk (see take_chunks) */
  atomic_int finished; /* chunks of the current job run to their end */
  uint64_t jobs; /* jobs started */
  size_t per, n; /* chunk k is [k*per, min(n, (k+1)*per)) */
  ct_range_fn fn;
  void *ctx;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER,
          .work = PTHREAD_COND_INITIALIZER,
          .done = PTHREAD_COND_INITIALIZER,
          .busy = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local bool in_pool; /* a job's kernel that splits again runs alone */

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Polls *v for about SPIN_NS; false if it did not become want meanwhile. */
static bool spin_until(atomic_int *v, int want) {
  double t0 = 0;
  for (int i = 0;; i++) {
    if (atomic_load_explicit(v, memory_order_acquire) == want) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if ((i & 255) == 255) {
      if (t0 == 0) t0 = now_ns();
      else if (now_ns() - t0 > SPIN_NS) return false;
    }
  }
}

/* Runs chunks of the current job until none is left: a thread whose core is taken by
 * another process does fewer, so a busy machine slows a job less than a fixed split.  A
 * chunk is taken by a compare-and-swap of the ticket, which names the job: a worker that
 * wakes after its job's chunks were all taken (the caller ran them) finds none, or the next
 * job's, and the caller waits only for chunks being run, never for a worker to wake up (a
 * futex wake costs tens of microseconds here, and a neighbour on the other core more).  A
 * taken chunk keeps its job running (the caller waits for it), so the job's fields hold. */
static void take_chunks(bool worker) {
  uint64_t t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
  for (;;) {
    size_t k = t & 0xff, nchunks = t >> 8 & 0xff;
    if (k >= nchunks) return;
    if (!atomic_compare_exchange_weak_explicit(&pool.ticket, &t, t + 1, memory_order_acq_rel,
                                               memory_order_acquire))
      continue; /* t is the ticket now */
    size_t lo = k * pool.per, hi = lo + pool.per < pool.n ? lo + pool.per : pool.n;
    pool.fn(pool.ctx, lo, hi);
    if (atomic_fetch_add_explicit(&pool.finished, 1, memory_order_acq_rel) + 1 == (int)nchunks && worker) {
      pthread_mutex_lock(&pool.mu); /* the job's last chunk: the caller may sleep on it */
      if (pool.waiting) pthread_cond_signal(&pool.done);
      pthread_mutex_unlock(&pool.mu);
    }
    t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
  }
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  in_pool = true;
  for (;;) {
    if (!spin_until(&pool.go[id], 1)) {
      pthread_mutex_lock(&pool.mu);
      pool.sleepers++;
      while (atomic_load_explicit(&pool.go[id], memory_order_acquire) == 0)
        pthread_cond_wait(&pool.work, &pool.mu);
      pool.sleepers--;
      pthread_mutex_unlock(&pool.mu);
    }
    atomic_store_explicit(&pool.go[id], 0, memory_order_relaxed);
    take_chunks(true);
  }
  return NULL;
}

/* After fork only the forking thread exists: the child starts a pool of its own. */
static void atfork_child(void) {
  pthread_mutex_init(&pool.mu, NULL);
  pthread_mutex_init(&pool.busy, NULL);
  pthread_cond_init(&pool.work, NULL);
  pthread_cond_init(&pool.done, NULL);
  pool.started = pool.sleepers = 0;
  pool.waiting = false;
  for (int i = 0; i < MAXTHREADS; i++) atomic_store(&pool.go[i], 0);
}

/* Workers 1..nt-1 exist afterwards, or as many as could be created; returns that count + 1.
 * Workers block every signal, so that Ctrl-C and the like reach the Lua thread. */
static int grow(int nt) {
  static bool registered;
  if (!registered) registered = pthread_atfork(NULL, NULL, atfork_child) == 0;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  while (pool.started < nt - 1) {
    pthread_t tid;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&tid, &at, worker, (void *)(intptr_t)(pool.started + 1)) == 0;
    pthread_attr_destroy(&at);
    if (!ok) break;
    pool.started++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return pool.started + 1 < nt ? pool.started + 1 : nt;
}

/* Runs fn over [0, n) on nt threads, in up to 4 chunks per thread whose bounds are
 * multiples of align and that hold at least `least` elements each. */
static void run_split(size_t n, int nt, size_t align, size_t least, ct_range_fn fn, void *ctx) {
  if (in_pool || pthread_mutex_trylock(&pool.busy) != 0) {
    fn(ctx, 0, n);
    return;
  }
  nt = grow(nt);
  size_t nchunks = n / (least > align ? least : align);
  if (nchunks > 4 * (size_t)nt) nchunks = 4 * (size_t)nt;
  if (nchunks < (size_t)nt) nchunks = (size_t)nt;
  pool.per = (n / nchunks + align - 1) / align * align;
  nchunks = (n + pool.per - 1) / pool.per; /* at most 4 * MAXTHREADS: 8 bits of the ticket */
  pool.n = n;
  pool.fn = fn;
  pool.ctx = ctx;
  atomic_store_explicit(&pool.finished, 0, memory_order_relaxed);
  atomic_store_explicit(&pool.ticket, ++pool.jobs << 16 | nchunks << 8, memory_order_release);
  if (nt > 1) {
    for (int i = 1; i < nt; i++) atomic_store_explicit(&pool.go[i], 1, memory_order_release);
    pthread_mutex_lock(&pool.mu);
    if (pool.sleepers > 0) pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
  }
  in_pool = true;
  take_chunks(false);
  in_pool = false;
  if (nt > 1 && !spin_until(&pool.finished, (int)nchunks)) {
    pthread_mutex_lock(&pool.mu);
    pool.waiting = true;
    while (atomic_load_explicit(&pool.finished, memory_order_acquire) < (int)nchunks)
      pthread_cond_wait(&pool.done, &pool.mu);
    pool.waiting = false;
    pthread_mutex_unlock(&pool.mu);
  }
  pthread_mutex_unlock(&pool.busy);
}

static int num_threads = 0; /* 0: not asked yet */

void ct_set_num_threads(int n) { num_threads = n < 1 ? 1 : n; }

/* The default, as OpenBLAS picks its own: OPENBLAS_NUM_THREADS, GOTO_NUM_THREADS or
 * OMP_NUM_THREADS when set, else the cores online. */
int ct_get_num_threads(void) {
  if (num_threads == 0) {
    const char *vars[] = {"OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"};
    for (int i = 0; i < 3 && num_threads == 0; i++) {
      const char *s = getenv(vars[i]);
      long v = s ? strtol(s, NULL, 10) : 0;
      if (v > 0) num_threads = v > 256 ? 256 : (int)v;
    }
    if (num_threads == 0) {
      long cores = sysconf(_SC_NPROCESSORS_ONLN);
      num_threads = cores > 0 ? (cores > 256 ? 256 : (int)cores) : 1;
    }
  }
  return num_threads;
}

static int threads_for(size_t n, size_t grain) {
  int nt = ct_get_num_threads();
  if (nt > MAXTHREADS) nt = MAXTHREADS;
  if (nt > 1 && n / grain < (size_t)nt) nt = (int)(n / grain);
  return nt;
}

void ct_parallel_grain(size_t n, size_t grain, ct_range_fn fn, void *ctx) {
  int nt = n < 2 * grain ? 1 : threads_for(n, grain); /* below: one chunk whatever the count */
  if (nt <= 1) {
    fn(ctx, 0, n);
    return;
  }
  run_split(n, nt, 16, grain / 4, fn, ctx); /* 64-byte multiples: no false sharing */
}

void ct_parallel(size_t n, ct_range_fn fn, void *ctx) { ct_parallel_grain(n, GRAIN, fn, ctx); }

void ct_parallel_blocks(size_t nblocks, size_t block, ct_range_fn fn, void *ctx) {
  size_t n = nblocks * block;
  int nt = n < 2 * GRAIN ? 1 : threads_for(n, GRAIN);
  if (nt > (int)nblocks) nt = (int)nblocks;
  if (nt <= 1) {
    fn(ctx, 0, nblocks);
    return;
  }
  run_split(nblocks, nt, 1, 1, fn, ctx);
}
