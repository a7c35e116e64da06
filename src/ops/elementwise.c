/* crater ops: elementwise unary and binary ops (broadcasting, dtype promotion), their
 * backward formulas, and the fused in-place kernels that optimizers use.
 * Kernels: contiguous fast path first, strided runs from ct_iterate second. */
#include <math.h>
#include <string.h>
#include <tgmath.h>

#include "ops.h"
#include "scalar.h"

/* The op table's rows (ops.def): each op's node {name, backward} and what the binding,
 * the docs and the gradcheck spec read.  The backward functions are declared first. */
#define X(e, nm, node, kernel, dt, sv, bw, ...) \
  static int bw(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err);
CT_UNARY_OPS(X)
CT_BINARY_OPS(X)
#undef X
const ct_opinfo ct_unary_info[CT_U_COUNT] = {
#define X(e, nm, node, kernel, dt, sv, bw, na, ar, gr, dc) \
  [CT_U_##e] = {{node, bw, NULL}, #nm, dt, sv, na, ar, gr, dc},
    CT_UNARY_OPS(X)
#undef X
};
const ct_opinfo ct_binary_info[CT_B_COUNT] = {
#define X(e, nm, node, kernel, dt, sv, bw, na, ar, gr, dc) \
  [CT_B_##e] = {{node, bw, NULL}, #nm, dt, sv, na, ar, gr, dc},
    CT_BINARY_OPS(X)
#undef X
};

/* A flat run over contiguous operands, split across threads when large. */
typedef struct {
  ct_loop_fn fn;
  void *ctx;
  int nops;
  char *p[4];
  size_t es[4];
} flat_job;

static void flat_range(void *vjob, size_t lo, size_t hi) {
  flat_job *j = vjob;
  char *p[4];
  for (int k = 0; k < j->nops; k++) p[k] = j->p[k] + lo * j->es[k];
  j->fn(p, (int64_t[]){1, 1, 1, 1}, (int64_t)(hi - lo), j->ctx);
}

static void flat_run(ct_loop_fn fn, void *ctx, int nops, char **p, const size_t *es, int64_t n) {
  if (n <
      4096) { /* ct_parallel would keep it on this thread anyway; the job cost a tiny op ~100 instructions */
    fn(p, (int64_t[]){1, 1, 1, 1}, n, ctx);
    return;
  }
  flat_job j = {fn, ctx, nops, {0}, {0}};
  for (int k = 0; k < nops; k++) {
    j.p[k] = p[k];
    j.es[k] = es[k];
  }
  ct_parallel((size_t)n, flat_range, &j);
}

/* ======================= unary kernels ======================= */

typedef struct {
  ct_unary_op op;
  double a, b;
} un_ctx;

/* one loop per op: the switch stays outside so each loop vectorises */
#define ULOOP(T, EXPR)                  \
  do {                                  \
    if (sy == 1 && sx == 1)             \
      for (int64_t i = 0; i < n; i++) { \
        T v = x[i];                     \
        y[i] = (EXPR);                  \
      }                                 \
    else                                \
      for (int64_t i = 0; i < n; i++) { \
        T v = x[i * sx];                \
        y[i * sy] = (EXPR);             \
      }                                 \
  } while (0)

/* one case of the float kernels' switch per row of the table (ops.def's kernel column) */
#define UK(F) ULOOP(real, F(real, v, a, b))
#define UK_POW /* squares and cubes multiply, as PyTorch's kernel does */ \
  if (a == 2) ULOOP(real, CT_EW_POW2(real, v, a, b));                     \
  else if (a == 3) ULOOP(real, CT_EW_POW3(real, v, a, b));                \
  else ULOOP(real, CT_EW_POW(real, v, a, b))
#define UNARY_CASE(e, nm, node, kernel, ...) \
  case CT_U_##e:                             \
    kernel;                                  \
    break;
#define UNARY_FLOAT_KERNEL(T, NAME)                                     \
  static void NAME(char **p, const int64_t *s, int64_t n, void *vctx) { \
    un_ctx *c = vctx;                                                   \
    T *y = (T *)p[0];                                                   \
    const T *x = (const T *)p[1];                                       \
    int64_t sy = s[0], sx = s[1];                                       \
    const T a = (T)c->a, b = (T)c->b;                                   \
    typedef T real; /* for UNARY_CASE, which the table expands */       \
    switch (c->op) {                                                    \
      CT_UNARY_OPS(UNARY_CASE)                                          \
    default: break;                                                     \
    }                                                                   \
  }
UNARY_FLOAT_KERNEL(float, unary_f32)
UNARY_FLOAT_KERNEL(double, unary_f64)

/* int64 overflow wraps, as in PyTorch: compute in uint64, where wrapping is defined. */
static inline int64_t wadd(int64_t u, int64_t v) { return (int64_t)((uint64_t)u + (uint64_t)v); }
static inline int64_t wsub(int64_t u, int64_t v) { return (int64_t)((uint64_t)u - (uint64_t)v); }
static inline int64_t wmul(int64_t u, int64_t v) { return (int64_t)((uint64_t)u * (uint64_t)v); }

/* u^v for v >= 0 by squaring, wrapping on overflow */
static int64_t ipow(int64_t u, int64_t v) {
  uint64_t r = 1, b = (uint64_t)u;
  for (; v > 0; v >>= 1) {
    if (v & 1) r *= b;
    b *= b;
  }
  return (int64_t)r;
}

static void unary_i64(char **p, const int64_t *s, int64_t n, void *vctx) {
  un_ctx *c = vctx;
  int64_t *y = (int64_t *)p[0];
  const int64_t *x = (const int64_t *)p[1];
  int64_t sy = s[0], sx = s[1], a = ct_i64_of(c->a), b = ct_i64_of(c->b);
  switch (c->op) {
  case CT_U_NEG: ULOOP(int64_t, wsub(0, v)); break;
  case CT_U_ABS: ULOOP(int64_t, v < 0 ? wsub(0, v) : v); break;
  case CT_U_SIGN: ULOOP(int64_t, (v > 0) - (v < 0)); break;
  case CT_U_RELU: ULOOP(int64_t, v > 0 ? v : 0); break;
  case CT_U_CLAMP: ULOOP(int64_t, v < a ? a : (v > b ? b : v)); break;
  case CT_U_ADDS: ULOOP(int64_t, wadd(v, a)); break;
  case CT_U_MULS: ULOOP(int64_t, wmul(v, a)); break;
  case CT_U_RSUBS: ULOOP(int64_t, wsub(a, v)); break;
  case CT_U_POW: ULOOP(int64_t, ipow(v, a)); break;
  default: break;
  }
}

/* Whether an int64 x stays int64 (the table's dtype rule; CT_DT_INTS when the scalars are
 * whole numbers); the rest compute in float32. */
static bool int_closed(ct_unary_op op, double a, double b) {
  if (ct_unary_info[op].dtype == CT_DT_INT) return true;
  if (ct_unary_info[op].dtype != CT_DT_INTS) return false;
  if (op == CT_U_CLAMP) return (a == floor(a) || isinf(a)) && (b == floor(b) || isinf(b));
  if (op == CT_U_POW) return a == floor(a) && a >= 0 && a < 9e15; /* a < 0 is refused before */
  return a == floor(a) && fabs(a) < 9e15;
}

/* An op whose table row says CT_DT_NOINT has no int64 kernel, as in PyTorch. */
#define NO_INT_KERNEL "int64 tensors are not supported, as in PyTorch (convert with :to(\"float32\") first)"

/* PyTorch refuses an int64 raised to a negative integer power (the result is not an integer). */
#define NEGATIVE_POWER "integers to negative integer powers are not allowed"
static void any_negative(char **p, const int64_t *s, int64_t n, void *vctx) {
  const int64_t *x = (const int64_t *)p[0];
  bool *found = vctx;
  for (int64_t i = 0; i < n && !*found; i++) *found = x[i * s[0]] < 0;
}
static bool has_negative(const ct_tensor *t) {
  bool found = false;
  int64_t st[1][CT_MAXDIM], shape[CT_MAXDIM];
  memcpy(st[0], t->stride, sizeof st[0]);
  /* an expanded dimension repeats its elements: looking once is enough (2^62 rows of them) */
  for (int d = 0; d < t->ndim; d++) shape[d] = t->stride[d] == 0 && t->shape[d] > 0 ? 1 : t->shape[d];
  ct_iterate(1, (char *[]){ct_data(t)}, (size_t[]){sizeof(int64_t)}, t->ndim, shape, st, any_negative,
             &found);
  return found;
}
static bool negative_int_power(const ct_tensor *x, double a) {
  return x->dtype == CT_I64 && a < 0 && a == floor(a);
}

static void unary_apply(ct_tensor *y, ct_tensor *x, ct_unary_op op, double a, double b) {
  un_ctx c = {op, a, b};
  if (x->dtype == CT_I64 && op == CT_U_CLAMP) { /* clamp bounds at int64 range */
    c.a = isinf(a) ? -9.3e18 : a; /* ct_i64_of saturates */
    c.b = isinf(b) ? 9.3e18 : b;
  }
  char *base[2] = {ct_data(y), ct_data(x)};
  ct_loop_fn fn = x->dtype == CT_F32 ? unary_f32 : x->dtype == CT_F64 ? unary_f64 : unary_i64;
  size_t es = ct_dtype_size(x->dtype);
  if (ct_is_contiguous(x) && ct_is_contiguous(y)) {
    flat_run(fn, &c, 2, base, (size_t[]){es, es}, ct_numel(x));
    return;
  }
  int64_t st[2][CT_MAXDIM];
  memcpy(st[0], y->stride, sizeof st[0]);
  memcpy(st[1], x->stride, sizeof st[1]);
  ct_iterate(2, base, (size_t[]){es, es}, x->ndim, x->shape, st, fn, &c);
}

/* ---- unary backward: one formula per op, built from ops ---- */

static const ct_op *unary_op(ct_unary_op op) { return &ct_unary_info[op].op; }

/* What backward reads (the table's saves): the result for exp, sqrt, tanh & co.; nothing
 * for the linear ops, so x may change in place afterwards, as in PyTorch (y = x * 2;
 * x:add_(1); y:backward() works). */
static bool saves_out(ct_unary_op op) { return ct_unary_info[op].saves & CT_SAVE_OUT; }
static bool saves_nothing(ct_unary_op op) { return ct_unary_info[op].saves == CT_SAVE_NONE; }

ct_tensor *ct_unary(ct_unary_op op, ct_tensor *x, double a, double b, ct_err *err) {
  ct_tensor *src = x, *cast = NULL;
  if (op == CT_U_POW && negative_int_power(x, a)) return ct_fail(err, NEGATIVE_POWER), NULL;
  if (x->dtype == CT_I64 && ct_unary_info[op].dtype == CT_DT_NOINT) return ct_fail(err, NO_INT_KERNEL), NULL;
  if (x->dtype == CT_I64 && !int_closed(op, a, b)) {
    cast = ct_to(x, CT_F32, err);
    if (cast == NULL) return NULL;
    src = cast;
  }
  ct_tensor *y = ct_tensor_new(src->dtype, src->ndim, src->shape, err);
  if (y) unary_apply(y, src, op, a, b);
  if (y && ct_needs_grad(1, &src)) {
    ct_node *nd = ct_record(unary_op(op), y, 1, &src, err);
    if (nd == NULL || (!saves_nothing(op) && !ct_save(nd, saves_out(op) ? y : src, saves_out(op), err))) {
      ct_tensor_release(y);
      y = NULL;
    } else {
      nd->arg.elementwise.op = op;
      nd->arg.elementwise.a = a;
      nd->arg.elementwise.b = b;
    }
  }
  ct_tensor_release(cast);
  return y;
}

ct_tensor *ct_scale(ct_tensor *x, double s, ct_err *err) { return ct_unary(CT_U_MULS, x, s, 0, err); }

static ct_tensor *un(ct_unary_op op, ct_tensor *x, double a, ct_err *err) {
  return x ? ct_unary(op, x, a, 0, err) : NULL;
}

/* un() that consumes x: for chains of temporaries */
static ct_tensor *unc(ct_unary_op op, ct_tensor *x, double a, ct_err *err) {
  ct_tensor *r = un(op, x, a, err);
  ct_tensor_release(x);
  return r;
}

/* Consumes a and b (either may be NULL on an earlier failure). */
static ct_tensor *mul_own(ct_tensor *a, ct_tensor *b, ct_err *err) {
  ct_tensor *r = (a && b) ? ct_mul(a, b, err) : NULL;
  ct_tensor_release(a);
  ct_tensor_release(b);
  return r;
}

static ct_tensor *own1(ct_tensor *r, ct_tensor *consumed) {
  ct_tensor_release(consumed);
  return r;
}

static ct_tensor *scalar_like(ct_tensor *t, double v, ct_err *err) {
  return ct_tensor_scalar(t->dtype, v, err);
}

/* op(g) for a linear op's gradient: written into g itself when g is private (the engine
 * hands each node a gradient it may own alone), else a new tensor. */
static ct_tensor *grad_apply(ct_unary_op op, ct_tensor *g, double a, ct_err *err) {
  if (g->dtype == CT_I64 || !ct_grad_private(g)) return ct_unary(op, g, a, 0, err);
  unary_apply(g, g, op, a, 0);
  ct_bump(g);
  ct_tensor_retain(g);
  return g;
}

/* x^2's backward, (g x) 2, written into g in one pass when g is private and lies as x does:
 * the same bits as the two in-place ops it replaces (2 scales exactly), without their checks
 * (x^2 is everywhere in small problems: three of a Rosenbrock step's ten nodes). */
static bool square_grad_in_place(ct_tensor *g, const ct_tensor *x) {
  if (!ct_grad_private(g) || g->dtype != x->dtype || g->dtype == CT_I64 || !ct_same_shape(g, x) ||
      !ct_is_contiguous(x))
    return false;
  int64_t n = ct_numel(g);
  if (g->dtype == CT_F32) {
    float *o = (float *)ct_data(g);
    const float *v = (const float *)ct_data(x);
    for (int64_t i = 0; i < n; i++) o[i] = o[i] * v[i] * 2;
  } else {
    double *o = (double *)ct_data(g);
    const double *v = (const double *)ct_data(x);
    for (int64_t i = 0; i < n; i++) o[i] = o[i] * v[i] * 2;
  }
  ct_bump(g);
  return true;
}

static int unary_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_unary_op op = (ct_unary_op)nd->arg.elementwise.op;
  double a = nd->arg.elementwise.a, b = nd->arg.elementwise.b;
  ct_tensor *s = NULL; /* x, or y for saves_out ops; nothing for the linear ones */
  if (!saves_nothing(op) && (s = ct_saved(nd, 0, err)) == NULL) return 0;
  ct_tensor *r = NULL, *t = NULL;
  switch (op) {
  case CT_U_NEG: r = grad_apply(CT_U_NEG, g, 0, err); break;
  case CT_U_ABS: r = mul_own(ct_unary(CT_U_SIGN, s, 0, 0, err), (ct_tensor_retain(g), g), err); break;
  case CT_U_SIGN: r = ct_zeros_like(g, err); break;
  case CT_U_EXP: r = ct_mul(g, s, err); break; /* g * y */
  case CT_U_LOG: r = ct_div(g, s, err); break; /* g / x */
  case CT_U_LOG1P:
    t = un(CT_U_ADDS, s, 1, err);
    r = t ? ct_div(g, t, err) : NULL;
    ct_tensor_release(t);
    break;
  case CT_U_SQRT:
    t = un(CT_U_MULS, s, 2, err);
    r = t ? ct_div(g, t, err) : NULL;
    ct_tensor_release(t);
    break; /* g / 2y */
  case CT_U_RSQRT: /* -g y^3 / 2 */
    r = mul_own(un(CT_U_MULS, g, -0.5, err), un(CT_U_POW, s, 3, err), err);
    break;
  case CT_U_SIN:
    t = un(CT_U_COS, s, 0, err);
    r = t ? ct_mul(g, t, err) : NULL;
    ct_tensor_release(t);
    break;
  case CT_U_COS: r = mul_own(un(CT_U_NEG, g, 0, err), un(CT_U_SIN, s, 0, err), err); break;
  case CT_U_TANH: /* g (1 - y^2) */
    t = unc(CT_U_RSUBS, un(CT_U_POW, s, 2, err), 1, err);
    r = t ? ct_mul(g, t, err) : NULL;
    ct_tensor_release(t);
    break;
  case CT_U_SIGMOID: /* g y (1 - y) */ r = mul_own(ct_mul(g, s, err), un(CT_U_RSUBS, s, 1, err), err); break;
  case CT_U_RELU: { /* g [y > 0] */
    ct_tensor *zero = scalar_like(s, 0, err);
    r = zero ? mul_own(ct_compare_as(CT_B_GT, s, zero, err), (ct_tensor_retain(g), g), err) : NULL;
    ct_tensor_release(zero);
    break;
  }
  case CT_U_ERF: /* g 2/sqrt(pi) e^{-x^2} */
    r = mul_own(un(CT_U_MULS, g, 1.12837916709551257390, err),
                unc(CT_U_EXP, unc(CT_U_NEG, un(CT_U_POW, s, 2, err), 0, err), 0, err), err);
    break;
  case CT_U_GELU: { /* g (Phi(x) + x phi(x)) */
    ct_tensor *cdf =
        unc(CT_U_MULS,
            unc(CT_U_ADDS, unc(CT_U_ERF, un(CT_U_MULS, s, 0.70710678118654752440, err), 0, err), 1, err), 0.5,
            err);
    ct_tensor *pdf = unc(CT_U_MULS, unc(CT_U_EXP, unc(CT_U_MULS, un(CT_U_POW, s, 2, err), -0.5, err), 0, err),
                         0.39894228040143267794, err);
    ct_tensor *xpdf = pdf ? ct_mul(s, pdf, err) : NULL;
    ct_tensor *sum = (cdf && xpdf) ? ct_add(cdf, xpdf, err) : NULL;
    ct_tensor_release(cdf);
    ct_tensor_release(pdf);
    ct_tensor_release(xpdf);
    r = sum ? own1(ct_mul(g, sum, err), sum) : NULL;
    break;
  }
  case CT_U_LEAKY_RELU: { /* g (a + (1-a)[x > 0]) */
    ct_tensor *zero = scalar_like(s, 0, err);
    ct_tensor *m = zero ? ct_compare_as(CT_B_GT, s, zero, err) : NULL;
    ct_tensor *f = unc(CT_U_ADDS, unc(CT_U_MULS, m, 1 - a, err), a, err);
    ct_tensor_release(zero);
    r = f ? own1(ct_mul(g, f, err), f) : NULL;
    break;
  }
  case CT_U_SOFTPLUS: { /* g sigmoid(beta x), or g where beta x > threshold */
    ct_tensor *bx = un(CT_U_MULS, s, a, err);
    ct_tensor *thr = scalar_like(s, b, err);
    ct_tensor *lin = (bx && thr) ? ct_compare_as(CT_B_GT, bx, thr, err) : NULL;
    ct_tensor *sg = un(CT_U_SIGMOID, bx, 0, err);
    ct_tensor *one = scalar_like(s, 1, err);
    ct_tensor *f = (lin && sg && one) ? ct_where(lin, one, sg, err) : NULL;
    ct_tensor_release(thr);
    ct_tensor_release(lin);
    ct_tensor_release(sg);
    ct_tensor_release(one);
    ct_tensor_release(bx);
    r = f ? own1(ct_mul(g, f, err), f) : NULL;
    break;
  }
  case CT_U_CLAMP: { /* g [min <= x <= max]: the gradient passes at the boundaries, as PyTorch */
    ct_tensor *lo = scalar_like(s, a, err), *hi = scalar_like(s, b, err);
    ct_tensor *m = (lo && hi)
        ? mul_own(ct_compare_as(CT_B_GE, s, lo, err), ct_compare_as(CT_B_LE, s, hi, err), err)
        : NULL;
    ct_tensor_release(lo);
    ct_tensor_release(hi);
    r = m ? own1(ct_mul(g, m, err), m) : NULL;
    break;
  }
  case CT_U_POW: /* g a x^(a-1) */
    if (a == 0) r = ct_zeros_like(g, err);
    else if (a == 2 && square_grad_in_place(g, s)) r = (ct_tensor_retain(g), g);
    else if (!ct_grad_enabled) { /* no double backward: one tensor, scaled in place */
      if (a == 2 && ct_grad_private(g) && g->dtype == s->dtype) {
        ct_tensor_retain(g);
        r = g;
      } /* g x, in g */
      else
        r = a == 2 ? ct_mul(g, s, err) : un(CT_U_POW, s, a - 1, err); /* x^1 is x: one op fewer */
      if (r == g && !ct_binary_(CT_B_MUL, r, s, err)) {
        ct_tensor_release(r);
        r = NULL;
      }
      if (r && a != 2 && !ct_binary_(CT_B_MUL, r, g, err)) {
        ct_tensor_release(r);
        r = NULL;
      }
      if (r && !ct_unary_(CT_U_MULS, r, a, 0, err)) {
        ct_tensor_release(r);
        r = NULL;
      }
    } else if (a == 2) r = mul_own(un(CT_U_MULS, g, 2, err), (ct_tensor_retain(s), s), err);
    else r = mul_own(un(CT_U_MULS, g, a, err), un(CT_U_POW, s, a - 1, err), err);
    break;
  case CT_U_RPOW:
    t = un(CT_U_MULS, s, log(a), err);
    r = t ? ct_mul(g, t, err) : NULL;
    ct_tensor_release(t);
    break; /* g y ln a */
  case CT_U_ADDS:
    ct_tensor_retain(g);
    r = g;
    break;
  case CT_U_MULS: r = grad_apply(CT_U_MULS, g, a, err); break;
  case CT_U_DIVS: r = grad_apply(CT_U_DIVS, g, a, err); break;
  case CT_U_RSUBS: r = grad_apply(CT_U_NEG, g, 0, err); break;
  case CT_U_RDIVS: /* -g a / x^2 */
    t = un(CT_U_POW, s, 2, err);
    r = mul_own(un(CT_U_MULS, g, -a, err), t ? ct_unary(CT_U_POW, t, -1, 0, err) : NULL, err);
    ct_tensor_release(t);
    break;
  default: break;
  }
  ct_tensor_release(s);
  gin[0] = r;
  return r != NULL;
}

/* In-place writes are refused on a leaf that requires grad and on any view of one (the
 * view's chain of view nodes ends at the leaf), as PyTorch does outside no_grad. */
static bool is_view_op(const ct_op *op) {
  static const char *const views[] = {"ViewBackward",      "SelectBackward",  "NarrowBackward",
                                      "TransposeBackward", "PermuteBackward", "ExpandBackward",
                                      "AsStridedBackward"};
  for (size_t k = 0; k < sizeof views / sizeof views[0]; k++)
    if (strcmp(op->name, views[k]) == 0) return true;
  return false;
}

static int graft(ct_tensor *x, ct_tensor *r, ct_err *err);

static int leaf_write_ok(const ct_tensor *x, ct_err *err) {
  if (ct_is_expanded(x)) /* one element would take several writes */
    return ct_fail(err,
                   "unsupported operation: more than one element of the written-to tensor "
                   "refers to a single memory location (an expanded view: clone() it first)");
  if (!ct_grad_enabled) return 1;
  const ct_tensor *base = x->view ? ct_view_base(x) : NULL;
  if (base && base->requires_grad && base->grad_fn == NULL)
    return ct_fail(err,
                   "a view of a leaf tensor that requires grad is used in an in-place "
                   "operation (wrap it in crater.no_grad)");
  if (!x->requires_grad) return 1;
  if (x->grad_fn == NULL)
    return ct_fail(err,
                   "a leaf tensor that requires grad is used in an in-place operation "
                   "(wrap it in crater.no_grad)");
  for (const ct_node *n = x->grad_fn; n && n->nin == 1 && is_view_op(n->op); n = n->edge[0].fn)
    if (n->edge[0].leaf)
      return ct_fail(err,
                     "a view of a leaf tensor that requires grad is used in an in-place "
                     "operation (wrap it in crater.no_grad)");
  return 1;
}

int ct_inplace_ok(const ct_tensor *x, ct_err *err) { return leaf_write_ok(x, err); }

int ct_unary_(ct_unary_op op, ct_tensor *x, double a, double b, ct_err *err) {
  if (!leaf_write_ok(x, err)) return 0;
  if (op == CT_U_POW && negative_int_power(x, a)) return ct_fail(err, NEGATIVE_POWER);
  if (x->dtype == CT_I64 && !int_closed(op, a, b))
    return ct_fail(err, "result type float32 can't be cast to the desired output type int64");
  if (ct_grad_enabled && x->requires_grad) { /* record: compute out of place, write back */
    ct_tensor *xc = ct_clone(x, err); /* what the node saves must outlive the write-back */
    ct_tensor *y = xc ? ct_unary(op, xc, a, b, err) : NULL;
    ct_tensor_release(xc);
    return graft(x, y, err);
  }
  unary_apply(x, x, op, a, b);
  ct_bump(x);
  return 1;
}

/* ======================= binary kernels ======================= */

int ct_broadcast_shape(const ct_tensor *a, const ct_tensor *b, int *ndim, int64_t *shape, ct_err *err) {
  int n = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < n; i++) {
    int ia = a->ndim - n + i, ib = b->ndim - n + i;
    int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char x[96], y[96];
      return ct_fail(err, "shapes %s and %s cannot be broadcast (size %lld vs %lld at dim %d)",
                     ct_shape_str(x, a->ndim, a->shape), ct_shape_str(y, b->ndim, b->shape), (long long)sa,
                     (long long)sb, i + 1);
    }
    shape[i] = sa == 1 ? sb : sa;
  }
  /* (2^62, 0) with (3, 1, 1) is a legal pair whose broadcast (3, 2^62, 0) is not */
  if (ct_shape_numel(n, shape, err) < 0) return 0;
  *ndim = n;
  return 1;
}

