# mk/kernels.mk — the kernel micro-benchmark (built by `make test` so it keeps compiling; run only here):
#   make bench-kernels [BENCH_ARGS="--types q8_0,q4_0 --threads 2"]
.PHONY: bench-kernels
$(BUILD)/bench/kernels: bench/kernels.c $(BUILD)/libqwen.a
	@mkdir -p $(@D)
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqwen.a $(LDLIBS)

bench-kernels: $(BUILD)/bench/kernels
	$(BUILD)/bench/kernels $(BENCH_ARGS)

# the sampler micro-benchmark (top-k off over the real vocabulary), built with the tests like the one above
$(BUILD)/bench/sampler: bench/sampler.c $(BUILD)/libqwen.a
	@mkdir -p $(@D)
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqwen.a $(LDLIBS)
