/* crater optim: Adan (Xie et al. 2022), one pass over p, g, m, n, the diff average d and
 * the previous negated gradient.  Order of operations: sail-sg/Adan adan.py,
 * _single_tensor_adan, with g scaled by the global clip factor (the reference scales
 * p.grad in place; crater leaves it). */
#include "kernel.h"

/* The first step (g_prev = g) takes a loop of its own, and the decay is a multiplier and
 * a divisor that are 1 when unused (exact): no branch is left in either loop, so both
 * vectorise. */
#define ADAN(NAME, T, SQRT)                                                                     \
  void NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v, T *restrict d,    \
            T *restrict neg, size_t n, const ct_adan_args *a) {                                 \
    const T b1 = (T)a->beta1, c1 = (T)(1 - a->beta1), b2 = (T)a->beta2, c2 = (T)(1 - a->beta2); \
    const T b3 = (T)a->beta3, c3 = (T)(1 - a->beta3), clip = (T)a->clip, nclip = (T)-a->clip;   \
    const T sbc3 = (T)a->sqrt_bc3, eps = (T)a->eps;                                             \
    const T decay = a->no_prox ? (T)(1 - a->lr * a->weight_decay) : 1;                          \
    const T prox = a->no_prox ? 1 : (T)(1 + a->lr * a->weight_decay);                           \
    const T step = (T) - (a->lr / a->bc1), step_diff = (T) - (a->lr * a->beta2 / a->bc2);       \
    if (a->first)                                                                               \
      for (size_t i = 0; i < n; i++) { ADAN_ELEM(T, SQRT, g[i] * nclip) }                       \
    else                                                                                        \
      for (size_t i = 0; i < n; i++) { ADAN_ELEM(T, SQRT, neg[i]) }                             \
  }

/* one element, PREV the negated previous gradient */
#define ADAN_ELEM(T, SQRT, PREV)             \
  T gi = g[i] * clip;                        \
  T x = (PREV) + gi; /* g - g_prev */        \
  T mi = m[i] * b1 + c1 * gi;                \
  T di = d[i] * b2 + c2 * x;                 \
  x = x * b2 + gi; /* g + b2 (g - g_prev) */ \
  T vi = v[i] * b3 + (c3 * x) * x;           \
  m[i] = mi;                                 \
  d[i] = di;                                 \
  v[i] = vi;                                 \
  T denom = SQRT(vi) / sbc3 + eps;           \
  T pi = p[i] * decay;                       \
  pi = pi + step * mi / denom;               \
  pi = pi + step_diff * di / denom;          \
  p[i] = pi / prox;                          \
  neg[i] = -gi;

ADAN(ct_optim_adan_f32, float, sqrtf)
ADAN(ct_optim_adan_f64, double, sqrt)

/* Sums of squares in eight lanes, so the loop vectorises (one running sum is a chain of
 * dependent adds, 4x slower: it was Adafactor's slowest pass); the order is fixed by n. */
#define SUMSQ(NAME, T)                                                       \
  double NAME(const T *x, size_t n) {                                        \
    double lane[8] = {0}, s = 0;                                             \
    size_t i = 0;                                                            \
    for (; i + 8 <= n; i += 8)                                               \
      for (size_t k = 0; k < 8; k++) lane[k] += (double)x[i + k] * x[i + k]; \
    for (; i < n; i++) lane[0] += (double)x[i] * x[i];                       \
    for (size_t k = 0; k < 8; k++) s += lane[k];                             \
    return s;                                                                \
  }
SUMSQ(ct_optim_sumsq_f32, float)
SUMSQ(ct_optim_sumsq_f64, double)
