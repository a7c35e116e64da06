# crater: `make` builds the library, the Lua module and the executable; `make test`
# runs every spec; `make demo` runs the main job.  See README.md.
CC      ?= gcc
# -flto: a small op crosses a dozen of the core's files (allocation, tensor, autograd,
# ops); inlining across them was 2% of a Rosenbrock step's instructions
OPT     ?= -O3 -march=native -flto=auto
PREFIX  ?= /usr/local
BUILD   ?= build
DEBS    := lua5.4 liblua5.4-dev lua-busted libopenblas-dev zlib1g-dev libreadline-dev pkg-config gnuplot-nox \
           dataset-fashion-mnist lua-check libopenmpi-dev openmpi-bin
# needed by the tests only: installed by `make test`, not by `make deps`
TEST_DEBS := libcmocka-dev chromium-headless-shell
# needed by `make doc` only
DOC_DEBS := lua-ldoc
# needed by `make lint` only
LINT_DEBS := clang-format cppcheck
# '=' (not ':='): on a fresh machine pkg-config and the -dev packages arrive with `deps`,
# so these are asked for when a recipe runs, after it
LUAINC   = $(shell pkg-config --cflags lua5.4 2>/dev/null || echo -I/usr/include/lua5.4)
BLASINC  = $(shell pkg-config --cflags openblas 2>/dev/null)
BLASLIB  = $(shell pkg-config --libs openblas 2>/dev/null || echo -lopenblas)
WARN    := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes -Wno-unused-parameter
# -fno-semantic-interposition: -fPIC alone forbids inlining calls between the core's own
# exported functions (a small op makes dozens of them)
CFLAGS  += -pthread -std=c11 -D_GNU_SOURCE -fPIC -fno-semantic-interposition -fno-math-errno $(OPT) $(WARN) $(LUAINC) $(BLASINC) $(XCFLAGS)
LDLIBS   = $(BLASLIB) -lz -lm -pthread
BUSTED  := lua5.4 /usr/bin/busted

CORE_SRC := $(wildcard src/core/*.c src/ops/*.c src/autograd/*.c src/optim/*.c src/data/*.c src/fuse/*.c)
# src/lua/ldistributed.c is crater.distributed, a module of its own that links MPI (below)
BIND_SRC := $(filter-out src/lua/ldistributed.c,$(wildcard src/lua/*.c))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
BIND_OBJ := $(BIND_SRC:%.c=$(BUILD)/obj/%.o)
HEADERS  := $(wildcard src/*/*.h) src/ops/ops.def

LIB    := $(BUILD)/libcrater.a
MODULE := $(BUILD)/lib/crater/core.so
EXE    := $(BUILD)/crater
DIST   := $(BUILD)/lib/crater/distributed.so

.PHONY: test-dist bench-dist bench-base all deps test-deps lint-deps format format-check ctest test asan valgrind demo bench bench-instr install lint check-layers doc doc-deps clean fuzz fuzz-deps fuzz-api
all: deps $(LIB) $(MODULE) $(EXE) $(DIST)

# Debian packages only: install the missing ones when root, else print the apt-get line.
deps test-deps doc-deps lint-deps: PKGS = $(if $(filter test-deps,$@),$(TEST_DEBS),$(if $(filter doc-deps,$@),$(DOC_DEBS),$(if $(filter lint-deps,$@),$(LINT_DEBS),$(DEBS))))
deps test-deps doc-deps lint-deps:
	@missing=""; for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	  else echo "crater needs Debian packages; run: sudo apt-get install -y$$missing"; exit 1; fi; \
	fi

# The objects are remade when the flags change (another OPT or XCFLAGS into the same
# BUILD): this file holds the flags they were made with.
FLAGS_FILE := $(BUILD)/.cflags
$(FLAGS_FILE): FORCE
	@mkdir -p $(BUILD); echo '$(CC) $(OPT) $(XCFLAGS)' | cmp -s - $@ || echo '$(CC) $(OPT) $(XCFLAGS)' >$@
.PHONY: FORCE

$(BUILD)/obj/%.o: %.c $(HEADERS) $(FLAGS_FILE) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The core builds without Lua's or BLAS's include path: a stray #include <lua.h> there fails
# to compile (spec/layers.lua, `make check-layers`, checks the includes between layers).
CORE_CFLAGS = $(filter-out $(LUAINC) $(BLASINC),$(CFLAGS))
$(BUILD)/obj/src/core/%.o: src/core/%.c $(HEADERS) $(FLAGS_FILE) | deps
	@mkdir -p $(dir $@)
	$(CC) $(CORE_CFLAGS) -c $< -o $@

