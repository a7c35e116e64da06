/* crater optim: RAdam, one pass over p, g, m and v.  Order of operations:
 * torch/optim/radam.py, _single_tensor_radam: the rectification term is computed once per
 * step; while rho_t <= 5 the step is plain bias-corrected momentum.  maximize and decoupled
 * weight decay are PyTorch 2.x options. https://pytorch.org/docs/1.13/generated/torch.optim.RAdam.html */
#include "kernel.h"

#define RADAM(NAME, T, SQRT)                                                                     \
  void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v, size_t n,          \
            const ct_radam_args *a) {                                                            \
    const double st = a->step, b2t = pow(a->beta2, st);                                          \
    const double bc1 = 1 - pow(a->beta1, st), bc2 = 1 - b2t;                                     \
    const double rho_inf = 2 / (1 - a->beta2) - 1;                                               \
    const double rho_t = rho_inf - 2 * st * b2t / bc2;                                           \
    const bool rectify = rho_t > 5;                                                              \
    const T rect = rectify                                                                       \
        ? (T)sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) \
        : 1;                                                                                     \
    CT_ADAM_CONSTANTS(T, k, a);                                                                  \
    const T tbc1 = (T)bc1, sbc2 = (T)sqrt(bc2), lr = (T)a->lr, eps = (T)a->eps;                  \
    for (size_t i = 0; i < n; i++) {                                                             \
      CT_ADAM_MOMENTS(T, k, p, g, m, v, i, gi, mi, vi)                                           \
      T u = (mi / tbc1) * lr;                                                                    \
      if (rectify) u = (u * ((1 / (SQRT(vi) + eps)) * sbc2)) * rect;                             \
      p[i] = p[i] - u;                                                                           \
    }                                                                                            \
  }

RADAM(ct_optim_radam_f32, float, sqrtf)
RADAM(ct_optim_radam_f64, double, sqrt)
