/* crater optim: RMSprop (centered, momentum), one pass over p, g, the square average,
 * the gradient average (centered) and the momentum buffer.  Order of operations:
 * torch/optim/rmsprop.py, _single_tensor_rmsprop: eps outside the sqrt, and lr outside the
 * momentum buffer (buf = momentum*buf + g/avg; p -= lr*buf).
 * https://pytorch.org/docs/1.13/generated/torch.optim.RMSprop.html */
#include "kernel.h"

#define RMSPROP(NAME, T, SQRT)                                                                             \
  void NAME(T *restrict p, const T *restrict g, T *restrict sq, T *restrict ga, T *restrict buf, size_t n, \
            const ct_rmsprop_args *a) {                                                                    \
    const T al = (T)a->alpha, c = (T)(1 - a->alpha), eps = (T)a->eps, nlr = (T)-a->lr;                     \
    const T mom = (T)a->momentum, sgn = a->maximize ? -1 : 1, wd = (T)a->weight_decay;                     \
    const bool l2 = a->weight_decay != 0, centered = a->centered && ga != NULL;                            \
    const bool use_buf = a->momentum > 0 && buf != NULL;                                                   \
    for (size_t i = 0; i < n; i++) {                                                                       \
      T gi = sgn * g[i];                                                                                   \
      if (l2) gi = gi + wd * p[i];                                                                         \
      T s = sq[i] * al + (c * gi) * gi;                                                                    \
      sq[i] = s;                                                                                           \
      if (centered) {                                                                                      \
        T gai = ga[i] * al + c * gi;                                                                       \
        ga[i] = gai;                                                                                       \
        s = s + (-gai) * gai;                                                                              \
      }                                                                                                    \
      T avg = SQRT(s) + eps;                                                                               \
      if (use_buf) {                                                                                       \
        T b = buf[i] * mom + gi / avg;                                                                     \
        buf[i] = b;                                                                                        \
        p[i] = p[i] + nlr * b;                                                                             \
      } else {                                                                                             \
        p[i] = p[i] + (nlr * gi) / avg;                                                                    \
      }                                                                                                    \
    }                                                                                                      \
  }

RMSPROP(ct_optim_rmsprop_f32, float, sqrtf)
RMSPROP(ct_optim_rmsprop_f64, double, sqrt)
