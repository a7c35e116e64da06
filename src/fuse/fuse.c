/* crater.fuse's VM: a checked register program run block by block over contiguous
 * tensors, blocks grouped in chunks that the threads share (see fuse.h).
 * Compiled with -ffp-contract=off (Makefile): each instruction rounds its result to the
 * dtype, exactly as the op-by-op kernel writes its result tensor. */
#include <math.h>
#include <string.h>
#include <tgmath.h>

#include "fuse.h"
#include "../ops/scalar.h"

#define MAXSCAL 256

const char *const ct_fuse_op_names[CT_FUSE_NOPS] = {
#define X(e, n, nt, ns) #n,
#define Y(e, n, nt, ns, pat, expr) #n,
    CT_FUSE_OPS(X) CT_FUSE_SUPER(Y)
#undef X
#undef Y
};
const int ct_fuse_op_arity[CT_FUSE_NOPS][2] = {
#define X(e, n, nt, ns) {nt, ns},
#define Y(e, n, nt, ns, pat, expr) {nt, ns},
    CT_FUSE_OPS(X) CT_FUSE_SUPER(Y)
#undef X
#undef Y
};
const char *const ct_fuse_super_patterns[CT_FUSE_NOPS - CT_FUSE_NELEM] = {
#define Y(e, n, nt, ns, pat, expr) pat,
    CT_FUSE_SUPER(Y)
#undef Y
};

int ct_fuse_check(const ct_fuse_prog *pr, ct_err *err) {
  if (pr->nargs < 0 || pr->nargs > CT_FUSE_MAXARG || pr->nregs < 0 || pr->nregs > CT_FUSE_MAXREG ||
      pr->nconst < 0 || pr->nsins < 0 || pr->nins < 0 || pr->nouts < 0 || pr->nsums > CT_FUSE_MAXARG ||
      pr->nscal != pr->nargs + pr->nconst + pr->nsins || pr->nscal > MAXSCAL)
    return ct_fail(err, "program sizes out of range (%d registers, %d scalars)", pr->nregs, pr->nscal);
  for (int k = 0; k < pr->nsins; k++) {
    const ct_fuse_sins *s = &pr->sins[k];
    int d = pr->nargs + pr->nconst + k; /* scalar instructions write in order */
    if (s->op < 0 || s->op >= CT_FUSE_S_NOPS || s->dst != d || s->a < 0 || s->a >= d ||
        (s->op != CT_FUSE_S_NEG && (s->b < 0 || s->b >= d)))
      return ct_fail(err, "bad scalar instruction %d", k + 1);
  }
  bool written[CT_FUSE_MAXREG] = {false}, direct[CT_FUSE_MAXARG] = {false};
  int ndirect = 0;
  for (int k = 0; k < pr->nins; k++) {
    const ct_fuse_ins *in = &pr->ins[k];
    if (in->op < 0 || in->op >= CT_FUSE_NOPS || in->dst >= pr->nregs ||
        (in->dst < 0 && (-in->dst - 1 >= pr->nargs || direct[-in->dst - 1])))
      return ct_fail(err, "bad instruction %d", k + 1);
    int nt = ct_fuse_op_arity[in->op][0], ns = ct_fuse_op_arity[in->op][1];
    const int16_t opnd[3] = {in->a, in->b, in->c}, sc[4] = {in->s0, in->s1, in->s2, in->s3};
    for (int j = 0; j < 3; j++) { /* the unused fields are 0 */
      int r = opnd[j];
      if (j >= nt ? r != 0 : r >= 0 ? (r >= pr->nregs || !written[r] || r == in->dst) : (-r - 1 >= pr->nargs))
        return ct_fail(err, "bad operand %d of instruction %d", j + 1, k + 1);
    }
    for (int j = 0; j < 4; j++)
      if (j >= ns ? sc[j] != 0 : sc[j] < 0 || sc[j] >= pr->nscal)
        return ct_fail(err, "bad scalar of instruction %d", k + 1);
    if (in->dst >= 0) written[in->dst] = true;
    else direct[-in->dst - 1] = true, ndirect++;
  }
  if (pr->nregs + ndirect > CT_FUSE_MAXREG) /* the safe mode's spare registers */
    return ct_fail(err, "%d registers and %d direct writes, more than %d", pr->nregs, ndirect,
                   CT_FUSE_MAXREG);
  int nnew = 0, nsums = 0;
  bool claimed[CT_FUSE_MAXARG] = {false};
  for (int k = 0; k < pr->nouts; k++) {
    const ct_fuse_out *o = &pr->outs[k];
    bool ok = o->src >= 0 ? o->src < pr->nregs && written[o->src] : -o->src - 1 < pr->nargs;
    if (o->kind == CT_FUSE_OUT_WRITE)
      ok = ok && o->target >= 0 && o->target < pr->nargs && (o->src >= 0 || direct[-o->src - 1]) &&
          (!direct[o->target] || o->src == -o->target - 1);
    else if (o->kind == CT_FUSE_OUT_NEW) ok = ok && o->target == nnew++;
    else if (o->kind == CT_FUSE_OUT_SUM) ok = ok && o->target == nsums++;
    else ok = false;
    if (!ok) return ct_fail(err, "bad output %d", k + 1);
    if (o->kind == CT_FUSE_OUT_WRITE && o->src == -o->target - 1) claimed[o->target] = true;
  }
  for (int t = 0; t < pr->nargs; t++)
    if (direct[t] && !claimed[t])
      return ct_fail(err, "argument %d written by an instruction is not an output", t + 1);
  if (nnew != pr->nnew || nsums != pr->nsums) return ct_fail(err, "bad output counts");
  return 1;
}

