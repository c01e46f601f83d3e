/* pull_internal.h — what the files behind pull.h share, and nothing else: the description of one remote file
 * and of one response's headers, plus the helpers each file offers the others. Not a public API (pull.h is).
 *
 *   pull.c           qe_pull: one model, file by file, into <name>.part with resume, size cap and sha256 check
 *   pull_http.c      libcurl: common options (timeouts, redirects, https only after https, CA bundle), HF_TOKEN
 *                    only to HF_ENDPOINT's own origin, header parsing, GET of a small document, HEAD, error text
 *   pull_hub.c       the hubs: Hugging Face / ModelScope file-list APIs (sizes, sha256, split parts), URL shapes
 *   pull_progress.c  the progress bar on stderr (qe_pull_progress_*) and byte counts for people
 *   model_resolve.c  what `-m ARG` means (qe_model_resolve, qe_model_precheck) */
#pragma once
#include <curl/curl.h>
#include <stdint.h>

#include "pull.h"

#define MAX_PARTS 64

typedef struct {
    char name[256];
    uint64_t size;      /* 0: unknown */
    char sha256[65];    /* "": unknown */
} remote_file;

typedef struct {
    /* headers of the latest response (reset at each status line, so after redirects they are the final
     * one's), except the X-Linked-* values, which HF puts on the first (redirect) response */
    long status;
    uint64_t content_length;
    int have_content_length;
    uint64_t range_start, range_total;
    int have_range;
    uint64_t linked_size;
    char linked_sha[65];
    char etag_sha[65];
} resp_headers;

/* pull_http.c */
void pull_take_sha256(const char *v, size_t n, char out[65]);
const char *pull_hf_endpoint(void);
void pull_set_common(CURL *c, const char *url, const qe_pull_opts *o, resp_headers *h);
int pull_http_status_error(char *err, long status, const char *url);
int pull_transport_error(char *err, const char *url, CURLcode rc, const qe_pull_opts *o);
int pull_http_get_small(const char *url, const qe_pull_opts *o, char **body, long *status, char *err);
int pull_http_head(const char *url, const qe_pull_opts *o, remote_file *rf, char *err);

/* pull_hub.c */
int pull_list_remote(const qe_model_ref *ref, const char *endpoint, qe_source src, const qe_pull_opts *o,
                     remote_file *files, int *n, char *err);
void pull_endpoint_for(qe_source src, char *out, size_t cap);
void pull_file_url(const qe_model_ref *ref, const char *endpoint, qe_source src, const char *name, char *out, size_t cap);

/* pull_progress.c */
void pull_human(uint64_t b, char *out, size_t cap);
