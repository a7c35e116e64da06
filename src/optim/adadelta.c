/* crater optim: Adadelta, one pass over p, g, the square average and the accumulated
 * update.  Order of operations: torch/optim/adadelta.py, _single_tensor_adadelta (eps
 * inside both square roots, and an lr that scales the update, default 1).
 * https://pytorch.org/docs/1.13/generated/torch.optim.Adadelta.html */
#include "kernel.h"

#define ADADELTA(NAME, T, SQRT)                                                            \
  void NAME(T *restrict p, const T *restrict g, T *restrict sq, T *restrict acc, size_t n, \
            const ct_adadelta_args *a) {                                                   \
    const T rho = (T)a->rho, c = (T)(1 - a->rho), eps = (T)a->eps, nlr = (T)-a->lr;        \
    const T sgn = a->maximize ? -1 : 1, wd = (T)a->weight_decay;                           \
    const bool l2 = a->weight_decay != 0;                                                  \
    for (size_t i = 0; i < n; i++) {                                                       \
      T gi = sgn * g[i];                                                                   \
      if (l2) gi = gi + wd * p[i];                                                         \
      T s = sq[i] * rho + (c * gi) * gi;                                                   \
      sq[i] = s;                                                                           \
      T d = SQRT(acc[i] + eps) / SQRT(s + eps) * gi;                                       \
      acc[i] = acc[i] * rho + (c * d) * d;                                                 \
      p[i] = p[i] + nlr * d;                                                               \
    }                                                                                      \
  }

ADADELTA(ct_optim_adadelta_f32, float, sqrtf)
ADADELTA(ct_optim_adadelta_f64, double, sqrt)
