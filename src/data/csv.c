/* crater data: a numeric CSV reader.  Two passes over the text: count rows and check
 * fields, then parse into one float64 tensor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"

/* Reads the whole file into a NUL-terminated buffer of *len bytes (caller frees with
 * ct_free(buf, *len + 1)). */
static char *slurp(const char *path, size_t *len, ct_err *err) {
  int64_t size;
  int fd = ct_file_open_read(path, &size, err);
  if (fd < 0) return NULL;
  size_t got;
  char *buf = ct_malloc((size_t)size + 1, err);
  if (buf != NULL) {
    int ok = ct_file_read_at(fd, path, buf, (size_t)size, 0, &got, err);
    if (ok && got != (size_t)size) ok = ct_fail(err, "cannot read %s (it shrank while being read)", path);
    if (!ok) {
      ct_free(buf, (size_t)size + 1);
      buf = NULL;
    }
  }
  close(fd);
  if (buf != NULL) {
    buf[size] = '\0';
    *len = (size_t)size;
  }
  return buf;
}

static int blank(const char *p, const char *end) {
  for (; p < end; p++)
    if (*p != ' ' && *p != '\t' && *p != '\r') return 0;
  return 1;
}

/* Parses the fields of [p, end) into out (when not NULL); returns the field count or
 * -1 with err naming the line and column of a bad field. */
static int64_t parse_line(const char *path, int64_t lineno, const char *p, const char *end, double *out,
                          ct_err *err) {
  int64_t col = 0;
  for (;;) {
    const char *fe = memchr(p, ',', (size_t)(end - p));
    if (fe == NULL) fe = end;
    char *stop;
    while (p < fe && (*p == ' ' || *p == '\t')) p++;
    if (blank(p, fe)) { /* strtod would skip the newline and read the next line's number */
      ct_fail(err, "%s: line %lld, column %lld: empty field", path, (long long)lineno, (long long)col + 1);
      return -1;
    }
    double v = strtod(p, &stop);
    if (stop == p || stop > fe || !blank(stop, fe)) {
      int w = (int)(fe - p) > 40 ? 40 : (int)(fe - p);
      ct_fail(err, "%s: line %lld, column %lld: '%.*s' is not a number", path, (long long)lineno,
              (long long)col + 1, w, p);
      return -1;
    }
    if (out) out[col] = v;
    col++;
    if (fe == end) return col;
    p = fe + 1;
  }
}

ct_tensor *ct_csv_read(const char *path, int skip, ct_err *err) {
  size_t len = 0;
  char *text = slurp(path, &len, err);
  if (text == NULL) return NULL;
  ct_tensor *t = NULL;
  int64_t rows = 0, cols = -1, lineno = 0;
  for (int pass = 0; pass < 2; pass++) {
    const char *p = text, *end = text + len;
    double *out = (pass && t) ? (double *)ct_data(t) : NULL;
    lineno = 0;
    rows = 0;
    while (p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      const char *le = nl ? nl : end;
      lineno++;
      if (lineno > skip && !blank(p, le)) {
        int64_t c = parse_line(path, lineno, p, le, out ? out + rows * cols : NULL, err);
        if (c < 0) goto fail;
        if (cols >= 0 && c != cols) {
          ct_fail(err, "%s: line %lld has %lld fields, expected %lld", path, (long long)lineno, (long long)c,
                  (long long)cols);
          goto fail;
        }
        cols = c;
        rows++;
      }
      p = le + 1;
    }
    if (pass == 0) {
      if (rows == 0) {
        ct_fail(err, "%s: no data rows", path);
        goto fail;
      }
      int64_t shape[2] = {rows, cols};
      if ((t = ct_tensor_new(CT_F64, 2, shape, err)) == NULL) goto fail;
    }
  }
  ct_free(text, len + 1);
  return t;
fail:
  ct_tensor_release(t);
  ct_free(text, len + 1);
  return NULL;
}
