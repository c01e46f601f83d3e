/* pull.c — model download over HTTP(S) with libcurl (see pull.h).
 *
 * Steps for one model: resolve the spec to a hub repository + file (modelstore.c); ask the hub for its
 * file list (HF: /api/models/<repo>/tree/main, ModelScope: /api/v1/models/<repo>/repo/files), which
 * gives each file's size and sha256 and shows whether the model is split into parts; if the hub has no
 * such API (a plain mirror), fall back to a HEAD of the file URL (HF's X-Linked-Size / X-Linked-Etag
 * headers carry the same). Then download each file to <name>.part, resuming from its current length with
 * a Range request, hashing as bytes arrive; verify size and sha256; rename into place.
 *
 * SHA-256 comes from OpenSSL's libcrypto: libcurl (OpenSSL flavour) already links it, so it costs no new
 * runtime dependency, and it uses the CPU's SHA extensions (a 700 MB model hashes in about a second). */
#define _GNU_SOURCE
#include "pull.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "gguf_merge.h"
#include "hf.h"
#include "version.h"

#define MAX_PARTS 64
#define LISTING_MAX (16u << 20)

typedef struct {
    char name[256];
    uint64_t size;      /* 0: unknown */
    char sha256[65];    /* "": unknown */
} remote_file;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* Takes a 64-hex-digit sha256 out of a header or JSON value ("\"abc…\"", W/"…"); "" if it is not one
 * (HF's ETag of a small non-LFS file is a 40-digit git hash, not a sha256). */
static void take_sha256(const char *v, size_t n, char out[65]) {
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
        take_sha256(val, strlen(val), h->linked_sha);
    } else if (kn == 4 && !strncasecmp(p, "etag", kn)) {
        take_sha256(val, strlen(val), h->etag_sha);
    }
    return n;
}

typedef struct {
    const qe_pull_opts *o;
    uint64_t base;         /* bytes already on disk before this transfer */
    uint64_t expect;       /* the file's size when the hub said it, else 0 */
    double last_cb;
} progress_ctx;

static int on_xferinfo(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    progress_ctx *pc = user;
    if (pc->o->cancel && *pc->o->cancel) return 1;
    if (!pc->o->progress) return 0;
    double now = qe_now();
    if (now - pc->last_cb < 0.1 && !(dltotal > 0 && dlnow == dltotal)) return 0;
    uint64_t total = pc->expect ? pc->expect : dltotal > 0 ? pc->base + (uint64_t)dltotal : 0;
    if (dlnow == 0 && !total) return 0; /* nothing to show before the headers */
    pc->last_cb = now;
    pc->o->progress(pc->o->progress_user, pc->base + (uint64_t)dlnow, total);
    return 0;
}

