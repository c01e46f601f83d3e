# mk/kb.mk — knowledge-base extras: the libFuzzer target of its parsers (needs clang; not part of `make test`).
#   make fuzz-kb [FUZZ_ARGS=-max_total_time=60]
# This file is included before the Makefile's `all`: keep `all` the default goal.
.DEFAULT_GOAL := all
FUZZ_CC ?= clang
KB_FUZZ_SRC := tests/fuzz/fuzz_kb.c src/store/kb_extract_txt.c src/store/kb_extract_md.c src/store/kb_extract_html.c \
               src/store/kb_chunk.c src/store/kb_faq.c src/store/kb_fts_tokenizer.c src/base.c
.PHONY: fuzz-kb
fuzz-kb: $(BUILD)/fuzz/fuzz_kb
	@mkdir -p $(BUILD)/fuzz/corpus-kb
	$(BUILD)/fuzz/fuzz_kb $(BUILD)/fuzz/corpus-kb $(FUZZ_ARGS)
# the rest (SQLite glue, tokenizer, model store) comes uninstrumented from libqwen.a: linked, never called here
$(BUILD)/fuzz/fuzz_kb: $(KB_FUZZ_SRC) src/store/kb_internal.h src/store/kb.h $(BUILD)/libqwen.a
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc $(shell pkg-config --cflags $(PKGS)) \
	  -o $@ $(KB_FUZZ_SRC) $(BUILD)/libqwen.a $(shell pkg-config --libs $(PKGS)) -lm -lpthread
