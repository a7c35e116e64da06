/* crater optim: LAMB (You et al. 2019), as cybertronai/pytorch-lamb lamb.py: Adam's
 * direction a = m/(sqrt(v) + eps) (+ wd*p), scaled by the trust ratio |p| / |a|.  Two
 * passes: the moments and both squared norms, then the step once the ratio is known. */
#include "kernel.h"

#define LAMB_DIR(T, SQRT) (m[i] / (SQRT(v[i]) + eps) + (l2 ? wd * p[i] : 0))

#define LAMB(STATS, STEP, T, SQRT)                                                       \
  void STATS(const T *restrict p, const T *restrict g, T *restrict m, T *restrict v,     \
             size_t n, const ct_lamb_args *a, double *sums) {                            \
    const T b1 = (T)a->beta1, c1 = (T)(1 - a->beta1), b2 = (T)a->beta2, c2 = (T)(1 - a->beta2); \
    const T eps = (T)a->eps, wd = (T)a->weight_decay;                                    \
    const bool l2 = a->weight_decay != 0;                                                \
    double pp = 0, aa = 0;                                                               \
    for (size_t i = 0; i < n; i++) {                                                     \
      T gi = g[i];                                                                       \
      m[i] = m[i] * b1 + c1 * gi;                                                        \
      v[i] = v[i] * b2 + (c2 * gi) * gi;                                                 \
      T d = LAMB_DIR(T, SQRT);                                                           \
      pp += (double)(p[i] * p[i]);                                                       \
      aa += (double)(d * d);                                                             \
    }                                                                                    \
    sums[0] = pp;                                                                        \
    sums[1] = aa;                                                                        \
  }                                                                                      \
  void STEP(T *restrict p, const T *restrict m, const T *restrict v, size_t n,           \
            const ct_lamb_args *a) {                                                     \
    const T eps = (T)a->eps, wd = (T)a->weight_decay, step = (T)a->step;                 \
    const bool l2 = a->weight_decay != 0;                                                \
    for (size_t i = 0; i < n; i++) p[i] = p[i] + step * LAMB_DIR(T, SQRT);               \
  }

LAMB(ct_optim_lamb_stats_f32, ct_optim_lamb_f32, float, sqrtf)
LAMB(ct_optim_lamb_stats_f64, ct_optim_lamb_f64, double, sqrt)
