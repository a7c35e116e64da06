/* crater nn kernels (src/ops/nn.c): im2col and its adjoint col2im as differentiable
 * ops, and the pooling layers built on them.  Same conventions as ops.h: new reference
 * or NULL with err; 0-based; inputs borrowed. */
#ifndef CT_NN_H
#define CT_NN_H

#include "ops.h"

enum { /* the op table's rows (ops.def) */
#define X(e, ...) CT_NN_##e,
       CT_NN_OPS(X)
#undef X
           CT_NN_COUNT
};

/* Window geometry of a 2-D convolution or pooling: kernel, stride, padding. */
typedef struct ct_win {
  int64_t kh, kw, sh, sw, ph, pw;
} ct_win;

/* x (B,C,H,W) -> cols (C*kh*kw, B*L), L = Ho*Wo: row (c, i, j), in a conv weight's
 * view(cout, -1) order, holds that window element at every output position of every
 * image (column n*L + l), so a convolution is one GEMM; padding reads zeros.  Backward: col2im.  Fails on a non-4-D or integer x, a non-positive
 * kernel or stride, negative padding, or a window larger than the padded input. */
ct_tensor *ct_im2col(ct_tensor *x, ct_win w, ct_err *err);
/* The adjoint of im2col: cols (C*kh*kw, B*L) -> (B,C,H,W), summing overlapping
 * windows.  Backward: im2col. */
ct_tensor *ct_col2im(ct_tensor *cols, int64_t h, int64_t wd, ct_win w, ct_err *err);
/* Max pooling of x (B,C,H,W) -> (B,C,Ho,Wo); padding never wins, ties go to the first
 * element and NaN propagates, as PyTorch.  Backward scatters into the winners. */
ct_tensor *ct_max_pool2d(ct_tensor *x, ct_win w, ct_err *err);
/* Average pooling, padding counted as zeros (PyTorch's count_include_pad=True). */
ct_tensor *ct_avg_pool2d(ct_tensor *x, ct_win w, ct_err *err);
/* Output size of one spatial dim, -1 when the window does not fit, -2 when in + 2p overflows. */
int64_t ct_win_out(int64_t in, int64_t k, int64_t s, int64_t p);

/* y = x w^T + b for x (N,in), w (out,in), b (out) or NULL: one GEMM with the bias as
 * its initial value.  Backward: gx = g w, gw = g^T x (contiguous, in w's layout, so no
 * transpose copy reaches the leaf), gb = the column sums of g; all built from ops.
 * Fails on non-2-D, integer or mixed-dtype operands or mismatched sizes. */
ct_tensor *ct_linear(ct_tensor *x, ct_tensor *w, ct_tensor *b, ct_err *err);

/* The output of a convolution's GEMM, y (Cout, B*L), as (B, Cout, Ho, Wo) with L = Ho*Wo,
 * plus bias (Cout) or NULL: one pass instead of a bias add and a transposed copy.
 * Backward: the swap back and, for the bias, the row sums of it.  Fails on a non-2-D or
 * integer y, sizes that do not match, or a bias not (Cout) of y's dtype. */
ct_tensor *ct_conv_out(ct_tensor *y, ct_tensor *bias, int64_t b, int64_t ho, int64_t wo, ct_err *err);

/* 2-D convolution (cross-correlation) of x (B,C,H,W) with w (Cout,C,kh,kw) plus bias (Cout)
 * or NULL, stride sh x sw, zero padding ph x pw -> (B,Cout,Ho,Wo): im2col and one GEMM per
 * image, images split over threads.  Backward: the same per image, the weight gradient
 * summed in 16 fixed parts of the batch (the same bits on any thread count); with
 * create_graph, from im2col, mm and col2im, so it is differentiable again.  Fails on
 * shapes that do not match, integer or mixed dtypes, or a window that does not fit. */
ct_tensor *ct_conv2d(ct_tensor *x, ct_tensor *w, ct_tensor *bias, int64_t sh, int64_t sw, int64_t ph,
                     int64_t pw, ct_err *err);

/* max(x, 0) of a float x (NaN gives 0, as x:relu()), in one pass split over threads;
 * backward gx = [y > 0] g, one pass too (from ops with create_graph).  Fails on int64. */
ct_tensor *ct_relu(ct_tensor *x, ct_err *err);

/* Flush subnormal floats to zero (FTZ and DAZ) on the calling thread, as
 * torch.set_flush_denormal; returns false where the CPU has no such mode. */
bool ct_set_flush_denormal(bool on);

#endif
