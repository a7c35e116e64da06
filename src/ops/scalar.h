/* crater ops: the per-element formulas of the float elementwise kernels, one macro per
 * op, shared by src/ops/elementwise.c and the fused VM (src/fuse/fuse.c) so that both
 * compute the same bits.  T is float or double, v (u, v for binary ops) the operand(s)
 * of type T, a and b the op's scalars already converted to T.  Needs <tgmath.h>, so
 * exp(v) is expf for float.  Neither file contracts a*b+c into an FMA (-std=c11 keeps
 * -ffp-contract=off; the VM's file says so again in the Makefile). */
#ifndef CT_SCALAR_H
#define CT_SCALAR_H

#include <tgmath.h>

/* unary, with the scalars a, b of ct_unary */
#define CT_EW_NEG(T, v, a, b) (-(v))
#define CT_EW_ABS(T, v, a, b) fabs(v)
#define CT_EW_SIGN(T, v, a, b) ((T)(((v) > (T)0) - ((v) < (T)0)))
#define CT_EW_EXP(T, v, a, b) exp(v)
#define CT_EW_LOG(T, v, a, b) log(v)
#define CT_EW_LOG1P(T, v, a, b) log1p(v)
#define CT_EW_SQRT(T, v, a, b) sqrt(v)
#define CT_EW_RSQRT(T, v, a, b) ((T)1 / sqrt(v))
#define CT_EW_SIN(T, v, a, b) sin(v)
#define CT_EW_COS(T, v, a, b) cos(v)
#define CT_EW_TANH(T, v, a, b) tanh(v)
#define CT_EW_SIGMOID(T, v, a, b) ((T)1 / ((T)1 + exp(-(v))))
#define CT_EW_RELU(T, v, a, b) ((v) > (T)0 ? (v) : (T)0)
#define CT_EW_ERF(T, v, a, b) erf(v)
#define CT_EW_GELU(T, v, a, b) ((T)0.5 * (v) * ((T)1 + erf((v) * (T)0.70710678118654752440)))
#define CT_EW_LEAKY_RELU(T, v, a, b) ((v) > (T)0 ? (v) : (v) * (a))
#define CT_EW_SOFTPLUS(T, v, a, b) ((v) * (a) > (b) ? (v) : log1p(exp((v) * (a))) / (a))
#define CT_EW_CLAMP(T, v, a, b) ((v) < (a) ? (a) : ((v) > (b) ? (b) : (v)))
#define CT_EW_POW(T, v, a, b) pow(v, a) /* a == 2 and a == 3 multiply: CT_EW_POW2/3 */
#define CT_EW_POW2(T, v, a, b) ((v) * (v))
#define CT_EW_POW3(T, v, a, b) ((v) * (v) * (v))
#define CT_EW_RPOW(T, v, a, b) pow(a, v)
#define CT_EW_ADDS(T, v, a, b) ((v) + (a))
#define CT_EW_MULS(T, v, a, b) ((v) * (a))
#define CT_EW_DIVS(T, v, a, b) ((v) / (a))
#define CT_EW_RSUBS(T, v, a, b) ((a) - (v))
#define CT_EW_RDIVS(T, v, a, b) ((a) / (v))

/* binary, u op v */
#define CT_EW_ADD(T, u, v) ((u) + (v))
#define CT_EW_SUB(T, u, v) ((u) - (v))
#define CT_EW_MUL(T, u, v) ((u) * (v))
#define CT_EW_DIV(T, u, v) ((u) / (v))
#define CT_EW_BPOW(T, u, v) pow(u, v)
#define CT_EW_MINIMUM(T, u, v) (((u) != (u) || (v) != (v)) ? (u) + (v) : ((u) < (v) ? (u) : (v)))
#define CT_EW_MAXIMUM(T, u, v) (((u) != (u) || (v) != (v)) ? (u) + (v) : ((u) > (v) ? (u) : (v)))
/* log(e^u + e^v) = max + log1p(e^-|u - v|), which never overflows; two equal infinities
 * give themselves (inf - inf would be NaN), as PyTorch's _log_add_exp_helper */
#define CT_EW_LOGADDEXP(T, u, v) \
  ((u) == (v) && isinf(u) ? (u) : ((u) > (v) ? (u) : (v)) + log1p(exp(-fabs((u) - (v)))))

#endif