# crater.fuse's VM must give the op-by-op kernels' bits: never an FMA (that is -std=c11's
# default already; said here so that no OPT or XCFLAGS can change it)
$(BUILD)/obj/src/fuse/fuse.o $(BUILD)/obj/src/ops/elementwise.o: CFLAGS += -ffp-contract=off

$(LIB): $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

# The module leaves Lua's symbols to the host interpreter, as Lua modules do.
$(MODULE): $(BIND_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(OPT) -shared -o $@ $(BIND_OBJ) $(LIB) $(LDLIBS)

# crater.distributed links OpenMPI (pkg-config ompi) and nothing of the core: it reaches
# crater.core's functions through core.capi at run time.  Without MPI it is skipped, and
# crater runs as before.
$(DIST): src/lua/ldistributed.c $(HEADERS) | deps
	@if pkg-config --exists ompi; then mkdir -p $(dir $@); \
	  echo "$(CC) ... -shared -o $@ $< \$$(pkg-config --cflags --libs ompi)"; \
	  $(CC) $(CFLAGS) $$(pkg-config --cflags ompi) -shared -o $@ $< $$(pkg-config --libs ompi) -ldl || exit 1; \
	else echo "crater.distributed skipped: no MPI (apt-get install libopenmpi-dev openmpi-bin)"; fi

$(EXE): $(BUILD)/obj/src/main.o $(BIND_OBJ) $(LIB)
	$(CC) $(OPT) -o $@ $^ $(shell pkg-config --libs lua5.4) -lreadline $(LDLIBS) -Wl,-E

# C-level tests (spec/c/*_test.c, cmocka): they link libcrater.a alone, without Lua's
# headers or library, so they also show that the core stands without the binding.
CTESTS := $(patsubst spec/c/%.c,$(BUILD)/spec-c/%,$(wildcard spec/c/*_test.c))
$(BUILD)/spec-c/%: spec/c/%.c spec/c/ctest.h $(LIB) | test-deps
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -pthread $(OPT) $(WARN) -Wno-missing-prototypes $(XCFLAGS) -o $@ $< $(LIB) -lcmocka $(LDLIBS)
ctest: $(CTESTS)
	@s=0; for t in $(CTESTS); do $$t || s=1; done; exit $$s

# The allocation-failure sweeps collect garbage thousands of times, which is cheap in a
# fresh process and slow in one whose heap holds every other spec: they run on their own.
SWEEPS := alloc_spec
test: all $(CTESTS)
	@s=0; for t in $(CTESTS); do $$t || s=1; done; $(BUSTED) --exclude-pattern=$(SWEEPS) $(BUSTED_ARGS) || s=1; \
	$(BUSTED) --pattern=$(SWEEPS) $(BUSTED_ARGS) || s=1; $(MAKE) --no-print-directory test-dist || s=1; exit $$s

# The distributed specs (spec/distributed/*_mpi.lua: the default "_spec" pattern leaves them
# out of the runs above) under mpirun with 2 and 3 ranks.  Every rank runs busted with JSON
# output; spec/distributed/merge.lua prints one busted summary line per world, a spec
# counting as passed when it passed on every rank.  mpirun refuses root without the two
# variables, and 3 ranks on 2 cores need --oversubscribe; timeout ends a hung world.
MPIRUN := env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun --oversubscribe
DIST_NP ?= 2 3
test-dist: all
	@[ -f $(DIST) ] || { echo "test-dist: $(DIST) was not built (no MPI)"; exit 1; }; s=0; \
	for np in $(DIST_NP); do \
	  rm -rf $(BUILD)/spec-dist/np$$np; mkdir -p $(BUILD)/spec-dist/np$$np; \
	  echo "distributed specs, mpirun -np $$np:"; \
	  CRATER_SPEC_OUT=$(BUILD)/spec-dist/np$$np timeout 120 $(MPIRUN) -np $$np \
	    sh -c '$(BUSTED) --pattern=_mpi -o json $(BUSTED_ARGS) spec/distributed \
	      >"$$CRATER_SPEC_OUT/rank$$OMPI_COMM_WORLD_RANK.json"'; rc=$$?; \
	  lua5.4 spec/distributed/merge.lua $(BUILD)/spec-dist/np$$np $$np $$rc || s=1; \
	done; exit $$s

demo: all
	$(EXE) examples/demo.lua

# The course: every examples/tutorial/NN_*.lua, its text, pictures and script, on one page
.PHONY: tutorial
tutorial: all
	$(EXE) examples/tutorial/build.lua out/tutorial

# `make bench BASE=<commit>` also builds that commit's tree in build-base/ and runs every
# crater script on both builds in the same run (run.lua --base): old against new, one table.
# BENCH_ARGS passes run.lua's options (`--only rosenbrock,ops --no-torch`).
bench: all $(if $(BASE),bench-base)
	$(EXE) examples/bench/run.lua $(BENCH_ARGS) $(if $(BASE),--base build-base/tree/build/crater)
	@$(if $(BENCH_ARGS),,$(MAKE) --no-print-directory bench-dist)

bench-base:
	rm -rf build-base && mkdir -p build-base/tree
	git archive $(BASE) | tar -x -C build-base/tree
	$(MAKE) -C build-base/tree -j2 all >/dev/null

# Section distributed (README.md, "Beyond one machine"): all_reduce between 2 ranks against
# copy_, the MLP on 2 ranks x 1 thread against 1 rank x 2 threads, and the per-step compute
# the cost model uses.  BENCH lines as every bench script's.
bench-dist: all
	@echo "== distributed"; if [ ! -f $(DIST) ]; then echo "# skipped: crater.distributed was not built (no MPI)"; exit 0; fi; \
	$(MPIRUN) -np 2 $(EXE) examples/bench/distributed.lua allreduce $(BENCH_ARGS) && \
	$(MPIRUN) -np 2 $(EXE) examples/bench/distributed.lua mlp 1 $(BENCH_ARGS) && \
	$(EXE) examples/bench/distributed.lua mlp 2 $(BENCH_ARGS) && \
	$(EXE) examples/bench/distributed.lua step $(BENCH_ARGS)

# Instructions per step of the small-op loop (callgrind): the noise-free figure.  valgrind
# cannot decode AVX-512, so this runs a -march=x86-64-v3 build of its own.
bench-instr:
	$(MAKE) BUILD=build-v3 OPT="-O3 -march=x86-64-v3 -flto=auto" all
	$(CC) -shared -fPIC -O2 -o build-v3/fixed_time.so examples/bench/fixed_time.c
	$(CC) -shared -fPIC -O2 $(LUAINC) -o build-v3/instr_floor.so examples/bench/instr_floor.c
	build-v3/crater examples/bench/instr.lua

# AddressSanitizer + UBSan over the whole spec suite (lua5.4 itself is not instrumented,
# so the runtime is preloaded).
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  XCFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDLIBS="$(LDLIBS) -fsanitize=address,undefined" all ctest
	@export LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 CRATER_BUILD=build-asan; s=0; \
	$(BUSTED) --cpath="build-asan/lib/?.so" --exclude-pattern=$(SWEEPS) $(BUSTED_ARGS) || s=1; \
	$(BUSTED) --cpath="build-asan/lib/?.so" --pattern=$(SWEEPS) $(BUSTED_ARGS) || s=1; exit $$s

# valgrind cannot decode AVX-512, so the examples run on a build for x86-64-v3 (AVX2).
VG_EXAMPLES := examples/quickstart.lua examples/newton_rosenbrock.lua examples/custom_schedule.lua \
               examples/custom_optimizer.lua
valgrind:
	$(MAKE) BUILD=build-vg OPT="-O1 -g -march=x86-64-v3" all
	for f in $(VG_EXAMPLES); do \
	  echo "== $$f"; \
	  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	    build-vg/crater $$f >/dev/null || exit 1; \
	done; echo "valgrind: clean"

# LUADIR/LIBDIR are where Lua looks for modules (luarocks passes its own).
LUADIR ?= $(PREFIX)/share/lua/5.4
LIBDIR ?= $(PREFIX)/lib/lua/5.4
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/crater $(DESTDIR)$(LUADIR)
	install -m 755 $(EXE) $(DESTDIR)$(PREFIX)/bin/crater
	install -m 644 $(MODULE) $(DESTDIR)$(LIBDIR)/crater/core.so
	[ ! -f $(DIST) ] || install -m 644 $(DIST) $(DESTDIR)$(LIBDIR)/crater/distributed.so
	cp -r lua/crater $(DESTDIR)$(LUADIR)/

lint: check-layers format-check
	luacheck lua spec examples
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance src

# One C layout (.clang-format): format-check fails on any file that differs from it, and
# `make format` rewrites them (the X-macro tables in src/ops/ops.def are laid out by hand).
FORMAT_SRC = $(wildcard src/*.c src/*/*.c src/*/*.h spec/c/*.c spec/c/*.h examples/bench/*.c)
format-check: lint-deps
	clang-format --dry-run --Werror $(FORMAT_SRC)
format: lint-deps
	clang-format -i $(FORMAT_SRC)

check-layers:
	lua5.4 spec/layers.lua

# The HTML API reference (LDoc, Debian's lua-ldoc) in out/doc: the Lua modules from their
# LDoc comments, crater.core from lua/crater/doc_core.lua (what `?help` reads).
doc: all doc-deps
	@rm -rf $(BUILD)/doc && mkdir -p $(BUILD)/doc/src out/doc && cp -r lua/crater $(BUILD)/doc/src/
	CRATER_BUILD=$(BUILD) lua5.4 spec/doc/core_reference.lua $(BUILD)/doc/src/crater/core.lua
	@printf 'project = "crater"\ntitle = "crater reference"\nfile = "%s"\ndir = "%s"\n' \
	  "$(CURDIR)/$(BUILD)/doc/src/crater" "$(CURDIR)/out/doc" >$(BUILD)/doc/config.ld
	ldoc -q -c $(BUILD)/doc/config.ld . 2>$(BUILD)/doc/ldoc.log || { cat $(BUILD)/doc/ldoc.log; exit 1; }
	@test -s out/doc/index.html && echo "doc: out/doc/index.html"

# libFuzzer targets (Debian's clang-14 + libclang-rt-14-dev) for the IDX reader, the
# checkpoint reader and the safetensors/.npy/.npz readers, with ASan and UBSan; seeds in
# spec/fuzz/corpus/<target>, new inputs go to build-fuzz/corpus/<target>.
# `make fuzz FUZZ_TIME=600` runs each for 10 minutes.
FUZZ_TIME ?= 60
FUZZ_CC   ?= clang
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -g -O1
FUZZ_SRC  := $(CORE_SRC) $(BIND_SRC)
FUZZ_OBJ  := $(FUZZ_SRC:%.c=build-fuzz/obj/%.o)

build-fuzz/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -fPIC $(LUAINC) $(BLASINC) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

build-fuzz/%_fuzz: spec/fuzz/%_fuzz.c spec/fuzz/lua_fuzz.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(LUAINC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $(filter-out %.h,$^) $(shell pkg-config --libs lua5.4) $(LDLIBS)

fuzz-deps:
	@command -v $(FUZZ_CC) >/dev/null && [ -n "$$(find /usr/lib/llvm-14 -name 'libclang_rt.fuzzer*' 2>/dev/null)" ] || \
	  { if [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev >/dev/null; \
	    else echo "make fuzz needs: sudo apt-get install -y clang libclang-rt-14-dev"; exit 1; fi; }

fuzz: fuzz-deps build-fuzz/idx_fuzz build-fuzz/checkpoint_fuzz build-fuzz/interop_fuzz
	@for t in idx checkpoint interop; do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  echo "fuzz $$t: $(FUZZ_TIME) s"; \
	  ./build-fuzz/$${t}_fuzz -max_total_time=$(FUZZ_TIME) -max_len=65536 -rss_limit_mb=2048 \
	    -print_final_stats=1 build-fuzz/corpus/$$t spec/fuzz/corpus/$$t 2>build-fuzz/$$t.log; \
	  s=$$?; grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added)' build-fuzz/$$t.log; \
	  [ $$s = 0 ] || { tail -40 build-fuzz/$$t.log; exit 1; }; \
	done

# API fuzzer (issue #17): random calls of every public function with hostile arguments,
# on the ASan+UBSan build, CRATER_MEMORY_LIMIT capping each legal but huge tensor, for
# API_FUZZ_TIME seconds of wall time over seeds from API_FUZZ_SEED on (see
# spec/fuzz/run_api_fuzz.sh: a crash is replayed to name its calls; a call stalled in
# legal work on a huge view is named and the next seed goes on).
API_FUZZ_TIME ?= 60
API_FUZZ_SEED ?= 1
fuzz-api:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	  XCFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDLIBS="$(LDLIBS) -fsanitize=address,undefined" all
	@export LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 CRATER_MEMORY_LIMIT=64 \
	  LUA_CPATH="build-asan/lib/?.so;;" LUA_PATH="lua/?.lua;lua/?/init.lua;;"; \
	spec/fuzz/run_api_fuzz.sh $(API_FUZZ_TIME) $(API_FUZZ_SEED) build-asan

clean:
	rm -rf build build-asan build-vg build-fuzz
