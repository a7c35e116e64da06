/* crater nn kernels: im2col / col2im (each the other's backward, so that a convolution
 * built from them and a matmul is differentiable to any order), 2-D pooling, linear, and
 * conv2d, which runs im2col and a GEMM per image in cache and falls back on those ops
 * for create_graph.
 * Shapes are written (B,C,H,W) next to the pointers; L = Ho*Wo output positions. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "nn.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#elif defined(__SSE__)
#include <xmmintrin.h>
#endif

/* each row's graph node (ops.def), defined at the end, after the backward functions */
static const ct_op nn_ops[CT_NN_COUNT];

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
  int64_t span;
  if (__builtin_mul_overflow(p, 2, &span) || __builtin_add_overflow(span, in, &span)) return -2;
  span -= k; /* k > 0 and span >= -k: cannot overflow */
  return span < 0 ? -1 : span / s + 1;
}

/* The binding prefixes every message here with the function's name. */
static int check_win(ct_win w, ct_err *err) {
  if (w.kh <= 0 || w.kw <= 0)
    return ct_fail(err, "kernel size must be positive, got %lldx%lld", (long long)w.kh, (long long)w.kw);
  if (w.sh <= 0 || w.sw <= 0)
    return ct_fail(err, "stride must be positive, got %lldx%lld", (long long)w.sh, (long long)w.sw);
  if (w.ph < 0 || w.pw < 0)
    return ct_fail(err, "padding must be non-negative, got %lldx%lld", (long long)w.ph, (long long)w.pw);
  return 1;
}

/* Checks x is a float (B,C,H,W) that the window fits; sets the output sizes, whose
 * product B*C*Ho*Wo (and so every part of it) is checked to fit. */
static int check_input(const ct_tensor *x, ct_win w, int64_t *ho, int64_t *wo, ct_err *err) {
  char buf[96];
  if (!check_win(w, err)) return 0;
  if (x->ndim != 4)
    return ct_fail(err, "expected a 4-D input (B,C,H,W), got shape %s", ct_shape_str(buf, x->ndim, x->shape));
  if (x->dtype == CT_I64) return ct_fail(err, "expected a float tensor, got int64");
  if (x->shape[2] == 0 || x->shape[3] == 0) /* as PyTorch: only B or C may be 0 */
    return ct_fail(err, "expected an image of non-zero height and width, got shape %s",
                   ct_shape_str(buf, x->ndim, x->shape));
  *ho = ct_win_out(x->shape[2], w.kh, w.sh, w.ph);
  *wo = ct_win_out(x->shape[3], w.kw, w.sw, w.pw);
  int64_t out[4] = {x->shape[0], x->shape[1], *ho, *wo};
  if (*ho == -2 || *wo == -2 || (*ho > 0 && *wo > 0 && ct_shape_numel(4, out, NULL) < 0))
    return ct_fail(err,
                   "sizes overflow: input %s with kernel %lldx%lld, stride %lldx%lld and padding "
                   "%lldx%lld gives more than 2^63-1 outputs",
                   ct_shape_str(buf, x->ndim, x->shape), (long long)w.kh, (long long)w.kw, (long long)w.sh,
                   (long long)w.sw, (long long)w.ph, (long long)w.pw);
  if (*ho <= 0 || *wo <= 0)
    return ct_fail(err, "kernel %lldx%lld (padding %lldx%lld) is larger than the input %s", (long long)w.kh,
                   (long long)w.kw, (long long)w.ph, (long long)w.pw, ct_shape_str(buf, x->ndim, x->shape));
  return 1;
}

/* The output columns ow whose input column ow*s - p + j lies in [0, w): [*lo, *hi). */
static void valid_cols(int64_t wo, int64_t w, int64_t s, int64_t p, int64_t j, int64_t *lo, int64_t *hi) {
  int64_t a = p - j > 0 ? (p - j - 1) / s + 1 : 0; /* first ow with ow*s >= p - j (s may be 2^63-1) */
  int64_t b = w - 1 + p - j < 0 ? 0 : (w - 1 + p - j) / s + 1;
  *lo = a < wo ? a : wo;
  *hi = b < wo ? b : wo;
  if (*hi < *lo) *hi = *lo;
}

/* One kernel body per dtype.  im2col: cols (C*kh*kw, B*L) from x (B,C,H,W), both
 * contiguous: row (c,i,j) holds x[n, c, oh*sh-ph+i, ow*sw-pw+j] at column n*L + oh*Wo + ow,
 * so one GEMM W (Cout, C*kh*kw) x cols serves the whole batch, writes are contiguous and,
 * for stride 1, so are the reads.  col2im: x += the windows of cols (x zeroed first). */
/* One candidate v of a max window: it wins when larger, or when NaN and the best is not.
 * Two selects on the one test, a form GCC vectorises (integer masks and bool ANDs it does not). */
#define MAX_STEP(v, at)                              \
  {                                                  \
    k = (v > bv || (v != v && bv == bv)) ? (at) : k; \
    bv = (v > bv || (v != v && bv == bv)) ? v : bv;  \
  }

/* The common pooling window, 2x2 at stride 2 without padding, which has kernels of its own. */
static bool is_2x2(ct_win w) {
  return w.kh == 2 && w.kw == 2 && w.sh == 2 && w.sw == 2 && w.ph == 0 && w.pw == 0;
}

/* One row of 2x2 windows at stride 2 without padding: rows r0, r1 of the input (the window row
 * starting at offset p0 of its plane) give wo maxima y and their offsets idx in the plane,
 * four candidates each, the first winning ties and NaN propagating; put2 is its adjoint for
 * such windows, which do not overlap: each element of the rows r0, r1 of gx lies in one window
 * at most, so it is written once, its window's g where it is the winner and 0 elsewhere, and
 * gx needs no zeroing pass. */
#define DEFINE_POOL2_ROWS(T, sfx)                                                                           \
  static void max2_row_##sfx(int64_t *restrict idx, T *restrict y, const T *restrict r0,                    \
                             const T *restrict r1, int64_t p0, int64_t wd, int64_t wo, bool spill) {        \
    (void)spill;                                                                                            \
    for (int64_t ow = 0; ow < wo; ow++) {                                                                   \
      T b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1], bv = r0[2 * ow];                            \
      int64_t k = 0;                                                                                        \
      MAX_STEP(b, 1)                                                                                        \
      MAX_STEP(c, wd)                                                                                       \
      MAX_STEP(d, wd + 1)                                                                                   \
      idx[ow] = p0 + 2 * ow + k;                                                                            \
      y[ow] = bv;                                                                                           \
    }                                                                                                       \
  }                                                                                                         \
  static void put2_row_##sfx(T *restrict r0, T *restrict r1, const T *restrict g,                           \
                             const int64_t *restrict idx, int64_t p0, int64_t wd, int64_t wo, bool spill) { \
    (void)spill;                                                                                            \
    for (int64_t ow = 0; ow < wo; ow++) {                                                                   \
      int64_t k = idx[ow] - p0 - 2 * ow;                                                                    \
      T v = g[ow];                                                                                          \
      r0[2 * ow] = k == 0 ? v : 0;                                                                          \
      r0[2 * ow + 1] = k == 1 ? v : 0;                                                                      \
      r1[2 * ow] = k == wd ? v : 0;                                                                         \
      r1[2 * ow + 1] = k == wd + 1 ? v : 0;                                                                 \
    }                                                                                                       \
  }

#if defined(__AVX512F__)
/* The rows are short (14 and 7 windows in a Fashion-MNIST CNN), shorter than the loops GCC
 * vectorises without masks: 16 windows at a time under a mask, the pairs of each row split
 * into their even and odd elements. */
/* The first k lanes of 16 (none for k <= 0): n windows, and the 2n elements of a row as its
 * two halves, row_mask(2n) and row_mask(2n - 16). */
static __mmask16 row_mask(int64_t k) { return (__mmask16)(k >= 16 ? 0xffffu : k <= 0 ? 0 : (1u << k) - 1); }

