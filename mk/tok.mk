# mk/tok.mk — tokenizer extras: the libFuzzer target (needs clang; not part of `make test`).
#   make fuzz-tokenizer [FUZZ_ARGS=-max_total_time=60]
# This file is included before the Makefile's `all`: keep `all` the default goal.
.DEFAULT_GOAL := all
FUZZ_CC ?= clang
FUZZ_TOK_SRC := src/tokenizer.c src/tokenizer_build.c src/tokenizer_json.c src/tokenizer_detok.c src/base.c
.PHONY: fuzz-tokenizer
fuzz-tokenizer: $(BUILD)/fuzz/fuzz_tokenizer
	@mkdir -p $(BUILD)/fuzz/corpus-tokenizer
	$(BUILD)/fuzz/fuzz_tokenizer $(BUILD)/fuzz/corpus-tokenizer $(FUZZ_ARGS)
$(BUILD)/fuzz/fuzz_tokenizer: tests/fuzz/fuzz_tokenizer.c $(FUZZ_TOK_SRC) src/tokenizer.h src/tokenizer_internal.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc $(shell pkg-config --cflags jansson libutf8proc libpcre2-8) \
	  -o $@ tests/fuzz/fuzz_tokenizer.c $(FUZZ_TOK_SRC) $(shell pkg-config --libs jansson libutf8proc libpcre2-8) -lm -lpthread
