/* crater binding: crater.fuse's C half.  crater.core.fuse_ops lists the VM's ops for the
 * tracer, crater.core.fuse_super its superinstructions; fuse_compile turns a traced program (flat integer lists) into a checked
 * program; fuse_new makes the fused function, a C closure that finds the program for
 * its arguments' signature (dtypes, and which are numbers), tracing on a miss, checks
 * every argument, then runs the program once over the tensors.  fuse_sum is the sum the
 * program's sum outputs compute, for the traced function run on real tensors. */
#include <string.h>

#include "../fuse/fuse.h"
#include "lbind.h"

#define PROG_MT "crater.FuseProgram"
#define MAXCACHE 16

typedef struct {
  ct_fuse_prog pr;
  size_t bytes; /* the one block holding pr's arrays */
  void *block;
} lua_prog;

typedef struct {
  int nparams, ncache, next;
  char sig[MAXCACHE][CT_FUSE_MAXARG];
  lua_prog *prog[MAXCACHE];
} fuser;

static int prog_gc(lua_State *L) {
  lua_prog *p = luaL_checkudata(L, 1, PROG_MT);
  if (p->block) ct_free(p->block, p->bytes);
  p->block = NULL;
  return 0;
}

/* the integers of field k of spec (a list), at most max of them */
static lua_Integer read_ints(lua_State *L, const char *k, int16_t *out, lua_Integer max) {
  lua_getfield(L, 1, k);
  lua_Integer n = ct_lua_list(L, -1, max, "fuse_compile", k);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    lua_Integer v = luaL_checkinteger(L, -1);
    luaL_argcheck(L, v >= -32768 && v < 32768, 1, "program integer out of range");
    if (out) out[i - 1] = (int16_t)v;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return n;
}

static int field_int(lua_State *L, const char *k) {
  lua_getfield(L, 1, k);
  lua_Integer v = luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  luaL_argcheck(L, v >= 0 && v < 4096, 1, "program size out of range");
  return (int)v;
}

/* fuse_compile{nargs=, nregs=, consts={...}, sins={op,dst,a,b, ...}, ins={op,dst,a,b,c,s0,s1,s2,s3,
 * ...}, outs={kind,src,target, ...}} -> program */
static int t_fuse_compile(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_prog *p = lua_newuserdatauv(L, sizeof *p, 0);
  memset(p, 0, sizeof *p);
  luaL_setmetatable(L, PROG_MT);
  ct_fuse_prog *pr = &p->pr;
  pr->nargs = field_int(L, "nargs");
  pr->nregs = field_int(L, "nregs");
  lua_getfield(L, 1, "consts");
  pr->nconst = (int)ct_lua_list(L, -1, 256, "fuse_compile", "consts");
  lua_pop(L, 1);
  int nsins = (int)read_ints(L, "sins", NULL, 4 * 256), nins = (int)read_ints(L, "ins", NULL, 9 * 1024);
  int nouts = (int)read_ints(L, "outs", NULL, 3 * CT_FUSE_MAXARG);
  luaL_argcheck(L, nsins % 4 == 0 && nins % 9 == 0 && nouts % 3 == 0, 1, "ragged program lists");
  pr->nsins = nsins / 4;
  pr->nins = nins / 9;
  pr->nouts = nouts / 3;
  pr->nscal = pr->nargs + pr->nconst + pr->nsins;
  size_t bytes = sizeof(double) * (size_t)pr->nconst + sizeof(ct_fuse_ins) * (size_t)pr->nins +
      sizeof(ct_fuse_sins) * (size_t)pr->nsins + sizeof(ct_fuse_out) * (size_t)pr->nouts + 1;
  ct_err err;
  if ((p->block = ct_malloc(bytes, &err)) == NULL) return ct_lua_error(L, "fuse", &err);
  p->bytes = bytes;
  char *b = p->block;
  pr->consts = (double *)(void *)b;
  b += sizeof(double) * (size_t)pr->nconst;
  pr->ins = (ct_fuse_ins *)(void *)b;
  b += sizeof(ct_fuse_ins) * (size_t)pr->nins;
  pr->sins = (ct_fuse_sins *)(void *)b;
  b += sizeof(ct_fuse_sins) * (size_t)pr->nsins;
  pr->outs = (ct_fuse_out *)(void *)b;
  lua_getfield(L, 1, "consts");
  for (int i = 0; i < pr->nconst; i++) {
    lua_rawgeti(L, -1, i + 1);
    pr->consts[i] = luaL_checknumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  read_ints(L, "sins", (int16_t *)pr->sins, nsins);
  read_ints(L, "ins", (int16_t *)pr->ins, nins);
  read_ints(L, "outs", (int16_t *)pr->outs, nouts);
  for (int k = 0; k < pr->nouts; k++) {
    if (pr->outs[k].kind == CT_FUSE_OUT_NEW) pr->nnew++;
    if (pr->outs[k].kind == CT_FUSE_OUT_SUM) pr->nsums++;
  }
  if (!ct_fuse_check(pr, &err)) return ct_lua_error(L, "fuse", &err);
  return 1;
}

static const char *param_name(lua_State *L, int i) {
  lua_getiuservalue(L, lua_upvalueindex(1), 2); /* names */
  lua_rawgeti(L, -1, i);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 2); /* the names table holds the string */
  return s ? s : "?";
}

