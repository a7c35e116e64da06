/* crater ops: reductions over all elements or one dim (sum, mean, prod, max, min,
 * argmax/argmin, var/std, norm, logsumexp) and softmax/log_softmax, with backward.
 * Kernels view a contiguous input as (outer, n, inner) and reduce the middle. */
#include <math.h>
#include <string.h>

#include "ops.h"

typedef struct {
  int64_t outer, n, inner;
} span3;

static span3 split(const ct_tensor *x, int dim) {
  span3 s = {1, 1, 1};
  if (dim < 0) {
    s.n = ct_numel(x);
    return s;
  }
  for (int i = 0; i < dim; i++) s.outer *= x->shape[i];
  s.n = x->shape[dim];
  for (int i = dim + 1; i < x->ndim; i++) s.inner *= x->shape[i];
  /* an empty result has no rows: the loops over outer must not run 2^62 empty ones */
  if (s.outer == 0 || s.inner == 0) s.outer = s.inner = 0;
  return s;
}

static int check_dim(int dim, const ct_tensor *x, ct_err *err) {
  if (dim >= (x->ndim ? x->ndim : 1))
    return ct_fail(err, "dimension %d out of range (the tensor has %d dims)", dim + 1, x->ndim);
  return 1;
}

/* max, min, argmax, argmin have no identity: as PyTorch, the reduced dim (or, with no
 * dim, the whole tensor) must not be empty; an empty result over another dim is fine. */
static int check_nonempty(const char *what, const ct_tensor *x, int dim, ct_err *err) {
  char buf[96];
  if ((dim < 0 || x->ndim == 0) && ct_numel(x) == 0)
    return ct_fail(err, "cannot take the %s of an empty tensor (shape %s); give a dim", what,
                   ct_shape_str(buf, x->ndim, x->shape));
  if (dim >= 0 && x->ndim > 0 && x->shape[dim] == 0)
    return ct_fail(err, "cannot take the %s over dim %d of size 0 (shape %s)", what, dim + 1,
                   ct_shape_str(buf, x->ndim, x->shape));
  return 1;
}

/* result shape of reducing dim (or everything) */
static int reduced_shape(const ct_tensor *x, int dim, bool keepdim, int64_t *shape) {
  if (dim < 0 || x->ndim == 0) {
    if (!keepdim) return 0;
    for (int i = 0; i < x->ndim; i++) shape[i] = 1;
    return x->ndim;
  }
  int n = 0;
  for (int i = 0; i < x->ndim; i++) {
    if (i != dim) shape[n++] = x->shape[i];
    else if (keepdim) shape[n++] = 1;
  }
  return n;
}

