/*
** main.c: the `crater` executable, a Lua 5.4 interpreter with crater preloaded.
** Runs scripts, -e code, subcommands (lua/crater/cli/<word>.lua) and the REPL,
** the way lua.c does; the REPL's printing, help and completion live in lua/crater/repl.lua.
*/

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "core/tensor.h" /* ct_pool_take: Lua allocates from the core's small-block pool */

#ifndef CRATER_VERSION
#define CRATER_VERSION "0.1.0"
#endif

int luaopen_crater_core(lua_State *L); /* src/lua/lcrater.c */

static const char *progname = "crater";
static lua_State *globalL = NULL; /* for the signal handler */
static volatile sig_atomic_t interrupted = 0;
static volatile sig_atomic_t running_lua = 0; /* is Ctrl-C to stop Lua code? */

/* ---------------------------------------------------------------------------
** Messages, the traceback handler and Ctrl-C (as lua.c)
** ------------------------------------------------------------------------- */

static void print_usage(FILE *f) {
  fprintf(f,
          "usage: %s [options] [script [args]]\n"
          "       %s <command> [args]      (a module lua/crater/cli/<command>.lua)\n"
          "Options:\n"
          "  -e code   run the string 'code'\n"
          "  -i        enter the REPL after running the script\n"
          "  -v        show version information\n"
          "  --help    show this help\n"
          "  --        stop handling options\n"
          "  -         run stdin and stop handling options\n"
          "With no script and stdin a terminal, %s starts the REPL.\n",
          progname, progname, progname);
}

static void print_message(const char *msg) {
  if (progname != NULL) fprintf(stderr, "%s: ", progname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* Under mpirun, an uncaught error must end the whole job, not this rank alone (the
** others may be waiting for it in a collective): when crater.distributed is loaded,
** its _on_uncaught(msg) prints the message with the rank and calls MPI_Abort (in a
** world of one it returns).  main.c itself never links MPI. */
static void abort_world(lua_State *L) {
  int top = lua_gettop(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "crater.distributed") == LUA_TTABLE &&
      lua_getfield(L, -1, "_on_uncaught") == LUA_TFUNCTION) {
    lua_pushvalue(L, top);
    lua_pcall(L, 1, 0, 0);
  }
  lua_settop(L, top);
}

/* Prints the error on top of the stack (if any) and returns 'status'. */
static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    abort_world(L);
    print_message(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

/* Message handler: turn an error into "message + traceback" (lua.c's msghandler). */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) { /* not a string? */
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Hook set by the signal handler: raise an error at the next Lua instruction. */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* SIGINT: note it; if Lua code is running, stop it through a hook (only
** async-signal-safe work here). A second Ctrl-C while stuck in C code kills
** the process, as in lua.c, so a runaway kernel can always be stopped. */
static void laction(int sig) {
  interrupted = 1;
  if (running_lua) {
    signal(sig, SIG_DFL);
    lua_sethook(globalL, lstop, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  }
}

static void set_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = laction; /* no SA_RESTART: select() sees EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

/* Calls the function below 'narg' arguments with the traceback handler and
** Ctrl-C armed. Leaves the results (or the message) on the stack. */
static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  interrupted = 0;
  set_sigint();
  running_lua = 1;
  int status = lua_pcall(L, narg, nres, base);
  running_lua = 0;
  lua_sethook(L, NULL, 0, 0); /* a Ctrl-C after the call ended */
  set_sigint();
  lua_remove(L, base);
  return status;
}

/* ---------------------------------------------------------------------------
** Startup: package.path from the executable's place, crater.core, `crater`
** ------------------------------------------------------------------------- */

/* Puts the Lua directories next to the executable first on package.path:
** <exedir>/../lua (the source tree, exe = build/crater) and
** <exedir>/../share/lua/5.4 (installed under PREFIX); and C modules (crater.distributed)
** from <exedir>/lib and <exedir>/../lib/lua/5.4 on package.cpath. */
static void set_path(lua_State *L) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return; /* keep LUA_PATH and the defaults */
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash == NULL) return;
  *slash = '\0'; /* exe is now the directory */
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L,
                  "%s/../lua/?.lua;%s/../lua/?/init.lua;"
                  "%s/../share/lua/5.4/?.lua;%s/../share/lua/5.4/?/init.lua;%s",
                  exe, exe, exe, exe, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 1);
  /* C modules built beside it (build/lib/crater/distributed.so) or installed */
  lua_getfield(L, -1, "cpath");
  lua_pushfstring(L, "%s/lib/?.so;%s/../lib/lua/5.4/?.so;%s", exe, exe, lua_tostring(L, -1));
  lua_setfield(L, -3, "cpath");
  lua_pop(L, 2);
}

