/* crater optim: Rprop, one pass over p, g, the previous gradient and the step sizes.
 * Order of operations: torch/optim/rprop.py, _single_tensor_rprop: after a sign change the
 * gradient counts as zero (no move, and no sign change seen next step).
 * https://pytorch.org/docs/1.13/generated/torch.optim.Rprop.html */
#include "kernel.h"

#define RPROP(NAME, T)                                                                         \
  void NAME(T *restrict p, const T *restrict g, T *restrict prev, T *restrict step, size_t n,  \
            const ct_rprop_args *a) {                                                          \
    const T em = (T)a->etaminus, ep = (T)a->etaplus;                                           \
    const T lo = (T)a->step_min, hi = (T)a->step_max, sgn = a->maximize ? -1 : 1;              \
    for (size_t i = 0; i < n; i++) {                                                           \
      T gi = sgn * g[i], pr = gi * prev[i];                                                    \
      /* sign(g*prev) mapped to etaplus, etaminus, or 1 for 0 and NaN (torch.sign(NaN) = 0) */ \
      T st = step[i] * (pr > 0 ? ep : pr < 0 ? em : 1);                                        \
      st = st < lo ? lo : st > hi ? hi : st; /* NaN stays NaN, as in clamp_ */                 \
      step[i] = st;                                                                            \
      gi = pr < 0 ? 0 : gi;                                                                    \
      p[i] = p[i] + (gi > 0 ? -st : gi < 0 ? st : 0);                                          \
      prev[i] = gi;                                                                            \
    }                                                                                          \
  }

RPROP(ct_optim_rprop_f32, float)
RPROP(ct_optim_rprop_f64, double)
