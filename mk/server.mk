# mk/server.mk — development stand-ins for modules that have not landed yet (tests/stub/*_stub.c). Each is
# linked only while the real src/<module>.c is absent, so merging the real module drops its stub by itself.
STUB_MODS := $(foreach m,tokenizer model sampler engine,$(if $(wildcard src/$(m).c),,$(m)))
LIB_OBJ += $(STUB_MODS:%=$(BUILD)/tests/stub/%_stub.o)
