/* crater optim: NAdam, one pass over p, g, m and v.  Order of operations:
 * torch/optim/nadam.py, _single_tensor_nadam: two addcdivs sharing the denominator
 * sqrt(v/(1-beta2^t)) + eps.  The caller supplies the momentum schedule.  maximize and
 * decoupled weight decay are PyTorch 2.x options.
 * https://pytorch.org/docs/1.13/generated/torch.optim.NAdam.html */
#include "kernel.h"

#define NADAM(NAME, T, SQRT)                                                            \
  void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v, size_t n, \
            const ct_nadam_args *a) {                                                   \
    CT_ADAM_CONSTANTS(T, k, a);                                                         \
    const T bc2 = (T)(1 - pow(a->beta2, a->step)), eps = (T)a->eps;                     \
    const T k1 = (T)(-a->lr * (1 - a->mu) / (1 - a->mu_product));                       \
    const T k2 = (T)(-a->lr * a->mu_next / (1 - a->mu_product_next));                   \
    for (size_t i = 0; i < n; i++) {                                                    \
      CT_ADAM_MOMENTS(T, k, p, g, m, v, i, gi, mi, vi)                                  \
      T denom = SQRT(vi / bc2) + eps;                                                   \
      T pi = p[i] + (k1 * gi) / denom;                                                  \
      p[i] = pi + (k2 * mi) / denom;                                                    \
    }                                                                                   \
  }

NADAM(ct_optim_nadam_f32, float, sqrtf)
NADAM(ct_optim_nadam_f64, double, sqrt)
