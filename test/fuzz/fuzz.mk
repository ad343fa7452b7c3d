# libFuzzer targets for the pure parsers (issue 6). Included from the top-level Makefile.
#
#   make fuzz                      build, then run each target for FUZZ_SECONDS (default 300)
#   make fuzz FUZZ_SECONDS=3600    a longer run
#   make fuzz-smoke                the short run `make test` does (FUZZ_SMOKE_SECONDS, default 10)
#   make fuzz-build                only build build/fuzz/fuzz_*
#
# Each run starts from the committed seeds in test/fuzz/corpus/<target>/, copied into
# build/fuzz/corpus-<target>/ (which keeps what the fuzzer adds; the committed seeds are never
# written). A crash leaves its input in build/fuzz/artifacts-<target>/ and fails the target;
# turn each one into a test in test/test_fuzz_regressions.cpp.

FUZZ_CXX      ?= clang++-14
# The smoke in `make test` only checks that each target runs and the seeds pass; `make fuzz` is
# where bugs are hunted (the targets run side by side under make's -j).
FUZZ_SMOKE_SECONDS ?= 1
FUZZ_SECONDS  ?= 300
FUZZ_SAN      := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
                 -fno-omit-frame-pointer
FUZZ_FLAGS    := -std=c++20 -Iinclude -g1 -O1 -Wall -Wextra $(FUZZ_SAN)
FUZZ_TARGETS  := fuzz_http_head fuzz_chunked fuzz_file_cmd fuzz_log_escape fuzz_upload_fields \
                 fuzz_handover
FUZZ_BINS     := $(FUZZ_TARGETS:%=build/fuzz/%)
# Only what the targets call (the parsers, name validation in names.cpp, SHA-256 and the
# hand-over records), not the whole server: each of these compiles for seconds under the fuzz
# sanitizers. When one of these starts to need another source, the fuzz link fails naming the
# symbol: add that source here, or keep the pure part apart from the server as names.cpp is.
FUZZ_LIB_NAMES := http_parser http_body http_fields file_proto names sha256 log_escape \
                  sha256_shani base64 upload_fields handover handover_record
FUZZ_LIB_OBJS := $(FUZZ_LIB_NAMES:%=build/fuzz/obj/%.o)
# Longest input per target: a little past each limit the parser enforces (8 KiB request line,
# 4 KiB chunk extension, 4 KiB command line), so the limits themselves get exercised.
FUZZ_MAX_LEN_fuzz_http_head := 12000
FUZZ_MAX_LEN_fuzz_chunked   := 10000
FUZZ_MAX_LEN_fuzz_file_cmd  := 9000
FUZZ_MAX_LEN_fuzz_log_escape := 5000
FUZZ_MAX_LEN_fuzz_upload_fields := 512
FUZZ_MAX_LEN_fuzz_handover  := 4096

build/fuzz/obj/sha256_shani.o: FUZZ_EXTRA := -msha -msse4.1
# Built once and shared by the targets: keep them although they are intermediate.
.SECONDARY: $(FUZZ_LIB_OBJS)

.PHONY: fuzz fuzz-smoke fuzz-build $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-build: $(FUZZ_BINS)

fuzz: FUZZ_TIME = $(FUZZ_SECONDS)
fuzz: $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-smoke: FUZZ_TIME = $(FUZZ_SMOKE_SECONDS)
fuzz-smoke: $(FUZZ_TARGETS:%=fuzz-run-%)

build/fuzz/obj/%.o: %.cpp $(HDRS) | build/fuzz/obj
	@echo "  CXX  $< (fuzzing)"
	$(Q)$(FUZZ_CXX) $(FUZZ_FLAGS) $(FUZZ_EXTRA) -c -o $@ $<

build/fuzz/%: test/fuzz/%.cpp $(FUZZ_LIB_OBJS) $(HDRS) | build/fuzz/obj
	@echo "  FUZZ $@"
	$(Q)$(FUZZ_CXX) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS)

build/fuzz/obj:
	mkdir -p $@

$(FUZZ_TARGETS:%=fuzz-run-%): fuzz-run-%: build/fuzz/%
	@mkdir -p build/fuzz/corpus-$* build/fuzz/artifacts-$*
	@cp test/fuzz/corpus/$*/* build/fuzz/corpus-$*/
	@echo "fuzz: $* for $(FUZZ_TIME) s"
	@build/fuzz/$* -max_total_time=$(FUZZ_TIME) -max_len=$(FUZZ_MAX_LEN_$*) -timeout=10 \
		-print_final_stats=1 -dict=test/fuzz/$*.dict \
		-artifact_prefix=build/fuzz/artifacts-$*/ build/fuzz/corpus-$* \
		> build/fuzz/$*.log 2>&1 \
		|| { tail -60 build/fuzz/$*.log; echo "fuzz: $* FAILED (input in build/fuzz/artifacts-$*/)"; exit 1; }
	@grep -E 'stat::number_of_executed_units|stat::new_units_added' build/fuzz/$*.log \
		| tr '\n' ' ' | sed "s|^|fuzz: $* ok: |"; echo