/* Reduce kernel: acc in double for float32 (closer to PyTorch's cascade sums). */
#define REDUCE_KERNEL(T, ACC, NAME)                                                                     \
  static void NAME(ct_reduce_op op, T *restrict y, const T *restrict x, span3 s) {                      \
    for (int64_t o = 0; o < s.outer; o++) {                                                             \
      const T *xo = x + o * s.n * s.inner;                                                              \
      T *yo = y + o * s.inner;                                                                          \
      if (s.inner == 1) {                                                                               \
        ACC acc = op == CT_R_PROD ? 1 : 0;                                                              \
        if (op == CT_R_SUM || op == CT_R_MEAN) {                                                        \
          /* eight running sums: one chain of dependent adds would bound the loop */                    \
          ACC part[8] = {0};                                                                            \
          int64_t k = 0;                                                                                \
          for (; k + 8 <= s.n; k += 8)                                                                  \
            for (int q = 0; q < 8; q++) part[q] += xo[k + q];                                           \
          for (; k < s.n; k++) acc += xo[k];                                                            \
          for (int q = 0; q < 8; q++) acc += part[q];                                                   \
        } else if (op == CT_R_PROD)                                                                     \
          for (int64_t k = 0; k < s.n; k++) acc *= xo[k];                                               \
        else {                                                                                          \
          acc = xo[0];                                                                                  \
          for (int64_t k = 1; k < s.n; k++) {                                                           \
            T v = xo[k];                                                                                \
            if (op == CT_R_MAX ? (v > acc || v != v) : (v < acc || v != v)) acc = v;                    \
            if (acc != acc) break;                                                                      \
          }                                                                                             \
        }                                                                                               \
        if (op == CT_R_MEAN) acc /= (ACC)s.n;                                                           \
        yo[0] = (T)acc;                                                                                 \
        continue;                                                                                       \
      }                                                                                                 \
      for (int64_t i = 0; i < s.inner; i++) yo[i] = op == CT_R_PROD ? 1 : (op >= CT_R_MAX ? xo[i] : 0); \
      for (int64_t k = (op >= CT_R_MAX); k < s.n; k++) {                                                \
        const T *xk = xo + k * s.inner;                                                                 \
        switch (op) {                                                                                   \
        case CT_R_SUM:                                                                                  \
        case CT_R_MEAN:                                                                                 \
          for (int64_t i = 0; i < s.inner; i++) yo[i] += xk[i];                                         \
          break;                                                                                        \
        case CT_R_PROD:                                                                                 \
          for (int64_t i = 0; i < s.inner; i++) yo[i] *= xk[i];                                         \
          break;                                                                                        \
        case CT_R_MAX:                                                                                  \
          for (int64_t i = 0; i < s.inner; i++)                                                         \
            yo[i] = (xk[i] > yo[i] || xk[i] != xk[i]) && yo[i] == yo[i] ? xk[i] : yo[i];                \
          break;                                                                                        \
        case CT_R_MIN:                                                                                  \
          for (int64_t i = 0; i < s.inner; i++)                                                         \
            yo[i] = (xk[i] < yo[i] || xk[i] != xk[i]) && yo[i] == yo[i] ? xk[i] : yo[i];                \
          break;                                                                                        \
        }                                                                                               \
      }                                                                                                 \
      if (op == CT_R_MEAN)                                                                              \
        for (int64_t i = 0; i < s.inner; i++) yo[i] /= (T)s.n;                                          \
    }                                                                                                   \
  }
REDUCE_KERNEL(float, double, reduce_f32)
REDUCE_KERNEL(double, double, reduce_f64)
REDUCE_KERNEL(int64_t, int64_t, reduce_i64)
REDUCE_KERNEL(uint64_t, uint64_t, reduce_u64) /* int64 sum and prod: they wrap, as PyTorch's */

/* The outer rows of a reduction split across threads (each row is reduced whole, so the
 * result does not depend on the thread count): a conv bias gradient sums (Cout, B*L). */
typedef struct {
  ct_reduce_op op;
  ct_dtype dt;
  char *y;
  const char *x;
  span3 s;
} reduce_job;

static void reduce_range(void *vj, size_t lo, size_t hi) {
  reduce_job *j = vj;
  size_t per = (size_t)(j->s.n * j->s.inner);
  int64_t o0 = (int64_t)((lo + per - 1) / per), o1 = (int64_t)((hi + per - 1) / per);
  span3 s = {o1 - o0, j->s.n, j->s.inner};
  size_t es = ct_dtype_size(j->dt), xoff = (size_t)(o0 * j->s.n * j->s.inner) * es,
         yoff = (size_t)(o0 * j->s.inner) * es;
  if (j->dt == CT_F32) reduce_f32(j->op, (float *)(j->y + yoff), (const float *)(j->x + xoff), s);
  else if (j->dt == CT_F64) reduce_f64(j->op, (double *)(j->y + yoff), (const double *)(j->x + xoff), s);
  else if (j->op == CT_R_SUM || j->op == CT_R_PROD)
    reduce_u64(j->op, (uint64_t *)(j->y + yoff), (const uint64_t *)(j->x + xoff), s);
  else reduce_i64(j->op, (int64_t *)(j->y + yoff), (const int64_t *)(j->x + xoff), s);
}

/* each row's graph node (ops.def), defined at the end, after the backward functions; the
 * first five rows are ct_reduce's ops, in its order */
static const ct_op reduce_ops[CT_REDUCE_COUNT];
_Static_assert(CT_REDUCE_SUM == (int)CT_R_SUM && CT_REDUCE_MIN == (int)CT_R_MIN,
               "ct_reduce's ops lead the rows");