/* The endpoint a URL's scheme, host and port must equal for HF_TOKEN to go with it. */
static const char *hf_endpoint(void) {
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
    if (!tok || !tok[0] || !same_origin(url, hf_endpoint())) return;
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

/* The most one file may bring when the hub gives no size: $QWEN_EDGE_MAX_DOWNLOAD bytes, else 64 GiB (the
 * largest file of the catalog, 7b fp16, is about 15 GB). Without a bound a server could fill the disk. */
static uint64_t max_download_bytes(void) {
    const char *e = getenv("QWEN_EDGE_MAX_DOWNLOAD");
    unsigned long long v = e && e[0] ? strtoull(e, NULL, 10) : 0;
    return v > 0 ? (uint64_t)v : 64ull << 30;
}

static void set_common(CURL *c, const char *url, const qe_pull_opts *o, resp_headers *h) {
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
    host_of(hf_endpoint(), ephost, sizeof ephost);
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

static int http_status_error(char *err, long status, const char *url) {
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
static int transport_error(char *err, const char *url, CURLcode rc, const qe_pull_opts *o) {
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
static int http_get_small(const char *url, const qe_pull_opts *o, char **body, long *status, char *err) {
    *body = NULL;
    *status = 0;
    CURL *c = curl_easy_init();
    if (!c) return qe_errf(err, QE_ENOMEM, "curl init failed");
    resp_headers h = {0};
    mem_sink m = {0};
    set_common(c, url, o, &h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_mem);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        qe_buf_free(&m.b);
        if (m.too_big) return qe_errf(err, QE_ERANGE, "%s: answer too large", url);
        return transport_error(err, url, rc, o);
    }
    if (*status != 200) { qe_buf_free(&m.b); return http_status_error(err, *status, url); }
    if (!m.b.p && qe_buf_append(&m.b, "", 0) != QE_OK) return qe_errf(err, QE_ENOMEM, "out of memory");
    *body = m.b.p;
    return QE_OK;
}

/* HEAD: size and sha256 as the hub states them. Redirects are followed by hand, one hop at a time, and the
 * walk stops at HF's redirect when it carries X-Linked-Size / X-Linked-Etag: the CDN behind it signs its
 * URLs for GET only and may refuse a HEAD. */
static int http_head(const char *url, const qe_pull_opts *o, remote_file *rf, char *err) {
    char cur[2600];
    snprintf(cur, sizeof cur, "%s", url);
    for (int hop = 0; hop < 10; hop++) {
        CURL *c = curl_easy_init();
        if (!c) return qe_errf(err, QE_ENOMEM, "curl init failed");
        resp_headers h = {0};
        set_common(c, cur, o, &h);
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
        if (rc != CURLE_OK) return transport_error(err, cur, rc, o);
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
        if (status != 200) return http_status_error(err, status, cur);
        if (!rf->size && h.have_content_length) rf->size = h.content_length;
        if (!rf->sha256[0] && h.etag_sha[0]) snprintf(rf->sha256, sizeof rf->sha256, "%s", h.etag_sha);
        return QE_OK;
    }
    return qe_errf(err, QE_EIO, "too many redirects from %s", url);
}

/* ---------------------------------------------------------------------------------------------------
 * The hubs' file lists */

/* Collects `want` itself, or its parts want-stem-0000k-of-0000n.gguf, from a list of (name, size, sha). */
typedef struct { remote_file *v; int n; const char *want; int want_n; char stem[256]; int n_total; int bad; } match_ctx;

static void match_file(match_ctx *mc, const char *name, uint64_t size, const char *sha) {
    remote_file rf = {0};
    snprintf(rf.name, sizeof rf.name, "%s", name);
    rf.size = size;
    if (sha) take_sha256(sha, strlen(sha), rf.sha256);
    if (!strcmp(name, mc->want)) {
        mc->v[0] = rf;
        mc->want_n = 1;
        return;
    }
    size_t sl = strlen(mc->stem);
    int k, n, used = 0;
    if (!strncmp(name, mc->stem, sl) && sscanf(name + sl, "-%5d-of-%5d.gguf%n", &k, &n, &used) == 2 &&
        name[sl + used] == 0 && k >= 1 && n >= 2 && k <= n) {
        if (n > MAX_PARTS - 1 || (mc->n_total && mc->n_total != n)) { mc->bad = 1; return; }
        mc->n_total = n;
        mc->v[k] = rf;   /* slots 1..n hold the parts */
        mc->n++;
    }
}

/* Fills files[] (count in *n) for ref, or returns the reason it could not. A hub without a list API
 * gives QE_EUNSUPPORTED (the caller then tries the plain file name). */
static int list_remote(const qe_model_ref *ref, const char *endpoint, qe_source src, const qe_pull_opts *o,
                       remote_file *files, int *n, char *err) {
    char url[2048];
    if (src == QE_SOURCE_MODELSCOPE)
        snprintf(url, sizeof url, "%s/api/v1/models/%s/repo/files?Revision=master&Recursive=true", endpoint, ref->repo);
    else
        snprintf(url, sizeof url, "%s/api/models/%s/tree/main", endpoint, ref->repo);
    char *body = NULL;
    long status = 0;
    int rc = http_get_small(url, o, &body, &status, err);
    if (rc != QE_OK) {
        /* An HTTP error here is either an unknown repository or a mirror without this API; the HEAD of the
         * file that the caller tries next tells them apart. */
        if (status != 0) return QE_EUNSUPPORTED;
        return rc; /* network: err says what to do */
    }
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    free(body);
    if (!j) return QE_EUNSUPPORTED;
    json_t *arr = src == QE_SOURCE_MODELSCOPE ? json_object_get(json_object_get(j, "Data"), "Files") : j;
    if (!json_is_array(arr)) { json_decref(j); return QE_EUNSUPPORTED; }
    remote_file slots[MAX_PARTS];
    memset(slots, 0, sizeof slots);
    match_ctx mc = {.v = slots, .want = ref->file};
    snprintf(mc.stem, sizeof mc.stem, "%.*s", (int)(strlen(ref->file) - 5), ref->file); /* without ".gguf" */
    char some[256] = "";
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        const char *name, *sha = NULL, *type;
        uint64_t size;
        if (src == QE_SOURCE_MODELSCOPE) {
            name = json_string_value(json_object_get(e, "Path"));
            type = json_string_value(json_object_get(e, "Type"));
            if (type && strcmp(type, "blob") != 0) continue;
            size = (uint64_t)json_integer_value(json_object_get(e, "Size"));
            sha = json_string_value(json_object_get(e, "Sha256"));
        } else {
            name = json_string_value(json_object_get(e, "path"));
            type = json_string_value(json_object_get(e, "type"));
            if (type && strcmp(type, "file") != 0) continue;
            json_t *lfs = json_object_get(e, "lfs");
            size = (uint64_t)json_integer_value(json_object_get(lfs ? lfs : e, "size"));
            if (lfs) sha = json_string_value(json_object_get(lfs, "oid"));
        }
        if (!name) continue;
        if (strstr(name, ".gguf") && strlen(some) + strlen(name) + 3 < sizeof some)
            snprintf(some + strlen(some), sizeof some - strlen(some), "%s%s", some[0] ? ", " : "", name);
        match_file(&mc, name, size, sha);
    }
    json_decref(j);
    if (mc.want_n) { files[0] = slots[0]; *n = 1; return QE_OK; }
    if (mc.bad || (mc.n_total && mc.n != mc.n_total))
        return qe_errf(err, QE_EFORMAT, "%s: the parts of %s on the hub are incomplete or too many", ref->repo, ref->file);
    if (mc.n_total) {
        for (int k = 1; k <= mc.n_total; k++) files[k - 1] = slots[k];
        *n = mc.n_total;
        return QE_OK;
    }
    return qe_errf(err, QE_ENOTFOUND, "%s has no file %s%s%s", ref->repo, ref->file, some[0] ? " (it has: " : "",
                   some[0] ? some : "");
}

/* ---------------------------------------------------------------------------------------------------
 * One file: download into <dest>.part with resume, verify, rename */

typedef struct {
    CURL *c;
    int fd;
    EVP_MD_CTX *sha;
    uint64_t offset;       /* bytes in the .part file (all hashed) */
    int started;           /* the first body byte of this transfer was seen */
    int refused;           /* not 200/206: body is an error page */
    int io_error;
    int too_big;           /* the server sent, or announced, more than `limit` */
    uint64_t limit;        /* the file's size when the hub said it, else max_download_bytes() */
    resp_headers *h;
    uint64_t got;          /* body bytes of this transfer */
} dl_ctx;

static size_t on_body(char *p, size_t size, size_t n, void *user) {
    dl_ctx *d = user;
    size_t k = size * n;
    if (!d->started) {
        d->started = 1;
        long status = d->h->status;
        if (status == 200 && d->offset > 0) {
            /* the server ignored our Range: start over */
            if (ftruncate(d->fd, 0) != 0 || lseek(d->fd, 0, SEEK_SET) != 0) { d->io_error = errno; return 0; }
            EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL);
            d->offset = 0;
        } else if (status == 206) {
            if (!d->h->have_range || d->h->range_start != d->offset) { d->refused = 1; return 0; }
        } else if (status != 200) {
            d->refused = 1;
            return 0;
        }
        /* a file announced larger than the hub said (or than any model) is refused before its first byte */
        uint64_t announced = d->h->have_content_length ? d->offset + d->h->content_length : 0;
        if (status == 206 && d->h->range_total > announced) announced = d->h->range_total;
        if (announced > d->limit) { d->too_big = 1; return 0; }
    }
    if (k > d->limit - d->offset) { d->too_big = 1; return 0; } /* no Content-Length, and it keeps coming */
    for (size_t w = 0; w < k;) {
        ssize_t r = write(d->fd, p + w, k - w);
        if (r < 0) { if (errno == EINTR) continue; d->io_error = errno; return 0; }
        w += (size_t)r;
    }
    EVP_DigestUpdate(d->sha, p, k);
    d->offset += k;
    d->got += k;
    return k;
}

static int hash_existing(int fd, uint64_t len, EVP_MD_CTX *sha) {
    static __thread unsigned char buf[1 << 16];
    if (lseek(fd, 0, SEEK_SET) != 0) return QE_EIO;
    uint64_t left = len;
    while (left) {
        ssize_t r = read(fd, buf, left < sizeof buf ? left : sizeof buf);
        if (r <= 0) { if (r < 0 && errno == EINTR) continue; return QE_EIO; }
        EVP_DigestUpdate(sha, buf, (size_t)r);
        left -= (uint64_t)r;
    }
    return lseek(fd, (off_t)len, SEEK_SET) == (off_t)len ? QE_OK : QE_EIO;
}

static void human(uint64_t b, char *out, size_t cap) {
    if (b >= (1ull << 30)) snprintf(out, cap, "%.2f GB", b / 1073741824.0);
    else if (b >= (1ull << 20)) snprintf(out, cap, "%.1f MB", b / 1048576.0);
    else snprintf(out, cap, "%.0f KB", b / 1024.0);
}

/* Downloads url to dest (through dest.part). rf gives the expected size / sha256 (either may be unknown). */
static int download_one(const char *url, const char *dest, const remote_file *rf, const qe_pull_opts *o,
                        char *sha_out, char *err) {
    char part[PATH_MAX + 8];
    if (strlen(dest) >= PATH_MAX) return qe_errf(err, QE_ERANGE, "path too long: %.60s…", dest);
    snprintf(part, sizeof part, "%s.part", dest);
    int rc = QE_OK;
    EVP_MD_CTX *sha = NULL;
    CURL *c = NULL;
    /* O_NOFOLLOW: a symbolic link planted under the .part name must not make us write (or resume) through it */
    int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0 && errno == ELOOP)
        return qe_errf(err, QE_EIO, "refusing to write %s: it is a symbolic link (delete it, then pull again)", part);
    if (fd < 0) return qe_errf(err, QE_EIO, "cannot write %s: %s", part, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc = qe_errf(err, QE_EBUSY, "another qwen-edge is downloading %s right now (wait for it to finish)", part);
        goto done;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { rc = qe_errf(err, QE_EIO, "%s is not a regular file", part); goto done; }
    uint64_t offset = (uint64_t)st.st_size;
    uint64_t limit = rf->size ? rf->size : max_download_bytes();
    if (offset > limit) { /* stale: not a prefix of this file */
        if (ftruncate(fd, 0) != 0) { rc = qe_errf(err, QE_EIO, "%s: %s", part, strerror(errno)); goto done; }
        offset = 0;
    }
    if (rf->size) {
        struct statvfs vfs;
        if (fstatvfs(fd, &vfs) == 0) {
            uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize, need = rf->size - offset;
            if (avail < need) {
                char a[32], b[32];
                human(need, a, sizeof a);
                human(avail, b, sizeof b);
                rc = qe_errf(err, QE_EIO, "not enough disk space for %s: need %s, %s free (set QWEN_EDGE_HOME to another disk)", dest, a, b);
                goto done;
            }
        }
    }
    sha = EVP_MD_CTX_new();
    if (!sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL)) { rc = qe_errf(err, QE_ENOMEM, "sha256 init failed"); goto done; }
    if (offset && hash_existing(fd, offset, sha) != QE_OK) { rc = qe_errf(err, QE_EIO, "cannot read %s", part); goto done; }
    if (offset && !o->quiet) {
        char a[32];
        human(offset, a, sizeof a);
        fprintf(stderr, "resuming %s from %s\n", rf->name, a);
    }

    int retries = o->retries < 0 ? 3 : o->retries;
    int restarted = 0;
    for (int attempt = 0; ; attempt++) {
        if (rf->size && offset == rf->size) break; /* complete already (an earlier run stopped before renaming) */
        resp_headers h = {0};
        dl_ctx d = {.fd = fd, .sha = sha, .offset = offset, .limit = limit, .h = &h};
        progress_ctx pc = {.o = o, .base = offset, .expect = rf->size};
        c = curl_easy_init();
        if (!c) { rc = qe_errf(err, QE_ENOMEM, "curl init failed"); goto done; }
        set_common(c, url, o, &h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &pc);
        char range[64];
        if (offset) {
            snprintf(range, sizeof range, "%llu-", (unsigned long long)offset);
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        d.c = c;
        CURLcode cr = curl_easy_perform(c);
        long status = h.status;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(c);
        c = NULL;
        offset = d.offset;
        if (d.io_error) {
            rc = qe_errf(err, QE_EIO, "writing %s failed: %s%s", part, strerror(d.io_error),
                         d.io_error == ENOSPC ? " (disk full: set QWEN_EDGE_HOME to another disk)" : "");
            goto done;
        }
        if (d.too_big) {
            char a[32];
            human(limit, a, sizeof a);
            rc = qe_errf(err, QE_ERANGE, "%s: the server sends more than %s%s; stopped", url, a,
                         rf->size ? ", the size the hub gives for this file" : " (no model is larger; QWEN_EDGE_MAX_DOWNLOAD)");
            goto done;
        }
        if (cr == CURLE_ABORTED_BY_CALLBACK) { rc = qe_errf(err, QE_ECANCELED, "download stopped; %s is kept and the next pull resumes it", part); goto done; }
        if (status == 416 && !restarted) { /* our offset is past the end: the file changed; start over */
            restarted = 1;
            if (ftruncate(fd, 0) != 0) { rc = qe_errf(err, QE_EIO, "%s: %s", part, strerror(errno)); goto done; }
            offset = 0;
            EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
            continue;
        }
        if (d.refused || (cr == CURLE_OK && status != 200 && status != 206)) {
            if (status == 206) rc = qe_errf(err, QE_EIO, "%s: the server answered a different byte range than asked", url);
            else rc = http_status_error(err, status, url);
            goto done;
        }
        if (cr == CURLE_OK) {
            if (!rf->size && h.have_content_length && offset != (status == 206 ? h.range_start : 0) + h.content_length) {
                rc = qe_errf(err, QE_EIO, "%s: connection ended early; the next pull resumes it", url);
                goto done;
            }
            break;
        }
        /* transport error: resume if bytes came in, else it is the network */
        if (d.got > 0 && attempt < retries) {
            if (!o->quiet) fprintf(stderr, "\nconnection lost (%s); resuming…\n", curl_easy_strerror(cr));
            continue;
        }
        if (d.got > 0 || offset > 0) {
            char a[32];
            human(offset, a, sizeof a);
            rc = qe_errf(err, QE_EIO, "download of %s interrupted (%s) after %s; run the same pull again to resume from there",
                         rf->name, curl_easy_strerror(cr), a);
        } else {
            rc = transport_error(err, url, cr, o);
        }
        goto done;
    }

    /* verify before the file gets its final name */
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_DigestFinal_ex(sha, md, &mdlen);
    char hex[65];
    for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", md[i]);
    hex[64] = 0;
    if (rf->size && offset != rf->size) {
        rc = qe_errf(err, QE_EIO, "%s: got %llu bytes, the hub says %llu; run the pull again", rf->name,
                     (unsigned long long)offset, (unsigned long long)rf->size);
        goto done;
    }
    if (rf->sha256[0] && strcmp(hex, rf->sha256) != 0) {
        unlink(part); /* a wrong file must not be resumed either */
        rc = qe_errf(err, QE_EFORMAT, "checksum mismatch for %s: sha256 %s, the hub says %s. The download was deleted; "
                     "run the pull again (if it repeats, the mirror serves a bad file: try another source)", rf->name, hex, rf->sha256);
        goto done;
    }
    if (!rf->sha256[0] && !o->quiet)
        fprintf(stderr, "warning: %s publishes no sha256 for %s; only the %s was checked\n", url, rf->name,
                rf->size ? "size" : "connection's completeness");
    if (fsync(fd) != 0 || rename(part, dest) != 0) {
        rc = qe_errf(err, QE_EIO, "cannot move %s into place: %s", part, strerror(errno));
        goto done;
    }
    if (sha_out) memcpy(sha_out, hex, 65);
done:
    if (c) curl_easy_cleanup(c);
    EVP_MD_CTX_free(sha);
    close(fd);
    return rc;
}

/* ---------------------------------------------------------------------------------------------------
 * qe_pull */

static void endpoint_for(qe_source src, char *out, size_t cap) {
    const char *e = src == QE_SOURCE_MODELSCOPE ? getenv("MODELSCOPE_ENDPOINT") : hf_endpoint();
    if (!e || !e[0]) e = "https://modelscope.cn";
    snprintf(out, cap, "%s", e);
    size_t n = strlen(out);
    while (n && out[n - 1] == '/') out[--n] = 0;
}

static void file_url(const qe_model_ref *ref, const char *endpoint, qe_source src, const char *name, char *out, size_t cap) {
    if (src == QE_SOURCE_MODELSCOPE) snprintf(out, cap, "%s/models/%s/resolve/master/%s", endpoint, ref->repo, name);
    else snprintf(out, cap, "%s/%s/resolve/main/%s", endpoint, ref->repo, name);
}

int qe_pull(const char *spec, const qe_pull_opts *opts, char *path_out, size_t cap, char *err) {
    qe_pull_opts o = {.retries = -1, .quiet = 1};
    if (opts) o = *opts;
    pthread_once(&curl_once, curl_init_once);
    qe_model_ref ref;
    int rc = qe_model_ref_parse(spec, &ref, err);
    if (rc) return rc;
    char dir[1024], dest[1400];
    if ((rc = qe_models_dir(dir, sizeof dir, err))) return rc;
    snprintf(dest, sizeof dest, "%s/%s", dir, ref.file);
    if (strlen(dest) >= cap) return qe_errf(err, QE_ERANGE, "path too long");
    struct stat st;
    if (!o.force && stat(dest, &st) == 0 && S_ISREG(st.st_mode)) {
        snprintf(path_out, cap, "%s", dest);
        if (!o.quiet) fprintf(stderr, "%s is already downloaded: %s\n", ref.name, dest);
        return QE_OK;
    }

    char endpoint[512];
    endpoint_for(o.source, endpoint, sizeof endpoint);
    remote_file files[MAX_PARTS];
    memset(files, 0, sizeof files);
    int n_files = 1;
    char url[2600];
    if (ref.url[0]) {
        snprintf(files[0].name, sizeof files[0].name, "%s", ref.file);
        if ((rc = http_head(ref.url, &o, &files[0], err))) return rc;
    } else {
        rc = list_remote(&ref, endpoint, o.source, &o, files, &n_files, err);
        int no_list = rc == QE_EUNSUPPORTED;
        if (no_list) { /* no list API: take the plain file name and ask for its headers */
            memset(files, 0, sizeof files);
            n_files = 1;
            snprintf(files[0].name, sizeof files[0].name, "%s", ref.file);
            rc = QE_OK;
        }
        if (rc) return rc;
        if (n_files == 1 && (!files[0].sha256[0] || !files[0].size)) {
            file_url(&ref, endpoint, o.source, files[0].name, url, sizeof url);
            if ((rc = http_head(url, &o, &files[0], err))) {
                if (rc == QE_ENOTFOUND)
                    qe_errf(err, rc, "not found: %s has no file %s, or the repository does not exist (%s)%s%s", ref.repo,
                            ref.file, url, ref.official ? "; `qwen-edge pull --help` lists the known names" : "",
                            no_list ? ". This server has no file-list API, so a model published in parts cannot be "
                                      "found here: try without HF_ENDPOINT, or --source modelscope" : "");
                return rc;
            }
        }
    }

    if (!o.quiet) {
        uint64_t total = 0;
        for (int i = 0; i < n_files; i++) total += files[i].size;
        char a[32];
        human(total, a, sizeof a);
        fprintf(stderr, "pulling %s from %s%s%s (%s%s)\n", ref.name, ref.url[0] ? ref.url : endpoint,
                ref.url[0] ? "" : "/", ref.url[0] ? "" : ref.repo, total ? a : "size unknown",
                n_files > 1 ? ", in parts" : "");
    }
    char sha[65] = "";
    if (n_files <= 1) { /* list_remote gives at least one file on success */
        if (ref.url[0]) snprintf(url, sizeof url, "%s", ref.url);
        else file_url(&ref, endpoint, o.source, files[0].name, url, sizeof url);
        if ((rc = download_one(url, dest, &files[0], &o, sha, err))) return rc;
    } else {
        /* parts go next to the final file under their own names, then are merged into one GGUF */
        char (*part_paths)[1400] = calloc((size_t)n_files, sizeof *part_paths);
        if (!part_paths) return qe_errf(err, QE_ENOMEM, "out of memory");
        for (int i = 0; i < n_files && rc == QE_OK; i++) {
            snprintf(part_paths[i], sizeof part_paths[i], "%s/%s", dir, files[i].name);
            if (stat(part_paths[i], &st) == 0 && S_ISREG(st.st_mode) && (!files[i].size || (uint64_t)st.st_size == files[i].size))
                continue; /* this part was finished by an earlier run */
            if (!o.quiet) fprintf(stderr, "part %d of %d: %s\n", i + 1, n_files, files[i].name);
            file_url(&ref, endpoint, o.source, files[i].name, url, sizeof url);
            rc = download_one(url, part_paths[i], &files[i], &o, NULL, err);
        }
        if (rc == QE_OK) {
            if (!o.quiet) fprintf(stderr, "merging %d parts into %s\n", n_files, ref.file);
            const char *pp[MAX_PARTS];
            for (int i = 0; i < n_files; i++) pp[i] = part_paths[i];
            rc = qe_gguf_merge(pp, n_files, dest, err);
            if (rc == QE_OK)
                for (int i = 0; i < n_files; i++) unlink(part_paths[i]);
        }
        free(part_paths);
        if (rc) return rc;
    }
    if (ref.url[0]) snprintf(url, sizeof url, "%s", ref.url);
    else file_url(&ref, endpoint, o.source, ref.file, url, sizeof url);
    qe_model_write_meta(dest, ref.name, url, sha, stat(dest, &st) == 0 ? (uint64_t)st.st_size : 0);
    snprintf(path_out, cap, "%s", dest);
    return QE_OK;
}

/* ---------------------------------------------------------------------------------------------------
 * progress on stderr */

void qe_pull_progress_end(qe_pull_progress_state *s) {
    if (s && s->line_open) { fputc('\n', stderr); s->line_open = 0; }
}

void qe_pull_progress_stderr(void *user, uint64_t done, uint64_t total) {
    qe_pull_progress_state *s = user;
    double now = qe_now();
    if (!s->started) {
        s->started = 1;
        s->t0 = now;
        s->start_done = done; /* resumed bytes do not count toward the speed */
        s->tty = isatty(2);
        s->last_decile = -1;
    }
    if (done < s->last_done) s->start_done = done; /* a restart from zero, or the next part */
    int finished = total && done >= total;
    if (finished && s->last_done == done && !s->line_open && s->last_draw > 0) return; /* already drawn */
    s->last_done = done;
    double dt = now - s->t0;
    double speed = dt > 0.2 ? (double)(done - s->start_done) / dt : 0;
    char a[32], b[32], sp[32];
    human(done, a, sizeof a);
    human(total, b, sizeof b);
    human((uint64_t)speed, sp, sizeof sp);
    const char *label = s->label ? s->label : "", *gap = s->label ? " " : "";
    if (s->tty) {
        if (now - s->last_draw < 0.1 && !finished) return;
        s->last_draw = now;
        char eta[32] = "";
        if (total && speed > 0 && !finished) {
            int left = (int)((double)(total - done) / speed);
            snprintf(eta, sizeof eta, "  ETA %d:%02d", left / 60, left % 60);
        }
        if (total) {
            int pct = (int)(100.0 * (double)done / (double)total), w = 30, fill = pct * w / 100;
            char bar[40];
            for (int i = 0; i < w; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
            bar[w] = 0;
            fprintf(stderr, "\r\033[K%s%s%3d%% [%s] %s / %s  %s/s%s", label, gap, pct, bar, a, b, sp, eta);
        } else {
            fprintf(stderr, "\r\033[K%s%s%s  %s/s", label, gap, a, sp);
        }
        s->line_open = 1;
        if (finished) qe_pull_progress_end(s);
        fflush(stderr);
    } else if (total) {
        int decile = (int)(10.0 * (double)done / (double)total);
        if (decile == s->last_decile) return;
        s->last_decile = decile;
        s->last_draw = now;
        fprintf(stderr, "%s%s%d%% (%s of %s, %s/s)\n", label, gap, decile * 10, a, b, sp);
    }
}

/* ---------------------------------------------------------------------------------------------------
 * -m resolution */

int qe_model_precheck(const char *arg, char *err) {
    struct stat st;
    if (arg && arg[0] && stat(arg, &st) == 0) {
        if (S_ISDIR(st.st_mode) && !qe_hf_is_folder(arg))
            return qe_errf(err, QE_EINVAL, "%s is a folder but not a Hugging Face model folder (no config.json); "
                           "-m takes a .gguf file, such a folder, or a model name (see qwen-edge pull --help)", arg);
        return QE_OK;
    }
    if (arg && (arg[0] == '/' || !strncmp(arg, "./", 2) || !strncmp(arg, "../", 3) || arg[0] == '~'))
        return qe_errf(err, QE_ENOTFOUND, "%s: no such file", arg);
    char local[PATH_MAX + 256];
    int rc = qe_model_find_local(arg, local, sizeof local, err);
    if (rc == QE_OK || rc != QE_ENOTFOUND) return rc; /* in the store, or the store itself is unusable */
    size_t len = arg ? strlen(arg) : 0;
    qe_model_ref ref;
    if (len > 5 && !strcmp(arg + len - 5, ".gguf")) {
        /* a mistyped path, not a model name: not a hub reference, or its "owner" is a local folder */
        const char *slash = strchr(arg, '/');
        char first[256];
        snprintf(first, sizeof first, "%.*s", slash ? (int)(slash - arg) : 0, arg);
        if (qe_model_ref_parse(arg, &ref, NULL) != QE_OK || (slash && stat(first, &st) == 0 && S_ISDIR(st.st_mode)))
            return qe_errf(err, QE_ENOTFOUND, "%s: no such file", arg);
    }
    return qe_model_ref_parse(arg, &ref, err); /* a name or URL to download */
}

int qe_model_resolve(const char *arg, int hf_out_type, int quiet, char *path_out, size_t cap, char *err) {
    int rc = qe_model_precheck(arg, err);
    if (rc) return rc;
    struct stat st;
    if (arg && arg[0] && stat(arg, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return qe_hf_convert_cached(arg, hf_out_type, path_out, cap, err);
        if (strlen(arg) >= cap) return qe_errf(err, QE_ERANGE, "path too long");
        snprintf(path_out, cap, "%s", arg);
        return QE_OK;
    }
    if (qe_model_find_local(arg, path_out, cap, NULL) == QE_OK) return QE_OK;
    qe_pull_opts o = {.retries = -1, .quiet = quiet};
    qe_pull_progress_state ps = {0};
    if (!quiet) {
        o.progress = qe_pull_progress_stderr;
        o.progress_user = &ps;
        if (!arg || !arg[0])
            fprintf(stderr, "first run: downloading the default model %s:%s (set -m FILE.gguf to use your own)\n",
                    QE_DEFAULT_MODEL, QE_DEFAULT_QUANT);
    }
    rc = qe_pull(arg, &o, path_out, cap, err);
    qe_pull_progress_end(&ps);
    return rc;
}

