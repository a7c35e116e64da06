/* crater data: whole-file atomic replacement (temporary file, fsync, rename), the
 * storage step of crater.save. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"

int ct_file_write_atomic(const char *path, const void *data, size_t len, ct_err *err) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16), *dir = malloc(plen + 2);
  if (tmp == NULL || dir == NULL) {
    free(tmp);
    free(dir);
    return ct_fail(err, "not enough memory");
  }
  /* the temporary file lives beside path so that rename stays on one file system */
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp.XXXXXX", 12);
  int fd = mkstemp(tmp), ok = 0;
  if (fd < 0) {
    ct_fail(err, "cannot create a temporary file beside %s (%s)", path, strerror(errno));
    goto done;
  }
  fchmod(fd, 0644);   /* mkstemp makes 0600; a checkpoint is an ordinary file */
  FILE *f = fdopen(fd, "wb");
  if (f == NULL) {
    ct_fail(err, "cannot write %s (%s)", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    goto done;
  }
  if (fwrite(data, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
    ct_fail(err, "cannot write %s (%s)", tmp, strerror(errno));
    fclose(f);
    unlink(tmp);
    goto done;
  }
  if (fclose(f) != 0) {
    ct_fail(err, "cannot write %s (%s)", tmp, strerror(errno));
    unlink(tmp);
    goto done;
  }
  if (rename(tmp, path) != 0) {
    ct_fail(err, "cannot rename %s to %s (%s)", tmp, path, strerror(errno));
    unlink(tmp);
    goto done;
  }
  /* make the rename itself durable: fsync the directory (best effort) */
  memcpy(dir, path, plen + 1);
  char *slash = strrchr(dir, '/');
  if (slash == NULL) strcpy(dir, ".");
  else if (slash == dir) dir[1] = '\0';
  else *slash = '\0';
  int dfd = open(dir, O_RDONLY);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  ok = 1;
done:
  free(tmp);
  free(dir);
  return ok;
}
