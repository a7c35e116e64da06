/* crater optim: ASGD, one pass over p, g and the running average ax.  Order of
 * operations: torch/optim/asgd.py, _single_tensor_asgd; the caller keeps eta and mu.
 * https://pytorch.org/docs/1.13/generated/torch.optim.ASGD.html */
#include "kernel.h"

#define ASGD(NAME, T)                                                                              \
  void NAME(T *restrict p, const T *restrict g, T *restrict ax, size_t n, const ct_asgd_args *a) { \
    const T decay = (T)(1 - a->lambd * a->eta), neta = (T)-a->eta, mu = (T)a->mu;                  \
    const T sgn = a->maximize ? -1 : 1, wd = (T)a->weight_decay;                                   \
    const bool l2 = a->weight_decay != 0, avg = a->mu != 1;                                        \
    for (size_t i = 0; i < n; i++) {                                                               \
      T gi = sgn * g[i];                                                                           \
      if (l2) gi = gi + wd * p[i];                                                                 \
      T pi = p[i] * decay;                                                                         \
      pi = pi + neta * gi;                                                                         \
      p[i] = pi;                                                                                   \
      ax[i] = avg ? ax[i] + (pi - ax[i]) * mu : pi;                                                \
    }                                                                                              \
  }

ASGD(ct_optim_asgd_f32, float)
ASGD(ct_optim_asgd_f64, double)
