/* crater optim: Adafactor (Shazeer and Stern 2018), as huggingface/transformers
 * optimization.py's class Adafactor.  A matrix's second moment is kept factored, as the
 * means of its rows and of its columns; the step is g / sqrt(v_hat) with v_hat their outer
 * product over the mean row, scaled down when its RMS passes clip_threshold.  The big
 * passes are here (B matrices of R x C, row-major); the caller keeps the small vectors. */
#include "kernel.h"

/* The passes take a range of the B*R rows of C elements (row q is row q % R of matrix
 * q / R) or of the B*C columns, so that the binding can split them over threads; each
 * row's and each column's sum runs in the same order on any split. */

/* rowmean[q] = mean over row q of g^2 + eps1, for rows [lo, hi). */
#define ADAFACTOR_ROWMEANS(NAME, T)                                                                  \
  void NAME(const T *restrict g, size_t C, size_t lo, size_t hi, double eps1, T *restrict rowmean) { \
    const T e = (T)eps1;                                                                             \
    for (size_t q = lo; q < hi; q++) {                                                               \
      const T *x = g + q * C;                                                                        \
      T lane[16] = {0}, s = 0; /* 16 lanes: it vectorises in two add chains */                       \
      size_t c = 0;                                                                                  \
      for (; c + 16 <= C; c += 16)                                                                   \
        for (size_t k = 0; k < 16; k++) lane[k] += x[c + k] * x[c + k] + e;                          \
      for (; c < C; c++) lane[0] += x[c] * x[c] + e;                                                 \
      for (size_t k = 0; k < 16; k++) s += lane[k];                                                  \
      rowmean[q] = s / (T)C;                                                                         \
    }                                                                                                \
  }
ADAFACTOR_ROWMEANS(ct_optim_adafactor_rowmeans_f32, float)
ADAFACTOR_ROWMEANS(ct_optim_adafactor_rowmeans_f64, double)

/* colmean[k] = mean over the rows of its matrix of g^2 + eps1, for columns [lo, hi) of the
 * B*C (column k is column k % C of matrix k / C); rows are added in order. */
#define ADAFACTOR_COLMEANS(NAME, T)                                                     \
  void NAME(const T *restrict g, size_t R, size_t C, size_t lo, size_t hi, double eps1, \
            T *restrict colmean) {                                                      \
    const T e = (T)eps1;                                                                \
    for (size_t k = lo; k < hi;) {                                                      \
      size_t b = k / C, c0 = k % C, c1 = C - c0 < hi - k ? C : c0 + (hi - k);           \
      T *col = colmean + b * C;                                                         \
      for (size_t c = c0; c < c1; c++) col[c] = 0;                                      \
      for (size_t r = 0; r < R; r++) {                                                  \
        const T *x = g + (b * R + r) * C;                                               \
        for (size_t c = c0; c < c1; c++) col[c] += x[c] * x[c] + e;                     \
      }                                                                                 \
      for (size_t c = c0; c < c1; c++) col[c] = col[c] / (T)R;                          \
      k += c1 - c0;                                                                     \
    }                                                                                   \
  }
ADAFACTOR_COLMEANS(ct_optim_adafactor_colmeans_f32, float)
ADAFACTOR_COLMEANS(ct_optim_adafactor_colmeans_f64, double)

/* Both means in one pass over g, for one thread: the same sums in the same order as the
 * two passes above (so the same bits), reading g once instead of twice. */