static const char *fused_name(lua_State *L) {
  lua_getiuservalue(L, lua_upvalueindex(1), 3);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);
  return s ? s : "fused";
}

#define ARGERR(L, i, fmt, ...) \
  luaL_error(L, "%s: argument #%d '%s' " fmt, fused_name(L), i, param_name(L, i), __VA_ARGS__)

static bool overlaps(const ct_tensor *a, const ct_tensor *b) {
  if (a->storage != b->storage) return false;
  size_t es = ct_dtype_size(a->dtype), na = (size_t)ct_numel(a) * es, nb = (size_t)ct_numel(b) * es;
  const char *pa = ct_data(a), *pb = ct_data(b);
  return na > 0 && nb > 0 && pa < pb + nb && pb < pa + na;
}

/* The fused function: upvalue 1 is its fuser; the fuser's user values are the tracer,
 * the parameter names, the function's name and the table that keeps the programs. */
static int t_fused_call(lua_State *L) {
  fuser *f = lua_touserdata(L, lua_upvalueindex(1));
  int n = lua_gettop(L), np = f->nparams;
  if (n != np)
    return luaL_error(L, "%s: expected %d argument%s, got %d", fused_name(L), np, np == 1 ? "" : "s", n);
  char sig[CT_FUSE_MAXARG] = {0};
  ct_tensor *t[CT_FUSE_MAXARG];
  double scal[CT_FUSE_MAXARG];
  char *data[CT_FUSE_MAXARG];
  int first = 0, nt = 0, ti[CT_FUSE_MAXARG]; /* ti: the tensor arguments' indices */
  for (int i = 1; i <= n; i++) {
    int ty = lua_type(L, i);
    t[i - 1] = ty == LUA_TUSERDATA ? ct_lua_test(L, i) : NULL;
    data[i - 1] = NULL;
    scal[i - 1] = 0;
    if (t[i - 1]) {
      ct_tensor *x = t[i - 1];
      if (x->dtype == CT_I64)
        return ARGERR(L, i, "is an int64 tensor (fused programs run float32 or float64)%s", "");
      sig[i - 1] = x->dtype == CT_F32 ? 'f' : 'd';
      ti[nt++] = i - 1;
      if (first == 0) first = i;
      else if (x->dtype != t[first - 1]->dtype)
        return ARGERR(L, i, "is %s but argument #%d '%s' is %s", ct_dtype_name(x->dtype), first,
                      param_name(L, first), ct_dtype_name(t[first - 1]->dtype));
    } else if (ty == LUA_TNUMBER) {
      sig[i - 1] = 's';
      scal[i - 1] = lua_tonumber(L, i);
    } else {
      return ARGERR(L, i, "must be a tensor or a number, got %s", luaL_typename(L, i));
    }
  }
  lua_prog *prog = NULL;
  for (int k = 0; k < f->ncache && !prog; k++)
    if (memcmp(f->sig[k], sig, (size_t)n) == 0) prog = f->prog[k];
  if (prog == NULL) { /* trace for this signature; the tracer raises its refusals */
    lua_getiuservalue(L, lua_upvalueindex(1), 1);
    lua_pushlstring(L, sig, (size_t)n);
    lua_call(L, 1, 1);
    prog = luaL_checkudata(L, -1, PROG_MT);
    lua_getiuservalue(L, lua_upvalueindex(1), 4); /* keeps the programs alive */
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
    lua_pop(L, 2);
    int k = f->ncache < MAXCACHE ? f->ncache++ : (f->next++ % MAXCACHE);
    memcpy(f->sig[k], sig, (size_t)n);
    f->prog[k] = prog;
  }
  const ct_fuse_prog *pr = &prog->pr;
  if (first == 0) return luaL_error(L, "%s: no argument is a tensor", fused_name(L));
  ct_tensor *t0 = t[first - 1];
  for (int i = 1; i <= n; i++) {
    ct_tensor *x = t[i - 1];
    if (x == NULL) continue;
    if (!ct_same_shape(x, t0)) {
      char a[96], b[96];
      return ARGERR(L, i, "has shape %s but argument #%d '%s' has shape %s",
                    ct_shape_str(a, x->ndim, x->shape), first, param_name(L, first),
                    ct_shape_str(b, t0->ndim, t0->shape));
    }
    if (!ct_is_contiguous(x)) return ARGERR(L, i, "is not contiguous (call :contiguous() first)%s", "");
    if (ct_grad_enabled && x->requires_grad)
      return ARGERR(L, i,
                    "requires grad while grad mode is on: a fused call records no graph; "
                    "use crater.no_grad%s",
                    "");
    data[i - 1] = ct_data(x);
  }
  bool shared = false; /* a written tensor also passed as a read one */
  for (int k = 0; k < pr->nouts; k++) { /* the written tensors: none shared, none overlapping another */
    const ct_fuse_out *o = &pr->outs[k];
    if (o->kind != CT_FUSE_OUT_WRITE) continue;
    int w = o->target;
    ct_err err;
    if (t[w] == NULL) return ARGERR(L, w + 1, "is written but is a number%s", "");
    /* contiguous, so not expanded: what is left to refuse is a view of a leaf in grad mode */
    if (ct_grad_enabled && !ct_inplace_ok(t[w], &err))
      return ARGERR(L, w + 1, "cannot be written: %s", err.msg);
    for (int u = 0; u < nt; u++) {
      int i = ti[u];
      if (i == w || !overlaps(t[i], t[w])) continue;
      bool written = false;
      for (int q = 0; q < pr->nouts; q++)
        written = written || (pr->outs[q].kind == CT_FUSE_OUT_WRITE && pr->outs[q].target == i);
      if (written || data[i] != data[w]) /* the same elements may be read, never two writes */
        return ARGERR(L, w + 1, "is written but shares memory with argument #%d '%s'%s", i + 1,
                      param_name(L, i + 1), written ? " (also written)" : "");
      shared = true;
    }
  }
  char *news[CT_FUSE_MAXARG];
  int base = lua_gettop(L);
  ct_err err;
  for (int k = 0; k < pr->nnew; k++) { /* boxes first: a failed allocation leaks nothing */
    ct_tensor **box = ct_lua_newbox(L);
    if ((*box = ct_tensor_new(t0->dtype, t0->ndim, t0->shape, &err)) == NULL)
      return ct_lua_error(L, fused_name(L), &err);
    news[k] = ct_data(*box);
  }
  double sums[CT_FUSE_MAXARG];
  if (!ct_fuse_run(pr, t0->dtype, ct_numel(t0), data, scal, news, sums, shared, &err))
    return ct_lua_error(L, fused_name(L), &err);
  for (int k = 0; k < pr->nouts; k++)
    if (pr->outs[k].kind == CT_FUSE_OUT_WRITE) ct_bump(t[pr->outs[k].target]);
  int nn = 0;
  for (int k = 0; k < pr->nouts; k++) { /* the results in the traced function's order */
    const ct_fuse_out *o = &pr->outs[k];
    if (o->kind == CT_FUSE_OUT_WRITE) lua_pushvalue(L, o->target + 1);
    else if (o->kind == CT_FUSE_OUT_NEW) lua_pushvalue(L, base + 1 + nn++);
    else lua_pushnumber(L, sums[o->target]);
  }
  return pr->nouts;
}