/* element strides of t seen with 'shape' (broadcast dims get stride 0) */
static void broadcast_strides(const ct_tensor *t, int ndim, const int64_t *shape, int64_t *st) {
  for (int i = 0; i < ndim; i++) {
    int it = t->ndim - ndim + i;
    st[i] = (it < 0 || (t->shape[it] == 1 && shape[i] != 1)) ? 0 : t->stride[it];
  }
}

typedef struct {
  ct_binary_op op;
} bin_ctx;

#define BLOOP(T, TO, EXPR)                    \
  do {                                        \
    if (so == 1 && sa == 1 && sb == 1)        \
      for (int64_t i = 0; i < n; i++) {       \
        T u = a[i], v = b[i];                 \
        o[i] = (TO)(EXPR);                    \
      }                                       \
    else if (so == 1 && sa == 1 && sb == 0) { \
      T v = b[0];                             \
      for (int64_t i = 0; i < n; i++) {       \
        T u = a[i];                           \
        o[i] = (TO)(EXPR);                    \
      }                                       \
    } else                                    \
      for (int64_t i = 0; i < n; i++) {       \
        T u = a[i * sa], v = b[i * sb];       \
        o[i * so] = (TO)(EXPR);               \
      }                                       \
  } while (0)

/* comparisons write the output type TO (int64, or the input type for masks) */
#define CMP_CASES(T, TO)                     \
  case CT_B_EQ: BLOOP(T, TO, u == v); break; \
  case CT_B_NE: BLOOP(T, TO, u != v); break; \
  case CT_B_LT: BLOOP(T, TO, u < v); break;  \
  case CT_B_LE: BLOOP(T, TO, u <= v); break; \
  case CT_B_GT: BLOOP(T, TO, u > v); break;  \
  case CT_B_GE: BLOOP(T, TO, u >= v); break;