ct_tensor *ct_reduce(ct_reduce_op op, ct_tensor *x, int dim, bool keepdim, ct_err *err) {
  if (!check_dim(dim, x, err)) return NULL;
  if (x->ndim == 0) dim = -1;
  if ((op == CT_R_MAX || op == CT_R_MIN) && !check_nonempty(op == CT_R_MAX ? "max" : "min", x, dim, err))
    return NULL;
  ct_tensor *src = x, *cast = NULL;
  if (op == CT_R_MEAN && x->dtype == CT_I64) { /* PyTorch refuses; we average in float32 */
    if ((cast = ct_to(x, CT_F32, err)) == NULL) return NULL;
    src = cast;
  }
  ct_tensor *c = ct_contig(src, false, err);
  int64_t shape[CT_MAXDIM] = {0}; /* nd may be 0 (a full reduction): lto's inliner then warns */
  int nd = reduced_shape(x, dim, keepdim, shape);
  ct_tensor *y = c ? ct_tensor_new(src->dtype, nd, shape, err) : NULL;
  if (y) {
    span3 s = split(c, dim);
    if (s.n == 0 && s.outer * s.inner > 0) { /* empty reduction: identity */
      ct_tensor_release(y);
      y = ct_tensor_full(src->dtype, nd, shape, op == CT_R_PROD ? 1 : (op == CT_R_MEAN ? NAN : 0), err);
    } else if (ct_numel(y) > 0) { /* an empty result reads nothing */
      reduce_job j = {op, src->dtype, ct_data(y), ct_data(c), s};
      ct_parallel((size_t)(s.outer * s.n * s.inner), reduce_range, &j);
    }
  }
  ct_tensor_release(c);
  if (y && ct_needs_grad(1, &src)) {
    ct_node *n = ct_record(&reduce_ops[op], y, 1, &src, err);
    bool ok = n != NULL;
    if (ok && (op == CT_R_PROD || op == CT_R_MAX || op == CT_R_MIN))
      ok = ct_save(n, src, false, err) && ct_save(n, y, true, err);
    if (ok) {
      n->arg.reduce.op = op;
      n->arg.reduce.dim = dim;
      n->arg.reduce.keepdim = keepdim;
    } else {
      ct_tensor_release(y);
      y = NULL;
    }
  }
  ct_tensor_release(cast);
  return y;
}

/* g (reduced shape) -> g broadcast back over the input's shape (still a view) */
static ct_tensor *unreduce(ct_tensor *g, const ct_edge *e, int dim, bool keepdim, ct_err *err) {
  ct_tensor *u = g;
  ct_tensor_retain(u);
  if (dim >= 0 && !keepdim && e->ndim > 0) {
    u = ct_unsqueeze(g, dim, err);
    ct_tensor_release(g);
    if (u == NULL) return NULL;
  }
  ct_tensor *r = ct_expand(u, e->ndim, e->shape, err);
  ct_tensor_release(u);
  return r;
}

