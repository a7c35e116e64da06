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

/* Fault injection for the reliability specs: the n-th step of the given kind (or of any
 * kind) fails with errnum, once.  Each step done is logged, so a spec can check what
 * happened after a fault (a failed fsync is never retried on the same file). */
static int64_t io_countdown = -1;
static int io_kind, io_errno;
static char io_log[64];
static int io_nlog;

void ct_debug_fail_io(int64_t n, int kind, int errnum) {
  io_countdown = n;
  io_kind = kind;
  io_errno = errnum;
}

const char *ct_debug_io_log(void) {
  io_log[io_nlog] = '\0';
  return io_log;
}

/* Logs a step (one letter per kind: "wfsc rd") and says whether it must fail. */
static int io_fault(int kind) {
  if (io_nlog < (int)sizeof io_log - 1) io_log[io_nlog++] = "wfscrd"[kind];
  if (io_countdown < 0 || (io_kind != CT_IO_ANY && io_kind != kind) || io_countdown-- > 0) return 0;
  errno = io_errno;
  return 1;
}

/* fwrite in chunks, so that a fault can hit the middle of the file */
static int write_all(FILE *f, const char *data, size_t len) {
  do {
    size_t n = len < ((size_t)1 << 20) ? len : (size_t)1 << 20;
    if (io_fault(CT_IO_WRITE) || fwrite(data, 1, n, f) != n) return 0;
    data += n;
    len -= n;
  } while (len > 0);
  return 1;
}

const char *ct_file_kind(unsigned mode) {
  return S_ISREG(mode) ? "a regular file"
      : S_ISDIR(mode)  ? "a directory"
      : S_ISFIFO(mode) ? "a FIFO"
      : S_ISCHR(mode)  ? "a character device"
      : S_ISBLK(mode)  ? "a block device"
      : S_ISSOCK(mode) ? "a socket"
                       : "a special file";
}

/* path may be replaced only if it is absent, a regular file or a link to one: renaming
 * over a device, FIFO or directory would destroy it (as root, even under /dev). */
static int dest_ok(const char *path, ct_err *err) {
  struct stat st;
  if (lstat(path, &st) != 0)
    return errno == ENOENT ? 1 : ct_fail(err, "cannot stat %s (%s)", path, strerror(errno));
  if (S_ISLNK(st.st_mode) && stat(path, &st) != 0)
    return ct_fail(err, "%s is a symbolic link to a missing file, not a regular file", path);
  if (S_ISREG(st.st_mode)) return 1;
  return ct_fail(err, "%s is %s, not a regular file", path, ct_file_kind(st.st_mode));
}

int ct_file_open_read(const char *path, int64_t *size, ct_err *err) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    ct_fail(err, "cannot open %s (%s)", path, strerror(errno));
    return -1;
  }
  struct stat st;
  int ok = fstat(fd, &st) == 0
      ? S_ISREG(st.st_mode) || ct_fail(err, "%s is %s, not a regular file", path, ct_file_kind(st.st_mode))
      : ct_fail(err, "cannot stat %s (%s)", path, strerror(errno));
  if (!ok) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  *size = (int64_t)st.st_size;
  return fd;
}

int ct_file_read_at(int fd, const char *path, void *buf, size_t len, int64_t offset, size_t *got,
                    ct_err *err) {
  *got = 0;
  while (*got < len) {
    ssize_t r = pread(fd, (char *)buf + *got, len - *got, (off_t)(offset + (int64_t)*got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ct_fail(err, "cannot read %s (%s)", path, strerror(errno));
    if (r == 0) break;
    *got += (size_t)r;
  }
  return 1;
}

int ct_file_write_atomic(const char *path, const void *data, size_t len, ct_err *err) {
  size_t plen = strlen(path);
  io_nlog = 0;
  if (!dest_ok(path, err)) return 0;
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
  fchmod(fd, 0644); /* mkstemp makes 0600; a checkpoint is an ordinary file */
  FILE *f = fdopen(fd, "wb");
  if (f == NULL) {
    ct_fail(err, "cannot write %s (%s)", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    goto done;
  }
  /* a failed fsync is not retried: the kernel may have dropped the dirty pages and
   * cleared the error, so a second fsync could succeed on lost data; start over */
  if (!write_all(f, data, len) || io_fault(CT_IO_FLUSH) || fflush(f) != 0 || io_fault(CT_IO_FSYNC) ||
      fsync(fileno(f)) != 0) {
    ct_fail(err, "cannot write %s (%s)", tmp, strerror(errno));
    fclose(f);
    unlink(tmp);
    goto done;
  }
  int close_fault = io_fault(CT_IO_CLOSE); /* f is closed even when the fault fires */
  if (fclose(f) != 0 || close_fault) {
    if (close_fault) errno = io_errno;
    ct_fail(err, "cannot write %s (%s)", tmp, strerror(errno));
    unlink(tmp);
    goto done;
  }
  if (!dest_ok(path, err)) { /* checked again: path may have changed while we wrote */
    unlink(tmp);
    goto done;
  }
  if (io_fault(CT_IO_RENAME) || rename(tmp, path) != 0) {
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
    if (!io_fault(CT_IO_DIRSYNC)) fsync(dfd);
    close(dfd);
  }
  ok = 1;
done:
  free(tmp);
  free(dir);
  return ok;
}
