/* crater nn kernels: im2col / col2im (each the other's backward, so a convolution is
 * im2col + one OpenBLAS matmul and double backward works), and 2-D pooling.
 * Shapes are written (B,C,H,W) next to the pointers; L = Ho*Wo output positions. */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "nn.h"

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

bool ct_set_flush_denormal(bool on) {
#if defined(__SSE__)
  /* bit 15 = FTZ (results), bit 6 = DAZ (inputs) */
  unsigned int csr = _mm_getcsr();
  _mm_setcsr(on ? csr | 0x8040u : csr & ~0x8040u);
  return true;
#else
  (void)on;
  return false;
#endif
}

int64_t ct_win_out(int64_t in, int64_t k, int64_t s, int64_t p) {
  int64_t span = in + 2 * p - k;
  return span < 0 ? -1 : span / s + 1;
}

static int check_win(const char *fn, ct_win w, ct_err *err) {
  if (w.kh <= 0 || w.kw <= 0) return ct_fail(err, "%s: kernel size must be positive, got %lldx%lld", fn, (long long)w.kh, (long long)w.kw);
  if (w.sh <= 0 || w.sw <= 0) return ct_fail(err, "%s: stride must be positive, got %lldx%lld", fn, (long long)w.sh, (long long)w.sw);
  if (w.ph < 0 || w.pw < 0) return ct_fail(err, "%s: padding must be non-negative, got %lldx%lld", fn, (long long)w.ph, (long long)w.pw);
  return 1;
}

/* Checks x is a float (B,C,H,W) that the window fits; sets the output sizes. */
static int check_input(const char *fn, const ct_tensor *x, ct_win w, int64_t *ho, int64_t *wo,
                       ct_err *err) {
  char buf[96];
  if (!check_win(fn, w, err)) return 0;
  if (x->ndim != 4)
    return ct_fail(err, "%s: expected a 4-D input (B,C,H,W), got shape %s", fn, ct_shape_str(buf, x->ndim, x->shape));
  if (x->dtype == CT_I64) return ct_fail(err, "%s: expected a float tensor, got int64", fn);
  *ho = ct_win_out(x->shape[2], w.kh, w.sh, w.ph);
  *wo = ct_win_out(x->shape[3], w.kw, w.sw, w.pw);
  if (*ho <= 0 || *wo <= 0)
    return ct_fail(err, "%s: kernel %lldx%lld (padding %lldx%lld) is larger than the input %s", fn,
                   (long long)w.kh, (long long)w.kw, (long long)w.ph, (long long)w.pw,
                   ct_shape_str(buf, x->ndim, x->shape));
  return 1;
}

/* The output columns ow whose input column ow*s - p + j lies in [0, w): [*lo, *hi). */
static void valid_cols(int64_t wo, int64_t w, int64_t s, int64_t p, int64_t j, int64_t *lo, int64_t *hi) {
  int64_t a = p - j > 0 ? (p - j + s - 1) / s : 0;        /* first ow with ow*s >= p - j */
  int64_t b = w - 1 + p - j < 0 ? 0 : (w - 1 + p - j) / s + 1;
  *lo = a < wo ? a : wo;
  *hi = b < wo ? b : wo;
  if (*hi < *lo) *hi = *lo;
}

/* One kernel body per dtype.  im2col: cols (C*kh*kw, B*L) from x (B,C,H,W), both
 * contiguous: row (c,i,j) holds x[n, c, oh*sh-ph+i, ow*sw-pw+j] at column n*L + oh*Wo + ow,
 * so one GEMM W (Cout, C*kh*kw) x cols serves the whole batch, writes are contiguous and,
 * for stride 1, so are the reads.  col2im: x += the windows of cols (x zeroed first). */