static void max2_row_f32(int64_t *restrict idx, float *restrict y, const float *restrict r0,
                         const float *restrict r1, int64_t p0, int64_t wd, int64_t wo, bool spill) {
  (void)spill; /* the masks cost nothing here */
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i lane2 = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  for (int64_t ow = 0; ow < wo; ow += 16) {
    int64_t n = wo - ow < 16 ? wo - ow : 16; /* windows here, 2n elements of each row */
    __mmask16 m = row_mask(n), mlo = row_mask(2 * n), mhi = row_mask(2 * n - 16);
    __m512 t0 = _mm512_maskz_loadu_ps(mlo, r0 + 2 * ow), t1 = _mm512_maskz_loadu_ps(mhi, r0 + 2 * ow + 16);
    __m512 u0 = _mm512_maskz_loadu_ps(mlo, r1 + 2 * ow), u1 = _mm512_maskz_loadu_ps(mhi, r1 + 2 * ow + 16);
    __m512 bv = _mm512_permutex2var_ps(t0, even, t1), cand[3];
    cand[0] = _mm512_permutex2var_ps(t0, odd, t1);
    cand[1] = _mm512_permutex2var_ps(u0, even, u1);
    cand[2] = _mm512_permutex2var_ps(u0, odd, u1);
    const int64_t at[3] = {1, wd, wd + 1};
    __m512i klo = _mm512_setzero_si512(), khi = klo; /* the winners' places in their windows */
    for (int s = 0; s < 3; s++) { /* wins when larger, or when NaN and the best is not */
      __mmask16 win = _mm512_cmp_ps_mask(cand[s], bv, _CMP_GT_OQ) |
          (_mm512_cmp_ps_mask(cand[s], cand[s], _CMP_UNORD_Q) & _mm512_cmp_ps_mask(bv, bv, _CMP_ORD_Q));
      bv = _mm512_mask_mov_ps(bv, win, cand[s]);
      klo = _mm512_mask_mov_epi64(klo, (__mmask8)win, _mm512_set1_epi64(at[s]));
      khi = _mm512_mask_mov_epi64(khi, (__mmask8)(win >> 8), _mm512_set1_epi64(at[s]));
    }
    __m512i base = _mm512_add_epi64(_mm512_set1_epi64(p0 + 2 * ow), lane2);
    _mm512_mask_storeu_ps(y + ow, m, bv);
    _mm512_mask_storeu_epi64(idx + ow, (__mmask8)m, _mm512_add_epi64(base, klo));
    _mm512_mask_storeu_epi64(idx + ow + 8, (__mmask8)(m >> 8),
                             _mm512_add_epi64(_mm512_add_epi64(base, _mm512_set1_epi64(16)), khi));
  }
}
static void put2_row_f32(float *restrict r0, float *restrict r1, const float *restrict g,
                         const int64_t *restrict idx, int64_t p0, int64_t wd, int64_t wo, bool spill) {
  (void)spill;
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
  const __m512i lane2 = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
  for (int64_t ow = 0; ow < wo; ow += 16) {
    int64_t n = wo - ow < 16 ? wo - ow : 16;
    __mmask16 m = row_mask(n), mlo = row_mask(2 * n), mhi = row_mask(2 * n - 16);
    __m512i base = _mm512_add_epi64(_mm512_set1_epi64(p0 + 2 * ow), lane2);
    /* k: the winner's place in its window, 0, 1, wd or wd + 1 */
    __m512i klo = _mm512_sub_epi64(_mm512_maskz_loadu_epi64((__mmask8)m, idx + ow), base);
    __m512i khi = _mm512_sub_epi64(_mm512_maskz_loadu_epi64((__mmask8)(m >> 8), idx + ow + 8),
                                   _mm512_add_epi64(base, _mm512_set1_epi64(16)));
    __m512 v = _mm512_maskz_loadu_ps(m, g + ow), part[4];
    const int64_t at[4] = {0, 1, wd, wd + 1};
    for (int s = 0; s < 4; s++) {
      __m512i a = _mm512_set1_epi64(at[s]);
      __mmask16 e =
          (__mmask16)(_mm512_cmpeq_epi64_mask(klo, a) | (unsigned)_mm512_cmpeq_epi64_mask(khi, a) << 8);
      part[s] = _mm512_maskz_mov_ps(e, v);
    }
    _mm512_mask_storeu_ps(r0 + 2 * ow, mlo, _mm512_permutex2var_ps(part[0], lo, part[1]));
    _mm512_mask_storeu_ps(r0 + 2 * ow + 16, mhi, _mm512_permutex2var_ps(part[0], hi, part[1]));
    _mm512_mask_storeu_ps(r1 + 2 * ow, mlo, _mm512_permutex2var_ps(part[2], lo, part[3]));
    _mm512_mask_storeu_ps(r1 + 2 * ow + 16, mhi, _mm512_permutex2var_ps(part[2], hi, part[3]));
  }
}
#elif defined(__AVX2__)
/* AVX2 has no permute across two registers: 8 windows at a time, whose even and odd
 * elements one in-lane shuffle splits into the windows 0,1,4,5,2,3,6,7 (swap_mid puts them
 * back in order).  A row's last windows load and store whole vectors when spill is set (see
 * spill_ok): masked loads and stores cost as much as the rest of the row, and the CNN's second
 * pool has 7 windows a row; the last rows of a range, whose next elements may be another
 * thread's or past the end, take masks. */
static __m256i lanes8(int64_t k) { /* the first k of 8 lanes (none for k <= 0) */
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(k < 0 ? 0
                                                        : k > 8 ? 8
                                                                : k)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static __m256 swap_mid(__m256 v) { /* 64-bit units 0,1,2,3 -> 0,2,1,3, its own inverse */
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xd8));
}
/* lanes 0-3 or 4-7 of an int32 mask as four int64 masks */
static __m256i mask64(__m256i m, int hi) {
  return _mm256_cvtepi32_epi64(hi ? _mm256_extracti128_si256(m, 1) : _mm256_castsi256_si128(m));
}

static void max2_row_f32(int64_t *restrict idx, float *restrict y, const float *restrict r0,
                         const float *restrict r1, int64_t p0, int64_t wd, int64_t wo, bool spill) {
  const __m256 one = _mm256_castsi256_ps(_mm256_set1_epi32(-1)), none = _mm256_setzero_ps();
  for (int64_t ow = 0; ow < wo; ow += 8) {
    int64_t n = wo - ow < 8 ? wo - ow : 8; /* windows here, 2n elements of each row */
    __m256 t0, t1, u0, u1;
    if (n == 8 || spill) {
      t0 = _mm256_loadu_ps(r0 + 2 * ow), t1 = _mm256_loadu_ps(r0 + 2 * ow + 8);
      u0 = _mm256_loadu_ps(r1 + 2 * ow), u1 = _mm256_loadu_ps(r1 + 2 * ow + 8);
    } else {
      __m256i mlo = lanes8(2 * n), mhi = lanes8(2 * n - 8);
      t0 = _mm256_maskload_ps(r0 + 2 * ow, mlo), t1 = _mm256_maskload_ps(r0 + 2 * ow + 8, mhi);
      u0 = _mm256_maskload_ps(r1 + 2 * ow, mlo), u1 = _mm256_maskload_ps(r1 + 2 * ow + 8, mhi);
    }
    __m256 bv = _mm256_shuffle_ps(t0, t1, 0x88), cand[3];
    cand[0] = _mm256_shuffle_ps(t0, t1, 0xdd);
    cand[1] = _mm256_shuffle_ps(u0, u1, 0x88);
    cand[2] = _mm256_shuffle_ps(u0, u1, 0xdd);
    const __m256 col[3] = {one, none, one}, row[3] = {none, one, one};
    __m256 kx = none, ky = none; /* all ones where the winner is in the odd column, row r1 */
    for (int s = 0; s < 3; s++) { /* wins when larger, or when NaN and the best is not */
      __m256 win = _mm256_or_ps(
          _mm256_cmp_ps(cand[s], bv, _CMP_GT_OQ),
          _mm256_and_ps(_mm256_cmp_ps(cand[s], cand[s], _CMP_UNORD_Q), _mm256_cmp_ps(bv, bv, _CMP_ORD_Q)));
      bv = _mm256_blendv_ps(bv, cand[s], win);
      kx = _mm256_blendv_ps(kx, col[s], win);
      ky = _mm256_blendv_ps(ky, row[s], win);
    }
    bv = swap_mid(bv);
    __m256i ix = _mm256_castps_si256(swap_mid(kx)), iy = _mm256_castps_si256(swap_mid(ky)),
            wdv = _mm256_set1_epi64x(wd), m = lanes8(n);
    for (int h = 0; h < 2; h++) { /* idx = the window's first element, + 1 if odd column, + wd if r1 */
      __m256i at = _mm256_add_epi64(_mm256_set1_epi64x(p0 + 2 * ow + 8 * h), _mm256_setr_epi64x(0, 2, 4, 6));
      at = _mm256_add_epi64(_mm256_sub_epi64(at, mask64(ix, h)), _mm256_and_si256(mask64(iy, h), wdv));
      if (n == 8 || spill) _mm256_storeu_si256((__m256i *)(idx + ow + 4 * h), at);
      else _mm256_maskstore_epi64((long long *)(idx + ow + 4 * h), mask64(m, h), at);
    }
    if (n == 8 || spill) _mm256_storeu_ps(y + ow, bv);
    else _mm256_maskstore_ps(y + ow, m, bv);
  }
}
/* r0 and r1 are not restrict: r0's spill is the start of r1 (later stores to r1 write it again) */
static void put2_row_f32(float *r0, float *r1, const float *restrict g, const int64_t *restrict idx,
                         int64_t p0, int64_t wd, int64_t wo, bool spill) {
  /* last windows first: what r0's spill writes at the start of r1, the first windows write again */
  for (int64_t ow = (wo - 1) / 8 * 8; ow >= 0; ow -= 8) {
    int64_t n = wo - ow < 8 ? wo - ow : 8;
    __m256i m = lanes8(n), k[2];
    __m256 v = n == 8 || spill ? _mm256_loadu_ps(g + ow) : _mm256_maskload_ps(g + ow, m);
    v = swap_mid(v); /* windows 0,1,4,5,2,3,6,7, the order the masks below come in */
    for (int h = 0; h < 2; h++) { /* k: the winner's place in its window, 0, 1, wd or wd + 1 */
      __m256i at = _mm256_add_epi64(_mm256_set1_epi64x(p0 + 2 * ow + 8 * h), _mm256_setr_epi64x(0, 2, 4, 6));
      __m256i i = n == 8 || spill
          ? _mm256_loadu_si256((const __m256i *)(idx + ow + 4 * h))
          : _mm256_maskload_epi64((const long long *)(idx + ow + 4 * h), mask64(m, h));
      k[h] = _mm256_sub_epi64(i, at);
    }
    const int64_t at[4] = {0, 1, wd, wd + 1};
    __m256 part[4];
    for (int s = 0; s < 4; s++) { /* the int64 masks' low halves, as 8 int32 lanes */
      __m256i a = _mm256_set1_epi64x(at[s]);
      __m256 e = _mm256_shuffle_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi64(k[0], a)),
                                   _mm256_castsi256_ps(_mm256_cmpeq_epi64(k[1], a)), 0x88);
      part[s] = _mm256_and_ps(e, v);
    }
    /* unpack interleaves each 128-bit half: in this lane order that gives elements 0-7, 8-15 */
    __m256 out[4] = {_mm256_unpacklo_ps(part[0], part[1]), _mm256_unpackhi_ps(part[0], part[1]),
                     _mm256_unpacklo_ps(part[2], part[3]), _mm256_unpackhi_ps(part[2], part[3])};
    if (n == 8 || spill) {
      _mm256_storeu_ps(r0 + 2 * ow, out[0]);
      _mm256_storeu_ps(r0 + 2 * ow + 8, out[1]);
      _mm256_storeu_ps(r1 + 2 * ow, out[2]);
      _mm256_storeu_ps(r1 + 2 * ow + 8, out[3]);
    } else {
      __m256i mlo = lanes8(2 * n), mhi = lanes8(2 * n - 8);
      _mm256_maskstore_ps(r0 + 2 * ow, mlo, out[0]);
      _mm256_maskstore_ps(r0 + 2 * ow + 8, mhi, out[1]);
      _mm256_maskstore_ps(r1 + 2 * ow, mlo, out[2]);
      _mm256_maskstore_ps(r1 + 2 * ow + 8, mhi, out[3]);
    }
  }
}
#else
DEFINE_POOL2_ROWS(float, f32)
#endif
DEFINE_POOL2_ROWS(double, f64)

