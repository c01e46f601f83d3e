/* pull_http.c — the libcurl side of pull.h: the options every request gets (connect and stall timeouts,
 * redirects, https never downgraded to http, CURL_CA_BUNDLE, HF_TOKEN only to HF_ENDPOINT's own origin), the
 * response-header parser (size, Content-Range, sha256 from X-Linked-Etag / ETag), a GET of a small document
 * and a HEAD, and the error messages for HTTP statuses and for "no network".
 *
 * Not here: which URLs the hubs use and what their file lists say (pull_hub.c), the body of a download with
 * its resume, size cap and checksum (pull.c), the progress bar (pull_progress.c). */
#define _GNU_SOURCE
#include "pull_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "version.h"

#define LISTING_MAX (16u << 20)

/* Takes a 64-hex-digit sha256 out of a header or JSON value ("\"abc…\"", W/"…"); "" if it is not one
 * (HF's ETag of a small non-LFS file is a 40-digit git hash, not a sha256). */
void pull_take_sha256(const char *v, size_t n, char out[65]) {
    out[0] = 0;
    while (n && (isspace((unsigned char)*v) || *v == '"' || *v == 'W' || *v == '/')) v++, n--;
    while (n && (isspace((unsigned char)v[n - 1]) || v[n - 1] == '"')) n--;
    if (n != 64) return;
    for (size_t i = 0; i < 64; i++) if (!isxdigit((unsigned char)v[i])) return;
    for (size_t i = 0; i < 64; i++) out[i] = (char)tolower((unsigned char)v[i]);
    out[64] = 0;
}

/* ---------------------------------------------------------------------------------------------------
 * curl plumbing */

static size_t on_header(char *p, size_t size, size_t nitems, void *user) {
    resp_headers *h = user;
    size_t n = size * nitems;
    if (n >= 5 && !strncmp(p, "HTTP/", 5)) {
        const char *sp = memchr(p, ' ', n);
        h->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        h->have_content_length = h->have_range = 0;
        h->content_length = h->range_start = h->range_total = 0;
        h->etag_sha[0] = 0;
        return n;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon) return n;
    size_t kn = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vn = n - kn - 1;
    char val[256];
    while (vn && isspace((unsigned char)*v)) v++, vn--;
    while (vn && isspace((unsigned char)v[vn - 1])) vn--;
    snprintf(val, sizeof val, "%.*s", (int)(vn < 255 ? vn : 255), v);
    if (kn == 14 && !strncasecmp(p, "content-length", kn)) {
        h->content_length = strtoull(val, NULL, 10);
        h->have_content_length = 1;
    } else if (kn == 13 && !strncasecmp(p, "content-range", kn)) {
        unsigned long long a, b, t;
        if (sscanf(val, "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
            h->range_start = a; h->range_total = t; h->have_range = 1;
        }
    } else if (kn == 13 && !strncasecmp(p, "x-linked-size", kn)) {
        h->linked_size = strtoull(val, NULL, 10);
    } else if (kn == 13 && !strncasecmp(p, "x-linked-etag", kn)) {
        pull_take_sha256(val, strlen(val), h->linked_sha);
    } else if (kn == 4 && !strncasecmp(p, "etag", kn)) {
        pull_take_sha256(val, strlen(val), h->etag_sha);
    }
    return n;
}

/* The endpoint a URL's scheme, host and port must equal for HF_TOKEN to go with it. */
const char *pull_hf_endpoint(void) {
    const char *ep = getenv("HF_ENDPOINT");
    return ep && ep[0] ? ep : "https://huggingface.co";
}

/* 1 when a and b have the same scheme, host and port (default ports filled in), as libcurl's own URL parser
 * reads them. A text prefix test is not enough: "https://huggingface.co@evil.tld/" and
 * "https://huggingface.co.evil.tld/" both start with "https://huggingface.co". */
static int same_origin(const char *a, const char *b) {
    static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    CURLU *ua = curl_url(), *ub = curl_url();
    int same = ua && ub && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
               curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK;
    for (int i = 0; same && i < 3; i++) {
        char *x = NULL, *y = NULL;
        same = curl_url_get(ua, parts[i], &x, CURLU_DEFAULT_PORT) == CURLUE_OK &&
               curl_url_get(ub, parts[i], &y, CURLU_DEFAULT_PORT) == CURLUE_OK && !strcasecmp(x, y);
        curl_free(x);
        curl_free(y);
    }
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

static int is_https(const char *url) { return !strncasecmp(url, "https://", 8); }

/* HF_TOKEN goes only to the Hugging Face endpoint itself (same scheme, host and port). It is set as libcurl's
 * bearer credential, not as a custom header: libcurl then never sends it on to another host, port or scheme
 * when it follows a redirect (HF redirects file downloads to its CDN), as CURLOPT_UNRESTRICTED_AUTH is off. */
static void set_auth(CURL *c, const char *url) {
    const char *tok = getenv("HF_TOKEN");
    if (!tok || !tok[0] || !same_origin(url, pull_hf_endpoint())) return;
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
    curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, tok);
}

/* Seconds under 1 KiB/s before a transfer is given up (and resumed by the next attempt):
 * opts, else $QWEN_EDGE_STALL_TIMEOUT, else 60. */
static int low_speed_time(const qe_pull_opts *o) {
    if (o->low_speed_time_s > 0) return o->low_speed_time_s;
    const char *e = getenv("QWEN_EDGE_STALL_TIMEOUT");
    int v = e ? atoi(e) : 0;
    return v > 0 && v <= 3600 ? v : 60;
}

void pull_set_common(CURL *c, const char *url, const qe_pull_opts *o, resp_headers *h) {
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "qwen-edge/" QE_VERSION);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* what began over https stays on https: a redirect to http would hand the bytes (and whatever the
     * redirect hop carried) to anyone on the path */
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, is_https(url) ? "https" : "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)(o->connect_timeout_s > 0 ? o->connect_timeout_s : QE_PULL_CONNECT_TIMEOUT_S));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)low_speed_time(o));
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, h);
    /* the curl tool's variable for a private CA (a company proxy that inspects TLS; the tests' local hub) */
    const char *ca = getenv("CURL_CA_BUNDLE");
    if (ca && ca[0]) curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    set_auth(c, url);
}

