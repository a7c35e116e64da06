/* crater optim: Adamax, one pass over p, g, m and the infinity norm u.  Order of
 * operations: torch/optim/adamax.py, _single_tensor_adamax (eps is added to |g| before the
 * max, not to the denominator). https://pytorch.org/docs/1.13/generated/torch.optim.Adamax.html */
#include "kernel.h"

#define ADAMAX(NAME, T, FABS)                                                            \
  void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict u, size_t n,  \
            const ct_adamax_args *a) {                                                   \
    const T b1 = (T)a->beta1, c1 = (T)(1 - a->beta1), b2 = (T)a->beta2, eps = (T)a->eps; \
    const T nclr = (T) - (a->lr / (1 - pow(a->beta1, a->step)));                         \
    const T sgn = a->maximize ? -1 : 1, wd = (T)a->weight_decay;                         \
    const bool l2 = a->weight_decay != 0;                                                \
    for (size_t i = 0; i < n; i++) {                                                     \
      T gi = sgn * g[i];                                                                 \
      if (l2) gi = gi + wd * p[i];                                                       \
      T mi = m[i] * b1 + c1 * gi;                                                        \
      m[i] = mi;                                                                         \
      T ui = u[i] * b2, ai = FABS(gi) + eps;                                             \
      ui = CT_NANMAX(ui, ai);                                                            \
      u[i] = ui;                                                                         \
      p[i] = p[i] + (nclr * mi) / ui;                                                    \
    }                                                                                    \
  }

ADAMAX(ct_optim_adamax_f32, float, fabsf)
ADAMAX(ct_optim_adamax_f64, double, fabs)
