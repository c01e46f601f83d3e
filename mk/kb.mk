# mk/kb.mk — knowledge-base extras: how its libFuzzer target is built (run by mk/fuzz.mk: make fuzz-kb, make fuzz).
# Unlike the other targets it links libqwen.a (SQLite glue, tokenizer, model store: linked, never called there)
# and every library of PKGS, so it has its own rule; its parsers are compiled instrumented from source.
KB_FUZZ_SRC := src/store/kb_extract_txt.c src/store/kb_extract_md.c src/store/kb_extract_html.c \
               src/store/kb_chunk.c src/store/kb_faq.c src/store/kb_fts_tokenizer.c src/base.c
$(BUILD)/fuzz/fuzz_kb: tests/fuzz/fuzz_kb.c $(KB_FUZZ_SRC) src/store/kb_internal.h src/store/kb.h $(BUILD)/libqwen.a
	@mkdir -p $(@D)
	@echo "  FUZZ $@"
	@$(FUZZ_CC) $(FUZZ_CFLAGS) $(shell pkg-config --cflags $(PKGS)) \
	  -o $@ tests/fuzz/fuzz_kb.c $(KB_FUZZ_SRC) $(BUILD)/libqwen.a $(shell pkg-config --libs $(PKGS)) -lm -lpthread