static void host_of(const char *url, char *out, size_t cap) {
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, "/:?#");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), h);
}

/* The message for "the network is not there": says exactly what to do instead, in the words of the command
 * that was run (`make run` sets QWEN_EDGE_MAKE_RUN to the binary's path), and offers the Hugging Face mirror
 * only when HF_ENDPOINT is not that mirror already. */
static int no_network(char *err, const char *url, const char *why, const qe_pull_opts *o) {
    char host[128], ephost[128], local[96], mirror[112] = "", other[192];
    host_of(url, host, sizeof host);
    host_of(pull_hf_endpoint(), ephost, sizeof ephost);
    const char *make = getenv("QWEN_EDGE_MAKE_RUN");
    int via_make = make && make[0];
    int on_mirror = !strcasecmp(ephost, "hf-mirror.com");
    if (via_make) snprintf(local, sizeof local, "make run ARGS=\"-m FILE.gguf\"");
    else snprintf(local, sizeof local, "-m FILE.gguf   (qwen-edge serve -m FILE.gguf)");
    if (o->source == QE_SOURCE_MODELSCOPE) {
        snprintf(other, sizeof other, "\n  - or download from Hugging Face:        qwen-edge pull --source hf");
        if (!on_mirror) snprintf(mirror, sizeof mirror, "\n  - or through a Hugging Face mirror:     HF_ENDPOINT=https://hf-mirror.com qwen-edge pull");
    } else {
        if (!on_mirror)
            snprintf(mirror, sizeof mirror, "\n  - or download through a mirror:         HF_ENDPOINT=https://hf-mirror.com %s",
                     via_make ? "make run" : "qwen-edge pull");
        if (via_make) snprintf(other, sizeof other, "\n  - or download from ModelScope (China):  %.100s pull --source modelscope, then make run", make);
        else snprintf(other, sizeof other, "\n  - or download from ModelScope (China):  qwen-edge pull --source modelscope");
    }
    return qe_errf(err, QE_EIO, "cannot reach %s (%s). No model was downloaded. What to do:\n"
                   "  - use a model file you already have:   %s%s%s", host, why, local,
                   o->source == QE_SOURCE_MODELSCOPE ? other : mirror, o->source == QE_SOURCE_MODELSCOPE ? mirror : other);
}

int pull_http_status_error(char *err, long status, const char *url) {
    if (status == 404)
        return qe_errf(err, QE_ENOTFOUND, "not found (HTTP 404): %s — check the name (`qwen-edge pull --help` lists the known ones)", url);
    if (status == 401 || status == 403)
        return qe_errf(err, QE_EIO, "access denied (HTTP %ld): %s — the repository may be gated or private: set HF_TOKEN", status, url);
    if (status == 429)
        return qe_errf(err, QE_EBUSY, "the server is rate-limiting (HTTP 429): %s — wait a minute, or set HF_TOKEN, or use a mirror", url);
    return qe_errf(err, QE_EIO, "HTTP %ld from %s — try again later, or use a mirror (HF_ENDPOINT) or --source modelscope", status, url);
}

