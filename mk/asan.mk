# mk/asan.mk — `make test-asan`: the binary and the C unit tests built with AddressSanitizer (+ LeakSanitizer)
# and UndefinedBehaviorSanitizer in their own build dir, then tests/run.sh against them: the unit tests and the
# end-to-end tests (node starts the sanitized binary through QE_BIN). Slow; not part of `make test`.
# docs/TESTING.md says what it covers, how long it takes and why each ASAN_OPTIONS entry is there.
#   make test-asan [ASAN_FILTER=regex] [ASAN_SKIP=regex]   (as QE_TEST_FILTER / QE_TEST_SKIP of tests/run.sh)
ASAN_BUILD  := $(BUILD)/asan
# every file, the *_avx2.c / *_avx512.c kernels included (their ISA flags add to these); UBSan findings stop the
# program like ASan's instead of printing and going on, so no report can scroll by unnoticed
ASAN_SAN    := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ASAN_TESTS  := $(TEST_SRC:tests/unit/%.c=$(ASAN_BUILD)/tests/%)
# Left out: parity (llama.cpp against us on every weight type and on the full 0.5B shape: measured ~2.5 min per
# tiny-shape type under ASan, the 0.5B files far more) and docker (it checks the shipped binary's libraries,
# which a sanitized binary does not have). Every other file runs, new ones included.
ASAN_FILTER ?= .
ASAN_SKIP   ?= /(parity|docker)\.test\.mjs$$
# detect_leaks: LSan at every exit, also of the server processes the node tests start and stop (SIGTERM ends
#   serve through its normal shutdown path, so what it still holds then is a real leak).
# log_path: every report goes to a file as well (pid-suffixed); node's tests may swallow a child's stderr, so
#   the recipe fails if any report file exists after the run.
# allocator_may_return_null: the code checks every malloc for NULL and turns a size it cannot have into a clean
#   QE_ENOMEM (tests ask for absurd sizes on purpose); ASan's default would abort there instead.
# exitcode=23: a sanitized process that found something exits 23 (also for leaks), which the tests see.
ASAN_RUN_OPTIONS = detect_leaks=1:allocator_may_return_null=1:log_path=$(CURDIR)/$(ASAN_BUILD)/logs/asan:exitcode=23
UBSAN_RUN_OPTIONS = print_stacktrace=1:halt_on_error=1:log_path=$(CURDIR)/$(ASAN_BUILD)/logs/ubsan

.PHONY: test-asan
test-asan: deps-test
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) SANITIZE="$(ASAN_SAN)" $(ASAN_BUILD)/qwen-edge $(ASAN_TESTS)
	@rm -rf $(ASAN_BUILD)/logs && mkdir -p $(ASAN_BUILD)/logs
	@start=$$(date +%s); \
	 QE_BUILD=$(ASAN_BUILD) QE_BIN=$(CURDIR)/$(ASAN_BUILD)/qwen-edge QE_TEST_TMP=$(CURDIR)/$(ASAN_BUILD)/tmp \
	 QE_TEST_FILTER='$(ASAN_FILTER)' QE_TEST_SKIP='$(ASAN_SKIP)' ASAN_OPTIONS='$(ASAN_RUN_OPTIONS)' UBSAN_OPTIONS='$(UBSAN_RUN_OPTIONS)' \
	 tests/run.sh; rc=$$?; \
	 echo "test-asan: $$(( $$(date +%s) - start )) s"; \
	 if ls $(ASAN_BUILD)/logs/* >/dev/null 2>&1; then \
	   echo "test-asan: sanitizer reports:"; head -n 60 $(ASAN_BUILD)/logs/*; exit 1; fi; \
	 exit $$rc