typedef struct {
  const ct_fuse_prog *pr;
  int64_t n;
  char *const *args, *const *news;
  const double *sv;
  double *partials; /* nsums per chunk */
  bool safe; /* direct writes go to spare registers (see RUN_KERNEL) */
} fuse_job;

/* Adds m values to the eight lanes; m is a multiple of 8 except at a chunk's end. */
#define LANES(T, NAME)                                           \
  static void NAME(double *part, const T *x, int64_t m) {        \
    int64_t k = 0;                                               \
    for (; k + 8 <= m; k += 8)                                   \
      for (int q = 0; q < 8; q++) part[q] += (double)x[k + q];   \
    for (int q = 0; k + q < m; q++) part[q] += (double)x[k + q]; \
  }
LANES(float, lanes_f32)
LANES(double, lanes_f64)

static double lanes_total(const double *part) {
  double t = 0;
  for (int q = 0; q < 8; q++) t += part[q];
  return t;
}

/* Every instruction is one loop over the block.  The destination may be an operand's own
 * memory (an argument updated in place, element i from element i), which restrict would
 * forbid: ivdep says that no element depends on another, so the loop vectorizes without
 * the overlap test that would send that case to the scalar loop. */
/* clang-format cannot lay out _Pragma inside these macros */
/* clang-format off */
#define LOOP(EXPR) _Pragma("GCC ivdep") for (int64_t i = 0; i < m; i++) out[i] = (EXPR);
#define UN(T, E, EXPR) case CT_FUSE_##E: LOOP(CT_EW_##EXPR(T, px[i], a, b)) break;
#define BIN(T, E, EXPR) case CT_FUSE_##E: LOOP(CT_EW_##EXPR(T, px[i], py[i])) break;
#define CMP(T, E, OP) case CT_FUSE_##E: LOOP((T)(px[i] OP py[i])) break;
#define SUPER(T, E, EXPR)                                                                     \
  case CT_FUSE_##E:                                                                           \
    _Pragma("GCC ivdep") for (int64_t i = 0; i < m; i++) {                                    \
      const T x = px[i], y = py[i], z = pz[i];   /* the unused ones are dead */               \
      (void)y; (void)z;                                                                       \
      out[i] = (EXPR);                                                                        \
    }                                                                                         \
    break;

