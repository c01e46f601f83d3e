# qwen-edge in a container: build on Debian 12 with exactly the README's commands, run on Debian 12 slim as a
# non-root user with only the runtime libraries.
#
#   docker build -t qwen-edge .                                   # model downloaded at first start
#   docker build -t qwen-edge --build-arg MODEL=qwen2.5-0.5b-instruct:q4_k_m .   # model baked into the image
#   docker run -p 8080:8080 -v qwen-models:/models qwen-edge      # then open http://localhost:8080
#   (or: docker compose up)
# Models live in the volume /models ($QWEN_EDGE_HOME), so a container restart does not download again.
# Behind the Great Firewall: -e HF_ENDPOINT=https://hf-mirror.com (or --build-arg HF_ENDPOINT=… when baking).

FROM debian:bookworm AS build
# The chat page bundles three npm libraries (markdown, sanitizer, code highlighting) that `make` fetches with
# npm when npm is there (mk/web-npm.sh); without it the page shows answers as plain text. WEB_LIBS=0 skips npm.
ARG WEB_LIBS=1
RUN if [ "$WEB_LIBS" = 1 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends npm >/dev/null; fi
WORKDIR /src
COPY . .
# the README's build, unchanged: install the Debian build packages, then make
RUN scripts/deps.sh build && make

FROM debian:bookworm-slim
# runtime libraries of build/qwen-edge (tests/js/docker.test.mjs checks this list against the binary)
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libmicrohttpd12 libjansson4 libutf8proc2 \
      libpcre2-8-0 libsqlite3-0 libcurl4 libssl3 libedit2 libxml2 libpoppler-glib8 libglib2.0-0 libzip4 \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/qwen qwen \
 && mkdir -p /models && chown qwen:qwen /models
COPY --from=build /src/build/qwen-edge /usr/local/bin/qwen-edge
COPY --chmod=755 docker/entrypoint.sh /usr/local/bin/qwen-edge-entrypoint
USER qwen
ENV QWEN_EDGE_HOME=/models
ARG MODEL=
ARG HF_ENDPOINT=
ENV QWEN_EDGE_MODEL=${MODEL}
# Baking happens before VOLUME: changes to a volume path after its VOLUME line would be discarded.
RUN if [ -n "$MODEL" ]; then HF_ENDPOINT="$HF_ENDPOINT" qwen-edge pull "$MODEL"; fi
VOLUME /models
EXPOSE 8080
ENTRYPOINT ["qwen-edge-entrypoint"]
CMD ["serve", "--host", "0.0.0.0"]