#define DEFINE_WINDOW_KERNELS(T, sfx)                                                           \
  static void im2col_##sfx(T *restrict cols, const T *restrict x, int64_t b, int64_t n0,      \
                           int64_t n1, int64_t c, int64_t h, int64_t wd, int64_t ho,            \
                           int64_t wo, ct_win w) {                                              \
    int64_t l = ho * wo;                                                                        \
    for (int64_t ch = 0; ch < c; ch++)                                                          \
      for (int64_t i = 0; i < w.kh; i++)                                                        \
        for (int64_t j = 0; j < w.kw; j++) {                                                    \
          int64_t lo, hi;                                                                       \
          valid_cols(wo, wd, w.sw, w.pw, j, &lo, &hi);                                          \
          T *r = cols + ((ch * w.kh + i) * w.kw + j) * b * l;                                   \
          for (int64_t n = n0; n < n1; n++) {                                                   \
            const T *xp = x + (n * c + ch) * h * wd;                                            \
            for (int64_t oh = 0; oh < ho; oh++) {                                               \
              int64_t hr = oh * w.sh - w.ph + i;                                                \
              T *rp = r + n * l + oh * wo;                                                      \
              if (hr < 0 || hr >= h) { for (int64_t ow = 0; ow < wo; ow++) rp[ow] = 0; continue; } \
              const T *xr = xp + hr * wd - w.pw + j;                                            \
              for (int64_t ow = 0; ow < lo; ow++) rp[ow] = 0;                                   \
              if (w.sw == 1) for (int64_t ow = lo; ow < hi; ow++) rp[ow] = xr[ow];              \
              else for (int64_t ow = lo; ow < hi; ow++) rp[ow] = xr[ow * w.sw];                 \
              for (int64_t ow = hi; ow < wo; ow++) rp[ow] = 0;                                  \
            }                                                                                   \
          }                                                                                     \
        }                                                                                       \
  }                                                                                             \
  static void col2im_##sfx(T *restrict x, const T *restrict cols, int64_t b, int64_t n0,      \
                           int64_t n1, int64_t c, int64_t h, int64_t wd, int64_t ho,            \
                           int64_t wo, ct_win w) {                                              \
    int64_t l = ho * wo;                                                                        \
    for (int64_t ch = 0; ch < c; ch++)                                                          \
      for (int64_t i = 0; i < w.kh; i++)                                                        \
        for (int64_t j = 0; j < w.kw; j++) {                                                    \
          int64_t lo, hi;                                                                       \
          valid_cols(wo, wd, w.sw, w.pw, j, &lo, &hi);                                          \
          const T *r = cols + ((ch * w.kh + i) * w.kw + j) * b * l;                             \
          for (int64_t n = n0; n < n1; n++) {                                                   \
            T *xp = x + (n * c + ch) * h * wd;                                                  \
            for (int64_t oh = 0; oh < ho; oh++) {                                               \
              int64_t hr = oh * w.sh - w.ph + i;                                                \
              if (hr < 0 || hr >= h) continue;                                                  \
              const T *rp = r + n * l + oh * wo;                                                \
              T *xr = xp + hr * wd - w.pw + j;                                                  \
              if (w.sw == 1) for (int64_t ow = lo; ow < hi; ow++) xr[ow] += rp[ow];             \
              else for (int64_t ow = lo; ow < hi; ow++) xr[ow * w.sw] += rp[ow];                \
            }                                                                                   \
          }                                                                                     \
        }                                                                                       \
  }                                                                                             \
  static void maxidx_##sfx(int64_t *restrict idx, const T *restrict x, int64_t bc, int64_t h,  \
                           int64_t wd, int64_t ho, int64_t wo, ct_win w) {                     \
    if (w.kh == 2 && w.kw == 2 && w.sh == 2 && w.sw == 2 && w.ph == 0 && w.pw == 0) {          \
      /* the common 2x2 pooling: four candidates, first wins ties, NaN propagates */           \
      for (int64_t n = 0; n < bc; n++)                                                          \
        for (int64_t oh = 0; oh < ho; oh++)                                                     \
          for (int64_t ow = 0; ow < wo; ow++) {                                                 \
            int64_t p0 = n * h * wd + 2 * oh * wd + 2 * ow;                                     \
            int64_t c[4] = {p0, p0 + 1, p0 + wd, p0 + wd + 1}, best = c[0];                     \
            for (int q = 1; q < 4; q++)                                                         \
              if (x[c[q]] > x[best] || (x[c[q]] != x[c[q]] && x[best] == x[best])) best = c[q]; \
            *idx++ = best - n * h * wd;                                                         \
          }                                                                                     \
      return;                                                                                   \
    }                                                                                           \
    for (int64_t n = 0; n < bc; n++) {                                                          \
      const T *xp = x + n * h * wd;                                                             \
      for (int64_t oh = 0; oh < ho; oh++) {                                                     \
        int64_t i0 = oh * w.sh - w.ph, i1 = i0 + w.kh;                                          \
        if (i0 < 0) i0 = 0;                                                                     \
        if (i1 > h) i1 = h;                                                                     \
        for (int64_t ow = 0; ow < wo; ow++) {                                                   \
          int64_t j0 = ow * w.sw - w.pw, j1 = j0 + w.kw;                                        \
          if (j0 < 0) j0 = 0;                                                                   \
          if (j1 > wd) j1 = wd;                                                                 \
          int64_t best = i0 * wd + j0;                                                          \
          T bv = xp[best];                                                                      \
          for (int64_t i = i0; i < i1; i++)                                                     \
            for (int64_t j = j0; j < j1; j++) {                                                 \
              T v = xp[i * wd + j];                                                             \
              if (v > bv || (v != v && bv == bv)) { bv = v; best = i * wd + j; }                \
            }                                                                                   \
          *idx++ = best;                                                                        \
        }                                                                                       \
      }                                                                                         \
    }                                                                                           \
  }                                                                                             \
  /* y[r, k] = x[r, idx[r, k]] and its adjoint gx[r, idx[r, k]] += g[r, k] */                  \
  static void take_##sfx(T *restrict y, const T *restrict x, const int64_t *restrict idx,      \
                         int64_t rows, int64_t hw, int64_t l) {                                 \
    for (int64_t r = 0; r < rows; r++)                                                          \
      for (int64_t k = 0; k < l; k++) y[r * l + k] = x[r * hw + idx[r * l + k]];                \
  }                                                                                             \
  static void put_##sfx(T *restrict gx, const T *restrict g, const int64_t *restrict idx,      \
                        int64_t rows, int64_t hw, int64_t l) {                                  \
    for (int64_t r = 0; r < rows; r++)                                                          \
      for (int64_t k = 0; k < l; k++) gx[r * hw + idx[r * l + k]] += g[r * l + k];             \
  }

