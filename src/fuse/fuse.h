/* crater.fuse: a register program of elementwise ops, run in one pass over contiguous
 * tensors of one shape, block by block (numexpr's design).  The program comes from a
 * traced Lua function (lua/crater/fuse.lua); this layer only checks and runs it.
 *
 * Registers hold one block (CT_FUSE_BLOCK_BYTES) of the program's dtype, so a
 * program's registers stay in L1.  Every instruction is one loop over the block, written
 * with the same per-element formula as crater's op-by-op kernel (src/ops/scalar.h), so a
 * fused program gives the bits that running its ops one by one on tensors gives.
 * Scalars are doubles: the call's numeric arguments, the traced constants, and what a
 * small scalar program computes from them once per call (as Lua would); an instruction
 * converts its scalars to the dtype, as ct_unary does. */
#ifndef CT_FUSE_H
#define CT_FUSE_H

#include "../core/tensor.h"

#define CT_FUSE_BLOCK_BYTES 2048 /* a register: 512 float32 or 256 float64 elements */
#define CT_FUSE_CHUNK 65536 /* elements per thread work unit and per sum partial */
#define CT_FUSE_MAXREG 32
#define CT_FUSE_MAXARG 64

/* The fused VM's elementwise ops, the one list of them: the Lua tracer reads it through
 * crater.core.fuse_ops (name, tensor operands, scalar operands), and fuse.c's kernel
 * switch comes from it.  Each row is an op of crater's op table under its Lua name, so
 * issue #18's ops.def can generate this list by selecting its elementwise rows.
 * X(ENUM, lua_name, tensor operands, scalar operands) */
/* the tables are laid out by hand, a row a line or a few per line */
/* clang-format off */
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
  X(MINIMUM, minimum, 2, 0) X(MAXIMUM, maximum, 2, 0) X(LOGADDEXP, logaddexp, 2, 0) \
  X(EQ, eq, 2, 0) X(NE, ne, 2, 0) X(LT, lt, 2, 0) X(LE, le, 2, 0) X(GT, gt, 2, 0) X(GE, ge, 2, 0) \
  X(WHERE, where, 3, 0)     /* where(c, u, v): c != 0 ? u : v */ \
  X(FULL, full, 0, 1)       /* a number as a tensor operand (a 0-d tensor op by op) */ \
  X(COPY, copy, 1, 0)

/* Superinstructions: a small tree of the ops above run as one loop over the block, so
 * an optimizer's update takes a few passes instead of one per op.  A row is
 * X(ENUM, name, tensor operands, scalar operands, pattern, expression): the tracer matches
 * the pattern (ops of the list above; x y z the tensor operands, a b c d the scalars, in
 * that order) on the traced DAG, and the expression computes it with the same per-op
 * macros, each op rounded to the dtype, so the bits are the op-by-op ones.  In the
 * expression, x y z are the operands' elements (of type T) and a b c d the scalars in T.
 * The tracer tries the larger patterns first. */
#define CT_FUSE_SUPER(X) \
  X(ADAM_P, adam_p, 3, 3, "add(x,div(mul_scalar(y,a),add_scalar(div_scalar(sqrt(z),b),c)))",     \
    CT_EW_ADD(T, x, CT_EW_DIV(T, CT_EW_MULS(T, y, a, 0), SQDA(T, z, b, c))))                       \
  X(ADAMD_P, adamd_p, 3, 4,                                                                       \
    "add(mul_scalar(x,d),div(mul_scalar(y,a),add_scalar(div_scalar(sqrt(z),b),c)))",              \
    CT_EW_ADD(T, CT_EW_MULS(T, x, d, 0), CT_EW_DIV(T, CT_EW_MULS(T, y, a, 0), SQDA(T, z, b, c)))) \
  X(RECTD_P, rectd_p, 3, 3, "add(mul_scalar(x,c),div(mul_scalar(y,a),add_scalar(sqrt(z),b)))",   \
    CT_EW_ADD(T, CT_EW_MULS(T, x, c, 0), CT_EW_DIV(T, CT_EW_MULS(T, y, a, 0), SQA(T, z, b))))      \
  X(AXPBYZC, axpbyzc, 3, 3, "add_scalar(add(mul_scalar(x,a),mul(mul_scalar(y,b),z)),c)",          \
    CT_EW_ADDS(T, AXPBYZ(T, x, y, z, a, b), c, 0))                                                 \
  X(AXPBYZ, axpbyz, 3, 2, "add(mul_scalar(x,a),mul(mul_scalar(y,b),z))", AXPBYZ(T, x, y, z, a, b)) \
  X(AXPBY, axpby, 2, 2, "add(mul_scalar(x,a),mul_scalar(y,b))",                                    \
    CT_EW_ADD(T, CT_EW_MULS(T, x, a, 0), CT_EW_MULS(T, y, b, 0)))                                  \
  X(LERP, lerp, 2, 1, "add(x,mul_scalar(sub(y,x),a))",                                            \
    CT_EW_ADD(T, x, CT_EW_MULS(T, CT_EW_SUB(T, y, x), a, 0)))                                      \
  X(XPYDZ, xpydz, 3, 1, "add(x,div(mul_scalar(y,a),z))",                                          \
    CT_EW_ADD(T, x, CT_EW_DIV(T, CT_EW_MULS(T, y, a, 0), z)))                                      \
  X(XMYDZ, xmydz, 3, 1, "sub(x,div(mul_scalar(y,a),z))",                                          \
    CT_EW_SUB(T, x, CT_EW_DIV(T, CT_EW_MULS(T, y, a, 0), z)))                                      \
  X(SQDA, sqda, 1, 2, "add_scalar(div_scalar(sqrt(x),a),b)", SQDA(T, x, a, b))                    \
  X(SQA, sqa, 1, 1, "add_scalar(sqrt(x),a)", SQA(T, x, a))                                        \
  X(AXPY, axpy, 2, 1, "add(x,mul_scalar(y,a))", CT_EW_ADD(T, x, CT_EW_MULS(T, y, a, 0)))          \
  X(XMAY, xmay, 2, 1, "sub(x,mul_scalar(y,a))", CT_EW_SUB(T, x, CT_EW_MULS(T, y, a, 0)))

