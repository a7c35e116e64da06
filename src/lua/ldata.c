/* crater binding: data and persistence helpers on crater.core: the IDX and CSV readers,
 * the atomic file writer, crc32, and a tensor's bytes as a Lua string and back (the
 * pieces lua/crater/checkpoint.lua and lua/crater/data build on). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "../data/data.h"
#include "lbind.h"

/* idx_read(path, dtype, scale, shift, max_elems) -> tensor of byte*scale+shift */
static int t_idx_read (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  ct_dtype dt = ct_lua_dtype(L, 2, CT_F32);
  double scale = luaL_optnumber(L, 3, 1), shift = luaL_optnumber(L, 4, 0);
  lua_Integer cap = luaL_optinteger(L, 5, (lua_Integer)1 << 32);
  ct_err err;
  return ct_lua_push(L, ct_idx_read(path, dt, scale, shift, cap, &err), "idx_read", &err);
}

/* gz_write(path, bytes): gzip bytes into path */
static int t_gz_write (lua_State *L) {
  size_t len;
  const char *path = luaL_checkstring(L, 1), *s = luaL_checklstring(L, 2, &len);
  ct_err err;
  if (!ct_gz_write(path, s, len, &err)) return ct_lua_error(L, "gz_write", &err);
  return 0;
}

/* csv_read(path, skip_lines) -> float64 (rows, cols) */
static int t_csv_read (lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer skip = luaL_optinteger(L, 2, 0);
  luaL_argcheck(L, skip >= 0 && skip < 1000000, 2, "skip must be a small non-negative integer");
  ct_err err;
  return ct_lua_push(L, ct_csv_read(path, (int)skip, &err), "csv", &err);
}

/* write_atomic(path, bytes): replace path (temporary file + fsync + rename) */
static int t_write_atomic (lua_State *L) {
  size_t len;
  const char *path = luaL_checkstring(L, 1), *s = luaL_checklstring(L, 2, &len);
  ct_err err;
  if (!ct_file_write_atomic(path, s, len, &err)) return ct_lua_error(L, "save", &err);
  return 0;
}

/* fail_io(n, kind, errno_name): the n-th step of kind ("write", "flush", "fsync", "close",
 * "rename", "dirsync" or "any") of the next atomic writes fails once with errno_name
 * ("ENOSPC", "EIO"); fail_io(nil) turns it off.  Returns nothing; io_log() returns the
 * steps the last write took, one letter each ("wfscrd"). */
static int t_fail_io (lua_State *L) {
  static const char *const kinds[] = {"write", "flush", "fsync", "close", "rename", "dirsync", "any", NULL};
  static const char *const errs[] = {"ENOSPC", "EIO", NULL};
  if (lua_isnoneornil(L, 1)) { ct_debug_fail_io(-1, CT_IO_ANY, 0); return 0; }
  lua_Integer n = luaL_checkinteger(L, 1);
  int kind = luaL_checkoption(L, 2, "any", kinds);
  int e = luaL_checkoption(L, 3, "EIO", errs) == 0 ? ENOSPC : EIO;
  ct_debug_fail_io(n, kind, e);
  return 0;
}

static int t_io_log (lua_State *L) {
  lua_pushstring(L, ct_debug_io_log());
  return 1;
}

/* crc32(bytes [, crc]) -> the zlib CRC-32 of bytes, continuing crc */
static int t_crc32 (lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  uLong crc = (uLong)luaL_optinteger(L, 2, 0);
  while (len > 0) {   /* zlib takes uInt lengths */
    uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
    crc = crc32(crc, (const Bytef *)s, n);
    s += n;
    len -= n;
  }
  lua_pushinteger(L, (lua_Integer)crc);
  return 1;
}

static int little_endian(void) {
  const uint16_t one = 1;
  return *(const uint8_t *)&one == 1;
}

/* tensor_bytes(t) -> the elements of t in row-major order, little-endian, as a string */
static int t_tensor_bytes (lua_State *L) {
  ct_tensor *t = ct_lua_check(L, 1);
  ct_err err;
  luaL_argcheck(L, little_endian(), 1, "big-endian hosts are not supported");
  ct_tensor *c = ct_contig(t, false, &err);
  if (c == NULL) return ct_lua_error(L, "tensor_bytes", &err);
  lua_pushlstring(L, ct_data(c), (size_t)ct_numel(c) * ct_dtype_size(c->dtype));
  ct_tensor_release(c);
  return 1;
}

/* tensor_from_bytes(bytes, dtype, shape) -> a new tensor holding a copy of bytes */
static int t_tensor_from_bytes (lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  ct_dtype dt = ct_lua_dtype(L, 2, CT_F32);
  luaL_argcheck(L, little_endian(), 1, "big-endian hosts are not supported");
  int64_t shape[CT_MAXDIM];
  lua_Integer nd = ct_lua_list(L, 3, CT_MAXDIM, "tensor_from_bytes", "the size list");
  for (int i = 0; i < nd; i++) {
    lua_geti(L, 3, i + 1);
    int ok;
    lua_Integer v = lua_tointegerx(L, -1, &ok);
    luaL_argcheck(L, ok && v >= 0, 3, "sizes must be non-negative integers");
    shape[i] = v;
    lua_pop(L, 1);
  }
  ct_tensor **box = ct_lua_newbox(L);
  ct_err err;
  if ((*box = ct_tensor_new(dt, (int)nd, shape, &err)) == NULL)
    return ct_lua_error(L, "tensor_from_bytes", &err);
  size_t need = (size_t)ct_numel(*box) * ct_dtype_size(dt);
  if (need != len)
    return luaL_error(L, "tensor_from_bytes: %I bytes do not make a %s tensor of %I elements",
                      (lua_Integer)len, ct_dtype_name(dt), (lua_Integer)ct_numel(*box));
  memcpy(ct_data(*box), s, len);
  return 1;
}

/* randperm(n, seed) -> int64 permutation of 1..n, a function of seed alone */
static int t_randperm (lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1), seed = luaL_checkinteger(L, 2);
  ct_err err;
  return ct_lua_push(L, ct_randperm(n, (uint64_t)seed, 1, &err), "randperm", &err);
}

/* isatty(fd) -> whether fd (0 stdin, 1 stdout, 2 stderr) is a terminal (crater.progress) */
static int t_isatty (lua_State *L) {
  lua_Integer fd = luaL_optinteger(L, 1, 2);
  luaL_argcheck(L, fd >= 0 && fd <= 2, 1, "fd must be 0, 1 or 2");
  lua_pushboolean(L, isatty((int)fd));
  return 1;
}

static const luaL_Reg data_funcs[] = {
  {"isatty", t_isatty},
  {"randperm", t_randperm},
  {"idx_read", t_idx_read},
  {"gz_write", t_gz_write},
  {"csv_read", t_csv_read},
  {"write_atomic", t_write_atomic},
  {"fail_io", t_fail_io},
  {"io_log", t_io_log},
  {"crc32", t_crc32},
  {"tensor_bytes", t_tensor_bytes},
  {"tensor_from_bytes", t_tensor_from_bytes},
  {NULL, NULL}
};

void ct_lua_open_data(lua_State *L) { luaL_setfuncs(L, data_funcs, 0); }