DEFINE_WINDOW_KERNELS(float, f32)
DEFINE_WINDOW_KERNELS(double, f64)

static void win_to_node(ct_node *nd, ct_win w, int64_t h, int64_t wd) {
  int64_t v[8] = {w.kh, w.kw, w.sh, w.sw, w.ph, w.pw, h, wd};
  memcpy(nd->i, v, sizeof v);
}
static ct_win win_from_node(const ct_node *nd) {
  ct_win w = {nd->i[0], nd->i[1], nd->i[2], nd->i[3], nd->i[4], nd->i[5]};
  return w;
}

static int im2col_backward(ct_node *nd, ct_tensor *gout, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_col2im(gout, nd->i[6], nd->i[7], win_from_node(nd), err);
  return gin[0] != NULL;
}
static int col2im_backward(ct_node *nd, ct_tensor *gout, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_im2col(gout, win_from_node(nd), err);
  return gin[0] != NULL;
}
static const ct_op im2col_op = {"Im2colBackward", im2col_backward};
static const ct_op col2im_op = {"Col2imBackward", col2im_backward};

/* Records op over x when needed, with the window and the image size in the node. */
static ct_tensor *finish(ct_tensor *out, const ct_op *op, ct_tensor *x, ct_win w, int64_t h,
                         int64_t wd, ct_err *err) {
  if (ct_needs_grad(1, &x)) {
    ct_node *nd = ct_record(op, out, 1, &x, err);
    if (nd == NULL) { ct_tensor_release(out); return NULL; }
    win_to_node(nd, w, h, wd);
  }
  return out;
}

/* im2col/col2im over a range of images, so that a large batch is split across threads:
 * image n touches only its own columns of cols and its own plane of x. */