/* the shared pieces of the rows' expressions */
#define SQDA(T, x, a, b) CT_EW_ADDS(T, CT_EW_DIVS(T, CT_EW_SQRT(T, x, 0, 0), a, 0), b, 0)
#define SQA(T, x, a) CT_EW_ADDS(T, CT_EW_SQRT(T, x, 0, 0), a, 0)
#define AXPBYZ(T, x, y, z, a, b) CT_EW_ADD(T, CT_EW_MULS(T, x, a, 0), CT_EW_MUL(T, CT_EW_MULS(T, y, b, 0), z))

/* clang-format on */

typedef enum {
#define X(e, n, nt, ns) CT_FUSE_##e,
  CT_FUSE_OPS(X)
#undef X
#define X(e, n, nt, ns, pat, expr) CT_FUSE_##e,
      CT_FUSE_SUPER(X)
#undef X
          CT_FUSE_NOPS
} ct_fuse_opcode;
#define CT_FUSE_NELEM (CT_FUSE_COPY + 1) /* the elementwise ops; the superinstructions follow */
extern const char *const ct_fuse_op_names[CT_FUSE_NOPS];
extern const int ct_fuse_op_arity[CT_FUSE_NOPS][2]; /* tensor, scalar operands */
extern const char *const ct_fuse_super_patterns[CT_FUSE_NOPS - CT_FUSE_NELEM];

/* Scalar program ops (double, as Lua computes them). */
typedef enum {
  CT_FUSE_S_ADD,
  CT_FUSE_S_SUB,
  CT_FUSE_S_MUL,
  CT_FUSE_S_DIV,
  CT_FUSE_S_POW,
  CT_FUSE_S_NEG,
  CT_FUSE_S_NOPS
} ct_fuse_sop;

/* A tensor operand: r >= 0 is register r, r < 0 is argument -r-1: the argument's
 * elements, or, after an instruction whose dst is that argument, what it wrote there.
 * dst < 0 writes the argument straight into its memory (its WRITE output then has src ==
 * dst); the tracer does it only when nothing after reads the argument's old elements. */
typedef struct {
  int16_t op, dst, a, b, c, s0, s1, s2, s3;
} ct_fuse_ins;
typedef struct {
  int16_t op, dst, a, b;
} ct_fuse_sins; /* scalar registers */
typedef enum { CT_FUSE_OUT_WRITE, CT_FUSE_OUT_NEW, CT_FUSE_OUT_SUM } ct_fuse_outkind;
/* src: a register (or an argument, for NEW and SUM); target: the argument written, or the
 * index among new tensors or among sums */
typedef struct {
  int16_t kind, src, target;
} ct_fuse_out;

typedef struct ct_fuse_prog {
  int nargs; /* the traced function's parameters */
  int nregs; /* tensor registers */
  int nscal; /* scalar registers: nargs arguments, then nconst constants, then computed */
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
 * sums[k] receives sum k.  The caller has checked shapes, dtypes, contiguity, aliasing
 * (a written argument shares no memory with another, unless both are the same elements
 * and the other is only read), and says in shared whether that exception occurs.
 * Returns 0 with err only when the sums' partials cannot be allocated, before any write. */
int ct_fuse_run(const ct_fuse_prog *pr, ct_dtype dt, int64_t n, char *const *args, const double *scal,
                char *const *news, double *sums, bool shared, ct_err *err);

/* The whole-tensor sum that a fused program's sum outputs compute, of a contiguous x:
 * double lanes over fixed chunks, chunk totals added in order, so the value does not
 * depend on the thread count or on the block split.  0 with err on allocation failure. */
int ct_fuse_sum(const ct_tensor *x, double *out, ct_err *err);

#endif
