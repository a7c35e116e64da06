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
  CT_FUSE_OPS(X)
#undef X
};
const int ct_fuse_op_arity[CT_FUSE_NOPS][2] = {
#define X(e, n, nt, ns) {nt, ns},
  CT_FUSE_OPS(X)
#undef X
};

int ct_fuse_check(const ct_fuse_prog *pr, ct_err *err) {
  if (pr->nargs < 0 || pr->nargs > CT_FUSE_MAXARG || pr->nregs < 0 || pr->nregs > CT_FUSE_MAXREG ||
      pr->nconst < 0 || pr->nsins < 0 || pr->nins < 0 || pr->nouts < 0 || pr->nsums > CT_FUSE_MAXARG ||
      pr->nscal != pr->nargs + pr->nconst + pr->nsins || pr->nscal > MAXSCAL)
    return ct_fail(err, "program sizes out of range (%d registers, %d scalars)", pr->nregs, pr->nscal);
  for (int k = 0; k < pr->nsins; k++) {
    const ct_fuse_sins *s = &pr->sins[k];
    int d = pr->nargs + pr->nconst + k;   /* scalar instructions write in order */
    if (s->op < 0 || s->op >= CT_FUSE_S_NOPS || s->dst != d || s->a < 0 || s->a >= d ||
        (s->op != CT_FUSE_S_NEG && (s->b < 0 || s->b >= d)))
      return ct_fail(err, "bad scalar instruction %d", k + 1);
  }
  bool written[CT_FUSE_MAXREG] = {false};
  for (int k = 0; k < pr->nins; k++) {
    const ct_fuse_ins *in = &pr->ins[k];
    if (in->op < 0 || in->op >= CT_FUSE_NOPS || in->dst < 0 || in->dst >= pr->nregs)
      return ct_fail(err, "bad instruction %d", k + 1);
    int nt = ct_fuse_op_arity[in->op][0], ns = ct_fuse_op_arity[in->op][1];
    const int16_t opnd[3] = {in->a, in->b, in->c}, sc[2] = {in->s0, in->s1};
    for (int j = 0; j < nt; j++) {
      int r = opnd[j];
      if (r >= 0 ? (r >= pr->nregs || !written[r] || r == in->dst) : (-r - 1 >= pr->nargs))
        return ct_fail(err, "bad operand %d of instruction %d", j + 1, k + 1);
    }
    for (int j = 0; j < ns; j++)
      if (sc[j] < 0 || sc[j] >= pr->nscal) return ct_fail(err, "bad scalar of instruction %d", k + 1);
    written[in->dst] = true;
  }
  int nnew = 0, nsums = 0;
  for (int k = 0; k < pr->nouts; k++) {
    const ct_fuse_out *o = &pr->outs[k];
    bool ok = o->src >= 0 ? o->src < pr->nregs && written[o->src] : -o->src - 1 < pr->nargs;
    if (o->kind == CT_FUSE_OUT_WRITE) ok = ok && o->src >= 0 && o->target >= 0 && o->target < pr->nargs;
    else if (o->kind == CT_FUSE_OUT_NEW) ok = ok && o->target == nnew++;
    else if (o->kind == CT_FUSE_OUT_SUM) ok = ok && o->target == nsums++;
    else ok = false;
    if (!ok) return ct_fail(err, "bad output %d", k + 1);
  }
  if (nnew != pr->nnew || nsums != pr->nsums) return ct_fail(err, "bad output counts");
  return 1;
}

typedef struct {
  const ct_fuse_prog *pr;
  int64_t n;
  char *const *args, *const *news;
  const double *sv;
  double *partials;   /* nsums per chunk */
} fuse_job;

/* Adds m values to the eight lanes; m is a multiple of 8 except at a chunk's end. */
#define LANES(T, NAME)                                                   \
  static void NAME(double *part, const T *x, int64_t m) {                \
    int64_t k = 0;                                                       \
    for (; k + 8 <= m; k += 8)                                           \
      for (int q = 0; q < 8; q++) part[q] += (double)x[k + q];           \
    for (int q = 0; k + q < m; q++) part[q] += (double)x[k + q];         \
  }
