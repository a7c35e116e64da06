/* blas_ref.c: the machine's reference figures for `make bench`, without crater or Lua.
   run.lua compiles it at bench time (cc ... -lopenblas -lpthread) and runs
     blas_ref copy  <n> <threads> <reps>   plain float copy of n elements, GB/s (8 bytes per element)
     blas_ref sgemm <n> <threads> <reps>   OpenBLAS cblas_sgemm on n x n float32, GFLOP/s
   Each prints one line `BENCH <name> <median> <min> <max> <unit>` over reps timed runs after one warm-up. */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void openblas_set_num_threads(int n);

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* prints the median, min and max of v[0..n-1] (sorted in place) */
static void report(const char *name, double *v, int n, const char *unit) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  double med = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  printf("BENCH %s %.6g %.6g %.6g %s\n", name, med, v[0], v[n - 1], unit);
}

typedef struct {
  float *dst;
  const float *src;
  size_t n;
} chunk;

static void *copy_chunk(void *p) {
  chunk *c = p;
  memcpy(c->dst, c->src, c->n * sizeof(float));
  return NULL;
}

/* copies src to dst with nt threads, one contiguous chunk each */
static void copy_threads(float *dst, const float *src, size_t n, int nt) {
  pthread_t th[16];
  chunk c[16];
  size_t per = (n + (size_t)nt - 1) / (size_t)nt;
  for (int t = 0; t < nt; t++) {
    size_t lo = per * (size_t)t, hi = lo + per > n ? n : lo + per;
    c[t] = (chunk){dst + lo, src + lo, hi > lo ? hi - lo : 0};
    if (t > 0) pthread_create(&th[t], NULL, copy_chunk, &c[t]);
  }
  copy_chunk(&c[0]);
  for (int t = 1; t < nt; t++) pthread_join(th[t], NULL);
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: blas_ref copy|sgemm <n> <threads> <reps>\n");
    return 2;
  }
  size_t n = strtoul(argv[2], NULL, 10);
  int nt = atoi(argv[3]), reps = atoi(argv[4]);
  if (n == 0 || nt < 1 || nt > 16 || reps < 1 || reps > 1000) {
    fprintf(stderr, "blas_ref: bad arguments\n");
    return 2;
  }
  double *v = malloc(sizeof(double) * (size_t)reps);
  char name[64];
  if (strcmp(argv[1], "copy") == 0) {
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    if (!a || !b) return 1;
    for (size_t i = 0; i < n; i++) a[i] = (float)i, b[i] = 0;
    copy_threads(b, a, n, nt); /* warm-up, touches the pages */
    for (int r = 0; r < reps; r++) {
      double t0 = now();
      copy_threads(b, a, n, nt);
      v[r] = 8.0 * (double)n / (now() - t0) / 1e9;
    }
    snprintf(name, sizeof name, "bw.memcpy.t%d", nt);
    report(name, v, reps, "GB/s");
  } else if (strcmp(argv[1], "sgemm") == 0) {
    float *a = malloc(n * n * sizeof(float)), *b = malloc(n * n * sizeof(float)),
          *c = malloc(n * n * sizeof(float));
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    openblas_set_num_threads(nt);
    int m = (int)n;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1, a, m, b, m, 0, c, m);
    for (int r = 0; r < reps; r++) {
      double t0 = now();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, m, m, 1, a, m, b, m, 0, c, m);
      v[r] = 2.0 * (double)n * (double)n * (double)n / (now() - t0) / 1e9;
    }
    snprintf(name, sizeof name, "matmul.%zu.t%d", n, nt);
    report(name, v, reps, "GFLOP/s");
  } else {
    fprintf(stderr, "blas_ref: unknown mode '%s'\n", argv[1]);
    return 2;
  }
  return 0;
}
