# mk/grammar.mk — constrained decoding extras: its benchmark (built by `make test` so it keeps compiling; run with
# `make bench-grammar [BENCH_ARGS=--json]`) and the libFuzzer target for the JSON Schema and GBNF compilers (needs
# clang; `make fuzz-grammar [FUZZ_ARGS=-max_total_time=60]`, also run by tests/fuzz/run.sh).
# This file is included before the Makefile's first rule: keep `all` the default goal.
ifeq ($(.DEFAULT_GOAL),)
.DEFAULT_GOAL := all
endif
.PHONY: bench-grammar fuzz-grammar
$(BUILD)/bench/grammar: bench/grammar_bench.c $(BUILD)/libqwen.a
	@mkdir -p $(@D)
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqwen.a $(LDLIBS)
unit test: $(BUILD)/bench/grammar

bench-grammar: $(BUILD)/bench/grammar
	$(BUILD)/bench/grammar $(BENCH_ARGS)

FUZZ_CC ?= clang
FUZZ_GRAMMAR_SRC := src/grammar.c src/gbnf.c src/json_schema.c src/base.c
$(BUILD)/fuzz/fuzz_grammar: tests/fuzz/fuzz_grammar.c $(FUZZ_GRAMMAR_SRC) src/grammar.h src/gbnf.h src/json_schema.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Isrc \
	  $(shell pkg-config --cflags jansson) -o $@ tests/fuzz/fuzz_grammar.c $(FUZZ_GRAMMAR_SRC) \
	  $(shell pkg-config --libs jansson) -lm -lpthread
fuzz-grammar: $(BUILD)/fuzz/fuzz_grammar
	@mkdir -p $(BUILD)/fuzz/corpus-grammar
	@cp -n tests/fuzz/corpus-grammar/* $(BUILD)/fuzz/corpus-grammar/ 2>/dev/null || true
	$(BUILD)/fuzz/fuzz_grammar $(BUILD)/fuzz/corpus-grammar -max_len=4096 -timeout=10 -rss_limit_mb=2048 $(FUZZ_ARGS)