typedef struct {
  bool im2col, f64;
  char *cols, *x;
  int64_t b, c, h, wd, ho, wo;
  ct_win w;
} window_job;

static void window_range(void *vj, size_t lo, size_t hi) {
  window_job *j = vj;
  size_t per = (size_t)(j->c * j->h * j->wd);   /* an item of ct_parallel is one element */
  int64_t n0 = (int64_t)((lo + per - 1) / per), n1 = (int64_t)((hi + per - 1) / per);
  if (j->im2col && j->f64)
    im2col_f64((double *)j->cols, (const double *)j->x, j->b, n0, n1, j->c, j->h, j->wd, j->ho, j->wo, j->w);
  else if (j->im2col)
    im2col_f32((float *)j->cols, (const float *)j->x, j->b, n0, n1, j->c, j->h, j->wd, j->ho, j->wo, j->w);
  else if (j->f64)
    col2im_f64((double *)j->x, (const double *)j->cols, j->b, n0, n1, j->c, j->h, j->wd, j->ho, j->wo, j->w);
  else
    col2im_f32((float *)j->x, (const float *)j->cols, j->b, n0, n1, j->c, j->h, j->wd, j->ho, j->wo, j->w);
}

ct_tensor *ct_im2col(ct_tensor *x, ct_win w, ct_err *err) {
  int64_t ho = 0, wo = 0;
  if (!check_input("im2col", x, w, &ho, &wo, err)) return NULL;
  int64_t b = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
  int64_t shape[2] = {c * w.kh * w.kw, b * ho * wo};
  ct_tensor *xc = ct_contig(x, false, err), *out = NULL;
  if (xc == NULL) return NULL;
  if ((out = ct_tensor_new(x->dtype, 2, shape, err)) != NULL) {
    window_job j = {true, x->dtype == CT_F64, ct_data(out), ct_data(xc), b, c, h, wd, ho, wo, w};
    ct_parallel((size_t)(b * c * h * wd), window_range, &j);
  }
  ct_tensor_release(xc);
  return out ? finish(out, &im2col_op, x, w, h, wd, err) : NULL;
}

ct_tensor *ct_col2im(ct_tensor *cols, int64_t h, int64_t wd, ct_win w, ct_err *err) {
  char buf[96];
  if (!check_win("col2im", w, err)) return NULL;
  int64_t ho = ct_win_out(h, w.kh, w.sh, w.ph), wo = ct_win_out(wd, w.kw, w.sw, w.pw);
  int64_t kk = w.kh * w.kw;
  if (cols->ndim != 2 || cols->dtype == CT_I64 || ho <= 0 || wo <= 0 ||
      cols->shape[1] % (ho * wo) != 0 || cols->shape[0] % kk != 0)
    return ct_fail(err, "col2im: columns of shape %s do not fit a %lldx%lld image with kernel %lldx%lld",
                   ct_shape_str(buf, cols->ndim, cols->shape), (long long)h, (long long)wd,
                   (long long)w.kh, (long long)w.kw), NULL;
  int64_t b = cols->shape[1] / (ho * wo), c = cols->shape[0] / kk;
  int64_t shape[4] = {b, c, h, wd};
  ct_tensor *cc = ct_contig(cols, false, err), *out = NULL;
  if (cc == NULL) return NULL;
  if ((out = ct_tensor_zeros(cols->dtype, 4, shape, err)) != NULL) {
    window_job j = {false, cols->dtype == CT_F64, ct_data(cc), ct_data(out), b, c, h, wd, ho, wo, w};
    ct_parallel((size_t)(b * c * h * wd), window_range, &j);
  }
  ct_tensor_release(cc);
  return out ? finish(out, &col2im_op, cols, w, h, wd, err) : NULL;
}

/* take: (rows, hw) x and (rows, l) indices -> (rows, l); put: the adjoint.  Each is the
 * other's backward, so max pooling is differentiable to any order. */
static ct_tensor *take_rows(ct_tensor *x, ct_tensor *idx, int ndim, const int64_t *shape, ct_err *err);
static ct_tensor *put_rows(ct_tensor *g, ct_tensor *idx, int ndim, const int64_t *shape, ct_err *err);

