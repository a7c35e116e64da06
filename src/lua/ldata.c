/* crater binding: data and persistence helpers on crater.core: the IDX and CSV readers,
 * the atomic file writer, a regular-file reader, crc32 (the pieces lua/crater/checkpoint.lua
 * and lua/crater/data build on; a tensor's bytes are core.internal.bytes/from_bytes), and the
 * foreign-file pieces under crater.safetensors, crater.npy and crater.npz. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "../data/data.h"
#include "lbind.h"

/* The path at idx for fn: a C string cannot hold a NUL byte, so a path with one would
 * silently name another file. */
static const char *check_path(lua_State *L, int idx, const char *fn) {
  size_t len;
  const char *path = luaL_checklstring(L, idx, &len);
  size_t nul = strlen(path);
  if (nul != len) luaL_error(L, "%s: the path contains a NUL byte (at byte %d)", fn, (int)nul + 1);
  return path;
}

/* check_path(path, fn) -> path, or raises "fn: the path contains a NUL byte" */
static int t_check_path(lua_State *L) {
  check_path(L, 1, luaL_checkstring(L, 2));
  lua_settop(L, 1);
  return 1;
}

/* read_file(path, fn [, max [, prefix]]) -> bytes, file size.  Only a regular file is
 * read (a directory, device or FIFO is refused without blocking).  With max, a file
 * longer than max bytes is refused, or with prefix only its first max bytes are read:
 * never more than a format's header declares. */
static int t_read_file(lua_State *L) {
  const char *fn = luaL_checkstring(L, 2), *path = check_path(L, 1, fn);
  lua_Integer max = luaL_optinteger(L, 3, -1);
  int prefix = lua_toboolean(L, 4);
  struct stat st; /* sized from stat so the buffer (which may raise) exists before the fd */
  if (stat(path, &st) != 0) return luaL_error(L, "%s: cannot open %s (%s)", fn, path, strerror(errno));
  if (!S_ISREG(st.st_mode))
    return luaL_error(L, "%s: %s is %s, not a regular file", fn, path, ct_file_kind(st.st_mode));
  if (max >= 0 && st.st_size > max && !prefix)
    return luaL_error(L, "%s: %s is %I bytes, more than the %I its header declares", fn, path,
                      (LUAI_UACINT)st.st_size, (LUAI_UACINT)max);
  size_t want = (size_t)(max >= 0 && st.st_size > max ? max : st.st_size), got;
  luaL_Buffer b;
  char *buf = luaL_buffinitsize(L, &b, want);
  ct_err err;
  int64_t size;
  int fd = ct_file_open_read(path, &size, &err); /* checks again: path may have changed */
  if (fd < 0) return ct_lua_error(L, fn, &err);
  int ok = ct_file_read_at(fd, path, buf, want, 0, &got, &err);
  close(fd);
  if (!ok) return ct_lua_error(L, fn, &err);
  luaL_pushresultsize(&b, got); /* fewer bytes if it shrank: the format's checks see it */
  lua_pushinteger(L, (lua_Integer)st.st_size);
  return 2;
}

/* file_kind(path) -> "a regular file", "a directory", "a FIFO", ... (links followed), or
 * nil when there is nothing there */
static int t_file_kind(lua_State *L) {
  struct stat st;
  if (stat(check_path(L, 1, "file_kind"), &st) != 0) return 0;
  lua_pushstring(L, ct_file_kind(st.st_mode));
  return 1;
}

/* idx_read(path, dtype, scale, shift, max_elems) -> tensor of byte*scale+shift */
static int t_idx_read(lua_State *L) {
  const char *path = check_path(L, 1, "idx_read");
  ct_dtype dt = ct_lua_dtype(L, 2, CT_F32);
  double scale = luaL_optnumber(L, 3, 1), shift = luaL_optnumber(L, 4, 0);
  lua_Integer cap = luaL_optinteger(L, 5, (lua_Integer)1 << 32);
  ct_err err;
  return ct_lua_push(L, ct_idx_read(path, dt, scale, shift, cap, &err), "idx_read", &err);
}

/* gz_write(path, bytes): gzip bytes into path */
static int t_gz_write(lua_State *L) {
  size_t len;
  const char *path = check_path(L, 1, "gz_write"), *s = luaL_checklstring(L, 2, &len);
  ct_err err;
  if (!ct_gz_write(path, s, len, &err)) return ct_lua_error(L, "gz_write", &err);
  return 0;
}

