/* crater optim: LAMB (You et al. 2019), as cybertronai/pytorch-lamb lamb.py: Adam's
 * direction a = m/(sqrt(v) + eps) (+ wd*p), scaled by the trust ratio |p| / |a|.  Two
 * passes: the moments and both squared norms, then the step once the ratio is known. */
#include "kernel.h"

#define LAMB_DIR(T, SQRT) (m[i] / (SQRT(v[i]) + eps) + (l2 ? wd * p[i] : 0))

/* the moments of element K and its squares into lane Q */
#define LAMB_ELEM(T, SQRT, K, Q)                                            \
  {                                                                         \
    const size_t k = (K);                                                   \
    T gk = g[k], mk = m[k] * b1 + c1 * gk, vk = v[k] * b2 + (c2 * gk) * gk; \
    m[k] = mk;                                                              \
    v[k] = vk;                                                              \
    T d = mk / (SQRT(vk) + eps) + (l2 ? wd * p[k] : 0);                     \
    pp[Q] += (double)(p[k] * p[k]);                                         \
    aa[Q] += (double)(d * d);                                               \
  }

#define LAMB(STATS, STEP, T, SQRT)                                                                      \
  void STATS(const T *restrict p, const T *restrict g, T *restrict m, T *restrict v, size_t n,          \
             const ct_lamb_args *a, double *sums) {                                                     \
    const T b1 = (T)a->beta1, c1 = (T)(1 - a->beta1), b2 = (T)a->beta2, c2 = (T)(1 - a->beta2);         \
    const T eps = (T)a->eps, wd = (T)a->weight_decay;                                                   \
    const bool l2 = a->weight_decay != 0;                                                               \
    /* eight lanes of partial sums: the inner loop vectorises, the order is fixed */                    \
    double pp[8] = {0}, aa[8] = {0};                                                                    \
    size_t i = 0;                                                                                       \
    for (; i + 8 <= n; i += 8)                                                                          \
      for (size_t q = 0; q < 8; q++) { LAMB_ELEM(T, SQRT, i + q, q) }                                   \
    for (; i < n; i++) { LAMB_ELEM(T, SQRT, i, 0) }                                                     \
    sums[0] = sums[1] = 0;                                                                              \
    for (int q = 0; q < 8; q++) {                                                                       \
      sums[0] += pp[q];                                                                                 \
      sums[1] += aa[q];                                                                                 \
    }                                                                                                   \
  }                                                                                                     \
  void STEP(T *restrict p, const T *restrict m, const T *restrict v, size_t n, const ct_lamb_args *a) { \
    const T eps = (T)a->eps, wd = (T)a->weight_decay, step = (T)a->step;                                \
    const bool l2 = a->weight_decay != 0;                                                               \
    for (size_t i = 0; i < n; i++) p[i] = p[i] + step * LAMB_DIR(T, SQRT);                              \
  }

LAMB(ct_optim_lamb_stats_f32, ct_optim_lamb_f32, float, sqrtf)
LAMB(ct_optim_lamb_stats_f64, ct_optim_lamb_f64, double, sqrt)