/* logaddexp (formula CT_EW_LOGADDEXP in scalar.h, shared with crater.fuse):
 * https://pytorch.org/docs/stable/generated/torch.logaddexp.html
 * backward: d/du = 1 / (1 + e^(v - u)), d/dv = 1 / (1 + e^(u - v)) (PyTorch's
 * derivatives.yaml), which stay 1 and 0 when u = inf > v. */
static ct_tensor *logaddexp_part(ct_tensor *g, ct_tensor *u, ct_tensor *v, ct_err *err) {
  ct_tensor *d = ct_sub(v, u, err); /* g / (1 + e^(v - u)) */
  ct_tensor *den = unc(CT_U_ADDS, unc(CT_U_EXP, d, 0, err), 1, err);
  return den ? own1(ct_div(g, den, err), den) : NULL;
}
static int logaddexp_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *a = ct_saved(nd, 0, err), *b = a ? ct_saved(nd, 1, err) : NULL;
  bool ok = b != NULL;
  if (ok && nd->edge[0].needs) ok = (gin[0] = logaddexp_part(g, a, b, err)) != NULL;
  if (ok && nd->edge[1].needs) ok = (gin[1] = logaddexp_part(g, b, a, err)) != NULL;
  ct_tensor_release(a);
  ct_tensor_release(b);
  return ok;
}

