/* crater core: splits a flat kernel's range over crater.set_num_threads() threads.
 * Large elementwise ops and optimizer steps are memory-bound, and on this 2-core machine
 * a second thread nearly halves them (examples/bench); small tensors stay on the caller. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "tensor.h"

#define MAXTHREADS 16
#define GRAIN ((size_t)1 << 18)   /* elements per thread below which threads don't pay */

typedef struct chunk {
  ct_range_fn fn;
  void *ctx;
  size_t lo, hi;
} chunk;

static void *run_chunk(void *arg) {
  chunk *c = arg;
  c->fn(c->ctx, c->lo, c->hi);
  return NULL;
}

/* Runs fn over [0, n) split into nt contiguous ranges whose bounds are multiples of align. */
static void run_split(size_t n, int nt, size_t align, ct_range_fn fn, void *ctx) {
  chunk c[MAXTHREADS];
  pthread_t tid[MAXTHREADS];
  bool started[MAXTHREADS] = {false};
  size_t per = (n / (size_t)nt + align - 1) / align * align;
  for (int i = 0; i < nt; i++) {
    size_t lo = per * (size_t)i, hi = i == nt - 1 ? n : per * (size_t)(i + 1);
    c[i] = (chunk){fn, ctx, lo < n ? lo : n, hi < n ? hi : n};
  }
  for (int i = 1; i < nt; i++)   /* a thread that cannot start runs on this one below */
    started[i] = pthread_create(&tid[i], NULL, run_chunk, &c[i]) == 0;
  run_chunk(&c[0]);
  for (int i = 1; i < nt; i++) {
    if (started[i]) pthread_join(tid[i], NULL);
    else run_chunk(&c[i]);
  }
}

static int num_threads = 0;   /* 0: not asked yet */

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

static int threads_for(size_t n) {
  int nt = ct_get_num_threads();
  if (nt > MAXTHREADS) nt = MAXTHREADS;
  if (nt > 1 && n / GRAIN < (size_t)nt) nt = (int)(n / GRAIN);
  return nt;
}

void ct_parallel(size_t n, ct_range_fn fn, void *ctx) {
  if (n < 2 * GRAIN) { fn(ctx, 0, n); return; }   /* one chunk whatever the thread count */
  int nt = threads_for(n);
  if (nt <= 1) { fn(ctx, 0, n); return; }
  run_split(n, nt, 16, fn, ctx);   /* 64-byte multiples: no false sharing */
}

void ct_parallel_blocks(size_t nblocks, size_t block, ct_range_fn fn, void *ctx) {
  size_t n = nblocks * block;
  int nt = n < 2 * GRAIN ? 1 : threads_for(n);
  if (nt > (int)nblocks) nt = (int)nblocks;
  if (nt <= 1) { fn(ctx, 0, nblocks); return; }
  run_split(nblocks, nt, 1, fn, ctx);
}
