/* crater optim: Lion (Chen et al. 2023), one pass over p, g and m.  Order of operations:
 * google/automl lion/lion_pytorch.py, Lion.step. */
#include "kernel.h"

#define LION(NAME, T)                                                                             \
  void NAME(T *restrict p, const T *restrict g, T *restrict m, size_t n, const ct_lion_args *a) { \
    const T decay = (T)(1 - a->lr * a->weight_decay), nlr = (T)-a->lr;                            \
    const T b1 = (T)a->beta1, c1 = (T)(1 - a->beta1), b2 = (T)a->beta2, c2 = (T)(1 - a->beta2);   \
    for (size_t i = 0; i < n; i++) {                                                              \
      T gi = g[i], mi = m[i];                                                                     \
      T u = mi * b1 + gi * c1;                                                                    \
      p[i] = p[i] * decay + nlr * CT_SIGN(T, u);                                                  \
      m[i] = mi * b2 + c2 * gi;                                                                   \
    }                                                                                             \
  }

LION(ct_optim_lion_f32, float)
LION(ct_optim_lion_f64, double)