/* the comparisons' formulas (ops.def's kernel column) */
#define CMP_EQ(T, u, v) ((u) == (v))
#define CMP_NE(T, u, v) ((u) != (v))
#define CMP_LT(T, u, v) ((u) < (v))
#define CMP_LE(T, u, v) ((u) <= (v))
#define CMP_GT(T, u, v) ((u) > (v))
#define CMP_GE(T, u, v) ((u) >= (v))

/* one case of the float kernel's switch per row of the table */
#define BINARY_CASE(e, nm, node, kernel, ...) \
  case CT_B_##e:                              \
    BLOOP(real, real, kernel(real, u, v));    \
    break;
#define BINARY_FLOAT_KERNEL(T, NAME)                                          \
  static void NAME(char **p, const int64_t *s, int64_t n, void *vctx) {       \
    bin_ctx *c = vctx;                                                        \
    T *o = (T *)p[0];                                                         \
    const T *a = (const T *)p[1], *b = (const T *)p[2];                       \
    int64_t so = s[0], sa = s[1], sb = s[2];                                  \
    typedef T real; /* for BINARY_CASE */                                     \
    switch (c->op) {                                                          \
      CT_BINARY_OPS(BINARY_CASE)                                              \
    default: break;                                                           \
    }                                                                         \
  }                                                                           \
  static void NAME##_cmp(char **p, const int64_t *s, int64_t n, void *vctx) { \
    bin_ctx *c = vctx;                                                        \
    int64_t *o = (int64_t *)p[0];                                             \
    const T *a = (const T *)p[1], *b = (const T *)p[2];                       \
    int64_t so = s[0], sa = s[1], sb = s[2];                                  \
    switch (c->op) { CMP_CASES(T, int64_t) default : break; }                 \
  }
BINARY_FLOAT_KERNEL(float, binary_f32)
BINARY_FLOAT_KERNEL(double, binary_f64)

