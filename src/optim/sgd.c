/* crater optim: SGD with momentum, dampening, Nesterov and weight decay, one pass over
 * p, g and the momentum buffer.  Order of operations: torch/optim/sgd.py, _single_tensor_sgd
 * (https://pytorch.org/docs/1.13/generated/torch.optim.SGD.html). */
#include "kernel.h"

#define SGD(NAME, T)                                                                               \
  void NAME(T *restrict p, const T *restrict g, T *restrict buf, size_t n, const ct_sgd_args *a) { \
    const T sgn = a->maximize ? -1 : 1, wd = (T)a->weight_decay, mom = (T)a->momentum;             \
    const T damp = (T)(1 - a->dampening), nlr = (T)-a->lr;                                         \
    const bool l2 = a->weight_decay != 0, first = a->first, nest = a->nesterov;                    \
    if (buf == NULL) {                                                                             \
      for (size_t i = 0; i < n; i++) {                                                             \
        T d = sgn * g[i];                                                                          \
        if (l2) d = d + wd * p[i];                                                                 \
        p[i] = p[i] + nlr * d;                                                                     \
      }                                                                                            \
      return;                                                                                      \
    }                                                                                              \
    for (size_t i = 0; i < n; i++) {                                                               \
      T d = sgn * g[i];                                                                            \
      if (l2) d = d + wd * p[i];                                                                   \
      T b = first ? d : buf[i] * mom + damp * d; /* the first step clones d */                     \
      buf[i] = b;                                                                                  \
      d = nest ? d + mom * b : b;                                                                  \
      p[i] = p[i] + nlr * d;                                                                       \
    }                                                                                              \
  }

SGD(ct_optim_sgd_f32, float)
SGD(ct_optim_sgd_f64, double)