static int reduce_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_reduce_op op = (ct_reduce_op)nd->arg.reduce.op;
  int dim = nd->arg.reduce.dim;
  bool keepdim = nd->arg.reduce.keepdim;
  const ct_edge *e = &nd->edge[0];
  ct_tensor *ge = unreduce(g, e, dim, keepdim, err);
  if (ge == NULL) return 0;
  if (op == CT_R_SUM) {
    gin[0] = ge;
    return 1;
  }
  if (op == CT_R_MEAN) {
    int64_t n = 1;
    if (dim < 0)
      for (int i = 0; i < e->ndim; i++) n *= e->shape[i];
    else n = e->shape[dim];
    gin[0] = ct_unary(CT_U_DIVS, ge, (double)n, 0, err);
    ct_tensor_release(ge);
    return gin[0] != NULL;
  }
  ct_tensor *x = ct_saved(nd, 0, err), *y = x ? ct_saved(nd, 1, err) : NULL;
  ct_tensor *ye = y ? unreduce(y, e, dim, keepdim, err) : NULL, *r = NULL;
  if (ye && op == CT_R_PROD) { /* g * prod / x (x without zeros) */
    ct_tensor *q = ct_div(ye, x, err);
    r = q ? ct_mul(ge, q, err) : NULL;
    ct_tensor_release(q);
  } else if (ye) { /* max/min: the gradient is shared evenly among ties, as PyTorch's amax */
    ct_tensor *m = ct_compare_as(CT_B_EQ, x, ye, err);
    ct_tensor *cnt = m ? ct_reduce(CT_R_SUM, m, dim, true, err) : NULL;
    ct_tensor *w = cnt ? ct_div(m, cnt, err) : NULL;
    r = w ? ct_mul(ge, w, err) : NULL;
    ct_tensor_release(m);
    ct_tensor_release(cnt);
    ct_tensor_release(w);
  }
  ct_tensor_release(x);
  ct_tensor_release(y);
  ct_tensor_release(ye);
  ct_tensor_release(ge);
  gin[0] = r;
  return r != NULL;
}

/* ---- max/min with indices, argmax/argmin ---- */

static void arg_kernel(const ct_tensor *c, span3 s, bool is_max, int64_t *idx) {
  for (int64_t o = 0; o < s.outer; o++)
    for (int64_t i = 0; i < s.inner; i++) {
      int64_t best = 0;
      double bv = ct_get_flat(c, o * s.n * s.inner + i);
      for (int64_t k = 1; k < s.n && bv == bv; k++) {
        double v = ct_get_flat(c, (o * s.n + k) * s.inner + i);
        if (is_max ? (v > bv || v != v) : (v < bv || v != v)) {
          bv = v;
          best = k;
        }
      }
      idx[o * s.inner + i] = best;
    }
}

ct_tensor *ct_argmaxmin(ct_tensor *x, int dim, bool keepdim, bool is_max, ct_err *err) {
  if (!check_dim(dim, x, err)) return NULL;
  if (x->ndim == 0) dim = -1;
  if (!check_nonempty(is_max ? "argmax" : "argmin", x, dim, err)) return NULL;
  int64_t shape[CT_MAXDIM];
  int nd = reduced_shape(x, dim, keepdim, shape);
  ct_tensor *c = ct_contig(x, false, err);
  ct_tensor *y = c ? ct_tensor_new(CT_I64, nd, shape, err) : NULL;
  if (y) arg_kernel(c, split(c, dim), is_max, (int64_t *)ct_data(y));
  ct_tensor_release(c);
  return y;
}

static int maxmin_dim_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  int dim = nd->arg.reduce.dim;
  bool keepdim = nd->arg.reduce.keepdim;
  ct_tensor *idx = ct_saved(nd, 0, err);
  if (idx == NULL) return 0;
  ct_tensor *gk = keepdim ? (ct_tensor_retain(g), g) : ct_unsqueeze(g, dim, err);
  ct_tensor *ik = keepdim ? (ct_tensor_retain(idx), idx) : ct_unsqueeze(idx, dim, err);
  ct_tensor *z = ct_tensor_zeros(g->dtype, nd->edge[0].ndim, nd->edge[0].shape, err);
  gin[0] = (gk && ik && z) ? ct_scatter_add(z, dim, ik, gk, err) : NULL;
  ct_tensor_release(gk);
  ct_tensor_release(ik);
  ct_tensor_release(z);
  ct_tensor_release(idx);
  return gin[0] != NULL;
}
static const ct_op op_maxmin_dim = {"MaxMinDimBackward", maxmin_dim_backward, NULL};