static void binary_i64(char **p, const int64_t *s, int64_t n, void *vctx) {
  bin_ctx *c = vctx;
  int64_t *o = (int64_t *)p[0];
  const int64_t *a = (const int64_t *)p[1], *b = (const int64_t *)p[2];
  int64_t so = s[0], sa = s[1], sb = s[2];
  switch (c->op) {
  case CT_B_ADD: BLOOP(int64_t, int64_t, wadd(u, v)); break;
  case CT_B_SUB: BLOOP(int64_t, int64_t, wsub(u, v)); break;
  case CT_B_MUL: BLOOP(int64_t, int64_t, wmul(u, v)); break;
  case CT_B_POW: BLOOP(int64_t, int64_t, ipow(u, v)); break;
  case CT_B_MINIMUM: BLOOP(int64_t, int64_t, u < v ? u : v); break;
  case CT_B_MAXIMUM:
    BLOOP(int64_t, int64_t, u > v ? u : v);
    break;
    CMP_CASES(int64_t, int64_t)
  default: break;
  }
}
#define binary_i64_cmp binary_i64

static bool is_cmp(ct_binary_op op) { return ct_binary_info[op].dtype == CT_DT_CMP; }

/* fresh: o is new (so contiguous) and of the one shape of a and b, as the caller knows */
static void binary_apply(ct_tensor *o, ct_tensor *a, ct_tensor *b, ct_binary_op op, bool fresh) {
  bin_ctx c = {op};
  bool cmp_out = o->dtype != a->dtype; /* int64 output of a float comparison */
  ct_loop_fn fn = a->dtype == CT_F32 ? (cmp_out ? binary_f32_cmp : binary_f32)
      : a->dtype == CT_F64           ? (cmp_out ? binary_f64_cmp : binary_f64)
                                     : binary_i64;
  if ((fresh || (ct_same_shape(a, b) && ct_same_shape(a, o) && ct_is_contiguous(o))) && ct_is_contiguous(a) &&
      ct_is_contiguous(b)) { /* the common case: one flat run */
    char *p[3] = {ct_data(o), ct_data(a), ct_data(b)};
    size_t es[3] = {ct_dtype_size(o->dtype), ct_dtype_size(a->dtype), ct_dtype_size(b->dtype)};
    flat_run(fn, &c, 3, p, es, ct_numel(o));
    return;
  }
  char *base[3] = {ct_data(o), ct_data(a), ct_data(b)};
  int64_t st[3][CT_MAXDIM];
  memcpy(st[0], o->stride, sizeof st[0]);
  broadcast_strides(a, o->ndim, o->shape, st[1]);
  broadcast_strides(b, o->ndim, o->shape, st[2]);
  size_t es[3] = {ct_dtype_size(o->dtype), ct_dtype_size(a->dtype), ct_dtype_size(b->dtype)};
  ct_iterate(3, base, es, o->ndim, o->shape, st, fn, &c);
}

static const ct_op *binary_op(ct_binary_op op) { return &ct_binary_info[op].op; }

/* Brings a and b to one dtype (new references in *pa, *pb). */
static int promote_pair(ct_tensor *a, ct_tensor *b, ct_tensor **pa, ct_tensor **pb, ct_err *err) {
  ct_dtype dt = ct_promote(a->dtype, b->dtype);
  /* PyTorch: a 0-d operand decides only across categories (one dtype needs no rule) */
  if (a->dtype != b->dtype && (a->ndim == 0) != (b->ndim == 0)) {
    const ct_tensor *t = a->ndim ? a : b, *z = a->ndim ? b : a;
    dt = (t->dtype != CT_I64 || z->dtype == CT_I64) ? t->dtype : z->dtype;
  }
  *pa = a->dtype == dt ? (ct_tensor_retain(a), a) : ct_to(a, dt, err);
  if (*pa == NULL) return 0;
  *pb = b->dtype == dt ? (ct_tensor_retain(b), b) : ct_to(b, dt, err);
  if (*pb == NULL) {
    ct_tensor_release(*pa);
    return 0;
  }
  return 1;
}

static ct_tensor *binary_out(ct_binary_op op, ct_tensor *a0, ct_tensor *b0, bool int_cmp, ct_err *err) {
  int nd;
  int64_t shape[CT_MAXDIM];
  ct_tensor *a, *b, *o = NULL;
  bool same = ct_same_shape(a0, b0);
  if (same) { /* the common case: the shape of both, whose size is known to fit */
    nd = a0->ndim;
    for (int i = 0; i < nd; i++) shape[i] = a0->shape[i];
  } else if (!ct_broadcast_shape(a0, b0, &nd, shape, err)) return NULL;
  if (!promote_pair(a0, b0, &a, &b, err)) return NULL;
  if (op == CT_B_POW && a->dtype == CT_I64 && has_negative(b)) {
    ct_tensor_release(a);
    ct_tensor_release(b);
    return ct_fail(err, NEGATIVE_POWER), NULL;
  }
  if (a->dtype == CT_I64 && ct_binary_info[op].dtype == CT_DT_NOINT) {
    ct_tensor_release(a);
    ct_tensor_release(b);
    return ct_fail(err, NO_INT_KERNEL), NULL;
  }
  if (a->dtype == CT_I64 && ct_binary_info[op].dtype == CT_DT_FLOAT) { /* true division, as PyTorch */
    ct_tensor *fa = ct_to(a, CT_F32, err), *fb = fa ? ct_to(b, CT_F32, err) : NULL;
    ct_tensor_release(a);
    ct_tensor_release(b);
    if (fb == NULL) {
      ct_tensor_release(fa);
      return NULL;
    }
    a = fa;
    b = fb;
  }
  o = ct_tensor_new(is_cmp(op) && int_cmp ? CT_I64 : a->dtype, nd, shape, err);
  if (o) binary_apply(o, a, b, op, same);
  if (o && !is_cmp(op) && ct_needs_grad(2, (ct_tensor *[]){a, b})) {
    ct_node *n = ct_record(binary_op(op), o, 2, (ct_tensor *[]){a, b}, err);
    bool ok = n != NULL;
    int saves = ct_binary_info[op].saves;
    if (ok && (saves & CT_SAVE_IN)) ok = ct_save(n, a, false, err) && ct_save(n, b, false, err);
    if (ok && (saves & CT_SAVE_OUT)) ok = ct_save(n, o, true, err);
    if (ok) n->arg.elementwise.op = op;
    else {
      ct_tensor_release(o);
      o = NULL;
    }
  }
  ct_tensor_release(a);
  ct_tensor_release(b);
  return o;
}

ct_tensor *ct_binary(ct_binary_op op, ct_tensor *a, ct_tensor *b, ct_err *err) {
  return binary_out(op, a, b, true, err);
}
ct_tensor *ct_compare_as(ct_binary_op op, ct_tensor *a, ct_tensor *b, ct_err *err) {
  return binary_out(op, a, b, false, err);
}
ct_tensor *ct_add(ct_tensor *a, ct_tensor *b, ct_err *err) { return ct_binary(CT_B_ADD, a, b, err); }
ct_tensor *ct_sub(ct_tensor *a, ct_tensor *b, ct_err *err) { return ct_binary(CT_B_SUB, a, b, err); }
ct_tensor *ct_mul(ct_tensor *a, ct_tensor *b, ct_err *err) { return ct_binary(CT_B_MUL, a, b, err); }
ct_tensor *ct_div(ct_tensor *a, ct_tensor *b, ct_err *err) { return ct_binary(CT_B_DIV, a, b, err); }

ct_tensor *ct_zeros_like(ct_tensor *x, ct_err *err) {
  return ct_tensor_zeros(x->dtype, x->ndim, x->shape, err);
}