#define ADAFACTOR_MEANS(NAME, T)                                                                 \
  void NAME(const T *restrict g, size_t B, size_t R, size_t C, double eps1, T *restrict rowmean, \
            T *restrict colmean) {                                                               \
    const T e = (T)eps1;                                                                         \
    for (size_t b = 0; b < B; b++) {                                                             \
      T *col = colmean + b * C;                                                                  \
      for (size_t c = 0; c < C; c++) col[c] = 0;                                                 \
      for (size_t r = 0; r < R; r++) {                                                           \
        const T *x = g + (b * R + r) * C;                                                        \
        T lane[16] = {0}, s = 0;                                                                 \
        size_t c = 0;                                                                            \
        for (; c + 16 <= C; c += 16)                                                             \
          for (size_t k = 0; k < 16; k++) {                                                      \
            T u = x[c + k] * x[c + k] + e;                                                       \
            lane[k] += u;                                                                        \
            col[c + k] += u;                                                                     \
          }                                                                                      \
        for (; c < C; c++) {                                                                     \
          T u = x[c] * x[c] + e;                                                                 \
          lane[0] += u;                                                                          \
          col[c] += u;                                                                           \
        }                                                                                        \
        for (size_t k = 0; k < 16; k++) s += lane[k];                                            \
        rowmean[b * R + r] = s / (T)C;                                                           \
      }                                                                                          \
      for (size_t c = 0; c < C; c++) col[c] = col[c] / (T)R;                                     \
    }                                                                                            \
  }
ADAFACTOR_MEANS(ct_optim_adafactor_means_f32, float)
ADAFACTOR_MEANS(ct_optim_adafactor_means_f64, double)

/* u = U / den * lr, folded into m (HAS_M), then p = p - wd_lr*p - u at index K */
#define ADAFACTOR_STEP(T, U, K, HAS_M) \
  {                                    \
    const size_t k = (K);              \
    T u = (U) / den * lr;              \
    if (HAS_M) {                       \
      u = m[k] * b1 + c1 * u;          \
      m[k] = u;                        \
    }                                  \
    T pk = p[k], dk = pk + nwd * pk;   \
    pk = decay ? dk : pk;              \
    p[k] = pk + -u;                    \
  }

/* The factored step u = (rf[q] * cf[c]) * g over rows [lo, hi): with p NULL, returns
 * sum u^2 and writes nothing; else u = u / den * lr, m = b1*m + (1-b1)*u and u = m (m not
 * NULL), p = p - wd_lr*p (wd_lr != 0), p = p - u. */
#define ADAFACTOR_FACTORED(NAME, T)                                                                          \
  double NAME(T *restrict p, const T *restrict g, T *restrict m, const T *restrict rf, const T *restrict cf, \
              size_t R, size_t C, size_t lo, size_t hi, const ct_adafactor_args *a) {                        \
    const T den = (T)a->den, lr = (T)a->lr, b1 = (T)a->beta1, c1 = (T)(1 - a->beta1);                        \
    const T nwd = (T)-a->wd_lr;                                                                              \
    const bool decay = a->wd_lr != 0;                                                                        \
    double ss = 0;                                                                                           \
    for (size_t q = lo; q < hi; q++) {                                                                       \
      const size_t o = q * C;                                                                                \
      const T rr = rf[q];                                                                                    \
      const T *c = cf + q / R * C;                                                                           \
      if (p == NULL) { /* eight lanes: the loop vectorises, the order is fixed */                            \
        double lane[8] = {0};                                                                                \
        size_t j = 0;                                                                                        \
        for (; j + 8 <= C; j += 8)                                                                           \
          for (size_t k = 0; k < 8; k++) {                                                                   \
            T u = (rr * c[j + k]) * g[o + j + k];                                                            \
            lane[k] += (double)(u * u);                                                                      \
          }                                                                                                  \
        for (; j < C; j++) {                                                                                 \
          T u = (rr * c[j]) * g[o + j];                                                                      \
          lane[0] += (double)(u * u);                                                                        \
        }                                                                                                    \
        for (size_t k = 0; k < 8; k++) ss += lane[k];                                                        \
        continue;                                                                                            \
      }                                                                                                      \
      if (m)                                                                                                 \
        for (size_t j = 0; j < C; j++) { ADAFACTOR_STEP(T, (rr * c[j]) * g[o + j], o + j, 1) }               \
      else                                                                                                   \
        for (size_t j = 0; j < C; j++) { ADAFACTOR_STEP(T, (rr * c[j]) * g[o + j], o + j, 0) }               \
    }                                                                                                        \
    return ss;                                                                                               \
  }