/* One instruction over m elements: out = op(px, py, pz) with the scalars a, b, c, d. */
#define EXEC(T)                                                                               \
  switch ((ct_fuse_opcode)in->op) {                                                           \
  UN(T, NEG, NEG) UN(T, ABS, ABS) UN(T, SIGN, SIGN) UN(T, EXP, EXP) UN(T, LOG, LOG)           \
  UN(T, LOG1P, LOG1P) UN(T, SQRT, SQRT) UN(T, RSQRT, RSQRT) UN(T, SIN, SIN) UN(T, COS, COS)   \
  UN(T, TANH, TANH) UN(T, SIGMOID, SIGMOID) UN(T, RELU, RELU) UN(T, ERF, ERF) UN(T, GELU, GELU) \
  UN(T, LEAKY_RELU, LEAKY_RELU) UN(T, SOFTPLUS, SOFTPLUS) UN(T, CLAMP, CLAMP)                 \
  case CT_FUSE_POWS:   /* as ct_unary: squares and cubes multiply */                          \
    if (a == 2) { LOOP(CT_EW_POW2(T, px[i], a, b)) }                                          \
    else if (a == 3) { LOOP(CT_EW_POW3(T, px[i], a, b)) }                                     \
    else { LOOP(CT_EW_POW(T, px[i], a, b)) }                                                  \
    break;                                                                                    \
  UN(T, RPOWS, RPOW) UN(T, ADDS, ADDS) UN(T, MULS, MULS) UN(T, DIVS, DIVS)                    \
  UN(T, RSUBS, RSUBS) UN(T, RDIVS, RDIVS)                                                     \
  BIN(T, ADD, ADD) BIN(T, SUB, SUB) BIN(T, MUL, MUL) BIN(T, DIV, DIV) BIN(T, POW, BPOW)       \
  BIN(T, MINIMUM, MINIMUM) BIN(T, MAXIMUM, MAXIMUM) BIN(T, LOGADDEXP, LOGADDEXP)               \
  CMP(T, EQ, ==) CMP(T, NE, !=) CMP(T, LT, <) CMP(T, LE, <=) CMP(T, GT, >) CMP(T, GE, >=)     \
  case CT_FUSE_WHERE: LOOP(px[i] != (T)0 ? py[i] : pz[i]) break;                              \
  case CT_FUSE_FULL: LOOP(a) break;                                                           \
  case CT_FUSE_COPY: LOOP(px[i]) break;                                                       \
  CT_FUSE_SUPER(SUPER_CASE)                                                                   \
  default: break;                                                                             \
  }

/* clang-format on */

/* One block of m elements at element offset off: every instruction, then the outputs.
 * at[k] is where argument k's current elements are: its memory, or in the safe mode (an
 * argument written is also passed as another argument, so its old elements must stay
 * until the block's end) the spare register its writer fills, copied out at the end. */
#define RUN_KERNEL(T, NAME, LANESFN)                                                                      \
  static void NAME(void *vj, size_t lo, size_t hi) {                                                      \
    const fuse_job *j = vj;                                                                               \
    const ct_fuse_prog *pr = j->pr;                                                                       \
    enum { BLOCK = CT_FUSE_BLOCK_BYTES / sizeof(T) };                                                     \
    _Alignas(64) T regs[CT_FUSE_MAXREG * BLOCK];                                                          \
    double part[CT_FUSE_MAXARG][8];                                                                       \
    T *at[CT_FUSE_MAXARG];                                                                                \
    for (size_t ch = lo; ch < hi; ch++) {                                                                 \
      int64_t c0 = (int64_t)ch * CT_FUSE_CHUNK, c1 = c0 + CT_FUSE_CHUNK;                                  \
      if (c1 > j->n) c1 = j->n;                                                                           \
      if (pr->nsums > 0) memset(part, 0, sizeof(double) * 8 * (size_t)pr->nsums);                         \
      for (int64_t off = c0; off < c1; off += BLOCK) {                                                    \
        int64_t m = c1 - off < BLOCK ? c1 - off : BLOCK;                                                  \
        for (int k = 0; k < pr->nargs; k++) at[k] = j->args[k] ? (T *)(void *)j->args[k] + off : NULL;    \
        for (int k = 0, spare = pr->nregs; k < pr->nins; k++) {                                           \
          const ct_fuse_ins *in = &pr->ins[k];                                                            \
          T *out;                                                                                         \
          if (in->dst >= 0) out = regs + (size_t)in->dst * BLOCK;                                         \
          else if (!j->safe) out = at[-in->dst - 1];                                                      \
          else out = regs + (size_t)spare++ * BLOCK;                                                      \
          const T *px = OPND(T, in->a), *py = OPND(T, in->b), *pz = OPND(T, in->c);                       \
          const T a = (T)j->sv[in->s0], b = (T)j->sv[in->s1];                                             \
          const T c = (T)j->sv[in->s2], d = (T)j->sv[in->s3];                                             \
          (void)c;                                                                                        \
          (void)d;                                                                                        \
          EXEC(T)                                                                                         \
          if (in->dst < 0) at[-in->dst - 1] = out;                                                        \
        }                                                                                                 \
        for (int pass = 0; pass < 2; pass++) /* sums and new tensors, then the writes */                  \
          for (int k = 0; k < pr->nouts; k++) {                                                           \
            const ct_fuse_out *o = &pr->outs[k];                                                          \
            const T *src = OPND(T, o->src);                                                               \
            if ((o->kind == CT_FUSE_OUT_WRITE) != (pass == 1)) continue;                                  \
            if (o->kind == CT_FUSE_OUT_SUM) LANESFN(part[o->target], src, m);                             \
            else {                                                                                        \
              T *dst =                                                                                    \
                  (T *)(void *)(o->kind == CT_FUSE_OUT_WRITE ? j->args[o->target] : j->news[o->target]) + \
                  off;                                                                                    \
              if (dst != src) memcpy(dst, src, sizeof(T) * (size_t)m);                                    \
            }                                                                                             \
          }                                                                                               \
      }                                                                                                   \
      for (int s = 0; s < pr->nsums; s++)                                                                 \
        j->partials[ch * (size_t)pr->nsums + (size_t)s] = lanes_total(part[s]);                           \
    }                                                                                                     \
  }