/* Whether row oh of a plane, planes_left of them to go in its range, may spill a vector
 * past its end (8 outputs, 16 inputs after its row pair): later rows of the range write
 * those elements again. */
static bool spill_ok(int64_t planes_left, int64_t oh, int64_t h, int64_t wd, int64_t ho, int64_t wo) {
  return (planes_left * ho - oh - 1) * wo >= 8 && (planes_left * h - 2 * oh - 2) * wd >= 16;
}

/* planes n0..n1 of x (BC,H,W), 2x2 windows at stride 2 without padding: idx, y (BC,L) already
 * point at plane n0 (maxidx2), and gx (BC,H,W) from g, idx (BC,L) (put2) */
#define DEFINE_POOL2_KERNELS(T, sfx)                                                                   \
  static void maxidx2_##sfx(int64_t *restrict idx, T *restrict y, const T *restrict x, int64_t n0,     \
                            int64_t n1, int64_t h, int64_t wd, int64_t ho, int64_t wo) {               \
    for (int64_t n = n0; n < n1; n++)                                                                  \
      for (int64_t oh = 0; oh < ho; oh++, idx += wo, y += wo) {                                        \
        const T *r0 = x + (n * h + 2 * oh) * wd;                                                       \
        max2_row_##sfx(idx, y, r0, r0 + wd, 2 * oh * wd, wd, wo, spill_ok(n1 - n, oh, h, wd, ho, wo)); \
      }                                                                                                \
  }                                                                                                    \
  static void put2_##sfx(T *restrict gx, const T *restrict g, const int64_t *restrict idx, int64_t n0, \
                         int64_t n1, int64_t h, int64_t wd, int64_t ho, int64_t wo) {                  \
    g += n0 * ho * wo;                                                                                 \
    idx += n0 * ho * wo;                                                                               \
    for (int64_t n = n0; n < n1; n++) {                                                                \
      T *xp = gx + n * h * wd;                                                                         \
      for (int64_t oh = 0; oh < ho; oh++, idx += wo, g += wo) {                                        \
        T *r0 = xp + 2 * oh * wd, *r1 = r0 + wd;                                                       \
        put2_row_##sfx(r0, r1, g, idx, 2 * oh * wd, wd, wo, spill_ok(n1 - n, oh, h, wd, ho, wo));      \
        if (wd > 2 * wo) r0[2 * wo] = r1[2 * wo] = 0; /* an odd width's last column */                 \
      }                                                                                                \
      if (h > 2 * ho) memset(xp + 2 * ho * wd, 0, (size_t)wd * sizeof(T)); /* an odd height's row */   \
    }                                                                                                  \
  }

DEFINE_POOL2_KERNELS(float, f32)
DEFINE_POOL2_KERNELS(double, f64)

#define DEFINE_WINDOW_KERNELS(T, sfx)                                                                 \
  static void im2col_##sfx(T *restrict cols, const T *restrict x, int64_t b, int64_t n0, int64_t n1,  \
                           int64_t c, int64_t h, int64_t wd, int64_t ho, int64_t wo, ct_win w) {      \
    int64_t l = ho * wo;                                                                              \
    for (int64_t ch = 0; ch < c; ch++)                                                                \
      for (int64_t i = 0; i < w.kh; i++)                                                              \
        for (int64_t j = 0; j < w.kw; j++) {                                                          \
          int64_t lo, hi;                                                                             \
          valid_cols(wo, wd, w.sw, w.pw, j, &lo, &hi);                                                \
          T *r = cols + ((ch * w.kh + i) * w.kw + j) * b * l;                                         \
          if (w.sh == 1 && w.sw == 1 && wo == wd) {                                                   \
            /* stride 1, width kept: output l reads input l + off, so one copy per image,      \
             * clipped to the plane, then zeros where the column falls outside the row */      \
            int64_t off = (i - w.ph) * wd + j - w.pw, a = off < 0 ? -off : 0;                         \
            int64_t e = h * wd - off < l ? h * wd - off : l;                                          \
            if (e < a) e = a;                                                                         \
            for (int64_t n = n0; n < n1; n++) {                                                       \
              const T *xp = x + (n * c + ch) * h * wd;                                                \
              T *rp = r + n * l;                                                                      \
              memset(rp, 0, (size_t)a * sizeof(T));                                                   \
              memcpy(rp + a, xp + a + off, (size_t)(e - a) * sizeof(T));                              \
              memset(rp + e, 0, (size_t)(l - e) * sizeof(T));                                         \
              if (lo > 0 || hi < wo)                                                                  \
                for (int64_t oh = 0; oh < ho; oh++) {                                                 \
                  for (int64_t ow = 0; ow < lo; ow++) rp[oh * wo + ow] = 0;                           \
                  for (int64_t ow = hi; ow < wo; ow++) rp[oh * wo + ow] = 0;                          \
                }                                                                                     \
            }                                                                                         \
            continue;                                                                                 \
          }                                                                                           \
          for (int64_t n = n0; n < n1; n++) {                                                         \
            const T *xp = x + (n * c + ch) * h * wd;                                                  \
            for (int64_t oh = 0; oh < ho; oh++) {                                                     \
              int64_t hr = oh * w.sh - w.ph + i;                                                      \
              T *rp = r + n * l + oh * wo;                                                            \
              if (hr < 0 || hr >= h) {                                                                \
                for (int64_t ow = 0; ow < wo; ow++) rp[ow] = 0;                                       \
                continue;                                                                             \
              }                                                                                       \
              const T *xr = xp + hr * wd - w.pw + j;                                                  \
              for (int64_t ow = 0; ow < lo; ow++) rp[ow] = 0;                                         \
              if (w.sw == 1)                                                                          \
                for (int64_t ow = lo; ow < hi; ow++) rp[ow] = xr[ow];                                 \
              else                                                                                    \
                for (int64_t ow = lo; ow < hi; ow++) rp[ow] = xr[ow * w.sw];                          \
              for (int64_t ow = hi; ow < wo; ow++) rp[ow] = 0;                                        \
            }                                                                                         \
          }                                                                                           \
        }                                                                                             \
  }                                                                                                   \
  static void col2im_##sfx(T *restrict x, const T *restrict cols, int64_t b, int64_t n0, int64_t n1,  \
                           int64_t c, int64_t h, int64_t wd, int64_t ho, int64_t wo, ct_win w) {      \
    int64_t l = ho * wo;                                                                              \
    for (int64_t ch = 0; ch < c; ch++)                                                                \
      for (int64_t i = 0; i < w.kh; i++)                                                              \
        for (int64_t j = 0; j < w.kw; j++) {                                                          \
          int64_t lo, hi;                                                                             \
          valid_cols(wo, wd, w.sw, w.pw, j, &lo, &hi);                                                \
          const T *r = cols + ((ch * w.kh + i) * w.kw + j) * b * l;                                   \
          for (int64_t n = n0; n < n1; n++) {                                                         \
            T *xp = x + (n * c + ch) * h * wd;                                                        \
            for (int64_t oh = 0; oh < ho; oh++) {                                                     \
              int64_t hr = oh * w.sh - w.ph + i;                                                      \
              if (hr < 0 || hr >= h) continue;                                                        \
              const T *rp = r + n * l + oh * wo;                                                      \
              T *xr = xp + hr * wd - w.pw + j;                                                        \
              if (w.sw == 1)                                                                          \
                for (int64_t ow = lo; ow < hi; ow++) xr[ow] += rp[ow];                                \
              else                                                                                    \
                for (int64_t ow = lo; ow < hi; ow++) xr[ow * w.sw] += rp[ow];                         \
            }                                                                                         \
          }                                                                                           \
        }                                                                                             \
  }                                                                                                   \
  /* planes n0..n1 of x (BC,H,W): idx (BC,L) of each window's winner, y (BC,L) its value */           \
  static void maxidx_##sfx(int64_t *restrict idx, T *restrict y, const T *restrict x, int64_t n0,     \
                           int64_t n1, int64_t h, int64_t wd, int64_t ho, int64_t wo, ct_win w) {     \
    idx += n0 * ho * wo;                                                                              \
    y += n0 * ho * wo;                                                                                \
    if (is_2x2(w)) {                                                                                  \
      maxidx2_##sfx(idx, y, x, n0, n1, h, wd, ho, wo);                                                \
      return;                                                                                         \
    }                                                                                                 \
    for (int64_t n = n0; n < n1; n++) {                                                               \
      const T *xp = x + n * h * wd;                                                                   \
      for (int64_t oh = 0; oh < ho; oh++) {                                                           \
        int64_t i0 = oh * w.sh - w.ph, i1 = i0 + w.kh;                                                \
        if (i0 < 0) i0 = 0;                                                                           \
        if (i1 > h) i1 = h;                                                                           \
        for (int64_t ow = 0; ow < wo; ow++) {                                                         \
          int64_t j0 = ow * w.sw - w.pw, j1 = j0 + w.kw;                                              \
          if (j0 < 0) j0 = 0;                                                                         \
          if (j1 > wd) j1 = wd;                                                                       \
          int64_t best = i0 * wd + j0;                                                                \
          T bv = xp[best];                                                                            \
          for (int64_t i = i0; i < i1; i++)                                                           \
            for (int64_t j = j0; j < j1; j++) {                                                       \
              T v = xp[i * wd + j];                                                                   \
              if (v > bv || (v != v && bv == bv)) {                                                   \
                bv = v;                                                                               \
                best = i * wd + j;                                                                    \
              }                                                                                       \
            }                                                                                         \
          *idx++ = best;                                                                              \
          *y++ = bv;                                                                                  \
        }                                                                                             \
      }                                                                                               \
    }                                                                                                 \
  }                                                                                                   \
  /* rows r0..r1 of y[r, k] = x[r, idx[r, k]] and of its adjoint gx[r, idx[r, k]] += g[r, k]    \
   * (gx's rows are zeroed here, so that the zeroing is split over threads too) */     \
  static void take_##sfx(T *restrict y, const T *restrict x, const int64_t *restrict idx, int64_t r0, \
                         int64_t r1, int64_t hw, int64_t l) {                                         \
    for (int64_t r = r0; r < r1; r++)                                                                 \
      for (int64_t k = 0; k < l; k++) y[r * l + k] = x[r * hw + idx[r * l + k]];                      \
  }                                                                                                   \
  static void put_##sfx(T *restrict gx, const T *restrict g, const int64_t *restrict idx, int64_t r0, \
                        int64_t r1, int64_t hw, int64_t l) {                                          \
    memset(gx + r0 * hw, 0, (size_t)((r1 - r0) * hw) * sizeof(T));                                    \
    for (int64_t r = r0; r < r1; r++)                                                                 \
      for (int64_t k = 0; k < l; k++) gx[r * hw + idx[r * l + k]] += g[r * l + k];                    \
  }

