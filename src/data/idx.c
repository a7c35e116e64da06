/* crater data: the IDX reader (the MNIST / Fashion-MNIST file format), read through
 * zlib so .gz files need no unpacking, and a gzip writer for the specs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"

/* The bytes of a plain or gzip file, read through one small buffer.  zlib's gzread would
 * accept trailing junk after a member in silence; inflate on our own buffer lets us
 * refuse it, while concatenated members (valid gzip) are read as one stream. */
typedef struct {
  int fd, gzip, ended; /* ended: the last member's trailer is checked, nothing follows */
  const char *path;
  int64_t size, pos; /* file length, next raw byte to read */
  z_stream z;
  unsigned char in[1 << 15];
} source;

static int src_fill(source *s, ct_err *err) {
  size_t got;
  if (s->z.avail_in > 0 || s->pos >= s->size) return 1;
  if (!ct_file_read_at(s->fd, s->path, s->in, sizeof s->in, s->pos, &got, err)) return 0;
  s->pos += (int64_t)got;
  s->z.next_in = s->in;
  s->z.avail_in = (uInt)got;
  return 1;
}

/* Reads up to n bytes; *got < n only at the end of the data.  0 with err on corrupt data. */
static int src_read(source *s, unsigned char *buf, size_t n, size_t *got, ct_err *err) {
  if (!s->gzip) {
    if (!ct_file_read_at(s->fd, s->path, buf, n, s->pos, got, err)) return 0;
    s->pos += (int64_t)*got;
    return 1;
  }
  s->z.next_out = buf;
  s->z.avail_out = (uInt)n;
  while (s->z.avail_out > 0 && !s->ended) {
    if (!src_fill(s, err)) return 0;
    if (s->z.avail_in == 0)
      return ct_fail(err,
                     "%s: truncated gzip stream (it ends inside a member, before the CRC32/ISIZE trailer)",
                     s->path);
    int r = inflate(&s->z, Z_NO_FLUSH);
    if (r == Z_STREAM_END) { /* zlib has checked this member's CRC32 and ISIZE */
      if (!src_fill(s, err)) return 0;
      if (s->z.avail_in == 0) s->ended = 1;
      else if (s->z.next_in[0] == 0x1f) inflateReset(&s->z); /* another member */
      else
        return ct_fail(err, "%s: junk after the gzip member (byte %lld is 0x%02x, not a gzip header)",
                       s->path, (long long)(s->pos - s->z.avail_in), s->z.next_in[0]);
    } else if (r != Z_OK && r != Z_BUF_ERROR) {
      return ct_fail(err, "%s: corrupt gzip data (%s)", s->path, s->z.msg ? s->z.msg : zError(r));
    }
  }
  *got = n - s->z.avail_out;
  return 1;
}

/* Reads exactly n bytes; 1 on success, 0 on corrupt data (err set) or a short file
 * (err clear: the caller says what was short). */
static int read_exact(source *s, unsigned char *buf, size_t n, size_t *got, ct_err *err) {
  err->msg[0] = '\0';
  return src_read(s, buf, n, got, err) && *got == n;
}

static int short_read(ct_err *err, const char *path, const char *what) {
  return err->msg[0] ? 0 : ct_fail(err, "%s: %s", path, what);
}

/* Writes bytes b[0..len) as elements start.. of out: byte * scale + shift. */
static void convert(char *out, ct_dtype dt, int64_t start, const unsigned char *b, int64_t len, double scale,
                    double shift) {
  if (dt == CT_F32) {
    float *o = (float *)out + start, fs = (float)scale, fb = (float)shift;
    for (int64_t i = 0; i < len; i++) o[i] = (float)b[i] * fs + fb;
  } else if (dt == CT_F64) {
    double *o = (double *)out + start;
    for (int64_t i = 0; i < len; i++) o[i] = b[i] * scale + shift;
  } else {
    int64_t *o = (int64_t *)out + start;
    for (int64_t i = 0; i < len; i++) o[i] = (int64_t)(b[i] * scale + shift);
  }
}

