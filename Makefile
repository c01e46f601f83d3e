# qwen-edge — one Makefile, no configure step.
#   make            build build/qwen-edge (installs missing Debian build packages first)
#   make run        build and serve the chat page on http://localhost:8080
#   make install    copy qwen-edge and its man page to PREFIX (default /usr/local; DESTDIR for packaging)
#   make test       build and run every test (installs test tools first)
#   make bench      side-by-side benchmark against llama.cpp (long; not part of test)
#   make fuzz       fuzz the parsers (long; not part of test; FUZZ_S=seconds per target, mk/fuzz.mk)
#   make test-asan  the binary and unit tests built with ASan+UBSan in build/asan, then the tests against them
#                   (slow; not part of test; mk/asan.mk, docs/TESTING.md)
# Sources are found by wildcard: a new src/foo.c or tests/unit/test_foo.c needs no edit here.
# Files named *_avx2.c / *_avx512.c / *_neon.c are compiled with that ISA's flags only; the code picks one
# at run time from cpuid, so one binary runs on every x86-64 CPU.

CC      ?= cc
BUILD   ?= build
# On a bare machine the compiler does not exist yet when make reads this file (the `deps` prerequisite installs it
# later in the same run): then the machine's own architecture is the target's.
ARCH    := $(or $(shell $(CC) -dumpmachine 2>/dev/null | cut -d- -f1),$(shell uname -m))
PKGS    := libmicrohttpd jansson libutf8proc libpcre2-8 sqlite3 libcurl libcrypto libedit libxml-2.0 poppler-glib libzip
OPT     ?= -O2
# extra compile+link flags of a variant build (mk/asan.mk sets the sanitizers here, with its own BUILD dir)
SANITIZE ?=
CFLAGS  ?=
CFLAGS  += -std=gnu11 $(OPT) $(SANITIZE) -g -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-format-truncation -Werror -pthread \
           -fno-strict-aliasing -Isrc -I$(BUILD)/gen -MMD -MP $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread

ISA_AVX2   := -mavx2 -mfma -mf16c
ISA_AVX512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mfma -mf16c
# plain ARMv8.0 (Raspberry Pi 4 and up): matmul_neon.c enables dotprod for itself, matmul_neon_v80.c does not
ISA_NEON   := -march=armv8-a

ALL_SRC := $(wildcard src/*.c src/*/*.c)
ifeq ($(ARCH),x86_64)
  ALL_SRC := $(filter-out %_neon.c %_neon_v80.c,$(ALL_SRC))
else ifeq ($(ARCH),aarch64)
  ALL_SRC := $(filter-out %_avx2.c %_avx512.c,$(ALL_SRC))
else
  ALL_SRC := $(filter-out %_avx2.c %_avx512.c %_neon.c %_neon_v80.c,$(ALL_SRC))
endif
CLI_SRC := $(filter src/cli/%,$(ALL_SRC))
LIB_SRC := $(filter-out src/cli/%,$(ALL_SRC))
GEN_SRC  =
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o) $(GEN_SRC:%.c=%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# `all` is the default goal, set here once: mk/*.mk is included before the first rule and must not set it.
.DEFAULT_GOAL := all

# --- per-area extras: generated sources (the chat page), fuzzers, the sanitizer build, ... ---------------
# include, not -include: a broken or missing file fails the build instead of silently dropping its targets
include $(wildcard mk/*.mk)

.PHONY: all deps deps-test run test unit bench clean install uninstall
all: deps $(BUILD)/qwen-edge

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

$(BUILD)/libqwen.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	@echo "  AR $@"
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/qwen-edge: $(CLI_OBJ) $(BUILD)/libqwen.a
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%_avx2.o: %_avx2.c
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(ISA_AVX2) -c -o $@ $<
$(BUILD)/%_avx512.o: %_avx512.c
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(ISA_AVX512) -c -o $@ $<
$(BUILD)/%_neon.o: %_neon.c
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) $(ISA_NEON) -c -o $@ $<
$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libqwen.a tests/unit/test.h
	@mkdir -p $(@D)
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libqwen.a $(LDLIBS)

# the kernel benchmark is built (not run) with the tests, so a layout change cannot leave it behind
unit: all $(TEST_BIN) $(BUILD)/bench/kernels $(BUILD)/bench/sampler

# serve explains any failure itself (no model and no network: what to do, in `make run` words: it sees
# QWEN_EDGE_MAKE_RUN); a failure is make's failure too (exit status 2), so scripts and CI see it
run: all
	@QWEN_EDGE_MAKE_RUN=$(BUILD)/qwen-edge $(BUILD)/qwen-edge serve $(ARGS)

test: deps-test all $(TEST_BIN) $(BUILD)/bench/kernels $(BUILD)/bench/sampler
	@tests/run.sh

bench: deps-test all
	PATH="$$PWD/build/tools/node/bin:$$PATH" bench/compare

clean:
	rm -rf $(BUILD)

# The binary is all there is to install (the chat page is embedded in it), stripped of its debug information, plus
# a man page made from its own --help texts (mk/man.sh).
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
STRIP   ?= strip

$(BUILD)/qwen-edge.1: $(BUILD)/qwen-edge mk/man.sh
	@echo "  MAN $@"
	@mk/man.sh $(BUILD)/qwen-edge > $@.tmp && mv $@.tmp $@

install: all $(BUILD)/qwen-edge.1
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(MANDIR)/man1"
	install -m 755 $(BUILD)/qwen-edge "$(DESTDIR)$(BINDIR)/qwen-edge"
	$(STRIP) "$(DESTDIR)$(BINDIR)/qwen-edge"
	install -m 644 $(BUILD)/qwen-edge.1 "$(DESTDIR)$(MANDIR)/man1/qwen-edge.1"

uninstall:
	rm -f "$(DESTDIR)$(BINDIR)/qwen-edge" "$(DESTDIR)$(MANDIR)/man1/qwen-edge.1"

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
