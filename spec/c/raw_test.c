/* C tests of src/data/raw.c, the foreign-element reader behind crater.safetensors, .npy and
 * .npz: every binary16 and bfloat16 pattern against its value worked out with ldexp, the
 * integer widenings, Fortran order, deflate, and the region checks made before allocating. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>

#include "ctest.h"
#include "../../src/data/data.h"

static char path[64];

static void put(const void *data, size_t len) {
  snprintf(path, sizeof path, "/tmp/crater-raw-test.%d", (int)getpid());
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, len, f), len);
  fclose(f);
}

static ct_tensor *read_all(ct_raw_kind k, bool big, bool fortran, int ndim, const int64_t *shape, int64_t len,
                           ct_err *err) {
  ct_raw_region r = {.offset = 0, .stored = len};
  return ct_raw_read(path, &r, k, big, fortran, ndim, shape, err);
}

/* binary16 by its definition: (-1)^s 2^(e-15) (1 + m/1024), subnormals 2^-14 m/1024 */
static double half_value(unsigned h) {
  unsigned s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v = e == 0 ? ldexp(m / 1024.0, -14)
      : e == 31     ? (m ? NAN : INFINITY)
                    : ldexp(1 + m / 1024.0, (int)e - 15);
  return s ? -v : v;
}

static void every_half_is_exact_in_both_byte_orders(void **state) {
  unsigned char le[2 * 65536], be[2 * 65536];
  for (unsigned h = 0; h < 65536; h++) {
    le[2 * h] = be[2 * h + 1] = (unsigned char)(h & 255);
    le[2 * h + 1] = be[2 * h] = (unsigned char)(h >> 8);
  }
  int64_t shape[1] = {65536};
  for (int big = 0; big < 2; big++) {
    put(big ? be : le, sizeof le);
    ct_err err;
    ct_tensor *t = read_all(CT_RAW_F16, big, false, 1, shape, sizeof le, &err);
    assert_non_null(t);
    assert_int_equal(t->dtype, CT_F32);
    const float *f = (const float *)ct_data(t);
    for (unsigned h = 0; h < 65536; h++) {
      double want = half_value(h);
      uint32_t bits;
      memcpy(&bits, f + h, 4);
      if (isnan(want)) { /* sign and payload kept, as numpy's astype(float32) does */
        if (!isnan(f[h]) || (bits >> 31) != (h >> 15) || ((bits >> 13) & 1023) != (h & 1023))
          fail_msg("half 0x%04x: got bits 0x%08x", h, (unsigned)bits);
      } else if ((double)f[h] != want || !signbit(f[h]) != !signbit(want)) {
        fail_msg("half 0x%04x: got %.9g, want %.9g", h, (double)f[h], want);
      }
    }
    ct_tensor_release(t);
  }
}

static void every_bfloat16_is_the_top_half_of_its_float(void **state) {
  unsigned char le[2 * 65536];
  for (unsigned h = 0; h < 65536; h++) {
    le[2 * h] = (unsigned char)(h & 255);
    le[2 * h + 1] = (unsigned char)(h >> 8);
  }
  put(le, sizeof le);
  int64_t shape[1] = {65536};
  ct_err err;
  ct_tensor *t = read_all(CT_RAW_BF16, false, false, 1, shape, sizeof le, &err);
  assert_non_null(t);
  for (unsigned h = 0; h < 65536; h++) {
    uint32_t bits;
    memcpy(&bits, (const float *)ct_data(t) + h, 4);
    assert_int_equal(bits, (uint32_t)h << 16);
  }
  ct_tensor_release(t);
}

static void narrow_integers_widen_with_their_sign(void **state) {
  unsigned char b[256];
  for (int i = 0; i < 256; i++) b[i] = (unsigned char)i;
  put(b, sizeof b);
  int64_t shape[1] = {256}, half[1] = {128}, quarter[1] = {64};
  ct_err err;
  ct_tensor *i8 = read_all(CT_RAW_I8, false, false, 1, shape, 256, &err),
            *u8 = read_all(CT_RAW_U8, false, false, 1, shape, 256, &err);
  ct_tensor *i16 = read_all(CT_RAW_I16, true, false, 1, half, 256, &err),
            *u32 = read_all(CT_RAW_U32, false, false, 1, quarter, 256, &err);
  ct_tensor *i32 = read_all(CT_RAW_I32, true, false, 1, quarter, 256, &err),
            *bo = read_all(CT_RAW_BOOL, false, false, 1, shape, 256, &err);
  assert_true(i8 && u8 && i16 && u32 && i32 && bo);
  const int64_t *p8 = (const int64_t *)ct_data(i8), *pu8 = (const int64_t *)ct_data(u8),
                *pb = (const int64_t *)ct_data(bo);
  for (int i = 0; i < 256; i++) {
    assert_int_equal(p8[i], (int64_t)(int8_t)(unsigned char)i);
    assert_int_equal(pu8[i], i);
    assert_int_equal(pb[i], i != 0);
  }
  for (int i = 0; i < 128; i++) /* big-endian pairs (2i, 2i+1) */
    assert_int_equal(((const int64_t *)ct_data(i16))[i],
                     (int64_t)(int16_t)(uint16_t)(2 * i << 8 | (2 * i + 1)));
  for (int i = 0; i < 64; i++) {
    uint32_t le = (uint32_t)(4 * i) | (uint32_t)(4 * i + 1) << 8 | (uint32_t)(4 * i + 2) << 16 |
        (uint32_t)(4 * i + 3) << 24;
    uint32_t be = (uint32_t)(4 * i + 3) | (uint32_t)(4 * i + 2) << 8 | (uint32_t)(4 * i + 1) << 16 |
        (uint32_t)(4 * i) << 24;
    assert_int_equal(((const int64_t *)ct_data(u32))[i], (int64_t)le);
    assert_int_equal(((const int64_t *)ct_data(i32))[i], (int64_t)(int32_t)be);
  }
  ct_tensor_release(i8);
  ct_tensor_release(u8);
  ct_tensor_release(i16);
  ct_tensor_release(u32);
  ct_tensor_release(i32);
  ct_tensor_release(bo);
}

