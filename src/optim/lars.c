/* crater optim: LARS (You et al. 2017), as facebookresearch/moco-v3 moco/optimizer.py:
 * for a matrix, dp = (g + wd*p) * q with q the trust ratio tc*|p|/|dp|; vectors (biases,
 * norm gains) take dp = g.  mu = momentum*mu + dp; p -= lr*mu.  The norms come first
 * (ct_optim_lars_norms), then one pass. */
#include "kernel.h"

#define LARS(NORMS, STEP, T)                                                                       \
  void NORMS(const T *restrict p, const T *restrict g, size_t n, double wd, double *sums) {        \
    const T w = (T)wd;                                                                             \
    double pp = 0, dd = 0;                                                                         \
    for (size_t i = 0; i < n; i++) {                                                               \
      T d = g[i] + w * p[i];                                                                       \
      pp += (double)(p[i] * p[i]);                                                                 \
      dd += (double)(d * d);                                                                       \
    }                                                                                              \
    sums[0] = pp;                                                                                  \
    sums[1] = dd;                                                                                  \
  }                                                                                                \
  void STEP(T *restrict p, const T *restrict g, T *restrict mu, size_t n, const ct_lars_args *a) { \
    const T wd = (T)a->weight_decay, q = (T)a->q, mom = (T)a->momentum, nlr = (T)-a->lr;           \
    const bool scaled = a->scaled;                                                                 \
    for (size_t i = 0; i < n; i++) {                                                               \
      T d = scaled ? (g[i] + wd * p[i]) * q : g[i];                                                \
      T b = mu[i] * mom + d;                                                                       \
      mu[i] = b;                                                                                   \
      p[i] = p[i] + nlr * b;                                                                       \
    }                                                                                              \
  }

LARS(ct_optim_lars_norms_f32, ct_optim_lars_f32, float)
LARS(ct_optim_lars_norms_f64, ct_optim_lars_f64, double)
