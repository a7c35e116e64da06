/* crater optim: Prodigy (Mishchenko and Defazio 2023), Adam with a step size d learned
 * from the iterates.  Two passes, as konstmish/prodigy prodigy.py's step: the statistics
 * pass updates the moments and s and returns the two sums d is estimated from; the update
 * pass moves p once d is known. */
#include "kernel.h"

/* g' = g + wd*p when the decay is coupled (the reference adds it to p.grad in place). */
#define PRODIGY_MOMENTS(T)             \
  T gi = g[i];                         \
  if (a->l2 != 0) gi = gi + wd * p[i]; \
  if (m) m[i] = m[i] * b1 + ma * gi;   \
  v[i] = v[i] * b2 + (va * gi) * gi;
/* the statistics of one sliced element J: <g', p0 - p> and |s| */
#define PRODIGY_SLICE(T, FABS, J)      \
  dot += (double)(gi * (base - p[i])); \
  T si = s[J] * b3 + sa * gi;          \
  s[J] = si;                           \
  abs_s += (double)FABS(si);
/* every element, lanes of eight partial sums; HAS_M and BASE (p0[k] or the scalar p00)
 * fixed per loop, so that no branch or conditional load is left in it */
#define PRODIGY_LANE(T, FABS, HAS_M, BASE, K, Q) \
  {                                              \
    const size_t k = (K);                        \
    T gk = g[k], pk = p[k];                      \
    T gl = gk + wd * pk;                         \
    gk = l2 ? gl : gk;                           \
    if (HAS_M) m[k] = m[k] * b1 + ma * gk;       \
    v[k] = v[k] * b2 + (va * gk) * gk;           \
    dots[Q] += (double)(gk * ((BASE)-pk));       \
    T sk = s[k] * b3 + sa * gk;                  \
    s[k] = sk;                                   \
    abss[Q] += (double)FABS(sk);                 \
  }
#define PRODIGY_LANES(T, FABS, HAS_M, BASE)                                       \
  {                                                                               \
    const T p00 = p0[0];                                                          \
    size_t i = 0;                                                                 \
    for (; i + 8 <= n; i += 8)                                                    \
      for (size_t q = 0; q < 8; q++) PRODIGY_LANE(T, FABS, HAS_M, BASE, i + q, q) \
    for (; i < n; i++) PRODIGY_LANE(T, FABS, HAS_M, BASE, i, 0)                   \
    (void)p00;                                                                    \
  }
#define PRODIGY_STATS(NAME, T, FABS)                                                               \
  void NAME(const T *restrict p, const T *restrict g, T *restrict m, T *restrict v, T *restrict s, \
            const T *restrict p0, size_t n, const ct_prodigy_stats_args *a, double *sums) {        \
    const T b1 = (T)a->beta1, b2 = (T)a->beta2, b3 = (T)a->beta3, wd = (T)a->l2;                   \
    const T ma = (T)a->m_alpha, va = (T)a->v_alpha, sa = (T)a->s_alpha;                            \
    const size_t step = a->slice_p;                                                                \
    double dot = 0, abs_s = 0;                                                                     \
    if (step == 1) { /* the usual case: every element, in loops that vectorise */                  \
      const bool l2 = a->l2 != 0;                                                                  \
      double dots[8] = {0}, abss[8] = {0};                                                         \
      if (m && !a->p0_scalar) PRODIGY_LANES(T, FABS, 1, p0[k])                                     \
      else if (m) PRODIGY_LANES(T, FABS, 1, p00)                                                   \
      else if (!a->p0_scalar) PRODIGY_LANES(T, FABS, 0, p0[k])                                     \
      else PRODIGY_LANES(T, FABS, 0, p00)                                                          \
      for (int q = 0; q < 8; q++) {                                                                \
        dot += dots[q];                                                                            \
        abs_s += abss[q];                                                                          \
      }                                                                                            \
    } else {                                                                                       \
      for (size_t i = 0, j = 0; i < n; i++) {                                                      \
        PRODIGY_MOMENTS(T)                                                                         \
        if (i % step == 0) { /* the slice p.flatten()[::slice_p] */                                \
          T base = a->p0_scalar ? p0[0] : p0[j];                                                   \
          PRODIGY_SLICE(T, FABS, j)                                                                \
          j++;                                                                                     \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
    sums[0] = dot;                                                                                 \
    sums[1] = abs_s;                                                                               \
  }

PRODIGY_STATS(ct_optim_prodigy_stats_f32, float, fabsf)
PRODIGY_STATS(ct_optim_prodigy_stats_f64, double, fabs)

#define PRODIGY(NAME, T, SQRT)                                                                      \
  void NAME(T *restrict p, const T *restrict g, const T *restrict m, const T *restrict v, size_t n, \
            const ct_prodigy_args *a) {                                                             \
    const T deps = (T)a->d_eps, dwd = (T)a->decoupled_wd, wd = (T)a->l2;                            \
    const T step = (T)(m ? -a->dlr : -a->dlr * a->d);                                               \
    for (size_t i = 0; i < n; i++) {                                                                \
      T denom = SQRT(v[i]) + deps;                                                                  \
      T pi = p[i];                                                                                  \
      if (a->decoupled_wd != 0) pi = pi + dwd * pi;                                                 \
      T num = m ? m[i] : (a->l2 != 0 ? g[i] + wd * pi : g[i]);                                      \
      p[i] = pi + step * num / denom;                                                               \
    }                                                                                               \
  }

PRODIGY(ct_optim_prodigy_f32, float, sqrtf)
PRODIGY(ct_optim_prodigy_f64, double, sqrt)