/* package.preload["crater.core"] = luaopen_crater_core; crater = require "crater" */
static int load_crater(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_crater_core);
  lua_setfield(L, -2, "crater.core");
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "crater");
  int status = docall(L, 1, 1);
  if (status == LUA_OK) lua_setglobal(L, "crater");
  return report(L, status);
}

/* The global 'arg' as lua.c builds it: arg[0] is the script, the interpreter
** and its options have negative indices, the script's arguments positive ones. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* Pushes the script's arguments argv[script+1 .. argc-1]; returns their count. */
static int push_args(lua_State *L, char **argv, int argc, int script) {
  int n = argc - script - 1;
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
  return n;
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status);
}

static int run_script(lua_State *L, char **argv, int argc, int script) {
  const char *fname = argv[script];
  if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0) fname = NULL; /* stdin */
  int status = luaL_loadfile(L, fname);
  if (status == LUA_OK) {
    int n = push_args(L, argv, argc, script);
    status = docall(L, n, LUA_MULTRET);
  }
  return report(L, status);
}

/* ---------------------------------------------------------------------------
** Subcommands: `crater race ...` runs require("crater.cli.race").main(args)
** ------------------------------------------------------------------------- */

/* Is 's' a command word (an identifier that names no file here)? */
static int is_command_word(const char *s) {
  if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return 0;
  for (const char *p = s; *p; p++)
    if (!(*p == '_' || *p == '-' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9')))
      return 0;
  struct stat st; /* a regular file of that name is a script; a directory is not */
  return stat(s, &st) != 0 || !S_ISREG(st.st_mode);
}

/* Appends the names of lua/crater/cli/<name>.lua found on package.path to 'b'. */
static void list_commands(lua_State *L, luaL_Buffer *b) {
  int found = 0;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushliteral(L, "crater");
  lua_getfield(L, -3, "path");
  lua_call(L, 2, 1); /* .../lua/crater/init.lua or nil */
  const char *init = lua_tostring(L, -1);
  if (init != NULL) {
    char dir[PATH_MAX];
    const char *slash = strrchr(init, '/');
    snprintf(dir, sizeof dir, "%.*s/cli", slash ? (int)(slash - init) : 0, init);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
      size_t len = strlen(e->d_name);
      if (len > 4 && strcmp(e->d_name + len - 4, ".lua") == 0 && strcmp(e->d_name, "init.lua") != 0) {
        luaL_addstring(b, found++ ? ", " : "");
        luaL_addlstring(b, e->d_name, len - 4);
      }
    }
    if (d != NULL) closedir(d);
  }
  if (!found) luaL_addstring(b, "none installed");
  lua_pop(L, 2);
}

static int run_command(lua_State *L, char **argv, int argc, int cmd) {
  int top = lua_gettop(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchpath");
  lua_pushfstring(L, "crater.cli.%s", argv[cmd]);
  lua_getfield(L, -3, "path");
  lua_call(L, 2, 1);
  int exists = !lua_isnil(L, -1);
  lua_settop(L, top);
  if (!exists) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    lua_pushfstring(L, "unknown command '%s' (commands: ", argv[cmd]);
    luaL_addvalue(&b);
    list_commands(L, &b);
    luaL_addstring(&b, "; see crater --help)");
    luaL_pushresult(&b);
    return report(L, LUA_ERRRUN);
  }
  create_arg_table(L, argv, argc, cmd);
  lua_getglobal(L, "require");
  lua_pushfstring(L, "crater.cli.%s", argv[cmd]);
  int status = docall(L, 1, 1);
  if (status != LUA_OK) return report(L, status);
  if (lua_getfield(L, -1, "main") != LUA_TFUNCTION) {
    lua_pushfstring(L, "module crater.cli.%s has no function 'main'", argv[cmd]);
    return report(L, LUA_ERRRUN);
  }
  lua_newtable(L); /* main(args): the words after the command */
  for (int i = cmd + 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - cmd);
  }
  status = report(L, docall(L, 1, 1));
  if (status == LUA_OK && (lua_toboolean(L, -1) == 0 && !lua_isnil(L, -1)))
    status = LUA_ERRRUN; /* main returned false: exit failing */
  if (status == LUA_OK && lua_isinteger(L, -1) && lua_tointeger(L, -1) != 0)
    status = LUA_ERRRUN; /* main returned an exit code */
  lua_settop(L, top);
  return status;
}