static int take_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *idx = ct_saved(nd, 0, err);
  if (idx == NULL) return 0;
  gin[0] = put_rows(g, idx, nd->edge[0].ndim, nd->edge[0].shape, err);
  ct_tensor_release(idx);
  return gin[0] != NULL;
}
static int put_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *idx = ct_saved(nd, 0, err);
  if (idx == NULL) return 0;
  gin[0] = take_rows(g, idx, nd->edge[0].ndim, nd->edge[0].shape, err);
  ct_tensor_release(idx);
  return gin[0] != NULL;
}
static const ct_op take_op = {"MaxPool2dBackward", take_backward};
static const ct_op put_op = {"MaxPool2dBackwardBackward", put_backward};

/* Shared tail: record op over x with idx saved. */
static ct_tensor *record_idx(ct_tensor *out, const ct_op *op, ct_tensor *x, ct_tensor *idx, ct_err *err) {
  if (ct_needs_grad(1, &x)) {
    ct_node *nd = ct_record(op, out, 1, &x, err);
    if (nd == NULL || !ct_save(nd, idx, false, err)) { ct_tensor_release(out); return NULL; }
  }
  return out;
}

/* x: any shape whose numel is rows*hw (contiguous after ct_contig); result 'shape'. */
static ct_tensor *take_rows(ct_tensor *x, ct_tensor *idx, int ndim, const int64_t *shape, ct_err *err) {
  int64_t l = idx->shape[idx->ndim - 1], rows = ct_numel(idx) / (l ? l : 1), hw = ct_numel(x) / (rows ? rows : 1);
  ct_tensor *xc = ct_contig(x, false, err), *y = NULL;
  if (xc == NULL) return NULL;
  if ((y = ct_tensor_new(x->dtype, ndim, shape, err)) != NULL) {
    if (x->dtype == CT_F32) take_f32((float *)ct_data(y), (const float *)ct_data(xc), (const int64_t *)ct_data(idx), rows, hw, l);
    else take_f64((double *)ct_data(y), (const double *)ct_data(xc), (const int64_t *)ct_data(idx), rows, hw, l);
  }
  ct_tensor_release(xc);
  return y ? record_idx(y, &take_op, x, idx, err) : NULL;
}

static ct_tensor *put_rows(ct_tensor *g, ct_tensor *idx, int ndim, const int64_t *shape, ct_err *err) {
  int64_t l = idx->shape[idx->ndim - 1], rows = ct_numel(idx) / (l ? l : 1);
  ct_tensor *gc = ct_contig(g, false, err), *y = NULL;
  if (gc == NULL) return NULL;
  if ((y = ct_tensor_zeros(g->dtype, ndim, shape, err)) != NULL) {
    int64_t hw = ct_numel(y) / (rows ? rows : 1);
    if (g->dtype == CT_F32) put_f32((float *)ct_data(y), (const float *)ct_data(gc), (const int64_t *)ct_data(idx), rows, hw, l);
    else put_f64((double *)ct_data(y), (const double *)ct_data(gc), (const int64_t *)ct_data(idx), rows, hw, l);
  }
  ct_tensor_release(gc);
  return y ? record_idx(y, &put_op, g, idx, err) : NULL;
}

ct_tensor *ct_max_pool2d(ct_tensor *x, ct_win w, ct_err *err) {
  int64_t ho = 0, wo = 0;
  if (!check_input("max_pool2d", x, w, &ho, &wo, err)) return NULL;
  if (w.ph * 2 > w.kh || w.pw * 2 > w.kw)
    return ct_fail(err, "max_pool2d: padding %lldx%lld must be at most half the kernel %lldx%lld",
                   (long long)w.ph, (long long)w.pw, (long long)w.kh, (long long)w.kw), NULL;
  int64_t b = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
  int64_t ishape[3] = {b, c, ho * wo}, oshape[4] = {b, c, ho, wo};
  ct_tensor *xc = ct_contig(x, false, err), *idx = NULL, *out = NULL;
  if (xc == NULL) return NULL;
  if ((idx = ct_tensor_new(CT_I64, 3, ishape, err)) != NULL) {
    if (x->dtype == CT_F32)
      maxidx_f32((int64_t *)ct_data(idx), (const float *)ct_data(xc), b * c, h, wd, ho, wo, w);
    else
      maxidx_f64((int64_t *)ct_data(idx), (const double *)ct_data(xc), b * c, h, wd, ho, wo, w);
    out = take_rows(x, idx, 4, oshape, err);
  }
  ct_tensor_release(xc);
  ct_tensor_release(idx);
  return out;
}

