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

#endif
