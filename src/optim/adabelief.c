/* crater optim: AdaBelief (Zhuang et al. 2020), one pass over p, g, m, s (and smax with
 * amsgrad).  Order of operations: juntang-zhuang/Adabelief-Optimizer adabelief_pytorch
 * 0.2.1 AdaBelief.step, including its in-place s += eps before the denominator (s keeps
 * it) and the RAdam-style rectification, whose per-step scalars the caller computes. */
#include "kernel.h"

/* The flags are locals and amsgrad picks one of two loops, so that both vectorise. */
#define ADABELIEF(NAME, T, SQRT)                                                                          \
  void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict s, T *restrict smax, size_t n, \
            const ct_adabelief_args *a) {                                                                 \
    const T b1 = (T)a->beta1, c1 = (T)(1 - a->beta1), b2 = (T)a->beta2, c2 = (T)(1 - a->beta2);           \
    const T eps = (T)a->eps, wd = (T)a->weight_decay, decay = (T)a->decay;                                \
    const T sbc2 = (T)a->sqrt_bc2, coef = (T)a->coef;                                                     \
    const bool dec = a->decoupled, l2 = !a->decoupled && a->weight_decay != 0;                            \
    const bool ams = smax != NULL, upd = a->mode != CT_ADABELIEF_NONE;                                    \
    const bool rect = a->mode == CT_ADABELIEF_RECTIFIED, sgd = a->mode == CT_ADABELIEF_SGD;               \
    if (ams)                                                                                              \
      for (size_t i = 0; i < n; i++) { ADABELIEF_ELEM(T, SQRT, 1) }                                       \
    else                                                                                                  \
      for (size_t i = 0; i < n; i++) { ADABELIEF_ELEM(T, SQRT, 0) }                                       \
  }

/* one element; AMS a constant, so that each loop has no branch on memory */
#define ADABELIEF_ELEM(T, SQRT, AMS)                                         \
  T gi = g[i], pi = p[i];                                                    \
  if (dec) pi = pi * decay;                                                  \
  if (l2) gi = gi + wd * pi;                                                 \
  T mi = m[i] * b1 + c1 * gi;                                                \
  m[i] = mi;                                                                 \
  T r = gi - mi;                                                             \
  T si = s[i] * b2 + (c2 * r) * r + eps;                                     \
  s[i] = si;                                                                 \
  T vi = si;                                                                 \
  if (AMS) {                                                                 \
    vi = CT_NANMAX(smax[i], si);                                             \
    smax[i] = vi;                                                            \
  }                                                                          \
  /* every denominator computed, then selected (sgd: 1, exact): no branch */ \
  T rect_den = SQRT(si) + eps, adam_den = SQRT(vi) / sbc2 + eps;             \
  T den = rect ? rect_den : (sgd ? (T)1 : adam_den);                         \
  T moved = pi + coef * mi / den;                                            \
  pi = upd ? moved : pi;                                                     \
  p[i] = pi;

ADABELIEF(ct_optim_adabelief_f32, float, sqrtf)
ADABELIEF(ct_optim_adabelief_f64, double, sqrt)