/* ---------------------------------------------------------------------------
** The REPL: readline's callback interface, so Ctrl-C at the prompt clears the
** line without longjmp; each chunk goes to repl.eval_line(state, chunk)
** ------------------------------------------------------------------------- */

static char *history_file(void) {
  static char path[PATH_MAX];
  const char *home = getenv("HOME");
  if (home == NULL) return NULL;
  snprintf(path, sizeof path, "%s/.crater_history", home);
  return path;
}

static char *got_line; /* the line readline handed us */
static int line_done;

static void on_line(char *line) {
  got_line = line;
  line_done = 1;
  rl_callback_handler_remove();
}

/* Reads one line. Returns 1 with *line set (NULL at end of input), or 0 if
** Ctrl-C cancelled the line. */
static int read_line(const char *prompt, char **line) {
  line_done = 0;
  got_line = NULL;
  interrupted = 0;
  rl_callback_handler_install(prompt, on_line);
  while (!line_done) {
    if (!interrupted) {
      fd_set fds;
      FD_ZERO(&fds);
      FD_SET(STDIN_FILENO, &fds);
      if (select(STDIN_FILENO + 1, &fds, NULL, NULL, NULL) > 0) rl_callback_read_char();
      else if (errno != EINTR) {
        on_line(NULL);
        break;
      }
    }
    if (interrupted && !line_done) { /* Ctrl-C: drop the line */
      rl_point = rl_end; /* show "^C" after what was typed */
      rl_redisplay();
      fputs("^C\n", rl_outstream);
      fflush(rl_outstream);
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_callback_handler_remove();
      return 0;
    }
  }
  *line = got_line;
  return 1;
}

/* Completion: ask repl.complete(state, line_before_cursor, word) for the candidates. */
static char **complete(const char *text, int start, int end) {
  lua_State *L = globalL;
  int top = lua_gettop(L);
  char **matches = NULL;
  (void)start;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  rl_completion_append_character = '\0'; /* readline resets it each time */
  lua_getfield(L, LUA_REGISTRYINDEX, "crater.repl"); /* {module, state} */
  lua_rawgeti(L, -1, 1);
  lua_getfield(L, -1, "complete");
  lua_rawgeti(L, -3, 2);
  lua_pushlstring(L, rl_line_buffer, (size_t)end);
  lua_pushstring(L, text);
  if (docall(L, 3, 1) == LUA_OK && lua_istable(L, -1)) {
    /* raw length, capped: no metamethod can raise here (outside a protected call) */
    lua_Unsigned raw = lua_rawlen(L, -1);
    int n = raw > 100000 ? 100000 : (int)raw;
    if (n > 0) {
      matches = malloc(((size_t)n + 2) * sizeof *matches);
      int k = 1;
      for (int i = 1; matches != NULL && i <= n; i++) {
        lua_rawgeti(L, -1, i);
        const char *s = lua_tostring(L, -1);
        if (s != NULL) matches[k++] = strdup(s);
        lua_pop(L, 1);
      }
      if (matches != NULL && k == 1) {
        free(matches);
        matches = NULL;
      }
      if (matches != NULL) {
        matches[k] = NULL;
        if (k == 2) matches[0] = strdup(matches[1]); /* one match: use it */
        else { /* the common prefix of all matches */ size_t len = strlen(matches[1]);
          for (int i = 2; i < k; i++) {
            size_t j = 0;
            while (j < len && matches[i][j] == matches[1][j]) j++;
            len = j;
          }
          matches[0] = strndup(matches[1], len);
        }
      }
    }
  }
  lua_settop(L, top); /* errors (and Ctrl-C) give no matches */
  return matches;
}

/* Calls repl[fn](state, s) and prints the text it returns; returns its status string's first char. */
static int repl_call(lua_State *L, const char *fn, const char *s) {
  lua_getfield(L, LUA_REGISTRYINDEX, "crater.repl");
  lua_rawgeti(L, -1, 1);
  lua_getfield(L, -1, fn);
  lua_rawgeti(L, -3, 2);
  lua_pushstring(L, s);
  int status = docall(L, 2, 2);
  int result = 'o';
  if (interrupted) fputc('\n', stdout); /* after the terminal's "^C" */
  if (status != LUA_OK) { /* the REPL's own code failed or was interrupted */
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    result = 'e';
  } else {
    size_t len;
    const char *out = lua_tolstring(L, -2, &len);
    const char *st = lua_tostring(L, -1);
    if (out != NULL && len > 0) {
      fwrite(out, 1, len, stdout);
      if (out[len - 1] != '\n') fputc('\n', stdout);
    }
    if (st != NULL) result = st[0]; /* 'o'k, 'e'rror, 'i'ncomplete, e'x'it */
    lua_pop(L, 2);
  }
  fflush(stdout);
  lua_pop(L, 2);
  return result;
}

