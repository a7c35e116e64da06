/* crater data: the IDX reader (the MNIST / Fashion-MNIST file format), read through
 * zlib so .gz files need no unpacking, and a gzip writer for the specs. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data.h"

/* Fills err for a failed read: a zlib or I/O error names its cause, else 'what' (a
 * short file). */
static int gz_fail(ct_err *err, gzFile f, const char *path, const char *what) {
  int code = Z_OK;
  const char *msg = gzerror(f, &code);
  if (code == Z_OK || code == Z_BUF_ERROR) return ct_fail(err, "%s: %s", path, what);
  if (code == Z_ERRNO) msg = strerror(errno);
  size_t n = strlen(path);   /* zlib prefixes its messages with the path */
  if (strncmp(msg, path, n) == 0 && msg[n] == ':') msg += n + 2;
  return ct_fail(err, "%s: corrupt gzip data (%s)", path, msg);
}

/* Reads exactly n bytes; 1 on success, 0 on error or end of file. */
static int read_exact(gzFile f, unsigned char *buf, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    size_t want = n - *got > (1u << 30) ? (1u << 30) : n - *got;
    int r = gzread(f, buf + *got, (unsigned)want);
    if (r <= 0) return 0;
    *got += (size_t)r;
  }
  return 1;
}

/* Writes bytes b[0..len) as elements start.. of out: byte * scale + shift. */
static void convert(char *out, ct_dtype dt, int64_t start, const unsigned char *b, int64_t len,
                    double scale, double shift) {
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

ct_tensor *ct_idx_read(const char *path, ct_dtype dt, double scale, double shift,
                       int64_t max_elems, ct_err *err) {
  gzFile f = gzopen(path, "rb");
  if (f == NULL) {
    ct_fail(err, "cannot open %s (%s)", path, errno ? strerror(errno) : "out of memory");
    return NULL;
  }
  ct_tensor *t = NULL;
  unsigned char head[4 + 4 * CT_MAXDIM];
  size_t got;
  int64_t shape[CT_MAXDIM], n = 1;
  if (!read_exact(f, head, 4, &got)) { gz_fail(err, f, path, "not an IDX file, too short"); goto done; }
  if (head[0] != 0 || head[1] != 0 || head[3] == 0 || head[3] > CT_MAXDIM) {
    ct_fail(err, "%s: not an IDX file (magic bytes %02x %02x %02x %02x)", path, head[0], head[1],
            head[2], head[3]);
    goto done;
  }
  if (head[2] != 0x08) {
    ct_fail(err, "%s: unsupported IDX element type 0x%02x (only unsigned bytes, 0x08)", path, head[2]);
    goto done;
  }
  int nd = head[3];
  if (!read_exact(f, head + 4, 4 * (size_t)nd, &got)) { gz_fail(err, f, path, "truncated IDX header"); goto done; }
  for (int d = 0; d < nd; d++) {
    const unsigned char *p = head + 4 + 4 * d;
    uint32_t s = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (s == 0 || s > (uint32_t)INT32_MAX || (int64_t)s > max_elems / n) {   /* n * s overflows? */
      ct_fail(err, "%s: IDX size %u of dim %d is zero or exceeds the limit of %lld elements", path,
              (unsigned)s, d + 1, (long long)max_elems);
      goto done;
    }
    shape[d] = s;
    n *= (int64_t)s;
  }
  /* the file must be able to hold the data before we allocate for it: a plain file holds
   * exactly n bytes after the header, a gzip stream at most ~1032 bytes per input byte */
  struct stat st;
  if (stat(path, &st) == 0) {
    int64_t size = (int64_t)st.st_size, head_len = 4 + 4 * (int64_t)nd;
    if (gzdirect(f) ? n > size - head_len : n / 1032 > size) {
      ct_fail(err, "%s: IDX header promises %lld data bytes, more than a %s file of %lld bytes can hold",
              path, (long long)n, gzdirect(f) ? "plain" : "gzip", (long long)size);
      goto done;
    }
  }
  /* decode in chunks straight into the tensor: no second copy of the file in memory */
  if ((t = ct_tensor_new(dt, nd, shape, err)) == NULL) goto done;
  unsigned char chunk[1 << 16];
  for (int64_t at = 0; at < n;) {
    size_t want = (size_t)(n - at) < sizeof chunk ? (size_t)(n - at) : sizeof chunk;
    if (!read_exact(f, chunk, want, &got)) {
      char what[128];
      snprintf(what, sizeof what, "truncated IDX file (header promises %lld data bytes, found %lld)",
               (long long)n, (long long)(at + (int64_t)got));
      gz_fail(err, f, path, what);
      ct_tensor_release(t);
      t = NULL;
      goto done;
    }
    convert(ct_data(t), dt, at, chunk, (int64_t)want, scale, shift);
    at += (int64_t)want;
  }
  int code = Z_OK;
  if (gzgetc(f) != -1 || (gzerror(f, &code), code != Z_OK)) {   /* the gzip trailer: CRC32, ISIZE */
    if (code != Z_OK) gz_fail(err, f, path, "truncated gzip stream (no CRC32/ISIZE trailer)");
    else ct_fail(err, "%s: IDX file is longer than its header says (%lld data bytes)", path, (long long)n);
    ct_tensor_release(t);
    t = NULL;
  }
done:
  gzclose(f);
  return t;
}

int ct_gz_write(const char *path, const void *data, size_t len, ct_err *err) {
  gzFile f = gzopen(path, "wb6");
  if (f == NULL) return ct_fail(err, "cannot open %s for writing (%s)", path, strerror(errno));
  int ok = len == 0 || gzwrite(f, data, (unsigned)len) == (int)len;
  if (gzclose(f) != Z_OK) ok = 0;
  return ok ? 1 : ct_fail(err, "cannot write %s", path);
}