ct_tensor *ct_avg_pool2d(ct_tensor *x, ct_win w, ct_err *err) {
  int64_t ho = 0, wo = 0;
  if (!check_input("avg_pool2d", x, w, &ho, &wo, err)) return NULL;
  if (w.ph * 2 > w.kh || w.pw * 2 > w.kw)
    return ct_fail(err, "avg_pool2d: padding %lldx%lld must be at most half the kernel %lldx%lld",
                   (long long)w.ph, (long long)w.pw, (long long)w.kh, (long long)w.kw), NULL;
  int64_t b = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
  int64_t one[4] = {b * c, 1, h, wd}, oshape[4] = {b, c, ho, wo};
  ct_tensor *x1 = NULL, *cols = NULL, *m = NULL, *out = NULL;
  /* each channel as its own image: cols (kh*kw, B*C*L), then the mean over the window */
  if ((x1 = ct_reshape(x, 4, one, err)) == NULL) goto done;
  if ((cols = ct_im2col(x1, w, err)) == NULL) goto done;
  if ((m = ct_reduce(CT_R_MEAN, cols, 0, false, err)) == NULL) goto done;
  out = ct_reshape(m, 4, oshape, err);
done:
  ct_tensor_release(x1);
  ct_tensor_release(cols);
  ct_tensor_release(m);
  return out;
}

/* ---------------- linear: x w^T + b in one GEMM ---------------- */

static int linear_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *x = ct_saved(nd, 0, err), *w = x ? ct_saved(nd, 1, err) : NULL, *gt = NULL;
  int ok = w != NULL;
  if (ok && nd->edge[0].needs) ok = (gin[0] = ct_mm(g, w, err)) != NULL;            /* (N,in) */
  if (ok && nd->edge[1].needs) {                                                    /* (out,in) */
    ok = (gt = ct_transpose(g, 0, 1, err)) != NULL && (gin[1] = ct_mm(gt, x, err)) != NULL;
  }
  if (ok && nd->nin > 2 && nd->edge[2].needs)                                        /* (out) */
    ok = (gin[2] = ct_reduce(CT_R_SUM, g, 0, false, err)) != NULL;
  ct_tensor_release(gt);
  ct_tensor_release(x);
  ct_tensor_release(w);
  return ok;
}
static const ct_op linear_op = {"LinearBackward", linear_backward};

