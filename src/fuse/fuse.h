/* crater.fuse: a register program of elementwise ops, run in one pass over contiguous
 * tensors of one shape, block by block (numexpr's design).  The program comes from a
 * traced Lua function (lua/crater/fuse.lua); this layer only checks and runs it.
 *
 * Registers hold one block of CT_FUSE_BLOCK elements of the program's dtype, so a
 * program's registers stay in L1.  Every instruction is one loop over the block, written
 * with the same per-element formula as crater's op-by-op kernel (src/ops/scalar.h), so a
 * fused program gives the bits that running its ops one by one on tensors gives.
 * Scalars are doubles: the call's numeric arguments, the traced constants, and what a
 * small scalar program computes from them once per call (as Lua would); an instruction
 * converts its scalars to the dtype, as ct_unary does. */
#ifndef CT_FUSE_H
#define CT_FUSE_H

#include "../core/tensor.h"

#define CT_FUSE_BLOCK 256          /* elements per register */
#define CT_FUSE_CHUNK 65536        /* elements per thread work unit and per sum partial */
#define CT_FUSE_MAXREG 32
#define CT_FUSE_MAXARG 64

/* The fused VM's elementwise ops, the one list of them: the Lua tracer reads it through
 * crater.core.fuse_ops (name, tensor operands, scalar operands), and fuse.c's kernel
 * switch comes from it.  Each row is an op of crater's op table under its Lua name, so
 * issue #18's ops.def can generate this list by selecting its elementwise rows.
 * X(ENUM, lua_name, tensor operands, scalar operands) */
#define CT_FUSE_OPS(X) \
  X(NEG, neg, 1, 0) X(ABS, abs, 1, 0) X(SIGN, sign, 1, 0) X(EXP, exp, 1, 0) X(LOG, log, 1, 0) \
  X(LOG1P, log1p, 1, 0) X(SQRT, sqrt, 1, 0) X(RSQRT, rsqrt, 1, 0) X(SIN, sin, 1, 0) \
  X(COS, cos, 1, 0) X(TANH, tanh, 1, 0) X(SIGMOID, sigmoid, 1, 0) X(RELU, relu, 1, 0) \
  X(ERF, erf, 1, 0) X(GELU, gelu, 1, 0) \
  X(LEAKY_RELU, leaky_relu, 1, 1) X(SOFTPLUS, softplus, 1, 2) X(CLAMP, clamp, 1, 2) \
  X(POWS, pow_scalar, 1, 1) X(RPOWS, rpow_scalar, 1, 1) X(ADDS, add_scalar, 1, 1) \
  X(MULS, mul_scalar, 1, 1) X(DIVS, div_scalar, 1, 1) X(RSUBS, rsub_scalar, 1, 1) \
  X(RDIVS, rdiv_scalar, 1, 1) \
  X(ADD, add, 2, 0) X(SUB, sub, 2, 0) X(MUL, mul, 2, 0) X(DIV, div, 2, 0) X(POW, pow, 2, 0) \
  X(MINIMUM, minimum, 2, 0) X(MAXIMUM, maximum, 2, 0) \
  X(EQ, eq, 2, 0) X(NE, ne, 2, 0) X(LT, lt, 2, 0) X(LE, le, 2, 0) X(GT, gt, 2, 0) X(GE, ge, 2, 0) \
  X(WHERE, where, 3, 0)     /* where(c, u, v): c != 0 ? u : v */ \
  X(FULL, full, 0, 1)       /* a number as a tensor operand (a 0-d tensor op by op) */ \
  X(COPY, copy, 1, 0)

typedef enum {
#define X(e, n, nt, ns) CT_FUSE_##e,
  CT_FUSE_OPS(X)
#undef X
  CT_FUSE_NOPS
} ct_fuse_opcode;
extern const char *const ct_fuse_op_names[CT_FUSE_NOPS];
extern const int ct_fuse_op_arity[CT_FUSE_NOPS][2];   /* tensor, scalar operands */

/* Scalar program ops (double, as Lua computes them). */
typedef enum { CT_FUSE_S_ADD, CT_FUSE_S_SUB, CT_FUSE_S_MUL, CT_FUSE_S_DIV, CT_FUSE_S_POW,
               CT_FUSE_S_NEG, CT_FUSE_S_NOPS } ct_fuse_sop;

/* A tensor operand: r >= 0 is register r, r < 0 is argument -r-1. */
typedef struct { int16_t op, dst, a, b, c, s0, s1; } ct_fuse_ins;
typedef struct { int16_t op, dst, a, b; } ct_fuse_sins;   /* scalar registers */
typedef enum { CT_FUSE_OUT_WRITE, CT_FUSE_OUT_NEW, CT_FUSE_OUT_SUM } ct_fuse_outkind;
/* src: a register (or an argument, for NEW and SUM); target: the argument written, or the
 * index among new tensors or among sums */
typedef struct { int16_t kind, src, target; } ct_fuse_out;

typedef struct ct_fuse_prog {
  int nargs;            /* the traced function's parameters */
  int nregs;            /* tensor registers */
  int nscal;            /* scalar registers: nargs arguments, then nconst constants, then computed */
  int nconst, nins, nsins, nouts, nnew, nsums;
  double *consts;
  ct_fuse_ins *ins;
  ct_fuse_sins *sins;
  ct_fuse_out *outs;
} ct_fuse_prog;

/* Checks a program's indices (every operand in range, registers written before read);
 * 1, or 0 with err. */
int ct_fuse_check(const ct_fuse_prog *pr, ct_err *err);

/* Runs pr over n elements of dtype dt (float32 or float64).  args[i] is the data of
 * argument i (NULL for a scalar), scal[i] its number; news[k] the data of new tensor k;
 * sums[k] receives sum k.  The caller has checked shapes, dtypes, contiguity, aliasing.
 * Returns 0 with err only when the sums' partials cannot be allocated, before any write. */
int ct_fuse_run(const ct_fuse_prog *pr, ct_dtype dt, int64_t n, char *const *args,
                const double *scal, char *const *news, double *sums, ct_err *err);

/* The whole-tensor sum that a fused program's sum outputs compute, of a contiguous x:
 * double lanes over fixed chunks, chunk totals added in order, so the value does not
 * depend on the thread count or on the block split.  0 with err on allocation failure. */
int ct_fuse_sum(const ct_tensor *x, double *out, ct_err *err);

#endif