static int binary_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_binary_op op = (ct_binary_op)nd->arg.elementwise.op;
  bool na = nd->edge[0].needs, nb = nd->edge[1].needs;
  if (op == CT_B_ADD) {
    if (na) {
      ct_tensor_retain(g);
      gin[0] = g;
    }
    if (nb) {
      ct_tensor_retain(g);
      gin[1] = g;
    }
    return 1;
  }
  if (op == CT_B_SUB) {
    if (na) {
      ct_tensor_retain(g);
      gin[0] = g;
    }
    if (nb && !(gin[1] = grad_apply(CT_U_NEG, g, 0, err))) return 0; /* after gin[0] took g */
    return 1;
  }
  ct_tensor *a = ct_saved(nd, 0, err), *b = a ? ct_saved(nd, 1, err) : NULL, *o = NULL;
  if (b == NULL) {
    ct_tensor_release(a);
    return 0;
  }
  if ((ct_binary_info[op].saves & CT_SAVE_OUT) && (o = ct_saved(nd, 2, err)) == NULL) {
    ct_tensor_release(a);
    ct_tensor_release(b);
    return 0;
  }
  switch (op) {
  case CT_B_MUL:
    if (na) gin[0] = ct_mul(g, b, err);
    if (nb) gin[1] = ct_mul(g, a, err);
    break;
  case CT_B_DIV: /* g / b and -g o / b */
    if (na) gin[0] = ct_div(g, b, err);
    if (nb) gin[1] = ct_div(mul_own(ct_unary(CT_U_NEG, g, 0, 0, err), (ct_tensor_retain(o), o), err), b, err);
    break;
  case CT_B_POW: {
    if (na) { /* g b a^(b-1) */
      ct_tensor *bm1 = ct_unary(CT_U_ADDS, b, -1, 0, err);
      ct_tensor *p = bm1 ? ct_binary(CT_B_POW, a, bm1, err) : NULL;
      ct_tensor_release(bm1);
      gin[0] = mul_own(ct_mul(g, b, err), p, err);
    }
    if (nb) { /* g o ln a, zero where a == 0 and b >= 0 (PyTorch's choice) */
      ct_tensor *zero = scalar_like(a, 0, err);
      ct_tensor *az = zero ? ct_compare_as(CT_B_EQ, a, zero, err) : NULL;
      ct_tensor *bp = zero ? ct_compare_as(CT_B_GE, b, zero, err) : NULL;
      ct_tensor *m = (az && bp) ? ct_mul(az, bp, err) : NULL;
      ct_tensor *t = mul_own(ct_mul(g, o, err), ct_unary(CT_U_LOG, a, 0, 0, err), err);
      gin[1] = (m && t) ? ct_where(m, zero, t, err) : NULL;
      ct_tensor_release(zero);
      ct_tensor_release(az);
      ct_tensor_release(bp);
      ct_tensor_release(m);
      ct_tensor_release(t);
    }
    break;
  }
  case CT_B_MINIMUM:
  case CT_B_MAXIMUM: { /* ties split the gradient in half, as PyTorch */
    ct_binary_op win = op == CT_B_MAXIMUM ? CT_B_GT : CT_B_LT;
    ct_tensor *w = ct_compare_as(win, a, b, err);
    ct_tensor *tie = w ? ct_compare_as(CT_B_EQ, a, b, err) : NULL;
    ct_tensor *fa, *half = tie ? ct_unary(CT_U_MULS, tie, 0.5, 0, err) : NULL;
    fa = half ? ct_add(w, half, err) : NULL;
    if (na && fa) gin[0] = ct_mul(g, fa, err);
    if (nb && fa) gin[1] = mul_own(ct_unary(CT_U_RSUBS, fa, 1, 0, err), (ct_tensor_retain(g), g), err);
    ct_tensor_release(w);
    ct_tensor_release(tie);
    ct_tensor_release(half);
    ct_tensor_release(fa);
    break;
  }
  default: break;
  }
  ct_tensor_release(a);
  ct_tensor_release(b);
  ct_tensor_release(o);
  return (!na || gin[0]) && (!nb || gin[1]);
}

/* ======================= in-place ======================= */

/* The range of storage elements t can touch. */
static void storage_span(const ct_tensor *t, int64_t *lo, int64_t *hi) {
  *lo = *hi = t->offset;
  for (int i = 0; i < t->ndim; i++) {
    if (t->shape[i] == 0) {
      *hi = *lo - 1;
      return;
    }
    int64_t reach = (t->shape[i] - 1) * t->stride[i];
    if (reach < 0) *lo += reach;
    else *hi += reach;
  }
}

static bool same_elements(const ct_tensor *a, const ct_tensor *b) {
  return a->storage == b->storage && a->offset == b->offset && ct_same_shape(a, b) &&
      memcmp(a->stride, b->stride, sizeof(int64_t) * (size_t)a->ndim) == 0;
}

/* An in-place write whose source shares some, but not exactly, the written elements would
 * read values it already overwrote: refused, as PyTorch does. */
static int overlap_ok(const ct_tensor *x, const ct_tensor *src, ct_err *err) {
  if (x->storage != src->storage || same_elements(x, src)) return 1;
  int64_t xl, xh, sl, sh;
  storage_span(x, &xl, &xh);
  storage_span(src, &sl, &sh);
  if (xh < sl || sh < xl) return 1;
  return ct_fail(err,
                 "unsupported operation: some elements of the input tensor and the written-to "
                 "tensor refer to a single memory location (clone() the input first)");
}

/* Common checks before any in-place write: leaf, overlap, dtype, and that 'other'
 * broadcasts to x. */
static int inplace_check(ct_tensor *x, ct_tensor *other, ct_err *err) {
  if (!leaf_write_ok(x, err)) return 0;
  if (other == NULL) return 1;
  if (!overlap_ok(x, other, err)) return 0;
  if (x->dtype == CT_I64 && other->dtype != CT_I64)
    return ct_fail(err, "result type %s can't be cast to the desired output type int64",
                   ct_dtype_name(other->dtype));
  if (ct_same_shape(x, other)) return 1; /* the common case: it broadcasts to x as it is */
  int nd;
  int64_t shape[CT_MAXDIM];
  if (!ct_broadcast_shape(x, other, &nd, shape, err)) return 0;
  if (nd != x->ndim || memcmp(shape, x->shape, sizeof(int64_t) * (size_t)nd) != 0) {
    char a[96], b[96];
    return ct_fail(err, "output with shape %s doesn't match the broadcast shape %s",
                   ct_shape_str(a, x->ndim, x->shape), ct_shape_str(b, nd, shape));
  }
  return 1;
}

/* ---- an in-place write into a view of a tensor with a history: CopySlices, as PyTorch ----
 * The base becomes its old self with the view's region replaced by r = f(view, others),
 * whose node N was recorded out of place.  The base's new grad_fn wraps N: the gradient
 * outside the region goes to the base's old history, the region's goes through N to f's
 * inputs (among them the view's old value, whose history leads back into the base's). */
static int copy_slices_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_node *inner = nd->inner;
  ct_tensor *ig[8] = {NULL};
  if (inner->freed)
    return ct_fail(err,
                   "trying to backward through the graph a second time (%s's saved tensors "
                   "were freed); pass retain_graph=true to the first backward",
                   inner->op->name);
  ct_tensor *gs = ct_as_strided(g, &nd->arg.view, err); /* the region's gradient */
  if (gs == NULL) return 0;
  int ok = 1;
  if (nd->edge[0].needs) { /* the base's old values count only outside the region */
    ct_tensor *pad = ct_as_strided_pad(gs, nd->edge[0].ndim, nd->edge[0].shape, &nd->arg.view, err);
    gin[0] = pad ? ct_sub(g, pad, err) : NULL;
    ct_tensor_release(pad);
    ok = gin[0] != NULL;
  }
  /* last: the inner backward may write its result into gs when nothing else holds it */
  if (ok) ok = inner->op->backward(inner, gs, ig, err);
  for (int k = 0; k < inner->nin; k++) {
    if (ok) gin[1 + k] = ig[k];
    else ct_tensor_release(ig[k]);
  }
  ct_tensor_release(gs);
  return ok;
}
static const ct_op op_copy_slices = {"CopySlices", copy_slices_backward, NULL};