ct_tensor *ct_idx_read(const char *path, ct_dtype dt, double scale, double shift, int64_t max_elems,
                       ct_err *err) {
  source src = {.path = path}, *s = &src;
  if ((s->fd = ct_file_open_read(path, &s->size, err)) < 0) return NULL;
  ct_tensor *t = NULL;
  unsigned char head[4 + 4 * CT_MAXDIM], magic[2];
  size_t got;
  if (!ct_file_read_at(s->fd, path, magic, 2, 0, &got, err)) goto done;
  s->gzip = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  if (s->gzip && inflateInit2(&s->z, 15 + 16) != Z_OK) { /* 15 + 16: a gzip wrapper */
    s->gzip = 0;
    ct_fail(err, "%s: not enough memory for zlib", path);
    goto done;
  }
  int64_t shape[CT_MAXDIM], n = 1;
  if (!read_exact(s, head, 4, &got, err)) {
    short_read(err, path, "not an IDX file, too short");
    goto done;
  }
  if (head[0] != 0 || head[1] != 0 || head[3] == 0 || head[3] > CT_MAXDIM) {
    ct_fail(err, "%s: not an IDX file (magic bytes %02x %02x %02x %02x)", path, head[0], head[1], head[2],
            head[3]);
    goto done;
  }
  if (head[2] != 0x08) {
    ct_fail(err, "%s: unsupported IDX element type 0x%02x (only unsigned bytes, 0x08)", path, head[2]);
    goto done;
  }
  int nd = head[3];
  if (!read_exact(s, head + 4, 4 * (size_t)nd, &got, err)) {
    short_read(err, path, "truncated IDX header");
    goto done;
  }
  for (int d = 0; d < nd; d++) {
    const unsigned char *p = head + 4 + 4 * d;
    uint32_t sz = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (sz == 0 || sz > (uint32_t)INT32_MAX || (int64_t)sz > max_elems / n) { /* n * sz overflows? */
      ct_fail(err, "%s: IDX size %u of dim %d is zero or exceeds the limit of %lld elements", path,
              (unsigned)sz, d + 1, (long long)max_elems);
      goto done;
    }
    shape[d] = sz;
    n *= (int64_t)sz;
  }
  /* the file must be able to hold the data before we allocate for it: a plain file holds
   * exactly n bytes after the header, a gzip stream at most ~1032 bytes per input byte */
  int64_t head_len = 4 + 4 * (int64_t)nd;
  if (s->gzip ? n / 1032 > s->size : n > s->size - head_len) {
    ct_fail(err, "%s: IDX header promises %lld data bytes, more than a %s file of %lld bytes can hold", path,
            (long long)n, s->gzip ? "gzip" : "plain", (long long)s->size);
    goto done;
  }
  /* decode in chunks straight into the tensor: no second copy of the file in memory */
  if ((t = ct_tensor_new(dt, nd, shape, err)) == NULL) goto done;
  unsigned char chunk[1 << 16];
  for (int64_t at = 0; at < n;) {
    size_t want = (size_t)(n - at) < sizeof chunk ? (size_t)(n - at) : sizeof chunk;
    if (!read_exact(s, chunk, want, &got, err)) {
      char what[128];
      snprintf(what, sizeof what, "truncated IDX file (header promises %lld data bytes, found %lld)",
               (long long)n, (long long)(at + (int64_t)got));
      short_read(err, path, what);
      goto fail;
    }
    convert(ct_data(t), dt, at, chunk, (int64_t)want, scale, shift);
    at += (int64_t)want;
  }
  /* one more byte must not exist; for gzip this also reads and checks the trailer */
  err->msg[0] = '\0';
  if (!src_read(s, chunk, 1, &got, err)) goto fail;
  if (got == 1) {
    ct_fail(err, "%s: IDX file is longer than its header says (%lld data bytes)", path, (long long)n);
    goto fail;
  }
  goto done;
fail:
  ct_tensor_release(t);
  t = NULL;
done:
  if (s->gzip) inflateEnd(&s->z);
  close(s->fd);
  return t;
}

int ct_gz_write(const char *path, const void *data, size_t len, ct_err *err) {
  gzFile f = gzopen(path, "wb6");
  if (f == NULL) return ct_fail(err, "cannot open %s for writing (%s)", path, strerror(errno));
  int ok = len == 0 || gzwrite(f, data, (unsigned)len) == (int)len;
  if (gzclose(f) != Z_OK) ok = 0;
  return ok ? 1 : ct_fail(err, "cannot write %s", path);
}
