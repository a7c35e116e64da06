/* crater optim: Adam and AdamW (with AMSGrad), one pass over p, g, m, v (and vmax).
 * Order of operations: torch/optim/adam.py and adamw.py, _single_tensor_adam(w): eps is
 * added outside the sqrt after dividing by sqrt(1-beta2^t), and lr/(1-beta1^t) scales m.
 * https://pytorch.org/docs/1.13/generated/torch.optim.Adam.html */
#include "kernel.h"

#define ADAM(NAME, T, SQRT)                                                                               \
  void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v, T *restrict vmax, size_t n, \
            const ct_adam_args *a) {                                                                      \
    const double bc1 = 1 - pow(a->beta1, a->step), bc2 = 1 - pow(a->beta2, a->step);                      \
    CT_ADAM_CONSTANTS(T, k, a);                                                                           \
    const T nstep = (T) - (a->lr / bc1), bc2s = (T)sqrt(bc2), eps = (T)a->eps;                            \
    const bool ams = a->amsgrad && vmax != NULL;                                                          \
    for (size_t i = 0; i < n; i++) {                                                                      \
      CT_ADAM_MOMENTS(T, k, p, g, m, v, i, gi, mi, vi)                                                    \
      if (ams) {                                                                                          \
        vi = CT_NANMAX(vmax[i], vi);                                                                      \
        vmax[i] = vi;                                                                                     \
      }                                                                                                   \
      p[i] = p[i] + (nstep * mi) / (SQRT(vi) / bc2s + eps);                                               \
    }                                                                                                     \
  }

ADAM(ct_optim_adam_f32, float, sqrtf)
ADAM(ct_optim_adam_f64, double, sqrt)