DEFINE_WINDOW_KERNELS(float, f32)
DEFINE_WINDOW_KERNELS(double, f64)

static void win_to_node(ct_node *nd, ct_win w, int64_t h, int64_t wd) {
  nd->arg.window.kh = w.kh;
  nd->arg.window.kw = w.kw;
  nd->arg.window.sh = w.sh;
  nd->arg.window.sw = w.sw;
  nd->arg.window.ph = w.ph;
  nd->arg.window.pw = w.pw;
  nd->arg.window.h = h;
  nd->arg.window.w = wd;
}
static ct_win win_from_node(const ct_node *nd) {
  ct_win w = {nd->arg.window.kh, nd->arg.window.kw, nd->arg.window.sh,
              nd->arg.window.sw, nd->arg.window.ph, nd->arg.window.pw};
  return w;
}

static int im2col_backward(ct_node *nd, ct_tensor *gout, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_col2im(gout, nd->arg.window.h, nd->arg.window.w, win_from_node(nd), err);
  return gin[0] != NULL;
}
static int col2im_backward(ct_node *nd, ct_tensor *gout, ct_tensor **gin, ct_err *err) {
  gin[0] = ct_im2col(gout, win_from_node(nd), err);
  return gin[0] != NULL;
}

/* Records op over x when needed, with the window and the image size in the node. */
static ct_tensor *finish(ct_tensor *out, const ct_op *op, ct_tensor *x, ct_win w, int64_t h, int64_t wd,
                         ct_err *err) {
  if (ct_needs_grad(1, &x)) {
    ct_node *nd = ct_record(op, out, 1, &x, err);
    if (nd == NULL) {
      ct_tensor_release(out);
      return NULL;
    }
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
  size_t per = (size_t)(j->c * j->h * j->wd); /* an item of ct_parallel is one element */
  if (per == 0) return; /* no channels: nothing to read or write */
  int64_t n0 = (int64_t)((lo + per - 1) / per), n1 = (int64_t)((hi + per - 1) / per);
  if (j->im2col && j->f64)
    im2col_f64((double *)j->cols, (const double *)j->x, j->b, n0, n1, j->c, j->h, j->wd, j->ho, j->wo, j->w);
  else if (j->im2col)
    im2col_f32((float *)j->cols, (const float *)j->x, j->b, n0, n1, j->c, j->h, j->wd, j->ho, j->wo, j->w);
  else if (j->f64)
    col2im_f64((double *)j->x, (const double *)j->cols, j->b, n0, n1, j->c, j->h, j->wd, j->ho, j->wo, j->w);
  else col2im_f32((float *)j->x, (const float *)j->cols, j->b, n0, n1, j->c, j->h, j->wd, j->ho, j->wo, j->w);
}

ct_tensor *ct_im2col(ct_tensor *x, ct_win w, ct_err *err) {
  int64_t ho = 0, wo = 0;
  if (!check_input(x, w, &ho, &wo, err)) return NULL;
  int64_t b = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
  int64_t rows = ct_shape_numel(3, (int64_t[]){c, w.kh, w.kw}, NULL);
  if (rows < 0) {
    char buf[96];
    return ct_fail(err,
                   "sizes overflow: %lld channels of kernel %lldx%lld (input %s) make more than "
                   "2^63-1 rows",
                   (long long)c, (long long)w.kh, (long long)w.kw, ct_shape_str(buf, x->ndim, x->shape)),
           NULL;
  }
  int64_t shape[2] = {rows, b * ho * wo}; /* b*ho*wo: checked by check_input */
  ct_tensor *xc = ct_contig(x, false, err), *out = NULL;
  if (xc == NULL) return NULL;
  if ((out = ct_tensor_new(x->dtype, 2, shape, err)) != NULL) {
    window_job j = {true, x->dtype == CT_F64, ct_data(out), ct_data(xc), b, c, h, wd, ho, wo, w};
    ct_parallel((size_t)(b * c * h * wd), window_range, &j);
  }
  ct_tensor_release(xc);
  return out ? finish(out, &nn_ops[CT_NN_IM2COL], x, w, h, wd, err) : NULL;
}

ct_tensor *ct_col2im(ct_tensor *cols, int64_t h, int64_t wd, ct_win w, ct_err *err) {
  char buf[96];
  if (!check_win(w, err)) return NULL;
  int64_t ho = ct_win_out(h, w.kh, w.sh, w.ph), wo = ct_win_out(wd, w.kw, w.sw, w.pw);
  /* -1 when a product overflows: then no columns fit */
  int64_t kk = ct_shape_numel(2, (int64_t[]){w.kh, w.kw}, NULL);
  int64_t l = ho > 0 && wo > 0 ? ct_shape_numel(2, (int64_t[]){ho, wo}, NULL) : -1;
  if (cols->ndim != 2 || cols->dtype == CT_I64 || h < 0 || wd < 0 || kk <= 0 || l <= 0 ||
      cols->shape[1] % l != 0 || cols->shape[0] % kk != 0)
    return ct_fail(err, "columns of shape %s do not fit a %lldx%lld image with kernel %lldx%lld",
                   ct_shape_str(buf, cols->ndim, cols->shape), (long long)h, (long long)wd, (long long)w.kh,
                   (long long)w.kw),
           NULL;
  int64_t b = cols->shape[1] / l, c = cols->shape[0] / kk;
  int64_t shape[4] = {b, c, h, wd};
  ct_tensor *cc = ct_contig(cols, false, err), *out = NULL;
  if (cc == NULL) return NULL;
  if ((out = ct_tensor_zeros(cols->dtype, 4, shape, err)) != NULL) {
    window_job j = {false, cols->dtype == CT_F64, ct_data(cc), ct_data(out), b, c, h, wd, ho, wo, w};
    ct_parallel((size_t)(b * c * h * wd), window_range, &j);
  }
  ct_tensor_release(cc);
  return out ? finish(out, &nn_ops[CT_NN_COL2IM], cols, w, h, wd, err) : NULL;
}

/* take: (rows, hw) x and (rows, l) indices -> (rows, l); put: the adjoint.  Each is the
 * other's backward, so max pooling is differentiable to any order. */
static ct_tensor *take_rows(ct_tensor *x, ct_tensor *idx, ct_win w, int ndim, const int64_t *shape,
                            ct_err *err);
static ct_tensor *put_rows(ct_tensor *g, ct_tensor *idx, ct_win w, int ndim, const int64_t *shape,
                           ct_err *err);

static int take_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *idx = ct_saved(nd, 0, err);
  if (idx == NULL) return 0;
  gin[0] = put_rows(g, idx, win_from_node(nd), nd->edge[0].ndim, nd->edge[0].shape, err);
  ct_tensor_release(idx);
  return gin[0] != NULL;
}
static int put_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *idx = ct_saved(nd, 0, err);
  if (idx == NULL) return 0;
  gin[0] = take_rows(g, idx, win_from_node(nd), nd->edge[0].ndim, nd->edge[0].shape, err);
  ct_tensor_release(idx);
  return gin[0] != NULL;
}
static const ct_op put_op = {"MaxPool2dBackwardBackward", put_backward, NULL};