/* csv_read(path, skip_lines) -> float64 (rows, cols) */
static int t_csv_read(lua_State *L) {
  const char *path = check_path(L, 1, "csv");
  lua_Integer skip = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, skip >= 0 && skip < 1000000, 2, "skip must be a small non-negative integer");
  ct_err err;
  return ct_lua_push(L, ct_csv_read(path, (int)skip, &err), "csv", &err);
}

/* write_atomic(path, bytes): replace path (temporary file + fsync + rename) */
static int t_write_atomic(lua_State *L) {
  size_t len;
  const char *path = check_path(L, 1, "save"), *s = luaL_checklstring(L, 2, &len);
  ct_err err;
  if (!ct_file_write_atomic(path, s, len, &err)) return ct_lua_error(L, "save", &err);
  return 0;
}

/* fail_io(n, kind, errno_name): the n-th step of kind ("write", "flush", "fsync", "close",
 * "rename", "dirsync" or "any") of the next atomic writes fails once with errno_name
 * ("ENOSPC", "EIO"); fail_io(nil) turns it off.  Returns nothing; io_log() returns the
 * steps the last write took, one letter each ("wfscrd"). */
static int t_fail_io(lua_State *L) {
  static const char *const kinds[] = {"write", "flush", "fsync", "close", "rename", "dirsync", "any", NULL};
  static const char *const errs[] = {"ENOSPC", "EIO", NULL};
  if (lua_isnoneornil(L, 1)) {
    ct_debug_fail_io(-1, CT_IO_ANY, 0);
    return 0;
  }
  lua_Integer n = luaL_checkinteger(L, 1);
  int kind = luaL_checkoption(L, 2, "any", kinds);
  int e = luaL_checkoption(L, 3, "EIO", errs) == 0 ? ENOSPC : EIO;
  ct_debug_fail_io(n, kind, e);
  return 0;
}

static int t_io_log(lua_State *L) {
  lua_pushstring(L, ct_debug_io_log());
  return 1;
}

/* crc32(bytes [, crc]) -> the zlib CRC-32 of bytes, continuing crc */
static int t_crc32(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  uLong crc = (uLong)luaL_optinteger(L, 2, 0);
  while (len > 0) { /* zlib takes uInt lengths */
    uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
    crc = crc32(crc, (const Bytef *)s, n);
    s += n;
    len -= n;
  }
  lua_pushinteger(L, (lua_Integer)crc);
  return 1;
}

/* randperm(n, seed) -> int64 permutation of 1..n, a function of seed alone */
static int t_randperm(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), seed = luaL_checkinteger(L, 2);
  ct_err err;
  return ct_lua_push(L, ct_randperm(n, (uint64_t)seed, 1, &err), "randperm", &err);
}

/* isatty(fd) -> whether fd (0 stdin, 1 stdout, 2 stderr) is a terminal (crater.progress) */
static int t_isatty(lua_State *L) {
  lua_Integer fd = luaL_optinteger(L, 1, 2);
  luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "fd must be 0, 1 or 2");
  lua_pushboolean(L, isatty((int)fd));
  return 1;
}

/* The integer field k of the table at idx (default dflt when absent), for raw_read. */
static int64_t int_field(lua_State *L, int idx, const char *k, int64_t dflt) {
  int64_t v = dflt;
  if (lua_getfield(L, idx, k) != LUA_TNIL) {
    int isint;
    v = (int64_t)lua_tointegerx(L, -1, &isint);
    if (!isint) luaL_error(L, "raw_read: region field '%s' must be an integer", k);
  }
  lua_pop(L, 1);
  return v;
}

static void check_region(lua_State *L, int idx, ct_raw_region *r) {
  luaL_checktype(L, idx, LUA_TTABLE);
  r->offset = int_field(L, idx, "offset", 0);
  r->stored = int_field(L, idx, "stored", 0);
  r->size = int_field(L, idx, "size", r->stored);
  r->skip = int_field(L, idx, "skip", 0);
  r->deflate = (int)int_field(L, idx, "deflate", 0) != 0;
  int64_t crc = int_field(L, idx, "crc", -1);
  r->check_crc = crc >= 0;
  r->crc = (uint32_t)crc;
}

