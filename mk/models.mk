# mk/models.mk — model-store extras: the libFuzzer target of the safetensors parser (needs clang; not part of
# `make test`, which runs a 20 000-mutation stand-in in tests/unit/test_safetensors.c).
#   make fuzz-safetensors [FUZZ_ARGS=-max_total_time=60]
# This file is included before the Makefile's `all`: keep `all` the default goal.
.DEFAULT_GOAL := all
FUZZ_CC ?= clang
.PHONY: fuzz-safetensors
fuzz-safetensors: $(BUILD)/fuzz/fuzz_safetensors
	@mkdir -p $(BUILD)/fuzz/corpus-safetensors
	$(BUILD)/fuzz/fuzz_safetensors $(BUILD)/fuzz/corpus-safetensors tests/fuzz/corpus-safetensors $(FUZZ_ARGS)
$(BUILD)/fuzz/fuzz_safetensors: tests/fuzz/fuzz_safetensors.c src/safetensors.c src/safetensors.h src/base.c
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -Isrc $(shell pkg-config --cflags jansson) \
	  -o $@ tests/fuzz/fuzz_safetensors.c src/safetensors.c src/base.c $(shell pkg-config --libs jansson) -lm -lpthread