/* Shared tail: record op over x with idx saved, and the pooling window (put_rows reads it). */
static ct_tensor *record_idx(ct_tensor *out, const ct_op *op, ct_tensor *x, ct_tensor *idx, ct_win w,
                             ct_err *err) {
  if (ct_needs_grad(1, &x)) {
    ct_node *nd = ct_record(op, out, 1, &x, err);
    if (nd == NULL || !ct_save(nd, idx, false, err)) {
      ct_tensor_release(out);
      return NULL;
    }
    win_to_node(nd, w, 0, 0);
  }
  return out;
}

/* Pooling kernels over a range of planes (one channel of one image), so that a batch is
 * split across threads like window_range: plane n touches only its own rows of idx, y, gx. */
typedef enum { POOL_MAXIDX, POOL_TAKE, POOL_PUT, POOL_PUT2 } pool_kind;
typedef struct {
  pool_kind kind;
  bool f64;
  char *y; /* maxidx, take: y (rows,l); put, put2: gx (rows,hw) */
  const char *x; /* maxidx, take: x (rows,hw); put, put2: g (rows,l) */
  int64_t *idx; /* (rows,l) */
  int64_t hw, l, h, wd, ho, wo;
  ct_win w;
} pool_job;

static void pool_range(void *vj, size_t lo, size_t hi) {
  pool_job *j = vj;
  size_t per = (size_t)(j->hw > j->l ? j->hw : j->l); /* items: elements of the larger side */
  if (per == 0) per = 1;
  int64_t r0 = (int64_t)((lo + per - 1) / per), r1 = (int64_t)((hi + per - 1) / per);
  switch (j->kind) {
  case POOL_MAXIDX:
    if (j->f64)
      maxidx_f64(j->idx, (double *)j->y, (const double *)j->x, r0, r1, j->h, j->wd, j->ho, j->wo, j->w);
    else maxidx_f32(j->idx, (float *)j->y, (const float *)j->x, r0, r1, j->h, j->wd, j->ho, j->wo, j->w);
    break;
  case POOL_TAKE:
    if (j->f64) take_f64((double *)j->y, (const double *)j->x, j->idx, r0, r1, j->hw, j->l);
    else take_f32((float *)j->y, (const float *)j->x, j->idx, r0, r1, j->hw, j->l);
    break;
  case POOL_PUT:
    if (j->f64) put_f64((double *)j->y, (const double *)j->x, j->idx, r0, r1, j->hw, j->l);
    else put_f32((float *)j->y, (const float *)j->x, j->idx, r0, r1, j->hw, j->l);
    break;
  case POOL_PUT2:
    if (j->f64) put2_f64((double *)j->y, (const double *)j->x, j->idx, r0, r1, j->h, j->wd, j->ho, j->wo);
    else put2_f32((float *)j->y, (const float *)j->x, j->idx, r0, r1, j->h, j->wd, j->ho, j->wo);
    break;
  }
}

static void pool_run(pool_job *j, int64_t rows) {
  ct_parallel((size_t)(rows * (j->hw > j->l ? j->hw : j->l)), pool_range, j);
}

/* x: any shape whose numel is rows*hw (contiguous after ct_contig); result 'shape'. */
static ct_tensor *take_rows(ct_tensor *x, ct_tensor *idx, ct_win w, int ndim, const int64_t *shape,
                            ct_err *err) {
  int64_t l = idx->shape[idx->ndim - 1], rows = ct_numel(idx) / (l ? l : 1),
          hw = ct_numel(x) / (rows ? rows : 1);
  ct_tensor *xc = ct_contig(x, false, err), *y = NULL;
  if (xc == NULL) return NULL;
  if ((y = ct_tensor_new(x->dtype, ndim, shape, err)) != NULL) {
    pool_job j = {.kind = POOL_TAKE,
                  .f64 = x->dtype == CT_F64,
                  .y = ct_data(y),
                  .x = ct_data(xc),
                  .idx = (int64_t *)ct_data(idx),
                  .hw = hw,
                  .l = l};
    pool_run(&j, rows);
  }
  ct_tensor_release(xc);
  return y ? record_idx(y, &nn_ops[CT_NN_MAX_POOL2D], x, idx, w, err) : NULL;
}

/* shape: (B,C,H,W) of the result; w: the window that chose idx (a 2x2 one has its own put) */
static ct_tensor *put_rows(ct_tensor *g, ct_tensor *idx, ct_win w, int ndim, const int64_t *shape,
                           ct_err *err) {
  int64_t l = idx->shape[idx->ndim - 1], rows = ct_numel(idx) / (l ? l : 1);
  ct_tensor *gc = ct_contig(g, false, err), *y = NULL;
  if (gc == NULL) return NULL;
  if ((y = ct_tensor_new(g->dtype, ndim, shape, err)) != NULL) { /* put zeroes its rows */
    pool_job j = {.kind = POOL_PUT,
                  .f64 = g->dtype == CT_F64,
                  .y = ct_data(y),
                  .x = ct_data(gc),
                  .idx = (int64_t *)ct_data(idx),
                  .hw = ct_numel(y) / (rows ? rows : 1),
                  .l = l};
    if (is_2x2(w) && ndim == 4 && shape[0] * shape[1] == rows && (shape[2] / 2) * (shape[3] / 2) == l) {
      j.kind = POOL_PUT2; /* put2 writes every element: no zeroing */
      j.h = shape[2];
      j.wd = shape[3];
      j.ho = shape[2] / 2;
      j.wo = shape[3] / 2;
    }
    pool_run(&j, rows);
  }
  ct_tensor_release(gc);
  return y ? record_idx(y, &put_op, g, idx, w, err) : NULL;
}

ct_tensor *ct_max_pool2d(ct_tensor *x, ct_win w, ct_err *err) {
  int64_t ho = 0, wo = 0;
  if (!check_input(x, w, &ho, &wo, err)) return NULL;
  if (w.ph > w.kh / 2 || w.pw > w.kw / 2)
    return ct_fail(err, "padding %lldx%lld must be at most half the kernel %lldx%lld", (long long)w.ph,
                   (long long)w.pw, (long long)w.kh, (long long)w.kw),
           NULL;
  int64_t b = x->shape[0], c = x->shape[1], h = x->shape[2], wd = x->shape[3];
  int64_t ishape[3] = {b, c, ho * wo}, oshape[4] = {b, c, ho, wo};
  ct_tensor *xc = ct_contig(x, false, err), *idx = NULL, *out = NULL;
  if (xc == NULL) return NULL;
  /* one pass finds each winner and copies its value: the result is take_rows(x, idx) */
  if ((idx = ct_tensor_new(CT_I64, 3, ishape, err)) != NULL &&
      (out = ct_tensor_new(x->dtype, 4, oshape, err)) != NULL) {
    pool_job j = {.kind = POOL_MAXIDX,
                  .f64 = x->dtype == CT_F64,
                  .y = ct_data(out),
                  .x = ct_data(xc),
                  .idx = (int64_t *)ct_data(idx),
                  .hw = h * wd,
                  .l = ho * wo,
                  .h = h,
                  .wd = wd,
                  .ho = ho,
                  .wo = wo,
                  .w = w};
    pool_run(&j, b * c);
    out = record_idx(out, &nn_ops[CT_NN_MAX_POOL2D], x, idx, w, err);
  }
  ct_tensor_release(xc);
  ct_tensor_release(idx);
  return out;
}

ct_tensor *ct_avg_pool2d(ct_tensor *x, ct_win w, ct_err *err) {
  int64_t ho = 0, wo = 0;
  if (!check_input(x, w, &ho, &wo, err)) return NULL;
  if (w.ph > w.kh / 2 || w.pw > w.kw / 2)
    return ct_fail(err, "padding %lldx%lld must be at most half the kernel %lldx%lld", (long long)w.ph,
                   (long long)w.pw, (long long)w.kh, (long long)w.kw),
           NULL;
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
  if (ok && nd->edge[0].needs) ok = (gin[0] = ct_mm(g, w, err)) != NULL; /* (N,in) */
  if (ok && nd->edge[1].needs) { /* (out,in) */
    ok = (gt = ct_transpose(g, 0, 1, err)) != NULL && (gin[1] = ct_mm(gt, x, err)) != NULL;
  }
  if (ok && nd->nin > 2 && nd->edge[2].needs) /* (out) */
    ok = (gin[2] = ct_reduce(CT_R_SUM, g, 0, false, err)) != NULL;
  ct_tensor_release(gt);
  ct_tensor_release(x);
  ct_tensor_release(w);
  return ok;
}

/* Checks a layer's x, w (both ndim-D, x's dim 1 = w's) and bias (w's dim 0) or NULL, all
 * of one float dtype. */