#define OPND(T, r) ((r) >= 0 ? regs + (size_t)(r)*BLOCK : (const T *)at[-(r)-1])
#define SUPER_CASE(e, n, nt, ns, pat, expr) SUPER(T, e, expr)
/* T is a macro here, so that the rows' expressions (fuse.h), which name T, get the type */
#define T float
RUN_KERNEL(T, run_f32, lanes_f32)
#undef T
#define T double
RUN_KERNEL(T, run_f64, lanes_f64)
#undef T
#undef OPND
#undef SUPER_CASE

static double scalar_op(int op, double a, double b) {
  switch (op) {
  case CT_FUSE_S_ADD: return a + b;
  case CT_FUSE_S_SUB: return a - b;
  case CT_FUSE_S_MUL: return a * b;
  case CT_FUSE_S_DIV: return a / b;
  case CT_FUSE_S_POW: return pow(a, b);
  case CT_FUSE_S_NEG: return -a;
  default: return 0;
  }
}

int ct_fuse_run(const ct_fuse_prog *pr, ct_dtype dt, int64_t n, char *const *args, const double *scal,
                char *const *news, double *sums, bool shared, ct_err *err) {
  double sv[MAXSCAL];
  sv[0] = 0; /* read, unused, by the instructions without scalars when nscal is 0 */
  for (int k = 0; k < pr->nargs; k++) sv[k] = args[k] ? 0 : scal[k];
  for (int k = 0; k < pr->nconst; k++) sv[pr->nargs + k] = pr->consts[k];
  for (int k = 0; k < pr->nsins; k++) {
    const ct_fuse_sins *s = &pr->sins[k];
    sv[s->dst] = scalar_op(s->op, sv[s->a], s->op == CT_FUSE_S_NEG ? 0 : sv[s->b]);
  }
  size_t nchunks = n > 0 ? (size_t)((n + CT_FUSE_CHUNK - 1) / CT_FUSE_CHUNK) : 0;
  double small[64], *partials = small;
  size_t np = nchunks * (size_t)pr->nsums;
  if (np > sizeof small / sizeof small[0] && (partials = ct_malloc(np * sizeof(double), err)) == NULL)
    return 0;
  fuse_job j = {pr, n, args, news, sv, partials, shared}; /* shared: the safe mode */
  if (nchunks > 0) ct_parallel_blocks(nchunks, CT_FUSE_CHUNK, dt == CT_F32 ? run_f32 : run_f64, &j);
  for (int s = 0; s < pr->nsums; s++) {
    double t = 0;
    for (size_t c = 0; c < nchunks; c++) t += partials[c * (size_t)pr->nsums + (size_t)s];
    sums[s] = t;
  }
  if (partials != small) ct_free(partials, np * sizeof(double));
  return 1;
}

int ct_fuse_sum(const ct_tensor *x, double *out, ct_err *err) {
  if (x->dtype == CT_I64 || !ct_is_contiguous(x))
    return ct_fail(err, "expected a contiguous float32 or float64 tensor");
  static const ct_fuse_out o = {CT_FUSE_OUT_SUM, -1, 0};
  const ct_fuse_prog pr = {1, 0, 1, 0, 0, 0, 1, 0, 1, NULL, NULL, NULL, (ct_fuse_out *)&o};
  char *args[1] = {ct_data(x)};
  double scal[1] = {0};
  return ct_fuse_run(&pr, x->dtype, ct_numel(x), args, scal, NULL, out, false, err);
}
