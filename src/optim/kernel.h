/* crater optim: helpers shared by the kernel files (not part of the public header).
 * Each kernel is written once as a macro over the element type T and its sqrt, then
 * instantiated for float and double, as Torch7's TH generic files do. */
#ifndef CT_OPTIM_KERNEL_H
#define CT_OPTIM_KERNEL_H

#include <math.h>

#include "optim.h"

/* NaN-propagating maximum, as torch.maximum and torch.amax: NaN if either is NaN. */
#define CT_NANMAX(x, y) (((x) != (x) || (x) > (y)) ? (x) : (y))
/* torch.sign: 0 for 0 and NaN (PyTorch 1.13 returns 0 for NaN). */
#define CT_SIGN(T, x) ((T)((0 < (x)) - ((x) < 0)))

/* torch.lerp(x, e, w) as crater's lerp_ and PyTorch's scalar code compute it, for a
 * weight w of type T; lo is (w < 0.5), decided once in double. */
#define CT_LERP(T, x, e, w, lo) ((lo) ? (x) + (w) * ((e) - (x)) : (e) - ((e) - (x)) * ((T)1 - (w)))

/* The first half of every Adam-family update, in PyTorch's order (the same rounding
 * as its single-tensor code): the gradient, negated to maximize, with decoupled decay
 * applied to p or L2 decay added to g, then both moving averages written back.
 * CT_ADAM_CONSTANTS declares k, the constants in type T, from 'a' (any args struct with
 * lr, beta1, beta2, weight_decay, maximize and decoupled), once per call; CT_ADAM_MOMENTS
 * then reads and writes element i of p, g, m, v and declares gi, mi and vi. */
#define CT_ADAM_CONSTANTS(T, k, a)                      \
  const struct {                                        \
    T sgn, decay, wd, b1, c1, b2, c2;                   \
    bool dec, l2;                                       \
  } k = {.sgn = (a)->maximize ? -1 : 1,                 \
         .decay = (T)(1 - (a)->lr * (a)->weight_decay), \
         .wd = (T)(a)->weight_decay,                    \
         .b1 = (T)(a)->beta1,                           \
         .c1 = (T)(1 - (a)->beta1),                     \
         .b2 = (T)(a)->beta2,                           \
         .c2 = (T)(1 - (a)->beta2),                     \
         .dec = (a)->decoupled,                         \
         .l2 = !(a)->decoupled && (a)->weight_decay != 0}
#define CT_ADAM_MOMENTS(T, k, p, g, m, v, i, gi, mi, vi) \
  T gi = (k).sgn * (g)[i];                               \
  if ((k).dec) (p)[i] = (p)[i] * (k).decay;              \
  if ((k).l2) gi = gi + (k).wd * (p)[i];                 \
  T mi = (m)[i] * (k).b1 + (k).c1 * gi;                  \
  T vi = (v)[i] * (k).b2 + ((k).c2 * gi) * gi;           \
  (m)[i] = mi;                                           \
  (v)[i] = vi;

#endif
