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
 * applied to p or L2 decay added to g, then both moving averages written back.  Expects
 * in scope p, g, m, v, i and the constants sgn, dec, decay, l2, wd, b1, c1, b2, c2;
 * declares gi, mi, vi. */
#define CT_ADAM_MOMENTS(T)             \
  T gi = sgn * g[i];                   \
  if (dec) p[i] = p[i] * decay;        \
  if (l2) gi = gi + wd * p[i];         \
  T mi = m[i] * b1 + c1 * gi;          \
  T vi = v[i] * b2 + (c2 * gi) * gi;   \
  m[i] = mi;                           \
  v[i] = vi;

#endif
