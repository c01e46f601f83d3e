/* pull.c — model download over HTTP(S) with libcurl (see pull.h): qe_pull, and one file's download.
 *
 * Steps for one model: resolve the spec to a hub repository + file (modelstore.c); ask the hub for its
 * file list (pull_hub.c), which gives each file's size and sha256 and shows whether the model is split
 * into parts; if the hub has no such API (a plain mirror), fall back to a HEAD of the file URL (pull_http.c;
 * HF's X-Linked-Size / X-Linked-Etag headers carry the same). Then download each file to <name>.part,
 * resuming from its current length with a Range request, hashing as bytes arrive; verify size and sha256;
 * rename into place; merge split parts into one GGUF (gguf_merge.c).
 *
 * Not here: curl options, header parsing and error texts (pull_http.c), the hubs' APIs and URL shapes
 * (pull_hub.c), the progress bar (pull_progress.c), `-m` resolution (model_resolve.c). The map of these
 * files is in pull_internal.h.
 *
 * SHA-256 comes from OpenSSL's libcrypto: libcurl (OpenSSL flavour) already links it, so it costs no new
 * runtime dependency, and it uses the CPU's SHA extensions (a 700 MB model hashes in about a second). */
#define _GNU_SOURCE
#include "pull_internal.h"

#include <errno.h>
#include <fcntl.h>
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

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

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

/* The most one file may bring when the hub gives no size: $QWEN_EDGE_MAX_DOWNLOAD bytes, else 64 GiB (the
 * largest file of the catalog, 7b fp16, is about 15 GB). Without a bound a server could fill the disk. */
static uint64_t max_download_bytes(void) {
    const char *e = getenv("QWEN_EDGE_MAX_DOWNLOAD");
    unsigned long long v = e && e[0] ? strtoull(e, NULL, 10) : 0;
    return v > 0 ? (uint64_t)v : 64ull << 30;
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
                pull_human(need, a, sizeof a);
                pull_human(avail, b, sizeof b);
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
        pull_human(offset, a, sizeof a);
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
        pull_set_common(c, url, o, &h);
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
            pull_human(limit, a, sizeof a);
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
            else rc = pull_http_status_error(err, status, url);
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
            pull_human(offset, a, sizeof a);
            rc = qe_errf(err, QE_EIO, "download of %s interrupted (%s) after %s; run the same pull again to resume from there",
                         rf->name, curl_easy_strerror(cr), a);
        } else {
            rc = pull_transport_error(err, url, cr, o);
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
    pull_endpoint_for(o.source, endpoint, sizeof endpoint);
    remote_file files[MAX_PARTS];
    memset(files, 0, sizeof files);
    int n_files = 1;
    char url[2600];
    if (ref.url[0]) {
        snprintf(files[0].name, sizeof files[0].name, "%s", ref.file);
        if ((rc = pull_http_head(ref.url, &o, &files[0], err))) return rc;
    } else {
        rc = pull_list_remote(&ref, endpoint, o.source, &o, files, &n_files, err);
        int no_list = rc == QE_EUNSUPPORTED;
        if (no_list) { /* no list API: take the plain file name and ask for its headers */
            memset(files, 0, sizeof files);
            n_files = 1;
            snprintf(files[0].name, sizeof files[0].name, "%s", ref.file);
            rc = QE_OK;
        }
        if (rc) return rc;
        if (n_files == 1 && (!files[0].sha256[0] || !files[0].size)) {
            pull_file_url(&ref, endpoint, o.source, files[0].name, url, sizeof url);
            if ((rc = pull_http_head(url, &o, &files[0], err))) {
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
        pull_human(total, a, sizeof a);
        fprintf(stderr, "pulling %s from %s%s%s (%s%s)\n", ref.name, ref.url[0] ? ref.url : endpoint,
                ref.url[0] ? "" : "/", ref.url[0] ? "" : ref.repo, total ? a : "size unknown",
                n_files > 1 ? ", in parts" : "");
    }
    char sha[65] = "";
    if (n_files <= 1) { /* list_remote gives at least one file on success */
        if (ref.url[0]) snprintf(url, sizeof url, "%s", ref.url);
        else pull_file_url(&ref, endpoint, o.source, files[0].name, url, sizeof url);
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
            pull_file_url(&ref, endpoint, o.source, files[i].name, url, sizeof url);
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
    else pull_file_url(&ref, endpoint, o.source, ref.file, url, sizeof url);
    qe_model_write_meta(dest, ref.name, url, sha, stat(dest, &st) == 0 ? (uint64_t)st.st_size : 0);
    snprintf(path_out, cap, "%s", dest);
    return QE_OK;
}
