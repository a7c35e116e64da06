/* crater optim: Muon (Jordan et al. 2024), KellerJordan/Muon muon.py, SingleDeviceMuon:
 * Nesterov momentum, then the quintic Newton-Schulz iteration zeropower_via_newtonschulz5
 * on the update, as OpenBLAS products into workspaces the caller keeps, so a step
 * allocates nothing. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "../ops/ops.h"
#include "kernel.h"

/* cblas_?gemm's row-major calls on crater's threads (OpenBLAS itself stays on one). */
#define GEMM_ON(dt)                                                                                         \
  (CBLAS_ORDER o, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha, const void *a, \
   int lda, const void *b, int ldb, double beta, void *c, int ldc) {                                        \
    (void)o;                                                                                                \
    ct_gemm(dt, ta == CblasTrans, tb == CblasTrans, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);          \
  }
static void sgemm GEMM_ON(CT_F32) static void dgemm GEMM_ON(CT_F64)

/* The reference's quintic coefficients (a, b, c). */
#define NS_A 3.4445
#define NS_B (-4.7750)
#define NS_C 2.0315

#define MUON(NAME, T, GEMM)                                                                                  \
  void NAME(T *restrict p, const T *restrict g, T *restrict m, T *x, T *y, T *restrict A, T *restrict B,     \
            size_t rows, size_t cols, const ct_muon_args *o) {                                               \
    const size_t n = rows * cols;                                                                            \
    const T w = (T)(1 - o->momentum), b = (T)o->momentum;                                                    \
    const bool wlo = 1 - o->momentum < 0.5, blo = o->momentum < 0.5;                                         \
    const bool tall = rows > cols;                                                                           \
    const size_t K = tall ? cols : rows, N = tall ? rows : cols; /* X is K x N, K <= N */                    \
    double ss = 0;                                                                                           \
    for (size_t i = 0; i < n; i++) { /* m = lerp(m, g, 1-b); u = lerp(g, m, b) into X */                     \
      T mi = CT_LERP(T, m[i], g[i], w, wlo);                                                                 \
      T u = CT_LERP(T, g[i], mi, b, blo);                                                                    \
      m[i] = mi;                                                                                             \
      if (tall) x[(i % cols) * rows + i / cols] = u;                                                         \
      else x[i] = u;                                                                                         \
      ss += (double)u * (double)u;                                                                           \
    }                                                                                                        \
    const T den = (T)sqrt(ss) + (T)1e-7;                                                                     \
    for (size_t i = 0; i < n; i++) x[i] = x[i] / den;                                                        \
    for (int s = 0; s < o->steps; s++) {                                                                     \
      /* A = X X^T;  B = b A + c A A;  Y = a X + B X */                                                      \
      GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)K, (int)K, (int)N, 1, x, (int)N, x, (int)N, 0, A,   \
           (int)K);                                                                                          \
      for (size_t i = 0; i < K * K; i++) B[i] = (T)NS_B * A[i];                                              \
      GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)K, (int)K, (int)K, (T)NS_C, A, (int)K, A, (int)K, \
           1, B, (int)K);                                                                                    \
      for (size_t i = 0; i < n; i++) y[i] = (T)NS_A * x[i];                                                  \
      GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)K, (int)N, (int)K, 1, B, (int)K, x, (int)N, 1, y, \
           (int)N);                                                                                          \
      T *t = x;                                                                                              \
      x = y;                                                                                                 \
      y = t;                                                                                                 \
    }                                                                                                        \
    const T decay = (T)(1 - o->lr * o->weight_decay), step = (T)(-o->lr * o->scale);                         \
    for (size_t i = 0; i < n; i++) {                                                                         \
      T oi = tall ? x[(i % cols) * rows + i / cols] : x[i];                                                  \
      p[i] = p[i] * decay + step * oi;                                                                       \
    }                                                                                                        \
  }

    MUON(ct_optim_muon_f32, float, sgemm) MUON(ct_optim_muon_f64, double, dgemm)