static int check_layer(const ct_tensor *x, const ct_tensor *w, const ct_tensor *b, int ndim, ct_err *err) {
  char xs[96], ws[96], bs[96];
  if (x->ndim != ndim || w->ndim != ndim || x->shape[1] != w->shape[1] ||
      (b && (b->ndim != 1 || b->shape[0] != w->shape[0])))
    return ct_fail(err, "input %s does not match weight %s%s%s", ct_shape_str(xs, x->ndim, x->shape),
                   ct_shape_str(ws, w->ndim, w->shape), b ? " and bias " : "",
                   b ? ct_shape_str(bs, b->ndim, b->shape) : "");
  if (x->dtype == CT_I64 || x->dtype != w->dtype || (b && b->dtype != x->dtype))
    return ct_fail(err, "expected float operands of one dtype, got %s and %s", ct_dtype_name(x->dtype),
                   ct_dtype_name(w->dtype));
  return 1;
}

ct_tensor *ct_linear(ct_tensor *x, ct_tensor *w, ct_tensor *b, ct_err *err) {
  if (!check_layer(x, w, b, 2, err)) return NULL;
  int64_t n = x->shape[0], k = x->shape[1], m = w->shape[0], shape[2] = {n, m};
  if (!ct_blas_sizes(n, k, m, err)) return NULL;
  ct_tensor *xc = ct_contig(x, false, err), *wc = xc ? ct_contig(w, false, err) : NULL;
  ct_tensor *bc = wc && b ? ct_contig(b, false, err) : NULL, *y = NULL;
  if (wc == NULL || (b && bc == NULL)) goto done;
  if ((y = ct_tensor_new(x->dtype, 2, shape, err)) == NULL) goto done;
  size_t es = ct_dtype_size(x->dtype);
  if (bc) /* every row starts as the bias; the GEMM adds onto it (beta = 1) */
    for (int64_t i = 0; i < n; i++) memcpy(ct_data(y) + (size_t)(i * m) * es, ct_data(bc), (size_t)m * es);
  else memset(ct_data(y), 0, (size_t)(n * m) * es);
  if (n > 0 && m > 0 && k > 0)
    ct_gemm(x->dtype, false, true, (int)n, (int)m, (int)k, 1.0, ct_data(xc), (int)k, ct_data(wc), (int)k, 1.0,
            ct_data(y), (int)m);
  ct_tensor *in[3] = {x, w, b};
  int nin = b ? 3 : 2;
  if (ct_needs_grad(nin, in)) {
    ct_node *nd = ct_record(&nn_ops[CT_NN_LINEAR], y, nin, in, err);
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

/* ---------------- conv_out: (Cout, B*L) GEMM result -> (B, Cout, Ho, Wo) + bias ---------------- */

/* out row r = (i, k) of an (n1, n0, L) result is x row (k, i) of an (n0, n1, L) input, plus
 * bias[k] when there is one: the swap of two leading dims, split over threads by rows. */
typedef struct {
  bool f64;
  char *y;
  const char *x, *bias;
  int64_t n0, n1, l;
} swap_job;

static void swap_range(void *vj, size_t lo, size_t hi) {
  swap_job *j = vj;
  size_t per = (size_t)(j->l > 0 ? j->l : 1);
  int64_t r0 = (int64_t)((lo + per - 1) / per), r1 = (int64_t)((hi + per - 1) / per), l = j->l;
  for (int64_t r = r0; r < r1; r++) {
    int64_t i = r / j->n0, k = r % j->n0, src = (k * j->n1 + i) * l;
    size_t es = j->f64 ? sizeof(double) : sizeof(float);
    if (j->bias == NULL) /* a plain copy: adding 0 would turn -0 into +0 */
      memcpy(j->y + (size_t)(r * l) * es, j->x + (size_t)src * es, (size_t)l * es);
    else if (j->f64) {
      double *restrict o = (double *)j->y + r * l, v = ((const double *)j->bias)[k];
      const double *restrict a = (const double *)j->x + src;
      for (int64_t q = 0; q < l; q++) o[q] = a[q] + v;
    } else {
      float *restrict o = (float *)j->y + r * l, v = ((const float *)j->bias)[k];
      const float *restrict a = (const float *)j->x + src;
      for (int64_t q = 0; q < l; q++) o[q] = a[q] + v;
    }
  }
}

/* x (n0, n1, L) in any shape of that numel -> 'shape' holding (n1, n0, L), plus bias (n0)
 * or NULL.  Records ConvOutBackward with n0, n1, L in the node when x or bias needs a gradient. */
static ct_tensor *swap_lead(ct_tensor *x, ct_tensor *bias, int64_t n0, int64_t n1, int64_t l, int ndim,
                            const int64_t *shape, ct_err *err) {
  ct_tensor *xc = ct_contig(x, false, err), *bc = xc && bias ? ct_contig(bias, false, err) : NULL, *y = NULL;
  if (xc && (bias == NULL || bc) && (y = ct_tensor_new(x->dtype, ndim, shape, err)) != NULL) {
    swap_job j = {x->dtype == CT_F64, ct_data(y), ct_data(xc), bc ? ct_data(bc) : NULL, n0, n1, l};
    /* identical for any thread count: each element is one add */
    ct_parallel((size_t)(n0 * n1 * l), swap_range, &j);
    ct_tensor *in[2] = {x, bias};
    int nin = bias ? 2 : 1;
    if (ct_needs_grad(nin, in)) {
      ct_node *nd = ct_record(&nn_ops[CT_NN_CONV_OUT], y, nin, in, err);
      if (nd == NULL) {
        ct_tensor_release(y);
        y = NULL;
      } else {
        nd->arg.conv.n0 = n0;
        nd->arg.conv.n1 = n1;
        nd->arg.conv.l = l;
      }
    }
  }
  ct_tensor_release(xc);
  ct_tensor_release(bc);
  return y;
}

/* gx = the swap back into x's shape; gbias = the sums of gx's n0 rows. */
static int swap_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  int64_t n0 = nd->arg.conv.n0, n1 = nd->arg.conv.n1, l = nd->arg.conv.l;
  bool need_bias = nd->nin > 1 && nd->edge[1].needs;
  ct_tensor *gx = swap_lead(g, NULL, n1, n0, l, nd->edge[0].ndim, nd->edge[0].shape, err), *g2 = NULL;
  int ok = gx != NULL;
  if (ok && need_bias) {
    int64_t rows[2] = {n0, n1 * l};
    ok =
        (g2 = ct_view(gx, 2, rows, err)) != NULL && (gin[1] = ct_reduce(CT_R_SUM, g2, 1, false, err)) != NULL;
  }
  if (ok && nd->edge[0].needs) {
    gin[0] = gx;
    gx = NULL;
  }
  ct_tensor_release(gx);
  ct_tensor_release(g2);
  return ok;
}

ct_tensor *ct_conv_out(ct_tensor *y, ct_tensor *bias, int64_t b, int64_t ho, int64_t wo, ct_err *err) {
  char ys[96], bs[96];
  if (y->ndim != 2 || y->dtype == CT_I64 || b < 0 || ho <= 0 || wo <= 0 ||
      ct_shape_numel(3, (int64_t[]){b, ho, wo}, NULL) != y->shape[1] || /* -1 on overflow */
      (bias && (bias->ndim != 1 || bias->shape[0] != y->shape[0] || bias->dtype != y->dtype)))
    return ct_fail(err, "%s (%s)%s%s does not fit %lld images of %lldx%lld",
                   ct_shape_str(ys, y->ndim, y->shape), ct_dtype_name(y->dtype), bias ? " with bias " : "",
                   bias ? ct_shape_str(bs, bias->ndim, bias->shape) : "", (long long)b, (long long)ho,
                   (long long)wo),
           NULL;
  int64_t shape[4] = {b, y->shape[0], ho, wo};
  return swap_lead(y, bias, y->shape[0], b, ho * wo, 4, shape, err);
}

/* ---------------- conv2d: im2col and one GEMM per image, in cache ---------------- */

/* One image at a time: its columns (K, L), K = C*kh*kw, stay in the core's cache (225 KB
 * for 32 channels of 14x14 and a 3x3 kernel), and the GEMM W (Cout, K) x cols writes the
 * image's (Cout, L) output in place, where im2col of the batch wrote a (K, B*L) matrix
 * through memory, the GEMMs read it back and the result was swapped into (B, Cout, L).
 * Images are split over threads, each in a slot of scratch buffers the caller allocated. */
#define CONV_PARTS \
  16 /* partial sums of the weight gradient: a fixed count, the same bits on any thread count */

typedef struct {
  ct_dtype dt;
  const char *x, *w, *g, *bias; /* x (B,C,H,W), w (Cout,K), g (B,Cout,L) in backward */
  char *y, *gx, *gw, *gb; /* y; gx or NULL, gw (parts,Cout,K) or NULL, gb (parts,Cout) or NULL */
  int64_t b, c, h, wd, ho, wo, cout, k, per; /* per: images in one part of the backward */
  ct_win win;
  char *scratch; /* nslots slots of slot bytes */
  size_t slot;
  atomic_int *busy; /* whether a slot is taken */
  int nslots;
} conv_job;

/* A free slot: at most nslots ranges run at once, so one is always free. */
static char *slot_take(conv_job *j, int *slot) {
  for (;;)
    for (int i = 0; i < j->nslots; i++) {
      int expect = 0;
      if (atomic_compare_exchange_strong(&j->busy[i], &expect, 1)) {
        *slot = i;
        return j->scratch + (size_t)i * j->slot;
      }
    }
}

/* cols (K, L) of image n */
static void im2col_one(const conv_job *j, char *cols, int64_t n) {
  int64_t plane = j->c * j->h * j->wd;
  if (j->dt == CT_F64)
    im2col_f64((double *)cols, (const double *)j->x + n * plane, 1, 0, 1, j->c, j->h, j->wd, j->ho, j->wo,
               j->win);
  else
    im2col_f32((float *)cols, (const float *)j->x + n * plane, 1, 0, 1, j->c, j->h, j->wd, j->ho, j->wo,
               j->win);
}

static void conv_fwd_range(void *vj, size_t lo, size_t hi) {
  conv_job *j = vj;
  int slot;
  char *cols = slot_take(j, &slot);
  size_t es = ct_dtype_size(j->dt);
  int64_t l = j->ho * j->wo;
  for (int64_t n = (int64_t)lo; n < (int64_t)hi; n++) {
    char *y = j->y + (size_t)(n * j->cout * l) * es;
    im2col_one(j, cols, n);
    for (int64_t co = 0; j->bias && co < j->cout; co++) /* rows start as the bias: beta 1 adds */
      for (int64_t q = 0; q < l; q++) {
        if (j->dt == CT_F64) ((double *)y)[co * l + q] = ((const double *)j->bias)[co];
        else ((float *)y)[co * l + q] = ((const float *)j->bias)[co];
      }
    ct_gemm(j->dt, false, false, (int)j->cout, (int)l, (int)j->k, 1.0, j->w, (int)j->k, cols, (int)l,
            j->bias ? 1.0 : 0.0, y, (int)l);
  }
  atomic_store(&j->busy[slot], 0);
}

/* out[r] = the sum of row r of x (rows, n) in eight running sums, in double for float32, as
 * ct_reduce sums */
#define DEFINE_ROW_SUMS(T, ACC, sfx)                                                          \
  static void row_sums_##sfx(T *restrict out, const T *restrict x, int64_t rows, int64_t n) { \
    for (int64_t r = 0; r < rows; r++, x += n) {                                              \
      ACC part[8] = {0}, acc = 0;                                                             \
      int64_t k = 0;                                                                          \
      for (; k + 8 <= n; k += 8)                                                              \
        for (int q = 0; q < 8; q++) part[q] += x[k + q];                                      \
      for (; k < n; k++) acc += x[k];                                                         \
      for (int q = 0; q < 8; q++) acc += part[q];                                             \
      out[r] = (T)acc;                                                                        \
    }                                                                                         \
  }