static int copy_slices(ct_tensor *x, ct_tensor *r, ct_err *err) {
  ct_tensor *base = ct_view_base(x);
  ct_node *inner = r->grad_fn, *cs = NULL;
  if (inner->nin > 8 || (cs = ct_node_new(&op_copy_slices, 1 + inner->nin, err)) == NULL) {
    ct_tensor_release(r);
    return inner->nin > 8 ? ct_fail(err, "CopySlices: %s has too many inputs", inner->op->name) : 0;
  }
  ct_edge_set(&cs->edge[0], base);
  for (int k = 0; k < inner->nin; k++) ct_edge_copy(&cs->edge[1 + k], &inner->edge[k]);
  ct_geometry_put(cs, x);
  cs->inner = inner; /* r's reference moves to cs */
  r->grad_fn = NULL;
  ct_copy_into(x, r);
  ct_tensor_release(r);
  ct_set_grad_fn(base, cs);
  base->requires_grad = true;
  x->storage->history++; /* x and every other view of base take a view of cs when next used */
  return 1;
}

/* x <- r (an out-of-place result with a graph), keeping x's identity.  The storage's
 * history count moves on, so the views taken of x before (whose grad_fn still describes
 * the old x) get a new one, a view of x's new history, when next used. */
static int graft(ct_tensor *x, ct_tensor *r, ct_err *err) {
  if (r == NULL) return 0;
  if (r->grad_fn && x->view && ct_view_base(x)) return copy_slices(x, r, err);
  ct_copy_into(x, r);
  if (r->grad_fn) {
    ct_set_grad_fn(x, r->grad_fn);
    r->grad_fn = NULL;
    x->requires_grad = true;
    x->storage->history++;
    if (x->view) x->view_history = x->storage->history; /* its base is gone: x's own history is right */
  }
  ct_tensor_release(r);
  return 1;
}

static bool records(ct_tensor *x, ct_tensor *o) {
  return ct_grad_enabled && (x->requires_grad || (o && o->requires_grad));
}

int ct_binary_(ct_binary_op op, ct_tensor *x, ct_tensor *y, ct_err *err) {
  if (!inplace_check(x, y, err)) return 0;
  if (records(x, y)) { /* on a clone of x: the node saves its inputs, the write-back changes x */
    ct_tensor *xc = ct_clone(x, err);
    ct_tensor *r = xc ? ct_binary(op, xc, same_elements(x, y) ? xc : y, err) : NULL;
    ct_tensor_release(xc);
    return graft(x, r, err);
  }
  ct_tensor *yc = y;
  if (y->dtype != x->dtype && (yc = ct_to(y, x->dtype, err)) == NULL) return 0;
  ct_dtype_rule rule = ct_binary_info[op].dtype;
  if (x->dtype == CT_I64 &&
      (rule == CT_DT_FLOAT || rule == CT_DT_NOINT || (op == CT_B_POW && has_negative(yc)))) {
    if (yc != y) ct_tensor_release(yc);
    return ct_fail(err,
                   rule == CT_DT_FLOAT ? "result type float32 can't be cast to the desired output type int64"
                       : rule == CT_DT_NOINT ? NO_INT_KERNEL
                                             : NEGATIVE_POWER);
  }
  binary_apply(x, x, yc, op, false);
  if (yc != y) ct_tensor_release(yc);
  ct_bump(x);
  return 1;
}

/* Fused kernels over x and up to two broadcast operands. */
typedef enum { F_AXPY, F_ADDCMUL, F_ADDCDIV, F_LERP, F_COPY, F_MASKFILL } fused_kind;
typedef struct {
  fused_kind k;
  double v;
} fused_ctx;

#define FUSED_KERNEL(T, NAME)                                                                          \
  static void NAME(char **p, const int64_t *s, int64_t n, void *vctx) {                                \
    fused_ctx *c = vctx;                                                                               \
    T *x = (T *)p[0];                                                                                  \
    const T *a = (const T *)p[1], *b = (const T *)p[2];                                                \
    const T v = (T)c->v;                                                                               \
    int64_t sx = s[0], sa = s[1], sb = s[2];                                                           \
    bool flat = sx == 1 && sa == 1 && (sb == 1 || c->k == F_AXPY || c->k == F_LERP || c->k == F_COPY); \
    switch (c->k) {                                                                                    \
    case F_AXPY:                                                                                       \
      if (flat)                                                                                        \
        for (int64_t i = 0; i < n; i++) x[i] += v * a[i];                                              \
      else                                                                                             \
        for (int64_t i = 0; i < n; i++) x[i * sx] += v * a[i * sa];                                    \
      break;                                                                                           \
    case F_ADDCMUL:                                                                                    \
      if (flat)                                                                                        \
        for (int64_t i = 0; i < n; i++) x[i] += v * a[i] * b[i];                                       \
      else                                                                                             \
        for (int64_t i = 0; i < n; i++) x[i * sx] += v * a[i * sa] * b[i * sb];                        \
      break;                                                                                           \
    case F_ADDCDIV:                                                                                    \
      if (flat)                                                                                        \
        for (int64_t i = 0; i < n; i++) x[i] += v * a[i] / b[i];                                       \
      else                                                                                             \
        for (int64_t i = 0; i < n; i++) x[i * sx] += v * a[i * sa] / b[i * sb];                        \
      break;                                                                                           \
    case F_LERP: /* PyTorch's lerp: weight < 0.5 ? x + w (e - x) : e - (e - x)(1 - w) */               \
      for (int64_t i = 0; i < n; i++) {                                                                \
        T xi = x[i * sx], d = a[i * sa] - xi;                                                          \
        x[i * sx] = c->v < 0.5 ? xi + v * d : a[i * sa] - d * ((T)1 - v);                              \
      }                                                                                                \
      break;                                                                                           \
    case F_COPY:                                                                                       \
      if (flat)                                                                                        \
        for (int64_t i = 0; i < n; i++) x[i] = a[i];                                                   \
      else                                                                                             \
        for (int64_t i = 0; i < n; i++) x[i * sx] = a[i * sa];                                         \
      break;                                                                                           \
    case F_MASKFILL: /* a is the mask, read as int64 */                                                \
      for (int64_t i = 0; i < n; i++)                                                                  \
        if (((const int64_t *)(const void *)a)[i * sa]) x[i * sx] = v;                                 \
      break;                                                                                           \
    }                                                                                                  \
  }
FUSED_KERNEL(float, fused_f32)
FUSED_KERNEL(double, fused_f64)

/* int64: wrapping like the other int64 kernels; addcdiv and lerp are refused before */
static void fused_i64(char **p, const int64_t *s, int64_t n, void *vctx) {
  fused_ctx *c = vctx;
  int64_t *x = (int64_t *)p[0];
  const int64_t *a = (const int64_t *)p[1], *b = (const int64_t *)p[2];
  int64_t v = ct_i64_of(c->v), sx = s[0], sa = s[1], sb = s[2];
  for (int64_t i = 0; i < n; i++) {
    int64_t *xi = &x[i * sx], ai = a[i * sa];
    switch (c->k) {
    case F_AXPY: *xi = wadd(*xi, wmul(v, ai)); break;
    case F_ADDCMUL: *xi = wadd(*xi, wmul(v, wmul(ai, b[i * sb]))); break;
    case F_COPY: *xi = ai; break;
    case F_MASKFILL:
      if (ai) *xi = v;
      break;
    default: break;
    }
  }
}

