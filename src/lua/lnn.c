/* crater binding: the nn kernels of src/ops/nn.c (im2col, col2im, pooling), added to
 * crater.core for lua/crater/nn to build layers on. */
#include "../ops/nn.h"
#include "lbind.h"

/* Reads kh, kw, sh, sw, ph, pw from the integers at idx..idx+5. */
static ct_win check_win(lua_State *L, int idx) {
  ct_win w;
  w.kh = luaL_checkinteger(L, idx);
  w.kw = luaL_checkinteger(L, idx + 1);
  w.sh = luaL_checkinteger(L, idx + 2);
  w.sw = luaL_checkinteger(L, idx + 3);
  w.ph = luaL_checkinteger(L, idx + 4);
  w.pw = luaL_checkinteger(L, idx + 5);
  return w;
}

/* im2col(x, kh, kw, sh, sw, ph, pw [, fn]) -> cols (C*kh*kw, B*L); errors name fn
 * (conv2d passes its own name) */
static int t_im2col(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_win w = check_win(L, 2);
  const char *fn = luaL_optstring(L, 8, "im2col");
  ct_err err;
  return ct_lua_push(L, ct_im2col(x, w, &err), fn, &err);
}

/* col2im(cols, h, w, kh, kw, sh, sw, ph, pw [, fn]) -> (B, C, h, w) */
static int t_col2im(lua_State *L) {
  ct_tensor *cols = ct_lua_check(L, 1);
  lua_Integer h = luaL_checkinteger(L, 2), wd = luaL_checkinteger(L, 3);
  ct_win w = check_win(L, 4);
  const char *fn = luaL_optstring(L, 10, "col2im");
  ct_err err;
  return ct_lua_push(L, ct_col2im(cols, h, wd, w, &err), fn, &err);
}

static int t_max_pool2d(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_win w = check_win(L, 2);
  ct_err err;
  return ct_lua_push(L, ct_max_pool2d(x, w, &err), "max_pool2d", &err);
}

static int t_avg_pool2d(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_win w = check_win(L, 2);
  ct_err err;
  return ct_lua_push(L, ct_avg_pool2d(x, w, &err), "avg_pool2d", &err);
}

/* set_flush_denormal(on) -> whether the CPU supports it (subnormals flushed to zero) */
static int t_set_flush_denormal(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  lua_pushboolean(L, ct_set_flush_denormal(lua_toboolean(L, 1)));
  return 1;
}

/* linear(x, w [, b]) -> x w^T + b for 2-D x */
static int t_linear(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1), *w = ct_lua_check(L, 2);
  ct_tensor *b = lua_isnoneornil(L, 3) ? NULL : ct_lua_check(L, 3);
  ct_err err;
  return ct_lua_push(L, ct_linear(x, w, b, &err), "linear", &err);
}

/* _conv_out(y, bias or nil, b, ho, wo) -> y (Cout, B*Ho*Wo) as (B, Cout, Ho, Wo) + bias */
static int t_conv_out(lua_State *L) {
  ct_tensor *y = ct_lua_check(L, 1);
  ct_tensor *b = lua_isnil(L, 2) ? NULL : ct_lua_check(L, 2);
  lua_Integer n = luaL_checkinteger(L, 3), ho = luaL_checkinteger(L, 4), wo = luaL_checkinteger(L, 5);
  ct_err err;
  return ct_lua_push(L, ct_conv_out(y, b, n, ho, wo, &err), "conv_out", &err);
}

/* _conv2d(x, w, bias or nil, sh, sw, ph, pw) -> (B, Cout, Ho, Wo) */
static int t_conv2d(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1), *w = ct_lua_check(L, 2);
  ct_tensor *b = lua_isnil(L, 3) ? NULL : ct_lua_check(L, 3);
  lua_Integer sh = luaL_checkinteger(L, 4), sw = luaL_checkinteger(L, 5);
  lua_Integer ph = luaL_checkinteger(L, 6), pw = luaL_checkinteger(L, 7);
  ct_err err;
  return ct_lua_push(L, ct_conv2d(x, w, b, sh, sw, ph, pw, &err), "conv2d", &err);
}

/* _relu(x) -> max(x, 0), float x */
static int t_relu(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  return ct_lua_push(L, ct_relu(x, &err), "relu", &err);
}

/* the op table's nn rows (ops.def), and a setting */
#define REG(e, nm, node, bw, bind, flag, kind, na, ...) {#nm, bind, flag, kind, na},
static const ct_lua_reg nn_funcs[] = {
    CT_NN_OPS(REG){"set_flush_denormal", t_set_flush_denormal, -1, CT_FUNCTION, -1},
};

/* no methods: the rows are functions */
void ct_lua_open_nn(lua_State *L) {
  ct_lua_register(L, 0, lua_gettop(L), nn_funcs, sizeof nn_funcs / sizeof nn_funcs[0]);
}