/* Loads crater.repl and keeps {module, state} in the registry. */
static int repl_init(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "crater.repl");
  if (report(L, docall(L, 1, 1)) != LUA_OK) return 0;
  lua_createtable(L, 2, 0);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, 1);
  lua_getfield(L, -2, "new");
  lua_createtable(L, 0, 2);
  const char *nocolor = getenv("NO_COLOR"); /* no-color.org: set and not empty */
  lua_pushboolean(L, isatty(STDOUT_FILENO) && (nocolor == NULL || nocolor[0] == '\0'));
  lua_setfield(L, -2, "color");
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, "interactive");
  if (report(L, docall(L, 1, 1)) != LUA_OK) {
    lua_pop(L, 2);
    return 0;
  }
  lua_rawseti(L, -2, 2);
  lua_setfield(L, LUA_REGISTRYINDEX, "crater.repl");
  lua_pop(L, 1);
  return 1;
}

static void do_repl(lua_State *L) {
  const char *oldprogname = progname;
  progname = NULL;
  if (!repl_init(L)) return;
  lua_warning(L, "@on", 0); /* __gc errors print, never end the REPL */
  const char *hist = history_file();
  rl_readline_name = "crater";
  rl_outstream = stdout;
  rl_catch_signals = 0; /* our SIGINT handler stays in charge */
  rl_attempted_completion_function = complete;
  rl_completer_word_break_characters = (char *)" \t\n\"'`@$><=;|&{(,+-*/%^~#[]}";
  rl_completion_append_character = '\0';
  stifle_history(1000);
  if (hist != NULL) read_history(hist);
  printf("crater %s (%s); ?name for help, :help for commands, Ctrl-D to quit\n", CRATER_VERSION, LUA_RELEASE);
  lua_pushliteral(L, ""); /* the chunk being accumulated */
  for (;;) {
    size_t pending;
    lua_tolstring(L, -1, &pending);
    char *line;
    set_sigint();
    if (!read_line(pending ? ".. " : "> ", &line)) {
      lua_pop(L, 1);
      lua_pushliteral(L, ""); /* Ctrl-C drops a half-typed chunk too */
      continue;
    }
    if (line == NULL) {
      fputc('\n', stdout);
      break;
    } /* Ctrl-D */
    if (pending) lua_pushfstring(L, "%s\n%s", lua_tostring(L, -1), line);
    else lua_pushstring(L, line);
    free(line);
    lua_remove(L, -2);
    const char *chunk = lua_tostring(L, -1);
    int st = repl_call(L, "eval_line", chunk);
    if (st == 'i') continue; /* incomplete: read a continuation line */
    if (chunk[strspn(chunk, " \t\n")] != '\0') {
      add_history(chunk);
      if (hist != NULL) write_history(hist);
    }
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    if (st == 'x') break;
  }
  lua_pop(L, 1);
  progname = oldprogname;
}

/* ---------------------------------------------------------------------------
** main: options as lua.c parses them
** ------------------------------------------------------------------------- */

#define has_error 1 /* bad option */
#define has_i 2
#define has_v 4
#define has_e 8
#define has_help 16