LANES(float, lanes_f32)
LANES(double, lanes_f64)

static double lanes_total(const double *part) {
  double t = 0;
  for (int q = 0; q < 8; q++) t += part[q];
  return t;
}

#define UN(T, E, EXPR) \
  case CT_FUSE_##E: for (int64_t i = 0; i < m; i++) { T v = x[i]; d[i] = (EXPR); } break;
#define BIN(T, E, EXPR) \
  case CT_FUSE_##E: for (int64_t i = 0; i < m; i++) { T u = x[i], v = y[i]; d[i] = (EXPR); } break;
#define CMP(T, E, OP) BIN(T, E, (T)(u OP v))

/* One block of m elements at element offset off: every instruction, then the outputs. */
#define RUN_KERNEL(T, NAME, LANESFN)                                                          \
  static void NAME(void *vj, size_t lo, size_t hi) {                                          \
    const fuse_job *j = vj;                                                                   \
    const ct_fuse_prog *pr = j->pr;                                                           \
    _Alignas(64) T regs[CT_FUSE_MAXREG * CT_FUSE_BLOCK];                                      \
    double part[CT_FUSE_MAXARG][8];                                                           \
    for (size_t c = lo; c < hi; c++) {                                                        \
      int64_t c0 = (int64_t)c * CT_FUSE_CHUNK, c1 = c0 + CT_FUSE_CHUNK;                       \
      if (c1 > j->n) c1 = j->n;                                                               \
      if (pr->nsums > 0) memset(part, 0, sizeof(double) * 8 * (size_t)pr->nsums);             \
      for (int64_t off = c0; off < c1; off += CT_FUSE_BLOCK) {                                \
        int64_t m = c1 - off < CT_FUSE_BLOCK ? c1 - off : CT_FUSE_BLOCK;                      \
        for (int k = 0; k < pr->nins; k++) {                                                  \
          const ct_fuse_ins *in = &pr->ins[k];                                                \
          T *restrict d = regs + (size_t)in->dst * CT_FUSE_BLOCK;                             \
          const T *x = OPND(T, in->a), *y = OPND(T, in->b), *z = OPND(T, in->c);              \
          const T a = (T)j->sv[in->s0], b = (T)j->sv[in->s1];                                 \
          switch ((ct_fuse_opcode)in->op) {                                                   \
          UN(T, NEG, CT_EW_NEG(T, v, a, b)) UN(T, ABS, CT_EW_ABS(T, v, a, b))                 \
          UN(T, SIGN, CT_EW_SIGN(T, v, a, b)) UN(T, EXP, CT_EW_EXP(T, v, a, b))               \
          UN(T, LOG, CT_EW_LOG(T, v, a, b)) UN(T, LOG1P, CT_EW_LOG1P(T, v, a, b))             \
          UN(T, SQRT, CT_EW_SQRT(T, v, a, b)) UN(T, RSQRT, CT_EW_RSQRT(T, v, a, b))           \
          UN(T, SIN, CT_EW_SIN(T, v, a, b)) UN(T, COS, CT_EW_COS(T, v, a, b))                 \
          UN(T, TANH, CT_EW_TANH(T, v, a, b)) UN(T, SIGMOID, CT_EW_SIGMOID(T, v, a, b))       \
          UN(T, RELU, CT_EW_RELU(T, v, a, b)) UN(T, ERF, CT_EW_ERF(T, v, a, b))               \
          UN(T, GELU, CT_EW_GELU(T, v, a, b)) UN(T, LEAKY_RELU, CT_EW_LEAKY_RELU(T, v, a, b)) \
          UN(T, SOFTPLUS, CT_EW_SOFTPLUS(T, v, a, b)) UN(T, CLAMP, CT_EW_CLAMP(T, v, a, b))   \
          case CT_FUSE_POWS:   /* as ct_unary: squares and cubes multiply */                  \
            if (a == 2) for (int64_t i = 0; i < m; i++) { T v = x[i]; d[i] = CT_EW_POW2(T, v, a, b); } \
            else if (a == 3) for (int64_t i = 0; i < m; i++) { T v = x[i]; d[i] = CT_EW_POW3(T, v, a, b); } \
            else for (int64_t i = 0; i < m; i++) { T v = x[i]; d[i] = CT_EW_POW(T, v, a, b); } \
            break;                                                                            \
          UN(T, RPOWS, CT_EW_RPOW(T, v, a, b)) UN(T, ADDS, CT_EW_ADDS(T, v, a, b))            \
          UN(T, MULS, CT_EW_MULS(T, v, a, b)) UN(T, DIVS, CT_EW_DIVS(T, v, a, b))             \
          UN(T, RSUBS, CT_EW_RSUBS(T, v, a, b)) UN(T, RDIVS, CT_EW_RDIVS(T, v, a, b))         \
          BIN(T, ADD, CT_EW_ADD(T, u, v)) BIN(T, SUB, CT_EW_SUB(T, u, v))                     \
          BIN(T, MUL, CT_EW_MUL(T, u, v)) BIN(T, DIV, CT_EW_DIV(T, u, v))                     \
          BIN(T, POW, CT_EW_BPOW(T, u, v)) BIN(T, MINIMUM, CT_EW_MINIMUM(T, u, v))            \
          BIN(T, MAXIMUM, CT_EW_MAXIMUM(T, u, v))                                             \
          CMP(T, EQ, ==) CMP(T, NE, !=) CMP(T, LT, <) CMP(T, LE, <=) CMP(T, GT, >) CMP(T, GE, >=) \
          case CT_FUSE_WHERE:                                                                 \
            for (int64_t i = 0; i < m; i++) d[i] = x[i] != (T)0 ? y[i] : z[i];                \
            break;                                                                            \
          case CT_FUSE_FULL: for (int64_t i = 0; i < m; i++) d[i] = a; break;                 \
          case CT_FUSE_COPY: for (int64_t i = 0; i < m; i++) d[i] = x[i]; break;              \
          default: break;                                                                     \
          }                                                                                   \
        }                                                                                     \
        for (int k = 0; k < pr->nouts; k++) {                                                 \
          const ct_fuse_out *o = &pr->outs[k];                                                \
          const T *src = OPND(T, o->src);                                                     \
          if (o->kind == CT_FUSE_OUT_SUM) LANESFN(part[o->target], src, m);                   \
          else {                                                                              \
            char *base = o->kind == CT_FUSE_OUT_WRITE ? j->args[o->target] : j->news[o->target]; \
            memcpy((T *)(void *)base + off, src, sizeof(T) * (size_t)m);                      \
          }                                                                                   \
        }                                                                                     \
      }                                                                                       \
      for (int s = 0; s < pr->nsums; s++)                                                     \
        j->partials[c * (size_t)pr->nsums + (size_t)s] = lanes_total(part[s]);                \
    }                                                                                         \
  }
#define OPND(T, r) ((r) >= 0 ? regs + (size_t)(r) * CT_FUSE_BLOCK : (const T *)(const void *)j->args[-(r) - 1] + off)
RUN_KERNEL(float, run_f32, lanes_f32)
RUN_KERNEL(double, run_f64, lanes_f64)
#undef OPND

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

int ct_fuse_run(const ct_fuse_prog *pr, ct_dtype dt, int64_t n, char *const *args,
                const double *scal, char *const *news, double *sums, ct_err *err) {
  double sv[MAXSCAL];
  sv[0] = 0;   /* read, unused, by the instructions without scalars when nscal is 0 */
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
  fuse_job j = {pr, n, args, news, sv, partials};
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
  return ct_fuse_run(&pr, x->dtype, ct_numel(x), args, scal, NULL, out, err);
}