DEFINE_ROW_SUMS(float, double, f32)
DEFINE_ROW_SUMS(double, double, f64)

/* Parts lo..hi of the batch, per images each: the part's gw and gb, and its images' gx,
 * from its columns (K, per*L) and its gradient as (Cout, per*L), so that the products'
 * inner sizes are per*L and Cout rather than one image's L. */
static void conv_bwd_range(void *vj, size_t lo, size_t hi) {
  conv_job *j = vj;
  int slot;
  char *cols = slot_take(j, &slot);
  size_t es = ct_dtype_size(j->dt);
  int64_t l = j->ho * j->wo, plane = j->c * j->h * j->wd;
  char *gcols = cols + (size_t)(j->k * j->per * l) * es, *gp = gcols + (size_t)(j->k * j->per * l) * es;
  for (int64_t p = (int64_t)lo; p < (int64_t)hi; p++) {
    int64_t n0 = p * j->per, np = (n0 + j->per < j->b ? j->per : j->b - n0), gl = np * l;
    for (int64_t n = 0; n < np; n++) /* gp[co, n*L + q] = g[n0 + n, co, q] */
      for (int64_t co = 0; co < j->cout; co++)
        memcpy(gp + (size_t)(co * gl + n * l) * es, j->g + (size_t)(((n0 + n) * j->cout + co) * l) * es,
               (size_t)l * es);
    if (j->gb && j->dt == CT_F64) /* gb[p] = gp's row sums, while gp is in cache */
      row_sums_f64((double *)j->gb + p * j->cout, (const double *)gp, j->cout, gl);
    else if (j->gb) row_sums_f32((float *)j->gb + p * j->cout, (const float *)gp, j->cout, gl);
    if (j->gw) { /* gw[p] = gp (Cout, per*L) x cols^T (per*L, K) */
      if (j->dt == CT_F64)
        im2col_f64((double *)cols, (const double *)j->x + n0 * plane, np, 0, np, j->c, j->h, j->wd, j->ho,
                   j->wo, j->win);
      else
        im2col_f32((float *)cols, (const float *)j->x + n0 * plane, np, 0, np, j->c, j->h, j->wd, j->ho,
                   j->wo, j->win);
      ct_gemm(j->dt, false, true, (int)j->cout, (int)j->k, (int)gl, 1.0, gp, (int)gl, cols, (int)gl, 0.0,
              j->gw + (size_t)(p * j->cout * j->k) * es, (int)j->k);
    }
    if (j->gx) { /* gx of the part's images = col2im(W^T (K, Cout) x gp) */
      ct_gemm(j->dt, true, false, (int)j->k, (int)gl, (int)j->cout, 1.0, j->w, (int)j->k, gp, (int)gl, 0.0,
              gcols, (int)gl);
      memset(j->gx + (size_t)(n0 * plane) * es, 0, (size_t)(np * plane) * es);
      if (j->dt == CT_F64)
        col2im_f64((double *)j->gx + n0 * plane, (const double *)gcols, np, 0, np, j->c, j->h, j->wd, j->ho,
                   j->wo, j->win);
      else
        col2im_f32((float *)j->gx + n0 * plane, (const float *)gcols, np, 0, np, j->c, j->h, j->wd, j->ho,
                   j->wo, j->win);
    }
  }
  atomic_store(&j->busy[slot], 0);
}

/* Runs fn over nitems (each `work` multiply-adds) with scratch slots for every thread. */
static int conv_run(conv_job *j, size_t nitems, size_t work, ct_range_fn fn, ct_err *err) {
  int nt = ct_get_num_threads();
  j->nslots = nt < 1 ? 1 : nt;
  size_t es = ct_dtype_size(j->dt), l = (size_t)(j->ho * j->wo), bytes;
  /* forward: one image's columns; backward: a part's columns, their gradient and gp */
  size_t rows = j->per > 0 ? 2 * (size_t)j->k + (size_t)j->cout : (size_t)j->k,
         imgs = j->per > 0 ? (size_t)j->per : 1;
  if (__builtin_mul_overflow(rows, l, &j->slot) || __builtin_mul_overflow(j->slot, imgs * es, &j->slot) ||
      j->slot > SIZE_MAX - 63 ||
      __builtin_mul_overflow((j->slot + 63) & ~(size_t)63, (size_t)j->nslots, &bytes))
    return ct_fail(err, "not enough memory (scratch of %zu rows of %zu columns)", rows, l);
  j->slot = (j->slot + 63) & ~(size_t)63;
  atomic_int busy[j->nslots];
  for (int i = 0; i < j->nslots; i++) atomic_init(&busy[i], 0);
  j->busy = busy;
  if ((j->scratch = ct_malloc(bytes, err)) == NULL) return 0;
  ct_parallel_blocks(nitems, work, fn, j);
  ct_free(j->scratch, bytes);
  return 1;
}

/* gx, gw, gb built from differentiable ops (im2col, mm, col2im, the swap), for create_graph. */
static int conv_backward_graph(ct_node *nd, ct_tensor *x, ct_tensor *w, ct_tensor *g, ct_tensor **gin,
                               ct_err *err) {
  ct_win win = win_from_node(nd);
  int64_t b = g->shape[0], cout = g->shape[1], l = g->shape[2] * g->shape[3];
  int64_t gshape[2] = {cout, b * l}, wshape[2] = {cout, -1};
  ct_tensor *gy = swap_lead(g, NULL, b, cout, l, 2, gshape, err); /* (Cout, B*L) */
  ct_tensor *w2 = gy ? ct_reshape(w, 2, wshape, err) : NULL, *cols = NULL, *colst = NULL, *t = NULL,
            *w2t = NULL;
  int ok = w2 != NULL;
  if (ok && nd->edge[1].needs)
    ok = (cols = ct_im2col(x, win, err)) && (colst = ct_transpose(cols, 0, 1, err)) &&
        (t = ct_mm(gy, colst, err)) && (gin[1] = ct_reshape(t, w->ndim, w->shape, err));
  if (ok && nd->nin > 2 && nd->edge[2].needs) ok = (gin[2] = ct_reduce(CT_R_SUM, gy, 1, false, err)) != NULL;
  ct_tensor_release(t);
  t = NULL;
  if (ok && nd->edge[0].needs)
    ok = (w2t = ct_transpose(w2, 0, 1, err)) && (t = ct_mm(w2t, gy, err)) &&
        (gin[0] = ct_col2im(t, nd->arg.window.h, nd->arg.window.w, win, err));
  ct_tensor *tmp[] = {gy, w2, cols, colst, t, w2t};
  for (int i = 0; i < 6; i++) ct_tensor_release(tmp[i]);
  return ok;
}