static int insecure_redirect(char *err, const char *from, const char *to) {
    return qe_errf(err, QE_EIO, "refusing the redirect from %s to %.200s: it leaves https", from, to);
}

/* A failed transfer: a redirect libcurl would not follow (CURLOPT_REDIR_PROTOCOLS_STR), or no network. */
int pull_transport_error(char *err, const char *url, CURLcode rc, const qe_pull_opts *o) {
    if (rc == CURLE_UNSUPPORTED_PROTOCOL && is_https(url)) return insecure_redirect(err, url, "a plain-http (or non-http) address");
    if (rc == CURLE_UNSUPPORTED_PROTOCOL) return qe_errf(err, QE_EINVAL, "%s: only http and https addresses are used", url);
    return no_network(err, url, curl_easy_strerror(rc), o);
}

/* GET a small document (a file list) into memory. */
typedef struct { qe_buf b; int too_big; } mem_sink;
static size_t on_mem(char *p, size_t size, size_t n, void *user) {
    mem_sink *m = user;
    size_t k = size * n;
    if (m->b.n + k > LISTING_MAX) { m->too_big = 1; return 0; }
    return qe_buf_append(&m->b, p, k) == QE_OK ? k : 0;
}

/* Returns QE_OK with the body, QE_EIO + no-network err for transport failures, or (status in *status) a
 * negative code for HTTP errors. */
int pull_http_get_small(const char *url, const qe_pull_opts *o, char **body, long *status, char *err) {
    *body = NULL;
    *status = 0;
    CURL *c = curl_easy_init();
    if (!c) return qe_errf(err, QE_ENOMEM, "curl init failed");
    resp_headers h = {0};
    mem_sink m = {0};
    pull_set_common(c, url, o, &h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_mem);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        qe_buf_free(&m.b);
        if (m.too_big) return qe_errf(err, QE_ERANGE, "%s: answer too large", url);
        return pull_transport_error(err, url, rc, o);
    }
    if (*status != 200) { qe_buf_free(&m.b); return pull_http_status_error(err, *status, url); }
    if (!m.b.p && qe_buf_append(&m.b, "", 0) != QE_OK) return qe_errf(err, QE_ENOMEM, "out of memory");
    *body = m.b.p;
    return QE_OK;
}

/* HEAD: size and sha256 as the hub states them. Redirects are followed by hand, one hop at a time, and the
 * walk stops at HF's redirect when it carries X-Linked-Size / X-Linked-Etag: the CDN behind it signs its
 * URLs for GET only and may refuse a HEAD. */
int pull_http_head(const char *url, const qe_pull_opts *o, remote_file *rf, char *err) {
    char cur[2600];
    snprintf(cur, sizeof cur, "%s", url);
    for (int hop = 0; hop < 10; hop++) {
        CURL *c = curl_easy_init();
        if (!c) return qe_errf(err, QE_ENOMEM, "curl init failed");
        resp_headers h = {0};
        pull_set_common(c, cur, o, &h);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
        CURLcode rc = curl_easy_perform(c);
        long status = 0;
        char *next = NULL;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &next);
        char nexturl[2600] = "";
        if (next) snprintf(nexturl, sizeof nexturl, "%s", next);
        curl_easy_cleanup(c);
        if (rc != CURLE_OK) return pull_transport_error(err, cur, rc, o);
        if (!rf->size && h.linked_size) rf->size = h.linked_size;
        if (!rf->sha256[0] && h.linked_sha[0]) snprintf(rf->sha256, sizeof rf->sha256, "%s", h.linked_sha);
        if (status >= 300 && status < 400) {
            if (rf->size && rf->sha256[0]) return QE_OK;
            if (!nexturl[0]) return qe_errf(err, QE_EIO, "HTTP %ld without a Location from %s", status, cur);
            if (is_https(cur) && !is_https(nexturl)) return insecure_redirect(err, cur, nexturl);
            snprintf(cur, sizeof cur, "%s", nexturl);
            continue;
        }
        if (status == 405 || status == 501) return QE_OK; /* no HEAD on this server: size and checksum stay unknown */
        if (status != 200) return pull_http_status_error(err, status, cur);
        if (!rf->size && h.have_content_length) rf->size = h.content_length;
        if (!rf->sha256[0] && h.etag_sha[0]) snprintf(rf->sha256, sizeof rf->sha256, "%s", h.etag_sha);
        return QE_OK;
    }
    return qe_errf(err, QE_EIO, "too many redirects from %s", url);
}
