# mk/grammar.mk — constrained decoding extras: its benchmark, built by `make test` so it keeps compiling; run with
# `make bench-grammar [BENCH_ARGS=--json]`. Its fuzz target (JSON Schema and GBNF compilers) is in mk/fuzz.mk.
.PHONY: bench-grammar
$(BUILD)/bench/grammar: bench/grammar_bench.c $(BUILD)/libqwen.a
	@mkdir -p $(@D)
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqwen.a $(LDLIBS)
unit test: $(BUILD)/bench/grammar

bench-grammar: $(BUILD)/bench/grammar
	$(BUILD)/bench/grammar $(BENCH_ARGS)