static int conv_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *x = ct_saved(nd, 0, err), *w = x ? ct_saved(nd, 1, err) : NULL, *gc = NULL;
  ct_tensor *gw = NULL, *gb = NULL, *xc = NULL, *wc = NULL;
  int ok = w != NULL;
  if (ok && ct_grad_enabled) {
    ok = conv_backward_graph(nd, x, w, g, gin, err);
    goto done;
  }
  ok = ok && (xc = ct_contig(x, false, err)) && (wc = ct_contig(w, false, err));
  bool need_x = nd->edge[0].needs, need_w = nd->edge[1].needs, need_b = nd->nin > 2 && nd->edge[2].needs;
  int64_t b = g->shape[0], cout = g->shape[1], k = w->shape[1] * w->shape[2] * w->shape[3];
  int64_t per = (b + CONV_PARTS - 1) / CONV_PARTS, parts = per > 0 ? (b + per - 1) / per : 0;
  int64_t pw[3] = {parts, cout, k};
  ok = ok && (gc = ct_contig(g, false, err)) &&
      (!need_x || (gin[0] = ct_tensor_new(x->dtype, 4, x->shape, err))) &&
      (gw = ct_tensor_new(x->dtype, 3, pw, err)) && (!need_b || (gb = ct_tensor_new(x->dtype, 2, pw, err)));
  if (ok) {
    conv_job j = {.dt = x->dtype,
                  .x = ct_data(xc),
                  .w = ct_data(wc),
                  .g = ct_data(gc),
                  .gx = need_x ? ct_data(gin[0]) : NULL,
                  .gw = need_w ? ct_data(gw) : NULL,
                  .gb = gb ? ct_data(gb) : NULL,
                  .b = b,
                  .c = x->shape[1],
                  .h = x->shape[2],
                  .wd = x->shape[3],
                  .ho = g->shape[2],
                  .wo = g->shape[3],
                  .cout = cout,
                  .k = k,
                  .per = per,
                  .win = win_from_node(nd)};
    ok = conv_run(&j, (size_t)parts, (size_t)(per * cout * k * g->shape[2] * g->shape[3] * 2), conv_bwd_range,
                  err);
  }
  /* the parts' sums, added in part order */
  if (ok && need_w) ok = (gin[1] = ct_reduce(CT_R_SUM, gw, 0, false, err)) != NULL;
  if (ok && need_w) {
    ct_tensor *r = ct_reshape(gin[1], 4, w->shape, err);
    ct_tensor_release(gin[1]);
    ok = (gin[1] = r) != NULL;
  }
  if (ok && need_b) ok = (gin[2] = ct_reduce(CT_R_SUM, gb, 0, false, err)) != NULL;
done:
  ct_tensor_release(gc);
  ct_tensor_release(gw);
  ct_tensor_release(gb);
  ct_tensor_release(xc);
  ct_tensor_release(wc);
  ct_tensor_release(x);
  ct_tensor_release(w);
  return ok;
}

ct_tensor *ct_conv2d(ct_tensor *x, ct_tensor *w, ct_tensor *bias, int64_t sh, int64_t sw, int64_t ph,
                     int64_t pw, ct_err *err) {
  if (!check_layer(x, w, bias, 4, err)) return NULL;
  ct_win win = {w->shape[2], w->shape[3], sh, sw, ph, pw};
  int64_t ho = 0, wo = 0;
  if (!check_input(x, win, &ho, &wo, err)) return NULL;
  /* w's numel fits, so k does; b*c*ho*wo was checked, but b may be 0 */
  int64_t b = x->shape[0], cout = w->shape[0], k = w->shape[1] * w->shape[2] * w->shape[3];
  int64_t yshape[4] = {b, cout, ho, wo}, l = ct_shape_numel(2, yshape + 2, NULL);
  if (l < 0 || !ct_blas_sizes(cout, k, l, err))
    return l < 0 ? (ct_fail(err, "sizes overflow: %lldx%lld outputs", (long long)ho, (long long)wo), NULL)
                 : NULL;
  ct_tensor *xc = ct_contig(x, false, err), *wc = xc ? ct_contig(w, false, err) : NULL;
  ct_tensor *bc = wc && bias ? ct_contig(bias, false, err) : NULL, *y = NULL;
  if (wc && (bias == NULL || bc) && (y = ct_tensor_new(x->dtype, 4, yshape, err)) != NULL && b > 0 &&
      cout > 0) {
    conv_job j = {.dt = x->dtype,
                  .x = ct_data(xc),
                  .w = ct_data(wc),
                  .bias = bc ? ct_data(bc) : NULL,
                  .y = ct_data(y),
                  .b = b,
                  .c = x->shape[1],
                  .h = x->shape[2],
                  .wd = x->shape[3],
                  .ho = ho,
                  .wo = wo,
                  .cout = cout,
                  .k = k,
                  .win = win};
    if (!conv_run(&j, (size_t)b, (size_t)(cout * k * ho * wo), conv_fwd_range, err)) {
      ct_tensor_release(y);
      y = NULL;
    }
  }
  ct_tensor *in[3] = {x, w, bias};
  int nin = bias ? 3 : 2;
  if (y && ct_needs_grad(nin, in)) {
    ct_node *nd = ct_record(&nn_ops[CT_NN_CONV2D], y, nin, in, err);
    if (nd == NULL || !ct_save(nd, x, false, err) || !ct_save(nd, w, false, err)) {
      ct_tensor_release(y);
      y = NULL;
    } else win_to_node(nd, win, x->shape[2], x->shape[3]);
  }
  ct_tensor_release(xc);
  ct_tensor_release(wc);
  ct_tensor_release(bc);
  return y;
}

/* ---------------- relu: one pass each way, over the pool ---------------- */

/* y = x > 0 ? x : 0 and gx = [y > 0] g, as x:relu() and its backward (a compare against a
 * broadcast zero and a product, which run on one thread), in one split pass each; a private
 * g (ct_grad_private) becomes gx in place, g == NULL here: no new buffer to fill. */
typedef struct {
  bool f64, backward;
  char *y;
  const char *x, *g; /* forward: x; backward: x is y, g the gradient (NULL: y holds it) */
} relu_job;

static void relu_range(void *vj, size_t lo, size_t hi) {
  relu_job *j = vj;
  if (j->f64) {
    double *restrict y = (double *)j->y;
    const double *restrict x = (const double *)j->x, *restrict g = (const double *)j->g;
    if (j->backward && g == NULL)
      for (size_t i = lo; i < hi; i++) y[i] = (x[i] > 0 ? 1.0 : 0.0) * y[i];
    else if (j->backward)
      for (size_t i = lo; i < hi; i++) y[i] = (x[i] > 0 ? 1.0 : 0.0) * g[i];
    else
      for (size_t i = lo; i < hi; i++) y[i] = x[i] > 0 ? x[i] : 0;
  } else {
    float *restrict y = (float *)j->y;
    const float *restrict x = (const float *)j->x, *restrict g = (const float *)j->g;
    if (j->backward && g == NULL)
      for (size_t i = lo; i < hi; i++) y[i] = (x[i] > 0 ? 1.0f : 0.0f) * y[i];
    else if (j->backward)
      for (size_t i = lo; i < hi; i++) y[i] = (x[i] > 0 ? 1.0f : 0.0f) * g[i];
    else
      for (size_t i = lo; i < hi; i++) y[i] = x[i] > 0 ? x[i] : 0;
  }
}

static ct_tensor *relu_pass(ct_tensor *x, ct_tensor *g, ct_err *err) {
  bool in_place = g && ct_grad_private(g) && g->dtype == x->dtype; /* before ct_contig retains it */
  ct_tensor *xc = ct_contig(x, false, err), *gc = xc && g ? ct_contig(g, false, err) : NULL, *y = NULL;
  if (in_place && gc) {
    y = gc; /* the result takes ct_contig's reference */
    gc = NULL;
  } else if (xc && (g == NULL || gc)) y = ct_tensor_new(x->dtype, x->ndim, x->shape, err);
  if (xc && y) {
    relu_job j = {x->dtype == CT_F64, g != NULL, ct_data(y), ct_data(xc), gc ? ct_data(gc) : NULL};
    ct_parallel((size_t)ct_numel(x), relu_range, &j);
  }
  ct_tensor_release(xc);
  ct_tensor_release(gc);
  return y;
}

static int relu_backward(ct_node *nd, ct_tensor *g, ct_tensor **gin, ct_err *err) {
  ct_tensor *y = ct_saved(nd, 0, err), *zero = NULL, *mask = NULL;
  if (y == NULL) return 0;
  if (ct_grad_enabled) /* create_graph: from ops, differentiable again */
    gin[0] = (zero = ct_tensor_zeros(y->dtype, 0, NULL, err)) && (mask = ct_compare_as(CT_B_GT, y, zero, err))
        ? ct_mul(mask, g, err)
        : NULL;
  else gin[0] = relu_pass(y, g, err);
  ct_tensor_release(zero);
  ct_tensor_release(mask);
  ct_tensor_release(y);
  return gin[0] != NULL;
}

ct_tensor *ct_relu(ct_tensor *x, ct_err *err) {
  if (x->dtype == CT_I64) return ct_fail(err, "expected a float tensor, got int64"), NULL;
  ct_tensor *y = relu_pass(x, NULL, err);
  if (y && ct_needs_grad(1, &x)) {
    ct_node *nd = ct_record(&nn_ops[CT_NN_RELU], y, 1, &x, err);
    if (nd == NULL || !ct_save(nd, y, true, err)) {
      ct_tensor_release(y);
      y = NULL;
    }
  }
  return y;
}

static const ct_op nn_ops[CT_NN_COUNT] = {CT_NN_OPS(CT_OP_ROW)};
