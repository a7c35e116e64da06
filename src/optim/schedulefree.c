/* crater optim: schedule-free AdamW and SGD (Defazio et al. 2024), one pass over y (the
 * parameter), g, z (and v, m).  Order of operations: facebookresearch/schedule_free,
 * adamw_schedulefree.py and sgd_schedulefree.py, the per-tensor (not foreach) branch:
 * y moves toward z by ckp1 and along the step, z takes the plain step.  The reference
 * divides p.grad in place; crater leaves the gradient as backward made it. */
#include "kernel.h"

#define SF_ADAMW(NAME, T, SQRT)                                                                        \
  void NAME(T *restrict y, const T *restrict g, T *restrict z, T *restrict v, T *restrict m, size_t n, \
            const ct_sf_adamw_args *a) {                                                               \
    const T b2 = (T)a->beta2, c2 = (T)(1 - a->beta2), bc2 = (T)a->bc2, eps = (T)a->eps;                \
    const T im = (T)a->inner_momentum, cm = (T)(1 - a->inner_momentum), bc1 = (T)a->bc1;               \
    const T wd = (T)a->weight_decay, w = (T)a->ckp1, lr = (T)a->lr;                                    \
    const T ystep = (T)(a->lr * (a->beta1 * (1 - a->ckp1) - 1));                                       \
    const bool lo = a->ckp1 < 0.5, l2 = a->weight_decay != 0;                                          \
    /* with and without inner momentum, a loop each: no branch on memory, both vectorise */            \
    if (m)                                                                                             \
      for (size_t i = 0; i < n; i++) { SF_ADAMW_ELEM(T, SQRT, 1) }                                     \
    else                                                                                               \
      for (size_t i = 0; i < n; i++) { SF_ADAMW_ELEM(T, SQRT, 0) }                                     \
  }

#define SF_ADAMW_ELEM(T, SQRT, MOM)             \
  T gi = g[i], vi = v[i] * b2 + (c2 * gi) * gi; \
  v[i] = vi;                                    \
  T den = SQRT(vi / bc2) + eps, u;              \
  if (MOM) {                                    \
    T mi = m[i] * im + cm * gi;                 \
    m[i] = mi;                                  \
    u = (mi / bc1) / den;                       \
  } else u = gi / den;                          \
  T decayed = u + wd * y[i];                    \
  u = l2 ? decayed : u;                         \
  T yi = CT_LERP(T, y[i], z[i], w, lo);         \
  y[i] = yi + ystep * u;                        \
  z[i] = z[i] - lr * u;

SF_ADAMW(ct_optim_sf_adamw_f32, float, sqrtf)
SF_ADAMW(ct_optim_sf_adamw_f64, double, sqrt)

#define SF_SGD(NAME, T)                                                                             \
  void NAME(T *restrict y, const T *restrict g, T *restrict z, size_t n, const ct_sf_sgd_args *a) { \
    const T wd = (T)a->weight_decay, w = (T)a->ckp1, lr = (T)a->lr;                                 \
    const T ystep = (T)(a->lr * (a->momentum * (1 - a->ckp1) - 1));                                 \
    const bool lo = a->ckp1 < 0.5, l2 = a->weight_decay != 0;                                       \
    for (size_t i = 0; i < n; i++) {                                                                \
      T u = g[i];                                                                                   \
      if (l2) u = u + wd * y[i];                                                                    \
      T yi = CT_LERP(T, y[i], z[i], w, lo);                                                         \
      y[i] = yi + ystep * u;                                                                        \
      z[i] = z[i] - lr * u;                                                                         \
    }                                                                                               \
  }

SF_SGD(ct_optim_sf_sgd_f32, float)
SF_SGD(ct_optim_sf_sgd_f64, double)
