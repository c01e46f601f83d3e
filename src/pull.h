/* pull.h — download a model into the store (modelstore.h) with libcurl: Hugging Face (or the mirror in
 * HF_ENDPOINT, e.g. https://hf-mirror.com), ModelScope, or any http(s) URL.
 *
 * Guarantees: the file appears under its final name only after its size and, when the hub publishes it,
 * its sha256 were checked; until then it is <file>.part, which a later pull resumes with an HTTP Range
 * request. Connect and low-speed timeouts are always set, so no network means a clear error in seconds,
 * never a hang. A model already in the store is returned without any network access (unless force).
 *
 * Split models (the hub publishes …-00001-of-0000n.gguf parts) are downloaded part by part and merged
 * into one GGUF file (gguf.h) under the unsplit name.
 *
 * Hostile servers: HF_TOKEN goes only to HF_ENDPOINT's exact scheme, host and port, and never across a redirect
 * to another host; https never redirects to http; a file is never longer than the hub's size for it (else
 * QWEN_EDGE_MAX_DOWNLOAD, 64 GiB); the .part is opened without following symbolic links; the store must not
 * be writable by others (modelstore.h).
 *
 * Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (sent to the hub only),
 * MODELSCOPE_ENDPOINT (default https://modelscope.cn), QWEN_EDGE_HOME (the store), http(s)_proxy,
 * CURL_CA_BUNDLE (the CA file, as for the curl tool), QWEN_EDGE_STALL_TIMEOUT (seconds under 1 KiB/s before a stalled transfer
 * is dropped and resumed; 60), QWEN_EDGE_MAX_DOWNLOAD (bytes), QWEN_EDGE_MAKE_RUN (set by `make run`: the
 * no-network advice is given in make's words).
 *
 * Code: pull.c (qe_pull and one file's download: resume, size cap, sha256), pull_http.c (libcurl, redirects,
 * HF_TOKEN), pull_hub.c (the hubs' file lists and URLs), pull_progress.c (the progress bar), model_resolve.c
 * (qe_model_resolve, qe_model_precheck); pull_internal.h is what they share. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "modelstore.h"

/* Seconds to reach a server (DNS, TCP and TLS together). Without network the first run's download, and so
 * `make run`, gives up after this long: long enough for a slow link, short enough to wait for. */
#define QE_PULL_CONNECT_TIMEOUT_S 10

/* Called about ten times a second while bytes arrive. total is 0 when the server does not say. */
typedef void (*qe_pull_progress_fn)(void *user, uint64_t done, uint64_t total);

typedef struct {
    qe_source source;               /* QE_SOURCE_HF (default) or QE_SOURCE_MODELSCOPE; ignored for URLs */
    int force;                      /* download again even if the file is in the store */
    int quiet;                      /* no messages on stderr (errors still go to err) */
    int retries;                    /* extra attempts after a dropped connection (resuming); <0 means 3 */
    qe_pull_progress_fn progress;   /* NULL: none (see qe_pull_progress_stderr) */
    void *progress_user;
    const volatile int *cancel;     /* if non-NULL and set, the download stops with QE_ECANCELED */
    int connect_timeout_s;          /* 0: QE_PULL_CONNECT_TIMEOUT_S */
    int low_speed_time_s;           /* abort if under 1 KiB/s for this long; 0: $QWEN_EDGE_STALL_TIMEOUT or 60 s */
} qe_pull_opts;

/* Downloads spec (see qe_model_ref_parse; NULL = the default model) unless it is already in the store, and
 * writes the local path to path_out. opts may be NULL (defaults, quiet, no progress). Returns QE_OK or a
 * negative code with one paragraph in err saying what went wrong and what to do (for no network: use a
 * local file with -m, a mirror through HF_ENDPOINT, or --source modelscope). */
int qe_pull(const char *spec, const qe_pull_opts *opts, char *path_out, size_t cap, char *err);

/* A ready-made progress callback: on a terminal a redrawn bar with bytes, speed and ETA; otherwise one
 * plain line every 10 %. user must point to a qe_pull_progress_state zeroed before the download. */
typedef struct {
    const char *label;      /* optional prefix, e.g. the model name */
    /* private */
    double t0, last_draw;
    uint64_t last_done, start_done;
    int last_decile, tty, started;
    int line_open;          /* a terminal bar is drawn without its newline yet */
} qe_pull_progress_state;
/* Ends an open progress bar line (call after qe_pull returns; harmless otherwise). */
void qe_pull_progress_end(qe_pull_progress_state *s);
void qe_pull_progress_stderr(void *user, uint64_t done, uint64_t total);


/* What `-m ARG` (or no -m) means, in one call for serve / chat / run:
 *   NULL or ""            the default model: from the store, or downloaded now (first run)
 *   an existing file      itself
 *   a Hugging Face folder its GGUF conversion in $QWEN_EDGE_HOME/cache/ (converted once; hf_out_type as in
 *                         qe_hf_to_gguf: -1 keeps the stored types, or e.g. QE_TYPE_Q8_0 for convert --type q8_0)
 *   a model name or URL   from the store, or downloaded now
 * Downloads show a progress bar on stderr unless quiet. path_out receives a GGUF file path. On failure err
 * holds the whole story, including what to do without network. */
int qe_model_resolve(const char *arg, int hf_out_type, int quiet, char *path_out, size_t cap, char *err);

/* The part of qe_model_resolve that needs neither network nor conversion, for a caller that wants to fail
 * before it starts anything (serve, before it listens): QE_OK when arg is a file or Hugging Face folder, is
 * in the store, or is a name or URL that can be downloaded; otherwise the error qe_model_resolve would give. */
int qe_model_precheck(const char *arg, char *err);

