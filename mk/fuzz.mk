# mk/fuzz.mk — the libFuzzer targets, one per parser: tests/fuzz/fuzz_<name>.c (needs clang; not part of
# `make test`, whose unit tests run bounded mutation stand-ins). One pattern rule builds them all; a new parser's
# fuzzer is a new tests/fuzz/fuzz_<name>.c plus one line below naming the sources it needs.
#   make fuzz [FUZZ_S=60]        every target for FUZZ_S seconds each (tests/fuzz/run.sh: seeds, corpus, crashes)
#   make fuzz-<name> [FUZZ_S=60] one target, e.g. make fuzz-gguf FUZZ_S=30
# Each target is built from the sources it tests, not from libqwen.a: that one has no coverage instrumentation.
FUZZ_CC     ?= clang
FUZZ_S      ?= 60
FUZZ_DIR    := $(BUILD)/fuzz
FUZZ_NAMES  := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS   := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_CFLAGS := -std=gnu11 -O1 -g -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer $(shell pkg-config --cflags jansson libutf8proc libpcre2-8 2>/dev/null)
FUZZ_LIBS   := $(shell pkg-config --libs jansson libutf8proc libpcre2-8 2>/dev/null) -lm -lpthread

# what each target links besides its own file and src/base.c
$(FUZZ_DIR)/fuzz_gguf:        src/gguf.c src/quant.c src/quant_k.c
$(FUZZ_DIR)/fuzz_safetensors: src/safetensors.c
$(FUZZ_DIR)/fuzz_tokenizer:   src/tokenizer.c src/tokenizer_build.c src/tokenizer_json.c src/tokenizer_detok.c
$(FUZZ_DIR)/fuzz_grammar:     src/grammar.c src/gbnf.c src/json_schema.c

# any header change rebuilds them (a few seconds each; no per-target dependency files to keep)
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c src/base.c $(wildcard src/*.h) mk/fuzz.mk
	@mkdir -p $(@D)
	@echo "  FUZZ $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^) $(FUZZ_LIBS)

.PHONY: fuzz $(FUZZ_NAMES:%=fuzz-%)
fuzz: all $(FUZZ_BINS)
	@FUZZ_DIR=$(FUZZ_DIR) tests/fuzz/run.sh $(FUZZ_S) $(FUZZ_NAMES)

$(FUZZ_NAMES:%=fuzz-%): fuzz-%: all $(FUZZ_DIR)/fuzz_%
	@FUZZ_DIR=$(FUZZ_DIR) tests/fuzz/run.sh $(FUZZ_S) $*