ct_tensor *ct_maxmin_dim(ct_tensor *x, int dim, bool keepdim, bool is_max, ct_tensor **indices, ct_err *err) {
  *indices = NULL;
  if (!check_nonempty(is_max ? "max" : "min", x, x->ndim ? dim : -1, err)) return NULL;
  if ((*indices = ct_argmaxmin(x, dim, keepdim, is_max, err)) == NULL) return NULL;
  ct_tensor *ik =
      keepdim || x->ndim == 0 ? (ct_tensor_retain(*indices), *indices) : ct_unsqueeze(*indices, dim, err);
  bool saved = ct_grad_enabled;
  ct_grad_enabled = false;
  ct_tensor *v = ik ? ct_gather(x, x->ndim ? dim : 0, ik, err) : NULL;
  ct_tensor *y = v && !keepdim && x->ndim ? ct_squeeze(v, dim, err) : (v ? (ct_tensor_retain(v), v) : NULL);
  ct_grad_enabled = saved;
  ct_tensor_release(v);
  ct_tensor_release(ik);
  if (y && ct_needs_grad(1, &x)) {
    ct_tensor *yy = ct_clone(y, err); /* a fresh result to hang the node on */
    ct_tensor_release(y);
    y = yy;
    ct_node *n = y ? ct_record(&op_maxmin_dim, y, 1, &x, err) : NULL;
    if (n == NULL || !ct_save(n, *indices, false, err)) {
      ct_tensor_release(y);
      y = NULL;
    } else {
      n->arg.reduce.dim = dim;
      n->arg.reduce.keepdim = keepdim;
    }
  }
  if (y == NULL) {
    ct_tensor_release(*indices);
    *indices = NULL;
  }
  return y;
}

/* ---- composites: var/std, norm, logsumexp (backward comes from their parts) ---- */

ct_tensor *ct_var(ct_tensor *x, int dim, double correction, bool keepdim, bool take_sqrt, ct_err *err) {
  if (!check_dim(dim, x, err)) return NULL;
  ct_tensor *xf = x->dtype == CT_I64 ? ct_to(x, CT_F32, err) : (ct_tensor_retain(x), x);
  if (xf == NULL) return NULL;
  int64_t n = dim < 0 || x->ndim == 0 ? ct_numel(x) : x->shape[dim];
  ct_tensor *m = ct_reduce(CT_R_MEAN, xf, dim < 0 ? -1 : dim, dim >= 0, err);
  ct_tensor *d = m ? ct_sub(xf, m, err) : NULL;
  ct_tensor *d2 = d ? ct_mul(d, d, err) : NULL;
  ct_tensor *s = d2 ? ct_reduce(CT_R_SUM, d2, dim, keepdim, err) : NULL;
  double denom = (double)n - correction;
  ct_tensor *v = s ? ct_unary(CT_U_DIVS, s, denom > 0 ? denom : 0, 0, err) : NULL;
  ct_tensor *r = v && take_sqrt ? ct_unary(CT_U_SQRT, v, 0, 0, err) : (v ? (ct_tensor_retain(v), v) : NULL);
  ct_tensor_release(xf);
  ct_tensor_release(m);
  ct_tensor_release(d);
  ct_tensor_release(d2);
  ct_tensor_release(s);
  ct_tensor_release(v);
  return r;
}

/* the 0-norm is a count: its gradient is zero everywhere, as PyTorch's */
static int count_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_tensor_zeros(g->dtype, nd->edge[0].ndim, nd->edge[0].shape, err);
  return gin[0] != NULL;
}