ADAFACTOR_FACTORED(ct_optim_adafactor_factored_f32, float)
ADAFACTOR_FACTORED(ct_optim_adafactor_factored_f64, double)

/* Unfactored (vectors): v = b2t*v + (1-b2t)*(g^2 + eps1) and, with p NULL, returns
 * sum (g/sqrt(v))^2; with p, the step as above with u = g/sqrt(v) (v not written again). */
#define ADAFACTOR_VECTOR(NAME, T, SQRT)                                                      \
  double NAME(T *restrict p, const T *restrict g, T *restrict m, T *restrict v, size_t n,    \
              const ct_adafactor_args *a) {                                                  \
    const T b2t = (T)a->beta2t, c2t = (T)(1 - a->beta2t), e = (T)a->eps1;                    \
    const T den = (T)a->den, lr = (T)a->lr, b1 = (T)a->beta1, c1 = (T)(1 - a->beta1);        \
    const T nwd = (T)-a->wd_lr;                                                              \
    const bool decay = a->wd_lr != 0;                                                        \
    double ss = 0;                                                                           \
    if (p == NULL) {                                                                         \
      for (size_t i = 0; i < n; i++) {                                                       \
        T vi = v[i] * b2t + c2t * (g[i] * g[i] + e);                                         \
        v[i] = vi;                                                                           \
        T u = ((T)1 / SQRT(vi)) * g[i];                                                      \
        ss += (double)(u * u);                                                               \
      }                                                                                      \
      return ss;                                                                             \
    }                                                                                        \
    if (m)                                                                                   \
      for (size_t i = 0; i < n; i++) { ADAFACTOR_STEP(T, ((T)1 / SQRT(v[i])) * g[i], i, 1) } \
    else                                                                                     \
      for (size_t i = 0; i < n; i++) { ADAFACTOR_STEP(T, ((T)1 / SQRT(v[i])) * g[i], i, 0) } \
    return ss;                                                                               \
  }
ADAFACTOR_VECTOR(ct_optim_adafactor_vector_f32, float, sqrtf)
ADAFACTOR_VECTOR(ct_optim_adafactor_vector_f64, double, sqrt)

/* The EMAs of the factors and the step's factors: R = b2t R + (1-b2t) rowmean, the same
 * for C, then rf[r] = 1/sqrt(R[r] / mean(R)) and cf[c] = 1/sqrt(C[c]) per matrix. */
#define ADAFACTOR_FACTORS(NAME, T, SQRT)                                                            \
  void NAME(T *restrict row, T *restrict col, const T *restrict rowmean, const T *restrict colmean, \
            T *restrict rf, T *restrict cf, size_t B, size_t R, size_t C, double beta2t) {          \
    const T b2t = (T)beta2t, c2t = (T)(1 - beta2t);                                                 \
    for (size_t b = 0; b < B; b++) {                                                                \
      T *rb = row + b * R, *cb = col + b * C;                                                       \
      T s = 0;                                                                                      \
      for (size_t r = 0; r < R; r++) {                                                              \
        rb[r] = rb[r] * b2t + c2t * rowmean[b * R + r];                                             \
        s += rb[r];                                                                                 \
      }                                                                                             \
      const T mean = s / (T)R;                                                                      \
      for (size_t r = 0; r < R; r++) rf[b * R + r] = (T)1 / SQRT(rb[r] / mean);                     \
      for (size_t c = 0; c < C; c++) {                                                              \
        cb[c] = cb[c] * b2t + c2t * colmean[b * C + c];                                             \
        cf[b * C + c] = (T)1 / SQRT(cb[c]);                                                         \
      }                                                                                             \
    }                                                                                               \
  }
ADAFACTOR_FACTORS(ct_optim_adafactor_factors_f32, float, sqrtf)
ADAFACTOR_FACTORS(ct_optim_adafactor_factors_f64, double, sqrt)