/* raw_read(path, fn, region, kind, big_endian, fortran, shape) -> a tensor of the region's
 * elements (see ct_raw_read); kind is "float16", "bfloat16", "float32", "float64", "bool",
 * "uint8", "int8", ... "int64"; errors are raised as "fn: msg". */
static int t_raw_read(lua_State *L) {
  static const char *const names[] = {"bool",  "uint8",   "int8",     "uint16",  "int16",   "uint32", "int32",
                                      "int64", "float16", "bfloat16", "float32", "float64", NULL};
  const char *fn = luaL_checkstring(L, 2), *path = check_path(L, 1, fn);
  ct_raw_region r;
  check_region(L, 3, &r);
  ct_raw_kind k = (ct_raw_kind)luaL_checkoption(L, 4, NULL, names);
  bool big = lua_toboolean(L, 5), fortran = lua_toboolean(L, 6);
  int64_t shape[CT_MAXDIM];
  int n = (int)ct_lua_list(L, 7, CT_MAXDIM, fn, "the shape");
  for (int i = 0; i < n; i++) {
    lua_geti(L, 7, i + 1);
    int isint;
    shape[i] = (int64_t)lua_tointegerx(L, -1, &isint);
    if (!isint || shape[i] < 0)
      return luaL_error(L, "%s: size %d of the shape is not a non-negative integer", fn, i + 1);
    lua_pop(L, 1);
  }
  ct_err err;
  ct_tensor **box = ct_lua_newbox(L);
  if ((*box = ct_raw_read(path, &r, k, big, fortran, n, shape, &err)) == NULL)
    return ct_lua_error(L, fn, &err);
  return 1;
}

/* raw_peek(path, fn, region, n) -> the first n (at most 1 MiB) uncompressed bytes of the region */
static int t_raw_peek(lua_State *L) {
  const char *fn = luaL_checkstring(L, 2), *path = check_path(L, 1, fn);
  ct_raw_region r;
  check_region(L, 3, &r);
  lua_Integer n = luaL_checkinteger(L, 4);
  luaL_argcheck(L, n >= 0 && n <= (1 << 20), 4, "at most 1 MiB");
  luaL_Buffer b;
  char *buf = luaL_buffinitsize(L, &b, (size_t)n);
  size_t got;
  ct_err err;
  if (!ct_raw_peek(path, &r, buf, (size_t)n, &got, &err)) return ct_lua_error(L, fn, &err);
  luaL_pushresultsize(&b, got);
  return 1;
}

/* deflate(bytes [, level]) -> the raw deflate stream (zip method 8) of bytes */
static int t_deflate(lua_State *L) {
  size_t len, out;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_Integer level = luaL_optinteger(L, 2, 6);
  luaL_argcheck(L, level >= 0 && level <= 9, 2, "level must be 0 to 9");
  size_t cap = ct_raw_deflate_bound(len);
  luaL_Buffer b;
  char *buf = luaL_buffinitsize(L, &b, cap);
  ct_err err;
  if (!ct_raw_deflate(s, len, (int)level, buf, cap, &out, &err)) return ct_lua_error(L, "deflate", &err);
  luaL_pushresultsize(&b, out);
  return 1;
}

static const luaL_Reg data_public[] = {{"randperm", t_randperm}, {NULL, NULL}};

/* crater.core.internal's: the readers and writers the Lua modules build on, and test hooks */
static const luaL_Reg data_internal[] = {{"isatty", t_isatty},
                                         {"idx_read", t_idx_read},
                                         {"gz_write", t_gz_write},
                                         {"csv_read", t_csv_read},
                                         {"write_atomic", t_write_atomic},
                                         {"fail_io", t_fail_io},
                                         {"io_log", t_io_log},
                                         {"crc32", t_crc32},
                                         {"check_path", t_check_path},
                                         {"read_file", t_read_file},
                                         {"file_kind", t_file_kind},
                                         {"raw_read", t_raw_read},
                                         {"raw_peek", t_raw_peek},
                                         {"deflate", t_deflate},
                                         {NULL, NULL}};

void ct_lua_open_data(lua_State *L) { ct_lua_setfuncs(L, data_public, data_internal); }
