/* crater data: foreign tensor bytes (safetensors, NumPy .npy and .npz members) read from
 * one region of a file, stored or raw-deflated, into a new tensor: endian swaps, F16/BF16
 * to float32, narrow integers to int64, Fortran order to C order.  Every size is checked
 * against the region before anything is allocated. */
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"

static const struct {
  const char *name;
  unsigned char size;
  ct_dtype dt;
} kinds[CT_RAW_COUNT] = {
    [CT_RAW_BOOL] = {"bool", 1, CT_I64},   [CT_RAW_U8] = {"uint8", 1, CT_I64},
    [CT_RAW_I8] = {"int8", 1, CT_I64},     [CT_RAW_U16] = {"uint16", 2, CT_I64},
    [CT_RAW_I16] = {"int16", 2, CT_I64},   [CT_RAW_U32] = {"uint32", 4, CT_I64},
    [CT_RAW_I32] = {"int32", 4, CT_I64},   [CT_RAW_I64] = {"int64", 8, CT_I64},
    [CT_RAW_F16] = {"float16", 2, CT_F32}, [CT_RAW_BF16] = {"bfloat16", 2, CT_F32},
    [CT_RAW_F32] = {"float32", 4, CT_F32}, [CT_RAW_F64] = {"float64", 8, CT_F64},
};

size_t ct_raw_size(ct_raw_kind k) { return kinds[k].size; }
ct_dtype ct_raw_dtype(ct_raw_kind k) { return kinds[k].dt; }
const char *ct_raw_name(ct_raw_kind k) { return kinds[k].name; }

/* little-endian reads of the file's bytes (swapped when the file is big-endian) */
static uint64_t load_le(const unsigned char *p, int size, int big) {
  uint64_t v = 0;
  for (int i = 0; i < size; i++) v |= (uint64_t)p[big ? size - 1 - i : i] << (8 * i);
  return v;
}

