# mk/kernels.mk — the kernel micro-benchmark (built by `make test` so it keeps compiling; run only here):
#   make bench-kernels [BENCH_ARGS="--types q8_0,q4_0 --threads 2"]
.PHONY: bench-kernels
$(BUILD)/bench/kernels: bench/kernels.c $(BUILD)/libqwen.a
	@mkdir -p $(@D)
	@echo "  LD $@"
	@$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libqwen.a $(LDLIBS)

bench-kernels: $(BUILD)/bench/kernels
	$(BUILD)/bench/kernels $(BENCH_ARGS)
