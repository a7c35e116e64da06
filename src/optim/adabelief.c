/* crater optim: AdaBelief (Zhuang et al. 2020), one pass over p, g, m, s (and smax with
 * amsgrad).  Order of operations: juntang-zhuang/Adabelief-Optimizer adabelief_pytorch
 * 0.2.1 AdaBelief.step, including its in-place s += eps before the denominator (s keeps
 * it) and the RAdam-style rectification, whose per-step scalars the caller computes. */
#include "kernel.h"

#define ADABELIEF(NAME, T, SQRT)                                                         \
  void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict s,            \
            T *restrict smax, size_t n, const ct_adabelief_args *a) {                    \
    const T b1 = (T)a->beta1, c1 = (T)(1 - a->beta1), b2 = (T)a->beta2, c2 = (T)(1 - a->beta2); \
    const T eps = (T)a->eps, wd = (T)a->weight_decay, decay = (T)a->decay;               \
    const T sbc2 = (T)a->sqrt_bc2, coef = (T)a->coef;                                    \
    const bool l2 = !a->decoupled && a->weight_decay != 0;                               \
    for (size_t i = 0; i < n; i++) {                                                     \
      T gi = g[i];                                                                       \
      if (a->decoupled) p[i] = p[i] * decay;                                             \
      else if (l2) gi = gi + wd * p[i];                                                  \
      T mi = m[i] * b1 + c1 * gi;                                                        \
      m[i] = mi;                                                                         \
      T r = gi - mi;                                                                     \
      T si = s[i] * b2 + (c2 * r) * r + eps;                                             \
      s[i] = si;                                                                         \
      T denom;                                                                           \
      if (smax) {                                                                        \
        T mx = CT_NANMAX(smax[i], si);                                                   \
        smax[i] = mx;                                                                    \
        denom = SQRT(mx) / sbc2 + eps;                                                   \
      } else {                                                                           \
        denom = SQRT(si) / sbc2 + eps;                                                   \
      }                                                                                  \
      switch (a->mode) {                                                                 \
      case CT_ADABELIEF_ADAM: p[i] = p[i] + coef * mi / denom; break;                    \
      case CT_ADABELIEF_RECTIFIED: p[i] = p[i] + coef * mi / (SQRT(si) + eps); break;    \
      case CT_ADABELIEF_SGD: p[i] = p[i] + coef * mi; break;                             \
      default: break;                                                                    \
      }                                                                                  \
    }                                                                                    \
  }

ADABELIEF(ct_optim_adabelief_f32, float, sqrtf)
ADABELIEF(ct_optim_adabelief_f64, double, sqrt)