/* IEEE binary16 to binary32, exactly (every half is a float): subnormals, inf, NaN */
static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
  if (e == 0x1f) bits = sign | 0x7f800000u | (m << 13); /* inf, NaN (payload kept) */
  else if (e != 0) bits = sign | ((e + 112) << 23) | (m << 13); /* normal: rebias 15 -> 127 */
  else if (m == 0) bits = sign; /* +-0 */
  else { /* subnormal: normalise */ e = 113;
    while (!(m & 0x400)) {
      m <<= 1;
      e--;
    }
    bits = sign | (e << 23) | ((m & 0x3ff) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Decodes n elements of kind k from src into out (contiguous, of k's crater dtype),
 * starting at element 'at'. */
static void decode(char *out, int64_t at, const unsigned char *src, int64_t n, ct_raw_kind k, int big) {
  int size = kinds[k].size;
  const uint16_t one = 1;
  unsigned char host_big;
  memcpy(&host_big, &one, 1);
  host_big = host_big == 0;
  if ((k == CT_RAW_F32 || k == CT_RAW_F64 || k == CT_RAW_I64) && !big == !host_big) {
    memcpy(out + (size_t)at * (size_t)size, src, (size_t)n * (size_t)size); /* the file's order is ours */
  } else if (k == CT_RAW_F32) {
    float *o = (float *)out + at;
    for (int64_t i = 0; i < n; i++) {
      uint32_t b = (uint32_t)load_le(src + 4 * i, 4, big);
      memcpy(o + i, &b, 4);
    }
  } else if (k == CT_RAW_F64 || k == CT_RAW_I64) {
    uint64_t *o = (uint64_t *)out + at;
    for (int64_t i = 0; i < n; i++) o[i] = load_le(src + 8 * i, 8, big);
  } else if (k == CT_RAW_F16 || k == CT_RAW_BF16) {
    float *o = (float *)out + at;
    for (int64_t i = 0; i < n; i++) {
      uint32_t b = (uint32_t)load_le(src + 2 * i, 2, big);
      if (k == CT_RAW_F16) o[i] = half_to_float((uint16_t)b);
      else {
        b <<= 16;
        memcpy(o + i, &b, 4);
      } /* bfloat16 is the top half of a float */
    }
  } else {
    int64_t *o = (int64_t *)out + at;
    int sgn = k == CT_RAW_I8 || k == CT_RAW_I16 || k == CT_RAW_I32;
    for (int64_t i = 0; i < n; i++) {
      uint64_t v = load_le(src + (size_t)size * (size_t)i, size, big);
      if (k == CT_RAW_BOOL) o[i] = v != 0;
      else if (sgn && (v >> (8 * size - 1))) o[i] = (int64_t)(v | ~(((uint64_t)1 << (8 * size)) - 1));
      else o[i] = (int64_t)v;
    }
  }
}

/* The bytes of one region, stored or raw deflate, read in order.  'crc' runs over every
 * uncompressed byte handed out. */
typedef struct {
  int fd;
  const char *path;
  const ct_raw_region *r;
  int64_t pos; /* raw bytes of the region consumed */
  int inflating, ended; /* ended: the deflate stream is complete */
  uLong crc;
  z_stream z;
  unsigned char in[1 << 15];
} region;

static int region_open(region *g, const char *path, const ct_raw_region *r, int64_t *fsize, ct_err *err) {
  memset(&g->z, 0, sizeof g->z);
  g->path = path;
  g->r = r;
  g->pos = 0;
  g->ended = 0;
  g->inflating = 0;
  g->crc = crc32(0, Z_NULL, 0);
  if ((g->fd = ct_file_open_read(path, fsize, err)) < 0) return 0;
  if (r->offset < 0 || r->stored < 0 || r->offset > *fsize || r->stored > *fsize - r->offset) {
    ct_fail(err, "%s: the data (%lld bytes at byte %lld) runs past the end of the file (%lld bytes)", path,
            (long long)r->stored, (long long)r->offset, (long long)*fsize);
    close(g->fd);
    return 0;
  }
  if (r->deflate) {
    if (inflateInit2(&g->z, -15) != Z_OK) { /* -15: raw deflate, as in zip */
      ct_fail(err, "%s: not enough memory for zlib", path);
      close(g->fd);
      return 0;
    }
    g->inflating = 1;
  }
  return 1;
}

static void region_close(region *g) {
  if (g->inflating) inflateEnd(&g->z);
  close(g->fd);
}

/* Reads up to n uncompressed bytes; fewer only at the end of the region. */
static int region_read(region *g, unsigned char *buf, size_t n, size_t *got, ct_err *err) {
  const ct_raw_region *r = g->r;
  if (!r->deflate) {
    int64_t left = r->stored - g->pos;
    size_t want = (int64_t)n < left ? n : (size_t)left;
    if (!ct_file_read_at(g->fd, g->path, buf, want, r->offset + g->pos, got, err)) return 0;
    if (*got < want) return ct_fail(err, "%s: the file shrank while it was read", g->path);
    g->pos += (int64_t)*got;
  } else {
    g->z.next_out = buf;
    g->z.avail_out = (uInt)n;
    while (g->z.avail_out > 0 && !g->ended) {
      if (g->z.avail_in == 0) {
        int64_t left = r->stored - g->pos;
        size_t want = left < (int64_t)sizeof g->in ? (size_t)left : sizeof g->in, in;
        if (want == 0)
          return ct_fail(err, "%s: truncated deflate stream (it ends before its last block)", g->path);
        if (!ct_file_read_at(g->fd, g->path, g->in, want, r->offset + g->pos, &in, err)) return 0;
        if (in < want) return ct_fail(err, "%s: the file shrank while it was read", g->path);
        g->pos += (int64_t)in;
        g->z.next_in = g->in;
        g->z.avail_in = (uInt)in;
      }
      int z = inflate(&g->z, Z_NO_FLUSH);
      if (z == Z_STREAM_END) {
        g->ended = 1;
        if (g->z.avail_in > 0 || g->pos != r->stored)
          return ct_fail(err, "%s: %lld bytes after the end of the deflate stream", g->path,
                         (long long)(r->stored - g->pos + g->z.avail_in));
      } else if (z != Z_OK && z != Z_BUF_ERROR) {
        return ct_fail(err, "%s: corrupt deflate data (%s)", g->path, g->z.msg ? g->z.msg : zError(z));
      }
    }
    *got = n - g->z.avail_out;
  }
  g->crc = crc32(g->crc, buf, (uInt)*got);
  return 1;
}

int ct_raw_peek(const char *path, const ct_raw_region *r, void *buf, size_t n, size_t *got, ct_err *err) {
  region g;
  int64_t fsize;
  if (!region_open(&g, path, r, &fsize, err)) return 0;
  int ok = region_read(&g, buf, n, got, err);
  region_close(&g);
  return ok;
}

/* Checks what the region promises against its size, before anything is allocated: the
 * element count times the size fits, and the bytes are there (exactly, when stored; at
 * most 1032 bytes per deflated byte, zlib's best ratio). */
static int check_sizes(const char *path, const ct_raw_region *r, ct_raw_kind k, int ndim,
                       const int64_t *shape, int64_t *numel, int64_t *nbytes, ct_err *err) {
  char s[96];
  if (ndim < 0 || ndim > CT_MAXDIM)
    return ct_fail(err, "%s: %d dimensions (at most %d)", path, ndim, CT_MAXDIM);
  if ((*numel = ct_shape_numel(ndim, shape, err)) < 0) return 0;
  int64_t data, total;
  if (__builtin_mul_overflow(*numel, (int64_t)kinds[k].size, nbytes) ||
      __builtin_add_overflow(*nbytes, r->skip < 0 ? 0 : r->skip, &total))
    return ct_fail(err, "%s: shape %s of %s holds more bytes than any file", path,
                   ct_shape_str(s, ndim, shape), kinds[k].name);
  data = r->deflate ? r->size : r->stored;
  if (r->skip < 0 || total != data)
    return ct_fail(err, "%s: shape %s of %s needs %lld bytes, the data has %lld", path,
                   ct_shape_str(s, ndim, shape), kinds[k].name, (long long)*nbytes,
                   (long long)(data - r->skip));
  if (r->deflate && r->size / 1032 > r->stored + 1)
    return ct_fail(err, "%s: %lld deflated bytes cannot hold %lld bytes", path, (long long)r->stored,
                   (long long)r->size);
  return 1;
}

ct_tensor *ct_raw_read(const char *path, const ct_raw_region *r, ct_raw_kind k, bool big_endian, bool fortran,
                       int ndim, const int64_t *shape, ct_err *err) {
  int64_t numel = 0, nbytes = 0, fsize;
  if (k < 0 || k >= CT_RAW_COUNT) {
    ct_fail(err, "%s: unknown element kind %d", path, (int)k);
    return NULL;
  }
  if (!check_sizes(path, r, k, ndim, shape, &numel, &nbytes, err)) return NULL;
  region g;
  if (!region_open(&g, path, r, &fsize, err)) return NULL;
  ct_tensor *t = NULL, *alias = NULL, *out = NULL;
  /* Fortran order: the bytes are the C-order tensor of the reversed shape */
  int64_t rshape[CT_MAXDIM];
  for (int d = 0; d < ndim; d++) rshape[d] = fortran ? shape[ndim - 1 - d] : shape[d];
  unsigned char chunk[1 << 16]; /* a multiple of every element size */
  size_t got;
  for (int64_t left = r->skip; left > 0; left -= (int64_t)got) {
    size_t want = left < (int64_t)sizeof chunk ? (size_t)left : sizeof chunk;
    if (!region_read(&g, chunk, want, &got, err)) goto fail;
    if (got < want) {
      ct_fail(err, "%s: the data ends inside its header", path);
      goto fail;
    }
  }
  if ((t = ct_tensor_new(kinds[k].dt, ndim, rshape, err)) == NULL) goto fail;
  int64_t es = kinds[k].size;
  for (int64_t at = 0; at < numel;) {
    int64_t n = (numel - at) < (int64_t)sizeof chunk / es ? numel - at : (int64_t)sizeof chunk / es;
    if (!region_read(&g, chunk, (size_t)(n * es), &got, err)) goto fail;
    if ((int64_t)got < n * es) {
      ct_fail(err, "%s: truncated data (%lld of %lld bytes)", path, (long long)(at * es + (int64_t)got),
              (long long)nbytes);
      goto fail;
    }
    decode(ct_data(t), at, chunk, n, k, big_endian);
    at += n;
  }
  if (r->deflate && !g.ended) { /* the stream must end here: read its last block and check */
    if (!region_read(&g, chunk, 1, &got, err)) goto fail;
    if (got > 0) {
      ct_fail(err, "%s: the deflated data is longer than %lld bytes", path, (long long)r->size);
      goto fail;
    }
  }
  if (r->check_crc && (uint32_t)g.crc != r->crc) {
    ct_fail(err, "%s: CRC-32 mismatch (the data says %08x, the bytes give %08x)", path, (unsigned)r->crc,
            (unsigned)g.crc);
    goto fail;
  }
  region_close(&g);
  if (!fortran || ndim < 2) return t;
  if ((alias = ct_tensor_alias(t, err)) == NULL) goto done;
  for (int d = 0; d < ndim; d++) { /* the reversed transpose: shape as asked, strides reversed */
    alias->shape[d] = t->shape[ndim - 1 - d];
    alias->stride[d] = t->stride[ndim - 1 - d];
  }
  out = ct_contig(alias, true, err);
done:
  ct_tensor_release(alias);
  ct_tensor_release(t);
  return out;
fail:
  region_close(&g);
  ct_tensor_release(t);
  return NULL;
}

size_t ct_raw_deflate_bound(size_t len) { return (size_t)compressBound((uLong)len); }

int ct_raw_deflate(const void *data, size_t len, int level, void *out, size_t cap, size_t *outlen,
                   ct_err *err) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) /* -15: raw, as zip */
    return ct_fail(err, "not enough memory for zlib");
  z.next_in = (Bytef *)(uintptr_t)data;
  z.next_out = out;
  int r = Z_OK;
  size_t in_left = len;
  while (r == Z_OK) { /* zlib counts in uInt: at most 1 GiB in and out per call */
    uInt chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
    size_t room = cap - (size_t)z.total_out;
    z.avail_in = chunk;
    z.avail_out = room > (1u << 30) ? (1u << 30) : (uInt)room;
    r = deflate(&z, chunk == in_left ? Z_FINISH : Z_NO_FLUSH);
    in_left -= chunk - z.avail_in;
  }
  *outlen = (size_t)z.total_out;
  deflateEnd(&z);
  return r == Z_STREAM_END ? 1 : ct_fail(err, "deflate failed (%s)", zError(r));
}