ct_tensor *ct_norm(ct_tensor *x, double p, int dim, bool keepdim, ct_err *err) {
  if (!check_dim(dim, x, err)) return NULL;
  if (x->dtype == CT_I64) return ct_fail(err, "norm needs a floating point tensor, got int64"), NULL;
  ct_tensor *a = ct_unary(CT_U_ABS, x, 0, 0, err), *r = NULL;
  if (a == NULL) return NULL;
  bool empty = dim < 0 || x->ndim == 0 ? ct_numel(x) == 0 : x->shape[dim] == 0;
  if (isinf(p) && !empty) r = ct_reduce(p > 0 ? CT_R_MAX : CT_R_MIN, a, dim, keepdim, err);
  else if (isinf(p) || p == 1) r = ct_reduce(CT_R_SUM, a, dim, keepdim, err); /* empty: 0, as PyTorch */
  else if (p == 0) { /* the count of non-zeros (NaN counts), as PyTorch; |x|^0 summed to inf */
    ct_tensor *z = ct_tensor_scalar(x->dtype, 0, err), *nz = z ? ct_compare_as(CT_B_NE, a, z, err) : NULL;
    r = nz ? ct_reduce(CT_R_SUM, nz, dim, keepdim, err) : NULL;
    ct_tensor_release(z);
    ct_tensor_release(nz);
    if (r && ct_needs_grad(1, &x) && ct_record(&reduce_ops[CT_REDUCE_NORM], r, 1, &x, err) == NULL) {
      ct_tensor_release(r);
      r = NULL;
    }
  } else if (p == 2) { /* sqrt(sum x^2): the gradient at 0 is NaN, where PyTorch gives 0 */
    ct_tensor *sq = ct_mul(x, x, err), *s = sq ? ct_reduce(CT_R_SUM, sq, dim, keepdim, err) : NULL;
    r = s ? ct_unary(CT_U_SQRT, s, 0, 0, err) : NULL;
    ct_tensor_release(sq);
    ct_tensor_release(s);
  } else {
    ct_tensor *ap = ct_unary(CT_U_POW, a, p, 0, err);
    ct_tensor *s = ap ? ct_reduce(CT_R_SUM, ap, dim, keepdim, err) : NULL;
    r = s ? ct_unary(CT_U_POW, s, 1.0 / p, 0, err) : NULL;
    ct_tensor_release(ap);
    ct_tensor_release(s);
  }
  ct_tensor_release(a);
  return r;
}

ct_tensor *ct_logsumexp(ct_tensor *x, int dim, bool keepdim, ct_err *err) {
  if (!check_dim(dim, x, err)) return NULL;
  if (ct_numel(x) == 0) { /* no max to shift by: log(sum(exp x)), -inf over an empty dim */
    ct_tensor *e = ct_unary(CT_U_EXP, x, 0, 0, err),
              *s = e ? ct_reduce(CT_R_SUM, e, dim, keepdim, err) : NULL;
    ct_tensor *r = s ? ct_unary(CT_U_LOG, s, 0, 0, err) : NULL;
    ct_tensor_release(e);
    ct_tensor_release(s);
    return r;
  }
  /* subtract the (detached) max: the value is independent of it, so is the gradient */
  bool saved = ct_grad_enabled;
  ct_grad_enabled = false;
  ct_tensor *m = ct_reduce(CT_R_MAX, x, dim, true, err);
  if (m) { /* an all -inf slice keeps its -inf: shift by 0 there */
    int64_t n = ct_numel(m);
    for (int64_t i = 0; i < n; i++)
      if (isinf(ct_get_flat(m, i)))
        ((x->dtype == CT_F32) ? (void)(((float *)ct_data(m))[i] = 0) : (void)(((double *)ct_data(m))[i] = 0));
  }
  ct_grad_enabled = saved;
  ct_tensor *d = m ? ct_sub(x, m, err) : NULL;
  ct_tensor *e = d ? ct_unary(CT_U_EXP, d, 0, 0, err) : NULL;
  ct_tensor *s = e ? ct_reduce(CT_R_SUM, e, dim, keepdim, err) : NULL;
  ct_tensor *l = s ? ct_unary(CT_U_LOG, s, 0, 0, err) : NULL;
  ct_tensor *mk = NULL, *r = NULL;
  if (l) mk = keepdim || dim < 0 ? ct_reshape(m, l->ndim, l->shape, err) : ct_squeeze(m, dim, err);
  if (mk) r = ct_add(l, mk, err);
  ct_tensor_release(m);
  ct_tensor_release(d);
  ct_tensor_release(e);
  ct_tensor_release(s);
  ct_tensor_release(l);
  ct_tensor_release(mk);
  return r;
}

/* ---- softmax / log_softmax: fused stable kernels, backward from ops ---- */