/* fuse_new(tracer, names, name) -> the fused function */
static int t_fuse_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checkstring(L, 3);
  lua_Integer np = ct_lua_list(L, 2, CT_FUSE_MAXARG, "fuse", "names");
  fuser *f = lua_newuserdatauv(L, sizeof *f, 4);
  memset(f, 0, sizeof *f);
  f->nparams = (int)np;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, -2, 3);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 4);
  lua_pushcclosure(L, t_fused_call, 1);
  return 1;
}

/* fuse_sum(x) -> number: the sum a program's sum output computes */
static int t_fuse_sum(lua_State *L) {
  ct_tensor *x = ct_lua_check(L, 1);
  ct_err err;
  double s;
  if (!ct_fuse_sum(x, &s, &err)) return ct_lua_error(L, "fuse.sum", &err);
  lua_pushnumber(L, s);
  return 1;
}

void ct_lua_open_fuse(lua_State *L) {
  luaL_newmetatable(L, PROG_MT);
  lua_pushcfunction(L, prog_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_getfield(L, -1, "internal"); /* crater.fuse's entry points are internals */
  lua_newtable(L); /* fuse_ops: name -> {code, tensor operands, scalar operands} */
  lua_newtable(L); /* fuse_super: the same, and the pattern */
  for (int k = 0; k < CT_FUSE_NOPS; k++) {
    lua_createtable(L, 4, 0);
    lua_pushinteger(L, k);
    lua_rawseti(L, -2, 1);
    lua_pushinteger(L, ct_fuse_op_arity[k][0]);
    lua_rawseti(L, -2, 2);
    lua_pushinteger(L, ct_fuse_op_arity[k][1]);
    lua_rawseti(L, -2, 3);
    if (k >= CT_FUSE_NELEM) {
      lua_pushstring(L, ct_fuse_super_patterns[k - CT_FUSE_NELEM]);
      lua_rawseti(L, -2, 4);
    }
    lua_setfield(L, k < CT_FUSE_NELEM ? -3 : -2, ct_fuse_op_names[k]);
  }
  lua_setfield(L, -3, "fuse_super");
  lua_setfield(L, -2, "fuse_ops");
  lua_pushinteger(L, CT_FUSE_MAXREG);
  lua_setfield(L, -2, "fuse_maxreg");
  static const luaL_Reg fns[] = {
      {"fuse_compile", t_fuse_compile}, {"fuse_new", t_fuse_new}, {"fuse_sum", t_fuse_sum}, {NULL, NULL}};
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}