/* Scans the options; returns the flags and sets *script to the index of the
** script (argc if none) or, with has_error, of the bad option. */
static int collect_args(char **argv, int argc, int *script) {
  int flags = 0;
  int i;
  for (i = 1; i < argc && argv[i][0] == '-'; i++) {
    const char *o = argv[i];
    if (strcmp(o, "-") == 0) break; /* stdin is the script */
    if (strcmp(o, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) flags |= has_help;
    else if (strcmp(o, "-i") == 0) flags |= has_i;
    else if (strcmp(o, "-v") == 0) flags |= has_v;
    else if (strncmp(o, "-e", 2) == 0) {
      flags |= has_e;
      if (o[2] == '\0' && (i + 1 >= argc || argv[i + 1][0] == '-')) {
        *script = i;
        return flags | has_error; /* -e without code */
      }
      if (o[2] == '\0') i++;
    } else {
      *script = i;
      return flags | has_error;
    }
  }
  *script = i;
  return flags;
}

/* Runs the -e chunks in order. */
static int run_e(lua_State *L, char **argv, int script) {
  for (int i = 1; i < script; i++) {
    if (strncmp(argv[i], "-e", 2) == 0) {
      const char *code = argv[i][2] ? argv[i] + 2 : argv[++i];
      if (dochunk(L, luaL_loadbuffer(L, code, strlen(code), "=(command line)")) != LUA_OK) return 0;
    }
  }
  return 1;
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int script;
  int flags = collect_args(argv, argc, &script);
  lua_pushboolean(L, 0); /* result: failure until the end */
  if (flags & has_error) {
    fprintf(stderr, "%s: unrecognized option or missing code: '%s'\n", progname, argv[script]);
    print_usage(stderr);
    return 1;
  }
  if (flags & has_help) {
    print_usage(stdout);
    lua_pushboolean(L, 1);
    return 1;
  }
  luaL_checkversion(L);
  luaL_openlibs(L);
  set_path(L);
  if (flags & has_v) printf("crater %s  (%s)\n", CRATER_VERSION, LUA_RELEASE);
  if (load_crater(L) != LUA_OK) return 1;
  if (script < argc && !(flags & (has_e | has_i)) && is_command_word(argv[script]))
    return lua_pushboolean(L, run_command(L, argv, argc, script) == LUA_OK), 1;
  create_arg_table(L, argv, argc, script < argc ? script : 0);
  if (!run_e(L, argv, script)) return 1;
  if (script < argc && run_script(L, argv, argc, script) != LUA_OK) return 1;
  if (flags & has_i) do_repl(L);
  else if (script == argc && !(flags & (has_e | has_v))) {
    if (isatty(STDIN_FILENO)) do_repl(L);
    else if (dochunk(L, luaL_loadfile(L, NULL)) != LUA_OK) return 1;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Lua's allocator on the core's small-block pool (ct_pool_take): a tensor's box and the
 * closures around an op are made and collected in bursts, where malloc's slow path showed
 * up.  A block is always returned with the size Lua says it has, the size it was taken
 * with; blocks past CT_POOL_MAX go to malloc. */
static void *crater_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  bool small_old = ptr != NULL && osize <= CT_POOL_MAX;
  if (nsize == 0) {
    if (small_old) ct_pool_give(ptr, osize);
    else free(ptr);
    return NULL;
  }
  if (nsize <= CT_POOL_MAX) {
    if (small_old && (osize + 15) / 16 == (nsize + 15) / 16) return ptr; /* same class */
    void *p = ct_pool_take(nsize);
    if (p == NULL) return NULL;
    if (ptr) {
      memcpy(p, ptr, osize < nsize ? osize : nsize);
      crater_alloc(ud, ptr, osize, 0);
    }
    return p;
  }
  if (ptr == NULL || !small_old) return realloc(ptr, nsize);
  void *p = malloc(nsize); /* a small block grows past the pool's sizes */
  if (p == NULL) return NULL;
  memcpy(p, ptr, osize);
  crater_alloc(ud, ptr, osize, 0);
  return p;
}

static int panic(lua_State *L) {
  const char *msg = lua_tostring(L, -1);
  print_message(msg ? msg : "error object is not a string");
  return 0;
}

/* Warnings as lauxlib's: off until "@on", so a __gc error in the REPL is reported. */
static int warnings_on = 0;
static void warn_f(void *ud, const char *msg, int tocont) {
  static int cont = 0;
  (void)ud;
  if (!cont && *msg == '@') {
    if (strcmp(msg, "@on") == 0) warnings_on = 1;
    else if (strcmp(msg, "@off") == 0) warnings_on = 0;
    return;
  }
  if (warnings_on) {
    if (!cont) fputs("Lua warning: ", stderr);
    fputs(msg, stderr);
    if (!tocont) fputs("\n", stderr);
  }
  cont = tocont;
}

int main(int argc, char **argv) {
  lua_State *L = lua_newstate(crater_alloc, NULL);
  if (L) {
    lua_atpanic(L, panic);
    lua_setwarnf(L, warn_f, L);
  }
  if (L == NULL) {
    print_message("cannot create state: not enough memory");
    return EXIT_FAILURE;
  }
  globalL = L;
  lua_gc(L, LUA_GCGEN, 0, 0); /* generational GC, as lua.c */
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int ok = lua_toboolean(L, -1);
  report(L, status);
  lua_close(L);
  return (ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