static void fortran_order_is_column_major(void **state) {
  int64_t v[24], shape[3] = {2, 3, 4};
  for (int i = 0; i < 24; i++) v[i] = i; /* element [i][j][k] sits at i + 2 j + 6 k */
  put(v, sizeof v);
  ct_err err;
  ct_tensor *t = read_all(CT_RAW_I64, false, true, 3, shape, sizeof v, &err);
  assert_non_null(t);
  assert_true(ct_is_contiguous(t));
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++)
        assert_int_equal(((int64_t *)ct_data(t))[i * 12 + j * 4 + k], i + 2 * j + 6 * k);
  ct_tensor_release(t);
}

static void deflated_regions_check_their_end_and_crc(void **state) {
  double v[1000];
  for (int i = 0; i < 1000; i++) v[i] = i * 0.25;
  unsigned char z[16384];
  size_t zlen = 0; /* set by the deflate asserted true (lto cannot see that) */
  ct_err err;
  assert_true(ct_raw_deflate(v, sizeof v, 6, z, sizeof z, &zlen, &err));
  uint32_t crc = (uint32_t)crc32(0, (const Bytef *)v, sizeof v);
  put(z, zlen);
  int64_t shape[1] = {1000};
  ct_raw_region r = {.stored = (int64_t)zlen, .size = sizeof v, .deflate = 1, .check_crc = 1, .crc = crc};
  ct_tensor *t = ct_raw_read(path, &r, CT_RAW_F64, false, false, 1, shape, &err);
  assert_non_null(t);
  assert_memory_equal(ct_data(t), v, sizeof v);
  ct_tensor_release(t);
  r.crc = crc ^ 1;
  assert_null(ct_raw_read(path, &r, CT_RAW_F64, false, false, 1, shape, &err));
  assert_error(&err, "CRC-32 mismatch");
  r.crc = crc;
  r.stored = (int64_t)zlen - 1; /* the last byte missing */
  assert_null(ct_raw_read(path, &r, CT_RAW_F64, false, false, 1, shape, &err));
  assert_true(strstr(err.msg, "deflate") != NULL);
  unsigned char more[16385];
  memcpy(more, z, zlen);
  more[zlen] = 0;
  put(more, zlen + 1);
  r.stored = (int64_t)zlen + 1; /* a byte after the stream */
  assert_null(ct_raw_read(path, &r, CT_RAW_F64, false, false, 1, shape, &err));
  assert_error(&err, "after the end of the deflate stream");
}

static void sizes_are_checked_before_allocating(void **state) {
  unsigned char b[16] = {0};
  put(b, sizeof b);
  ct_err err;
  int64_t before = ct_memory().allocated;
  int64_t huge[1] = {(int64_t)1 << 62}, four[1] = {4}, many[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
  assert_null(read_all(CT_RAW_F32, false, false, 1, huge, 16, &err));
  assert_error(&err, "holds more bytes than any file");
  assert_null(read_all(CT_RAW_F64, false, false, 1, four, 16, &err));
  assert_error(&err, "needs 32 bytes, the data has 16");
  assert_null(read_all(CT_RAW_U8, false, false, 2, many, 16, &err));
  assert_error(&err, "sizes overflow");
  ct_raw_region past = {.offset = 8, .stored = 16};
  assert_null(ct_raw_read(path, &past, CT_RAW_F32, false, false, 1, four, &err));
  assert_error(&err, "runs past the end of the file");
  ct_raw_region bomb = {.stored = 16, .size = (int64_t)1 << 40, .deflate = 1};
  int64_t big[1] = {(int64_t)1 << 37};
  assert_null(ct_raw_read(path, &bomb, CT_RAW_F64, false, false, 1, big, &err));
  assert_error(&err, "deflated bytes cannot hold");
  assert_int_equal(ct_memory().allocated, before);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_half_is_exact_in_both_byte_orders),
      cmocka_unit_test(every_bfloat16_is_the_top_half_of_its_float),
      cmocka_unit_test(narrow_integers_widen_with_their_sign),
      cmocka_unit_test(fortran_order_is_column_major),
      cmocka_unit_test(deflated_regions_check_their_end_and_crc),
      cmocka_unit_test(sizes_are_checked_before_allocating),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
