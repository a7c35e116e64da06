/* crater optim: SophiaG (Liu et al. 2023), one pass over p, g, m and h, and the EMA of
 * the Hessian diagonal estimate.  Order of operations: Liuhong99/Sophia sophia.py,
 * _single_tensor_sophiag and update_hessian. */
#include "kernel.h"

#define SOPHIA(NAME, T, FABS)                                                             \
  void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict h, size_t n,   \
            const ct_sophia_args *a) {                                                    \
    const T sgn = a->maximize ? -1 : 1, b1 = (T)a->beta1, c1 = (T)(1 - a->beta1);         \
    const T decay = (T)(1 - a->lr * a->weight_decay), rb = (T)a->rho_bs, nlr = (T)-a->lr; \
    for (size_t i = 0; i < n; i++) {                                                      \
      T gi = sgn * g[i];                                                                  \
      p[i] = p[i] * decay;                                                                \
      T mi = m[i] * b1 + c1 * gi;                                                         \
      m[i] = mi;                                                                          \
      T r = FABS(mi) / (rb * h[i] + (T)1e-15);                                            \
      if (r > 1) r = 1;                                                                   \
      p[i] = p[i] + (nlr * CT_SIGN(T, mi)) * r;                                           \
    }                                                                                     \
  }

SOPHIA(ct_optim_sophia_f32, float, fabsf)
SOPHIA(ct_optim_sophia_f64, double, fabs)

#define SOPHIA_HESS(NAME, T)                                                                             \
  void NAME(T *restrict unused, const T *restrict g, T *restrict h, size_t n, const ct_sophia_args *a) { \
    const T b2 = (T)a->beta2, c2 = (T)(1 - a->beta2);                                                    \
    (void)unused;                                                                                        \
    for (size_t i = 0; i < n; i++) h[i] = h[i] * b2 + (c2 * g[i]) * g[i];                                \
  }

SOPHIA_HESS(ct_optim_sophia_hess_f32, float)
SOPHIA_HESS(ct_optim_sophia_hess_f64, double)