#define SOFTMAX_KERNEL(T, NAME)                                                                    \
  static void NAME(T *restrict y, const T *restrict x, span3 s, bool log_) {                       \
    for (int64_t o = 0; o < s.outer; o++)                                                          \
      for (int64_t i = 0; i < s.inner; i++) {                                                      \
        const T *xo = x + o * s.n * s.inner + i;                                                   \
        T *yo = y + o * s.n * s.inner + i;                                                         \
        T m = xo[0];                                                                               \
        for (int64_t k = 1; k < s.n; k++) {                                                        \
          if (xo[k * s.inner] > m) m = xo[k * s.inner];                                            \
        }                                                                                          \
        if (isinf(m)) m = 0;                                                                       \
        double sum = 0;                                                                            \
        for (int64_t k = 0; k < s.n; k++) sum += exp(xo[k * s.inner] - m);                         \
        if (log_) {                                                                                \
          T ls = (T)log(sum); /* (x - m) - log(sum): exact when x == m */                          \
          for (int64_t k = 0; k < s.n; k++) yo[k * s.inner] = (xo[k * s.inner] - m) - ls;          \
        } else {                                                                                   \
          for (int64_t k = 0; k < s.n; k++) yo[k * s.inner] = (T)(exp(xo[k * s.inner] - m) / sum); \
        }                                                                                          \
      }                                                                                            \
  }
SOFTMAX_KERNEL(float, softmax_f32)
SOFTMAX_KERNEL(double, softmax_f64)

static int softmax_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  int dim = nd->arg.reduce.dim;
  ct_tensor *y = ct_saved(nd, 0, err), *r = NULL;
  if (y == NULL) return 0;
  if (!nd->arg.reduce.op) { /* softmax: y (g - sum(g y)) */
    ct_tensor *gy = ct_mul(g, y, err), *s = gy ? ct_reduce(CT_R_SUM, gy, dim, true, err) : NULL;
    ct_tensor *d = s ? ct_sub(g, s, err) : NULL;
    r = d ? ct_mul(y, d, err) : NULL;
    ct_tensor_release(gy);
    ct_tensor_release(s);
    ct_tensor_release(d);
  } else { /* log_softmax: g - e^y sum(g) */
    ct_tensor *s = ct_reduce(CT_R_SUM, g, dim, true, err), *e = s ? ct_unary(CT_U_EXP, y, 0, 0, err) : NULL;
    ct_tensor *es = e ? ct_mul(e, s, err) : NULL;
    r = es ? ct_sub(g, es, err) : NULL;
    ct_tensor_release(s);
    ct_tensor_release(e);
    ct_tensor_release(es);
  }
  ct_tensor_release(y);
  gin[0] = r;
  return r != NULL;
}

ct_tensor *ct_softmax(ct_tensor *x, int dim, bool log_, ct_err *err) {
  if (x->ndim == 0) dim = -1;
  else if (dim < 0 || !check_dim(dim, x, err))
    return ct_fail(err, "dimension %d out of range (the tensor has %d dims)", dim + 1, x->ndim), NULL;
  ct_tensor *src = x->dtype == CT_I64 ? ct_to(x, CT_F32, err) : (ct_tensor_retain(x), x);
  ct_tensor *c = src ? ct_contig(src, false, err) : NULL;
  ct_tensor *y = c ? ct_tensor_new(c->dtype, c->ndim, c->shape, err) : NULL;
  if (y && ct_numel(y) > 0) { /* an empty input has nothing to read */
    span3 s = split(c, dim);
    if (c->dtype == CT_F32) softmax_f32((float *)ct_data(y), (const float *)ct_data(c), s, log_);
    else softmax_f64((double *)ct_data(y), (const double *)ct_data(c), s, log_);
  }
  ct_tensor_release(c);
  if (y && ct_needs_grad(1, &src)) {
    ct_node *n = ct_record(&reduce_ops[log_ ? CT_REDUCE_LOG_SOFTMAX : CT_REDUCE_SOFTMAX], y, 1, &src, err);
    if (n == NULL || !ct_save(n, y, true, err)) {
      ct_tensor_release(y);
      y = NULL;
    } else {
      n->arg.reduce.dim = dim < 0 ? 0 : dim;
      n->arg.reduce.op = log_;
    }
  }
  ct_tensor_release(src);
  return y;
}

static const ct_op reduce_ops[CT_REDUCE_COUNT] = {CT_REDUCE_OPS(CT_OP_ROW)};
