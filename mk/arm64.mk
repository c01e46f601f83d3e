# mk/arm64.mk — on x86-64, the kernel-level unit tests are also cross-built for aarch64 (gcc-aarch64-linux-gnu)
# and run under qemu-user by `make test` (tests/run.sh): the NEON kernel set is held to the reference for every
# weight type without an ARM machine. Only these tests: the rest of the library links Debian libraries that
# would need their arm64 builds. Linked statically: nothing depends on which arm64 libc (cross sysroot or
# multiarch) qemu would find, and mixing the two hangs in pthread_create. On an aarch64 host the normal unit tests
# run the NEON set natively.
ifeq ($(ARCH),x86_64)
A64_CC     := aarch64-linux-gnu-gcc
A64_BUILD  := $(BUILD)/arm64
A64_SRC    := $(filter-out %_avx2.c %_avx512.c,$(wildcard src/kernels/*.c)) src/base.c src/quant.c src/quant_k.c \
              src/threadpool.c
A64_OBJ    := $(A64_SRC:%.c=$(A64_BUILD)/%.o)
A64_TESTS  := $(A64_BUILD)/tests/test_kernels $(A64_BUILD)/tests/test_ops
# the host's flags without its include paths (pkg-config's -I/usr/include/...: x86-64 headers)
A64_CFLAGS  = $(filter-out -I/%,$(CFLAGS))

$(A64_OBJ): $(A64_BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@echo "  CC $< (aarch64)"
	@$(A64_CC) $(A64_CFLAGS) $(if $(filter %_neon.c,$<),$(ISA_NEON)) -c -o $@ $<

$(A64_TESTS): $(A64_BUILD)/tests/%: tests/unit/%.c $(A64_OBJ) tests/unit/test.h
	@mkdir -p $(@D)
	@echo "  LD $@"
	@$(A64_CC) $(A64_CFLAGS) -static -Itests/unit -o $@ $< $(A64_OBJ) -lm -lpthread

test: $(A64_TESTS)
endif
