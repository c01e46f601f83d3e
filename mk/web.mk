# mk/web.mk — the chat page embedded in the binary: build/gen/web_assets.c from web/* and the npm libraries
# it bundles (marked, DOMPurify, highlight.js; pinned in package.json). They come from ./node_modules when
# `scripts/deps.sh test` installed it, else `make` installs just those three into build/npm-web (see
# mk/web-npm.sh); nothing third-party is committed.
WEB_SRC := $(sort $(wildcard web/*.html web/*.js web/*.css web/*.svg))
WEB_NM := $(if $(wildcard node_modules/marked/lib/marked.umd.js),node_modules,$(BUILD)/npm-web/node_modules)
WEB_LIBS := $(WEB_NM)/marked/lib/marked.umd.js
GEN_SRC += $(BUILD)/gen/web_assets.c

$(BUILD)/npm-web/node_modules/marked/lib/marked.umd.js:
	@mk/web-npm.sh $(BUILD)/npm-web

$(BUILD)/gen/web_assets.c: $(WEB_SRC) $(BUILD)/gen/reset.js $(WEB_LIBS) mk/web-embed.sh mk/web.mk package.json
	@mk/web-embed.sh $(BUILD)/gen $(WEB_NM) $(WEB_SRC) $(BUILD)/gen/reset.js

# /reset.js: the reset words and rule of the terminal chat (src/chat_reset.h), for the page; the C preprocessor
# turns the shared list into JavaScript, so the page and the terminal cannot drift apart
$(BUILD)/gen/reset.js: mk/reset.js.in src/chat_reset.h mk/web.mk
	@mkdir -p $(@D)
	@$(CC) -E -P -C -ffreestanding -x c -Isrc mk/reset.js.in | sed '/^[[:space:]]*$$/d' > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	$(CC) $(CFLAGS) -c -o $@ $<