ct_tensor *ct_linear(ct_tensor *x, ct_tensor *w, ct_tensor *b, ct_err *err) {
  char xs[96], ws[96], bs[96];
  if (x->ndim != 2 || w->ndim != 2 || x->shape[1] != w->shape[1] ||
      (b && (b->ndim != 1 || b->shape[0] != w->shape[0])))
    return ct_fail(err, "input %s does not match weight %s%s%s", ct_shape_str(xs, x->ndim, x->shape),
                   ct_shape_str(ws, w->ndim, w->shape), b ? " and bias " : "",
                   b ? ct_shape_str(bs, b->ndim, b->shape) : ""), NULL;
  if (x->dtype == CT_I64 || x->dtype != w->dtype || (b && b->dtype != x->dtype))
    return ct_fail(err, "expected float operands of one dtype, got %s and %s", ct_dtype_name(x->dtype),
                   ct_dtype_name(w->dtype)), NULL;
  int64_t n = x->shape[0], k = x->shape[1], m = w->shape[0], shape[2] = {n, m};
  ct_tensor *xc = ct_contig(x, false, err), *wc = xc ? ct_contig(w, false, err) : NULL;
  ct_tensor *bc = wc && b ? ct_contig(b, false, err) : NULL, *y = NULL;
  if (wc == NULL || (b && bc == NULL)) goto done;
  if ((y = ct_tensor_new(x->dtype, 2, shape, err)) == NULL) goto done;
  size_t es = ct_dtype_size(x->dtype);
  if (bc)   /* every row starts as the bias; the GEMM adds onto it (beta = 1) */
    for (int64_t i = 0; i < n; i++) memcpy(ct_data(y) + (size_t)(i * m) * es, ct_data(bc), (size_t)m * es);
  else
    memset(ct_data(y), 0, (size_t)(n * m) * es);
  if (n > 0 && m > 0 && k > 0) {
    if (x->dtype == CT_F32)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)m, (int)k, 1.0f,
                  (const float *)ct_data(xc), (int)k, (const float *)ct_data(wc), (int)k, 1.0f,
                  (float *)ct_data(y), (int)m);
    else
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)m, (int)k, 1.0,
                  (const double *)ct_data(xc), (int)k, (const double *)ct_data(wc), (int)k, 1.0,
                  (double *)ct_data(y), (int)m);
  }
  ct_tensor *in[3] = {x, w, b};
  int nin = b ? 3 : 2;
  if (ct_needs_grad(nin, in)) {
    ct_node *nd = ct_record(&linear_op, y, nin, in, err);
    if (nd == NULL || !ct_save(nd, x, false, err) || !ct_save(nd, w, false, err)) {
      ct_tensor_release(y);
      y = NULL;
    }
  }
done:
  ct_tensor_release(xc);
  ct_tensor_release(wc);
  ct_tensor_release(bc);
  return y;
}

/* ---------------- bias_add: x (R, N) + b (R) per row ---------------- */

static int bias_add_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  int ok = 1;
  if (nd->edge[0].needs) { ct_tensor_retain(g); gin[0] = g; }
  if (nd->edge[1].needs) ok = (gin[1] = ct_reduce(CT_R_SUM, g, 1, false, err)) != NULL;
  return ok;
}
static const ct_op bias_add_op = {"BiasAddBackward", bias_add_backward};

ct_tensor *ct_bias_add(ct_tensor *x, ct_tensor *b, ct_err *err) {
  char xs[96], bs[96];
  if (x->ndim != 2 || b->ndim != 1 || b->shape[0] != x->shape[0] || x->dtype == CT_I64 ||
      b->dtype != x->dtype)
    return ct_fail(err, "bias %s (%s) does not fit rows of %s (%s)", ct_shape_str(bs, b->ndim, b->shape),
                   ct_dtype_name(b->dtype), ct_shape_str(xs, x->ndim, x->shape), ct_dtype_name(x->dtype)), NULL;
  int64_t r = x->shape[0], n = x->shape[1];
  ct_tensor *xc = ct_contig(x, false, err), *bc = xc ? ct_contig(b, false, err) : NULL, *y = NULL;
  if (bc && (y = ct_tensor_new(x->dtype, 2, x->shape, err)) != NULL) {
    for (int64_t i = 0; i < r; i++) {
      if (x->dtype == CT_F32) {
        float *restrict o = (float *)ct_data(y) + i * n, v = ((const float *)ct_data(bc))[i];
        const float *restrict a = (const float *)ct_data(xc) + i * n;
        for (int64_t j = 0; j < n; j++) o[j] = a[j] + v;
      } else {
        double *restrict o = (double *)ct_data(y) + i * n, v = ((const double *)ct_data(bc))[i];
        const double *restrict a = (const double *)ct_data(xc) + i * n;
        for (int64_t j = 0; j < n; j++) o[j] = a[j] + v;
      }
    }
    ct_tensor *in[2] = {x, b};
    if (ct_needs_grad(2, in) && ct_record(&bias_add_op, y, 2, in, err) == NULL) {
      ct_tensor_release(y);
      y = NULL;
    }
  }
  ct_tensor_release(xc);
  ct_tensor_release(bc);
  return y;
}
