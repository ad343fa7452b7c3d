# duet — build, run, test. `make run` and `make test` are all a fresh Debian machine needs.

# Parallel by default: one job per core. A -j the caller gives wins: on the command line make
# itself prefers it, and one in the environment's MAKEFLAGS is looked for here. Only the top-level
# make sets it, so sub-makes share its jobserver instead of starting their own.
ifeq ($(MAKELEVEL),0)
ifeq ($(filter -j%,$(MAKEFLAGS) $(shell printenv MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif
endif
CXX      ?= g++
CXXFLAGS ?= -O2
REL_FLAGS := $(CXXFLAGS)
WARN     := -Wall -Wextra -Werror
BASE     := -std=c++20 $(WARN) -Iinclude -fno-rtti -ffunction-sections -fdata-sections
# libstdc++ is linked in statically (only the parts we use) and libm dropped: its shared mapping
# alone would cost about 1 MiB of resident memory in an otherwise 2 MiB process.
LDFLAGS  += -Wl,--gc-sections -Wl,-O1 -Wl,--as-needed -static-libstdc++ -static-libgcc
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# The sanitizer build, the test drivers and the fuzz targets link with gold where it is there
# (GNU binutils): a third of the default linker's CPU time for these large links with debug lines
# (1.3 against 0.45 CPU-seconds for a unit-test driver, about 25 s of a clean `make test`). The
# release binary keeps the default linker, with which its link order and figures were measured.
FAST_LD  := $(shell $(CXX) -fuse-ld=gold -Wl,--version >/dev/null 2>&1 && echo -fuse-ld=gold)
# Line tables only (-g1): sanitizer reports still name file and line, and the sanitizer and test
# builds, the largest share of `make test`'s CPU, compile about 15 % faster than with -g.
DEBUG    := -g1

# Quiet by default; `make V=1` prints whole command lines.
Q        := $(if $(V),,@)

# src/ holds one folder per layer (see src/README.md); objects are named by file alone,
# so every source file name is unique across the folders.
LAYERS   := core event net store session http fileport server
SRCS     := $(foreach l,$(LAYERS),$(wildcard src/$(l)/*.cpp))
HDRS     := $(foreach l,$(LAYERS),$(wildcard include/duet/$(l)/*.hpp))
LIB_SRCS := $(filter-out src/server/main.cpp,$(SRCS))
vpath %.cpp $(LAYERS:%=src/%)
# Link order is text order: the code a starting and idle duet runs goes first, so that it shares
# a few 64 KiB windows of the binary (the kernel maps file pages 64 KiB around each one touched)
# instead of touching one in every window; request code follows, upload and reload code last.
STARTUP  := main config listeners lifecycle server server_reload loop helpers log_sink terminate \
            metrics http_response names buffer store upload store_meta store_index store_hashing \
            store_watch store_trash \
            partial_store
REQUEST  := conn http_conn http_parser http_routes http_fields http_conditional http_files \
            store_lookup store_waits server_waits store_listing file_conn file_proto log_escape \
            auth_throttle http_cors http_folders file_folders store_paths
FIRST    := $(STARTUP:%=build/obj/%.o) $(REQUEST:%=build/obj/%.o)
OBJS     := $(FIRST) $(filter-out $(FIRST),$(patsubst %.cpp,build/obj/%.o,$(notdir $(SRCS))))
# The sanitizer build compiles each layer as one unit, build/unity/LAYER.cpp, which includes the
# layer's sources: every standard header and template is then parsed and instantiated once per
# layer instead of once per file, and the library compiles in less than half the CPU time (the
# largest compile of `make test`). The release build stays file by file: its link order and
# per-file flags matter, and it catches a file that compiles only after another's includes. Two
# files keep their own object: the SHA-NI code (its own flags) and the page's assets (.incbin).
SAN_SOLO := build/san/page_assets.o build/san/sha256_shani.o
SAN_LIB  := $(LAYERS:%=build/san/u_%.o) $(SAN_SOLO)
SAN_OBJS := build/san/main.o $(SAN_LIB)
# The longest-running suites are built (and started) first: `make test` runs each binary as
# soon as it is linked, while the others still build.
LONG     := test_e2e_page test_e2e_files test_e2e_crash test_e2e_http test_e2e_lifecycle \
            test_e2e_reload test_e2e_http_files test_e2e_resumable_crash test_e2e_resumable \
            test_e2e_semantics test_e2e_resumable_clients test_e2e_big_listing
ALL_TESTS := $(patsubst test/%.cpp,%,$(wildcard test/test_*.cpp))
TESTS    := $(addprefix build/test/,$(filter $(ALL_TESTS),$(LONG)) $(filter-out $(LONG),$(ALL_TESTS)))
TEST_HELPERS := $(patsubst test/%.cpp,build/san/t_%.o,$(wildcard test/helper_*.cpp))
# What a black-box driver links besides Criterion: the helpers and the two library parts they
# call (SHA-256 and base64), built without sanitizers (see the driver rule below).
E2E_SUPPORT := $(patsubst test/%.cpp,build/e2e/t_%.o,$(wildcard test/helper_*.cpp)) \
            build/e2e/sha256.o build/e2e/sha256_shani.o build/e2e/base64.o

# Precompiled headers, one per flavour of flags (a header precompiled with other flags is not
# used: gcc then silently parses the text, as for the SHA-NI file). Half of each file's
# compile time is parsing standard headers; `make test` builds about 150 files on two cores.
PCH_REL  := build/pch/rel/std_headers.hpp
PCH_OS   := build/pch/os/std_headers.hpp
PCH      = $(PCH_REL)
PCH_SAN  := build/pch/san/std_headers.hpp
PCH_E2E  := build/pch/e2e/test_headers.hpp
PCH_UNIT := build/pch/unit/test_headers.hpp

# Extra per-file flags: the SHA-NI path is compiled for the extension and only called after cpuid.
build/obj/sha256_shani.o build/san/sha256_shani.o build/e2e/sha256_shani.o: EXTRA := -msha -msse4.1
# The release build is optimised for size (-Os), except the code every request or uploaded byte
# runs through (HOT, -O2): all -O2 costs a third more binary for no gain per request that
# bench/http.sh can see; all -Os costs up to a quarter of the requests per CPU-second.
# It has no exception tables either: duet never throws or catches, and anything libstdc++ throws
# (out of memory) ends in std::terminate with or without them, as it did before (14 % of the
# binary). Both only for the release build: the tests keep the defaults.
HOT      := loop conn buffer http_conn http_parser http_routes http_fields http_response \
            http_conditional http_files http_body http_upload_body store_lookup file_conn file_proto \
            write_pipe sha256 sha256_shani
REL_ONLY := -fno-exceptions -fno-asynchronous-unwind-tables
$(filter-out $(HOT:%=build/obj/%.o),$(OBJS)): CXXFLAGS := -Os
$(filter-out $(HOT:%=build/obj/%.o),$(OBJS)): PCH := $(PCH_OS)

.PHONY: all run test check-deps unit clean mutants reload-compat
all: build/duet

build/duet: $(OBJS)
	@echo "  LINK $@"
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) -s -o $@.tmp $^ && mv $@.tmp $@

build/duet-san: $(SAN_OBJS)
	@echo "  LINK $@"
	$(Q)$(CXX) -O1 $(DEBUG) $(SAN) $(FAST_LD) -o $@ $^

# The page's assets (README "The page"): embedded as they are and gzipped (page_assets.cpp).
PAGE     := $(wildcard src/http/page/*)
PAGE_GZ  := $(PAGE:src/http/page/%=build/page/%.gz)
build/page/%.gz: src/http/page/% | build/page
	$(Q)gzip -9nc $< > $@.tmp && mv $@.tmp $@
build/obj/page_assets.o build/san/page_assets.o: $(PAGE) $(PAGE_GZ)

build/obj/%.o: %.cpp $(HDRS) $(PCH_REL).gch $(PCH_OS).gch | build/obj
	@echo "  CXX  $<"
	$(Q)$(CXX) $(BASE) $(REL_ONLY) $(CXXFLAGS) $(EXTRA) -include $(PCH) -MMD -c -o $@ $<

# -Og: a third less compile time than -O1 (the largest share of `make test`), code still fast
# enough for the black-box tests.
build/san/%.o: %.cpp $(PCH_SAN).gch | build/san
	@echo "  CXX  $< (sanitizers)"
	$(Q)$(CXX) $(BASE) -Og $(DEBUG) $(SAN) $(EXTRA) -include $(PCH_SAN) -MMD -c -o $@ $<
build/san/u_%.o: build/unity/%.cpp $(PCH_SAN).gch | build/san
	@echo "  CXX  src/$*/ (sanitizers, one unit)"
	$(Q)$(CXX) $(BASE) -Og $(DEBUG) $(SAN) -include $(PCH_SAN) -MMD -c -o $@ $<
# Rewritten only when the layer's list of files changes (the folder's time changes with it), so
# that an unchanged list does not rebuild the layer.
build/unity/%.cpp: src/% | build/unity
	$(Q)for f in $(sort $(filter-out src/server/main.cpp src/http/page_assets.cpp \
	    src/core/sha256_shani.cpp,$(wildcard src/$*/*.cpp))); do \
	    echo "#include \"../../$$f\""; done > $@.tmp && \
	    if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

build/san/t_%.o: test/%.cpp | build/san
	@echo "  CXX  $<"
	$(Q)$(CXX) $(BASE) -Itest -O1 $(DEBUG) $(SAN) -MMD -c -o $@ $<

# Test drivers are built at -O0: they only call into the -O1 library and the shared helpers and
# wait on sockets, and -O1 would cost them four times the compile time (18 s against 4 s of CPU
# for test_e2e_http_files.cpp), the largest share of `make test` on two cores.
# They link the library as an archive, so each takes only the objects it uses (a black-box test
# needs little more than the helpers).
# Each is linked under a temporary name and renamed: `make test` starts a binary as soon as it
# appears, so it must never see one half written.
build/test/%: test/%.cpp build/san/libduet.a $(TEST_HELPERS) $(PCH_UNIT).gch | build/test
	@echo "  TEST $@"
	$(Q)$(CXX) $(BASE) -Itest -O0 $(DEBUG) $(SAN) -include $(PCH_UNIT) $(FAST_LD) -MMD -MT $@ -MF $@.d -o $@.tmp $< \
	    $(TEST_HELPERS) build/san/libduet.a -lcriterion && mv $@.tmp $@
# Black-box drivers only talk to the sanitized server (build/duet-san) over sockets, so they are
# built and linked without sanitizers: Criterion starts a fresh process for every test, and the
# sanitizer runtime's start-up would cost each of the ~330 black-box tests 0.1 s of CPU.
build/test/test_e2e_%: test/test_e2e_%.cpp $(E2E_SUPPORT) $(PCH_E2E).gch | build/test
	@echo "  TEST $@"
	$(Q)$(CXX) $(BASE) -Itest -O0 $(DEBUG) -include $(PCH_E2E) -MMD -MT $@ -MF $@.d -c -o $@.o $< && \
	    $(CXX) $(FAST_LD) -o $@.tmp $@.o $(E2E_SUPPORT) -lcriterion && \
	    mv $@.tmp $@ && rm -f $@.o
build/e2e/t_%.o: test/%.cpp | build/e2e
	$(Q)$(CXX) $(BASE) -Itest -O1 $(DEBUG) -MMD -c -o $@ $<
build/e2e/%.o: %.cpp | build/e2e
	$(Q)$(CXX) $(BASE) -O1 $(DEBUG) $(EXTRA) -MMD -c -o $@ $<

# Each is compiled from a copy beside it: gcc looks for NAME.gch next to the NAME it is told to
# include, and falls back to that copy's text when the .gch does not fit a file's flags.
$(PCH_REL).gch: include/duet/core/std_headers.hpp
	$(Q)mkdir -p $(@D) && cp $< $(@D)/ && $(CXX) $(BASE) $(REL_ONLY) $(REL_FLAGS) -x c++-header -o $@.tmp $< && mv $@.tmp $@
$(PCH_OS).gch: include/duet/core/std_headers.hpp
	$(Q)mkdir -p $(@D) && cp $< $(@D)/ && $(CXX) $(BASE) $(REL_ONLY) -Os -x c++-header -o $@.tmp $< && mv $@.tmp $@
$(PCH_SAN).gch: include/duet/core/std_headers.hpp
	$(Q)mkdir -p $(@D) && cp $< $(@D)/ && $(CXX) $(BASE) -Og $(DEBUG) $(SAN) -x c++-header -o $@.tmp $< && mv $@.tmp $@
$(PCH_E2E).gch: test/test_headers.hpp include/duet/core/std_headers.hpp
	$(Q)mkdir -p $(@D) && cp $< $(@D)/ && $(CXX) $(BASE) -Itest -O0 $(DEBUG) -x c++-header -o $@.tmp $< && mv $@.tmp $@
$(PCH_UNIT).gch: test/test_headers.hpp include/duet/core/std_headers.hpp
	$(Q)mkdir -p $(@D) && cp $< $(@D)/ && $(CXX) $(BASE) -Itest -O0 $(DEBUG) $(SAN) -x c++-header -o $@.tmp $< && mv $@.tmp $@

build/san/libduet.a: $(SAN_LIB)
	$(Q)rm -f $@ && ar rcs $@ $^

build/obj build/san build/e2e build/test build/page build/unity:
	mkdir -p $@

# The test helpers are built once and linked into every test binary: keep them although make
# sees them as intermediate files.
.SECONDARY: $(TEST_HELPERS) $(E2E_SUPPORT) $(LAYERS:%=build/unity/%.cpp)

-include $(wildcard build/obj/*.d build/san/*.d build/e2e/*.d build/test/*.d)

# Ctrl+C reaches both duet and make (the whole foreground process group). duet stops gracefully
# and exits 0; make waits for it, then dies of the same SIGINT, so the shell reports status 130.
# Say so up front, so that 130 does not read as duet failing. `build/duet` alone exits 0.
run: build/duet
	@echo "make run: Ctrl+C stops duet gracefully (duet exits 0; the shell shows 130 because make was interrupted too)"
	./build/duet

# Installs what the tests need when it is missing (as root), then runs every test.
check-deps:
	@sh test/deps.sh

unit: $(TESTS) build/duet build/duet-san

# A pipeline on two cores: the sanitized library first; then the test drivers build (BUILDER,
# longest suites first) while test/run.sh starts each one as soon as it is linked, and beside them
# the release binary and the fuzz targets build and the fuzz smoke runs (ALONGSIDE: a few seconds
# per target, one at a time, in a make of its own that stays out of the jobserver: `make fuzz`
# runs long); the test binaries mostly wait on sockets. Suites that need
# the release binary start once it is linked; the load-sensitive ones run last, alone.
test: check-deps
	@sh test/layers.sh
	@$(MAKE) --no-print-directory build/duet-san build/san/libduet.a $(TEST_HELPERS) \
	    $(E2E_SUPPORT)
	@BUILDER="$(MAKE) --no-print-directory $(TESTS)" \
	 ALONGSIDE="$(MAKE) --no-print-directory build/duet $(if $(wildcard test/fuzz/fuzz.mk),fuzz-build \
	     && MAKEFLAGS= $(MAKE) --no-print-directory -j1 fuzz-smoke)" \
	    bash test/run.sh $(TESTS)

# Opt-in, not part of `make test`: applies each test/mutants/*.patch (a small realistic bug) to a
# copy of the tree, rebuilds and runs the tests; fails unless every mutation is caught.
mutants:
	@bash test/mutants/run.sh

# Opt-in: a reload from an older build (OLD=rev, default the commit before the layer folders)
# into this one, with downloads, uploads and half-sent requests in flight, loses nothing.
reload-compat:
	@bash test/reload_compat.sh

# libFuzzer targets (clang-14): `make fuzz FUZZ_SECONDS=600` for a longer run.
-include test/fuzz/fuzz.mk

clean:
	rm -rf build
