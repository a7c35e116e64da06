/* crater core: splits a flat kernel's range over crater.set_num_threads() threads.
 * Large elementwise ops and optimizer steps are memory-bound, and on this 2-core machine
 * a second thread nearly halves them (examples/bench); small tensors stay on the caller. */
#include <pthread.h>

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

void ct_parallel(size_t n, ct_range_fn fn, void *ctx) {
  if (n < 2 * GRAIN) { fn(ctx, 0, n); return; }   /* one chunk whatever the thread count */
  int nt = ct_get_num_threads();
  if (nt > MAXTHREADS) nt = MAXTHREADS;
  if (nt > 1 && n / GRAIN < (size_t)nt) nt = (int)(n / GRAIN);
  if (nt <= 1) { fn(ctx, 0, n); return; }
  chunk c[MAXTHREADS];
  pthread_t tid[MAXTHREADS];
  bool started[MAXTHREADS] = {false};
  size_t per = (n / (size_t)nt + 15) & ~(size_t)15;   /* 64-byte multiples: no false sharing */
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