static int fused(fused_kind k, ct_tensor *x, ct_tensor *a, ct_tensor *b, double v, ct_err *err) {
  ct_tensor *ac = a, *bc = b;
  ct_dtype want = k == F_MASKFILL ? CT_I64 : x->dtype;
  if (a->dtype != want && (ac = ct_to(a, want, err)) == NULL) return 0;
  if (b && b->dtype != x->dtype && (bc = ct_to(b, x->dtype, err)) == NULL) {
    if (ac != a) ct_tensor_release(ac);
    return 0;
  }
  fused_ctx c = {k, v};
  char *base[3] = {ct_data(x), ct_data(ac), bc ? ct_data(bc) : ct_data(ac)};
  int64_t st[3][CT_MAXDIM];
  memcpy(st[0], x->stride, sizeof st[0]);
  broadcast_strides(ac, x->ndim, x->shape, st[1]);
  broadcast_strides(bc ? bc : ac, x->ndim, x->shape, st[2]);
  ct_loop_fn fn = x->dtype == CT_F32 ? fused_f32 : x->dtype == CT_F64 ? fused_f64 : fused_i64;
  size_t es[3] = {ct_dtype_size(x->dtype), ct_dtype_size(ac->dtype), ct_dtype_size((bc ? bc : ac)->dtype)};
  bool flat = ct_is_contiguous(x) && ct_is_contiguous(ac) && ct_same_shape(x, ac) &&
      (bc == NULL || (ct_is_contiguous(bc) && ct_same_shape(x, bc)));
  if (flat) flat_run(fn, &c, 3, base, es, ct_numel(x));
  else ct_iterate(3, base, es, x->ndim, x->shape, st, fn, &c);
  if (ac != a) ct_tensor_release(ac);
  if (bc != b) ct_tensor_release(bc);
  ct_bump(x);
  return 1;
}

int ct_add_(ct_tensor *x, ct_tensor *y, double alpha, ct_err *err) {
  /* the backward's sums of gradients: same layout, nothing to record or refuse */
  if ((!ct_grad_enabled || (!x->requires_grad && !y->requires_grad && !x->view)) && x->dtype == y->dtype &&
      x->storage != y->storage && ct_same_shape(x, y) && ct_is_contiguous(x) && ct_is_contiguous(y)) {
    fused_ctx c = {F_AXPY, alpha};
    char *p[3] = {ct_data(x), ct_data(y), ct_data(y)};
    size_t es = ct_dtype_size(x->dtype);
    flat_run(x->dtype == CT_F32       ? fused_f32
                 : x->dtype == CT_F64 ? fused_f64
                                      : fused_i64,
             &c, 3, p, (size_t[]){es, es, es}, ct_numel(x));
    ct_bump(x);
    return 1;
  }
  if (!inplace_check(x, y, err)) return 0;
  if (records(x, y)) {
    ct_tensor *sy = alpha == 1 ? (ct_tensor_retain(y), y) : ct_scale(y, alpha, err);
    ct_tensor *r = sy ? ct_add(x, sy, err) : NULL;
    ct_tensor_release(sy);
    return graft(x, r, err);
  }
  return fused(F_AXPY, x, y, NULL, alpha, err);
}

int ct_addcmul_(ct_tensor *x, ct_tensor *a, ct_tensor *b, double v, ct_err *err) {
  if (!inplace_check(x, a, err) || !inplace_check(x, b, err)) return 0;
  if (records(x, a) || records(x, b)) {
    ct_tensor *ab = ct_mul(a, b, err), *s = ab ? ct_scale(ab, v, err) : NULL;
    ct_tensor *r = s ? ct_add(x, s, err) : NULL;
    ct_tensor_release(ab);
    ct_tensor_release(s);
    return graft(x, r, err);
  }
  return fused(F_ADDCMUL, x, a, b, v, err);
}

int ct_addcdiv_(ct_tensor *x, ct_tensor *a, ct_tensor *b, double v, ct_err *err) {
  if (!inplace_check(x, a, err) || !inplace_check(x, b, err)) return 0;
  if (records(x, a) || records(x, b)) {
    ct_tensor *ab = ct_div(a, b, err), *s = ab ? ct_scale(ab, v, err) : NULL;
    ct_tensor *r = s ? ct_add(x, s, err) : NULL;
    ct_tensor_release(ab);
    ct_tensor_release(s);
    return graft(x, r, err);
  }
  if (x->dtype == CT_I64) /* PyTorch's words */
    return ct_fail(err, "Integer division with addcdiv is no longer supported");
  return fused(F_ADDCDIV, x, a, b, v, err);
}

int ct_lerp_(ct_tensor *x, ct_tensor *end, double w, ct_err *err) {
  if (!inplace_check(x, end, err)) return 0;
  if (records(x, end)) {
    ct_tensor *d = ct_sub(end, x, err), *s = d ? ct_scale(d, w, err) : NULL;
    ct_tensor *r = s ? ct_add(x, s, err) : NULL;
    ct_tensor_release(d);
    ct_tensor_release(s);
    return graft(x, r, err);
  }
  /* PyTorch has no integer lerp either ("lerp_kernel_scalar" not implemented for 'Long'):
   * a refusal, not a missing feature; truncating the float result would be a wrong answer */
  if (x->dtype == CT_I64) return ct_fail(err, NO_INT_KERNEL);
  return fused(F_LERP, x, end, NULL, w, err);
}

int ct_copy_(ct_tensor *x, ct_tensor *src, ct_err *err) {
  if (!leaf_write_ok(x, err) || !overlap_ok(x, src, err)) return 0;
  int nd;
  int64_t shape[CT_MAXDIM];
  if (!ct_broadcast_shape(x, src, &nd, shape, err)) return 0;
  if (nd != x->ndim || memcmp(shape, x->shape, sizeof(int64_t) * (size_t)nd) != 0) {
    char a[96], b[96];
    return ct_fail(err, "source of shape %s cannot be copied into shape %s",
                   ct_shape_str(a, src->ndim, src->shape), ct_shape_str(b, x->ndim, x->shape));
  }
  if (records(x, src)) { /* the copy is differentiable w.r.t. src */
    ct_tensor *zero = ct_tensor_scalar(x->dtype, 0, err);
    ct_tensor *r = zero ? ct_add(src, zero, err) : NULL;
    ct_tensor_release(zero);
    if (r && !ct_same_shape(r, x)) {
      ct_tensor *e = ct_expand(r, x->ndim, x->shape, err);
      ct_tensor_release(r);
      r = e;
    }
    return graft(x, r, err);
  }
  return fused(F_COPY, x, src, NULL, 0, err);
}

/* fill_ with a scalar tensor s of x's dtype (made from a double or, exactly, an int64) */
static int fill_with(ct_tensor *x, ct_tensor *s, ct_err *err) {
  if (s == NULL) return 0;
  bool rec = x->requires_grad && ct_grad_enabled;
  /* recorded: the result no longer depends on x, so its graph is x * 0 */
  ct_tensor *xc = rec ? ct_clone(x, err) : NULL;
  int ok = rec ? (xc ? graft(x, ct_scale(xc, 0, err), err) : 0) : 1;
  ct_tensor_release(xc);
  if (ok) ok = fused(F_COPY, x, s, NULL, 0, err);
  ct_tensor_release(s);
  return ok;
}

int ct_fill_(ct_tensor *x, double v, ct_err *err) {
  if (!inplace_check(x, NULL, err)) return 0;
  return fill_with(x, ct_tensor_scalar(x->dtype, v, err), err);
}

int ct_fill_i64_(ct_tensor *x, int64_t k, ct_err *err) {
  if (!inplace_check(x, NULL, err)) return 0;
  ct_tensor *s =
      x->dtype == CT_I64 ? ct_tensor_full_i64(0, NULL, k, err) : ct_tensor_scalar(x->dtype, (double)k, err);
  return fill_with(x, s, err);
}

int ct_masked_fill_(ct_tensor *x, ct_tensor *mask, double v, ct_err *err) {
  if (!inplace_check(x, NULL, err)) return 0;
  int nd;
  int64_t shape[CT_MAXDIM];
  if (!ct_broadcast_shape(x, mask, &nd, shape, err)) return 0;
  if (nd != x->ndim || memcmp(shape, x->shape, sizeof(int64_t) * (size_t)nd) != 0) {
    char a[96], b[96];
    return ct_fail(err, "mask of shape %s does not broadcast to %s", ct_shape_str(a, mask->ndim, mask->shape),
                   ct_shape_str(b, x->ndim, x->shape));
  }
  if (records(x, NULL)) return graft(x, ct_masked_fill(x, mask, v, err), err);
  return fused(F_MASKFILL, x, mask, NULL, v, err);
}
