/* crater optim: Adagrad, one pass over p, g and the sum of squares.
 * Order of operations: torch/optim/adagrad.py, _single_tensor_adagrad (eps outside the sqrt).
 * https://pytorch.org/docs/1.13/generated/torch.optim.Adagrad.html */
#include "kernel.h"

#define ADAGRAD(NAME, T, SQRT)                                                                         \
  void NAME(T *restrict p, const T *restrict g, T *restrict sum, size_t n, const ct_adagrad_args *a) { \
    const double clr = a->lr / (1 + (a->step - 1) * a->lr_decay);                                      \
    const T nclr = (T)-clr, eps = (T)a->eps, wd = (T)a->weight_decay;                                  \
    const T sgn = a->maximize ? -1 : 1;                                                                \
    const bool l2 = a->weight_decay != 0;                                                              \
    for (size_t i = 0; i < n; i++) {                                                                   \
      T gi = sgn * g[i];                                                                               \
      if (l2) gi = gi + wd * p[i];                                                                     \
      T s = sum[i] + gi * gi;                                                                          \
      sum[i] = s;                                                                                      \
      p[i] = p[i] + (nclr * gi) / (SQRT(s) + eps);                                                     \
    }                                                                                                  \
  }

ADAGRAD(ct_optim_adagrad_f32, float, sqrtf)
ADAGRAD(ct_optim_adagrad_f64, double, sqrt)
