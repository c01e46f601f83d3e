/* kb_ingest.c — files into the KB: the format table, walking folders, sha256 to skip unchanged files, a
 * two-stage pipeline (a thread reads, extracts and chunks the next file while the caller's thread writes the
 * current one), and one SQLite transaction per document (insert doc, chunks and FTS rows -> commit), so a
 * crash (kill -9) loses at most the document being written and the next run picks up where it stopped.
 * Per-file failures (unsupported, corrupt, empty, not UTF-8) are reported through file_done and never stop
 * the rest. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <libxml/parser.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "store/kb_internal.h"

#define MAX_FILE_BYTES (512ull << 20) /* one document; larger files are refused per file */

static const qe_kb_format FORMATS[] = {
    {"txt", "text", qe_kb_extract_txt},   {"text", "text", qe_kb_extract_txt},
    {"md", "markdown", qe_kb_extract_md}, {"markdown", "markdown", qe_kb_extract_md},
    {"html", "html", qe_kb_extract_html}, {"htm", "html", qe_kb_extract_html}, {"xhtml", "html", qe_kb_extract_html},
    {"pdf", "pdf", qe_kb_extract_pdf},    {"docx", "docx", qe_kb_extract_docx},
};

const qe_kb_format *qe_kb_format_of(const char *name) {
    const char *slash = strrchr(name, '/'), *dot = strrchr(slash ? slash : name, '.');
    if (!dot) return NULL;
    for (size_t i = 0; i < sizeof FORMATS / sizeof FORMATS[0]; i++)
        if (!strcasecmp(dot + 1, FORMATS[i].ext)) return &FORMATS[i];
    return NULL;
}

const char *qe_kb_format_list(void) { return ".txt .md .html .htm .pdf .docx"; }

static void sha256_hex(const char *p, size_t n, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < len && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = 0;
}

typedef struct {
    qe_kb *kb;
    const qe_kb_ingest_opts *o;
    qe_kb_progress *pr;
    sqlite3_stmt *find, *ins_doc, *ins_chunk, *ins_fts;
} ingest;

static void ingest_end(ingest *g) {
    sqlite3_finalize(g->find);
    sqlite3_finalize(g->ins_doc);
    sqlite3_finalize(g->ins_chunk);
    sqlite3_finalize(g->ins_fts);
}

static int ingest_begin(ingest *g, qe_kb *kb, const qe_kb_ingest_opts *o, qe_kb_progress *pr, char *err) {
    memset(g, 0, sizeof *g);
    g->kb = kb;
    g->o = o;
    g->pr = pr;
    if (sqlite3_prepare_v2(kb->db, "SELECT id, sha256 FROM docs WHERE path=?", -1, &g->find, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(kb->db,
                           "INSERT INTO docs(path, title, format, sha256, size, mtime, n_chunks, text_bytes, added_at)"
                           " VALUES(?,?,?,?,?,?,?,?,?)", -1, &g->ins_doc, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(kb->db,
                           "INSERT INTO chunks(doc_id, ord, heading, page, text, n_tokens, span_start, span_end)"
                           " VALUES(?,?,?,?,?,?,?,?)", -1, &g->ins_chunk, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(kb->db, "INSERT INTO chunks_fts(rowid, heading, text) VALUES(?,?,?)", -1, &g->ins_fts, NULL) != SQLITE_OK) {
        int rc = qe_kb_sqlerr(kb, QE_EIO, err, "preparing the ingest");
        ingest_end(g);
        return rc;
    }
    char counter[128];
    const char *tn = o && o->counter.tok ? "model tokenizer" : "estimate";
    snprintf(counter, sizeof counter, "INSERT OR REPLACE INTO meta VALUES('counter', '%s')", tn);
    return qe_kb_exec(kb, counter, err);
}

static int step_done(ingest *g, sqlite3_stmt *st, char *err) {
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    return s == SQLITE_DONE ? QE_OK : qe_kb_sqlerr(g->kb, QE_EIO, err, "writing the knowledge base");
}

/* Writes one extracted document in one transaction, replacing old_id (>0) if given. */
static int store_doc(ingest *g, const char *path, const qe_kb_format *f, const char *sha, int64_t size, int64_t mtime,
                     const qe_kb_extracted *x, const qe_kb_chunk *ch, size_t nch, int64_t old_id, char *err) {
    int rc = qe_kb_exec(g->kb, "BEGIN IMMEDIATE", err);
    if (rc < 0) return rc;
    if (old_id > 0 && (rc = qe_kb_doc_delete_id(g->kb, old_id, err)) < 0) goto fail;
    sqlite3_stmt *d = g->ins_doc;
    sqlite3_bind_text(d, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(d, 2, x->title, -1, SQLITE_STATIC);
    sqlite3_bind_text(d, 3, f->format, -1, SQLITE_STATIC);
    sqlite3_bind_text(d, 4, sha, -1, SQLITE_STATIC);
    sqlite3_bind_int64(d, 5, size);
    sqlite3_bind_int64(d, 6, mtime);
    sqlite3_bind_int64(d, 7, (int64_t)nch);
    sqlite3_bind_int64(d, 8, (int64_t)x->text.n);
    sqlite3_bind_int64(d, 9, (int64_t)time(NULL));
    if ((rc = step_done(g, d, err)) < 0) goto fail;
    int64_t doc_id = sqlite3_last_insert_rowid(g->kb->db);
    for (size_t i = 0; i < nch; i++) {
        sqlite3_stmt *c = g->ins_chunk;
        sqlite3_bind_int64(c, 1, doc_id);
        sqlite3_bind_int64(c, 2, (int64_t)i);
        sqlite3_bind_text(c, 3, ch[i].heading, -1, SQLITE_STATIC);
        sqlite3_bind_int(c, 4, ch[i].page);
        sqlite3_bind_text(c, 5, x->text.p + ch[i].off, (int)ch[i].len, SQLITE_STATIC);
        sqlite3_bind_int(c, 6, ch[i].n_tokens);
        sqlite3_bind_int64(c, 7, (int64_t)ch[i].off);
        sqlite3_bind_int64(c, 8, (int64_t)(ch[i].off + ch[i].len));
        if ((rc = step_done(g, c, err)) < 0) goto fail;
        sqlite3_stmt *t = g->ins_fts;
        sqlite3_bind_int64(t, 1, sqlite3_last_insert_rowid(g->kb->db));
        sqlite3_bind_text(t, 2, ch[i].heading, -1, SQLITE_STATIC);
        sqlite3_bind_text(t, 3, x->text.p + ch[i].off, (int)ch[i].len, SQLITE_STATIC);
        if ((rc = step_done(g, t, err)) < 0) goto fail;
    }
    if ((rc = qe_kb_exec(g->kb, "COMMIT", err)) < 0) goto fail;
    return QE_OK;
fail:
    qe_kb_exec(g->kb, "ROLLBACK", NULL);
    return rc;
}

/* --- one document: prepare (any thread) and commit (the KB's thread) ------------------------------------- */

/* Stored documents by path, sorted: lets the preparing thread skip unchanged files without touching SQLite. */
typedef struct { char *path; char sha[65]; } known_doc;
typedef struct { known_doc *v; size_t n; } known_docs;

static int cmp_known(const void *a, const void *b) { return strcmp(((const known_doc *)a)->path, ((const known_doc *)b)->path); }

static int known_load(qe_kb *kb, known_docs *k, char *err) {
    memset(k, 0, sizeof *k);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(kb->db, "SELECT path, sha256 FROM docs", -1, &st, NULL) != SQLITE_OK)
        return qe_kb_sqlerr(kb, QE_EIO, err, "listing documents");
    size_t cap = 0;
    int rc = QE_OK;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (k->n == cap) {
            cap = cap ? cap * 2 : 64;
            known_doc *v = realloc(k->v, cap * sizeof *v);
            if (!v) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); break; }
            k->v = v;
        }
        const char *p = (const char *)sqlite3_column_text(st, 0), *h = (const char *)sqlite3_column_text(st, 1);
        if (!(k->v[k->n].path = strdup(p ? p : ""))) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); break; }
        snprintf(k->v[k->n].sha, sizeof k->v[k->n].sha, "%s", h ? h : "");
        k->n++;
    }
    sqlite3_finalize(st);
    if (k->n) qsort(k->v, k->n, sizeof *k->v, cmp_known);
    return rc;
}

static void known_free(known_docs *k) {
    for (size_t i = 0; i < k->n; i++) free(k->v[i].path);
    free(k->v);
}

static bool known_unchanged(const known_docs *k, const char *path, const char *sha) {
    if (!k) return false;
    known_doc key = {(char *)path, ""};
    const known_doc *d = k->n ? bsearch(&key, k->v, k->n, sizeof *k->v, cmp_known) : NULL;
    return d && !strcmp(d->sha, sha);
}

/* A document made ready for the store: everything but the SQLite writes. */
typedef struct {
    const char *path;
    int64_t mtime, size;
    const char *status; /* NULL: to be stored; else "unchanged", "skipped" or "error" (err says why) */
    char err[QE_ERR_LEN];
    char sha[65];
    const qe_kb_format *f;
    qe_kb_extracted x;
    qe_kb_chunk *ch;
    size_t nch;
} prepared;

static void prepared_free(prepared *p) {
    qe_kb_chunks_free(p->ch, p->nch);
    qe_kb_ext_free(&p->x);
    memset(p, 0, sizeof *p);
}

/* Extracts and chunks one document's bytes. Pure apart from the counter's tokenizer (thread-safe). */
static void prepare_bytes(prepared *p, const char *data, size_t n, const known_docs *k, const qe_kb_counter *c) {
    int rc;
    p->status = "error";
    p->size = (int64_t)n;
    if (!(p->f = qe_kb_format_of(p->path))) {
        qe_errf(p->err, QE_EUNSUPPORTED, "unsupported format (supported: %s)", qe_kb_format_list());
        return;
    }
    if (n == 0) { qe_errf(p->err, QE_EFORMAT, "empty file"); return; }
    sha256_hex(data, n, p->sha);
    if (known_unchanged(k, p->path, p->sha)) { p->status = "unchanged"; return; }
    if ((rc = p->f->fn(data, n, &p->x, p->err)) < 0) return;
    if (!p->x.title[0]) {
        const char *base = strrchr(p->path, '/');
        qe_kb_ext_title(&p->x, base ? base + 1 : p->path, strlen(base ? base + 1 : p->path));
    }
    if ((rc = qe_kb_chunk_doc(&p->x, c, QE_KB_CHUNK_MAX, &p->ch, &p->nch)) < 0) { qe_errf(p->err, rc, "out of memory"); return; }
    if (p->x.n == 0 || p->nch == 0) { qe_errf(p->err, QE_EFORMAT, "no text found in this %s file", p->f->format); return; }
    p->status = NULL;
}

/* Writes a prepared document. Returns QE_OK (status "added"/"updated" in *status) or the KB's own failure. */
static int commit_doc(ingest *g, prepared *p, const char **status, char *err) {
    int64_t old_id = 0;
    sqlite3_bind_text(g->find, 1, p->path, -1, SQLITE_STATIC);
    if (sqlite3_step(g->find) == SQLITE_ROW) old_id = sqlite3_column_int64(g->find, 0);
    sqlite3_reset(g->find);
    int rc = store_doc(g, p->path, p->f, p->sha, p->size, p->mtime, &p->x, p->ch, p->nch, old_id, err);
    if (rc < 0) return rc;
    *status = old_id ? "updated" : "added";
    return QE_OK;
}

/* --- walking ---------------------------------------------------------------------------------------------- */

typedef struct { char *path; uint64_t size; int64_t mtime; bool from_dir; } entry;
typedef struct { entry *v; size_t n, cap; } entries;

static int push(entries *e, const char *path, const struct stat *st, bool from_dir) {
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        entry *v = realloc(e->v, cap * sizeof *v);
        if (!v) return QE_ENOMEM;
        e->v = v;
        e->cap = cap;
    }
    if (!(e->v[e->n].path = strdup(path))) return QE_ENOMEM;
    e->v[e->n].size = (uint64_t)st->st_size;
    e->v[e->n].mtime = (int64_t)st->st_mtime;
    e->v[e->n].from_dir = from_dir;
    e->n++;
    return QE_OK;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int walk(const char *dir, entries *out, int depth, char *err) {
    if (depth > 32) return QE_OK;
    DIR *d = opendir(dir);
    if (!d) return qe_errf(err, QE_EIO, "cannot read folder %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = QE_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue; /* hidden files, . and .. */
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **v = realloc(names, cap * sizeof *v);
            if (!v) { rc = QE_ENOMEM; break; }
            names = v;
        }
        if (!(names[n] = strdup(de->d_name))) { rc = QE_ENOMEM; break; }
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_name);
    for (size_t i = 0; i < n && rc == QE_OK; i++) {
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, names[i]) >= (int)sizeof p) continue;
        struct stat ls, st;
        if (lstat(p, &ls) != 0 || stat(p, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            if (!S_ISLNK(ls.st_mode)) rc = walk(p, out, depth + 1, err); /* no symlinked folders: no loops */
        } else if (S_ISREG(st.st_mode)) {
            rc = push(out, p, &st, true);
        }
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    if (rc == QE_ENOMEM) qe_errf(err, rc, "out of memory");
    return rc;
}

static void report(ingest *g, const char *path, const char *status, int n_chunks, const char *msg) {
    if (g->o && g->o->file_done) g->o->file_done(g->o->user, path, status, n_chunks, msg);
}

static void progress(ingest *g, double t0) {
    g->pr->elapsed = qe_now() - t0;
    if (g->o && g->o->progress) g->o->progress(g->o->user, g->pr);
}

/* Removes documents stored under folder `dir` whose file is not in the walked list. */
static int remove_missing(ingest *g, const char *dir, const entries *files, char *err) {
    sqlite3_stmt *st = NULL;
    size_t dl = strlen(dir);
    if (sqlite3_prepare_v2(g->kb->db, "SELECT id, path FROM docs WHERE substr(path, 1, ?1) = ?2", -1, &st, NULL) != SQLITE_OK)
        return qe_kb_sqlerr(g->kb, QE_EIO, err, "listing documents");
    char prefix[PATH_MAX + 2];
    snprintf(prefix, sizeof prefix, "%s/", dir);
    sqlite3_bind_int(st, 1, (int)dl + 1);
    sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
    int64_t *gone = NULL;
    char **gone_path = NULL;
    size_t ng = 0, cap = 0;
    int rc = QE_OK;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *p = (const char *)sqlite3_column_text(st, 1);
        bool seen = false;
        for (size_t i = 0; i < files->n && !seen; i++) seen = !strcmp(files->v[i].path, p);
        if (seen) continue;
        if (ng == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *a = realloc(gone, cap * sizeof *a);
            char **b = a ? realloc(gone_path, cap * sizeof *b) : NULL;
            if (a) gone = a;
            if (!a || !b) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); break; }
            gone_path = b;
        }
        gone[ng] = sqlite3_column_int64(st, 0);
        gone_path[ng++] = strdup(p);
    }
    sqlite3_finalize(st);
    for (size_t i = 0; i < ng && rc == QE_OK; i++) {
        if ((rc = qe_kb_exec(g->kb, "BEGIN IMMEDIATE", err)) < 0) break;
        if ((rc = qe_kb_doc_delete_id(g->kb, gone[i], err)) < 0) { qe_kb_exec(g->kb, "ROLLBACK", NULL); break; }
        if ((rc = qe_kb_exec(g->kb, "COMMIT", err)) < 0) break;
        g->pr->removed++;
        report(g, gone_path[i] ? gone_path[i] : "?", "removed", 0, NULL);
    }
    for (size_t i = 0; i < ng; i++) free(gone_path[i]);
    free(gone_path);
    free(gone);
    return rc;
}

/* --- the pipeline: one thread prepares file i+1 while this one writes file i -------------------------------- */

/* Extraction, chunking and token counting are ~1/3 of an ingest's CPU time with the estimate and ~2/3 with
 * the model's tokenizer; SQLite's writes are the rest and must stay on the KB's thread. Two slots: the
 * preparing thread is at most one document ahead, so memory stays at two documents. */
#define SLOTS 2

typedef struct {
    const entries *files;
    const known_docs *known;
    const qe_kb_counter *counter;
    prepared slot[SLOTS];
    size_t produced, consumed;
    bool stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pipeline;

static void prepare_file(prepared *p, const entry *e, const known_docs *k, const qe_kb_counter *c) {
    memset(p, 0, sizeof *p);
    p->path = e->path;
    p->mtime = e->mtime;
    p->size = (int64_t)e->size;
    p->status = "error";
    if (e->from_dir && !qe_kb_format_of(e->path)) {
        p->status = "skipped";
        snprintf(p->err, sizeof p->err, "unsupported format");
        return;
    }
    if (e->size > MAX_FILE_BYTES) {
        qe_errf(p->err, QE_ERANGE, "file too large (%llu MB; at most %llu MB)", (unsigned long long)(e->size >> 20),
                MAX_FILE_BYTES >> 20);
        return;
    }
    char *data = NULL;
    size_t len = 0;
    if (qe_read_file(e->path, &data, &len, p->err) < 0) { free(data); return; }
    prepare_bytes(p, data, len, k, c);
    free(data);
}

static void *pipeline_worker(void *arg) {
    pipeline *pl = arg;
    for (size_t i = 0; i < pl->files->n; i++) {
        pthread_mutex_lock(&pl->mu);
        while (pl->produced - pl->consumed >= SLOTS && !pl->stop) pthread_cond_wait(&pl->cv, &pl->mu);
        bool stop = pl->stop;
        pthread_mutex_unlock(&pl->mu);
        if (stop) break;
        prepare_file(&pl->slot[i % SLOTS], &pl->files->v[i], pl->known, pl->counter);
        pthread_mutex_lock(&pl->mu);
        pl->produced++;
        pthread_cond_broadcast(&pl->cv);
        pthread_mutex_unlock(&pl->mu);
    }
    return NULL;
}

int qe_kb_add_paths(qe_kb *kb, char *const *paths, int n, const qe_kb_ingest_opts *o, qe_kb_progress *result, char *err) {
    qe_kb_progress pr = {0};
    entries files = {0};
    known_docs known = {0};
    char **dirs = calloc(n ? n : 1, sizeof *dirs);
    int nd = 0, rc = QE_OK;
    double t0 = qe_now();
    ingest g;
    static const qe_kb_counter no_counter = {0};
    if (!dirs) return qe_errf(err, QE_ENOMEM, "out of memory");
    if ((rc = ingest_begin(&g, kb, o, &pr, err)) < 0) { free(dirs); return rc; }
    for (int i = 0; i < n && rc == QE_OK; i++) {
        char real[PATH_MAX];
        struct stat st;
        if (!realpath(paths[i], real) || stat(real, &st) != 0) {
            char msg[QE_ERR_LEN];
            snprintf(msg, sizeof msg, "cannot open: %s", strerror(errno));
            report(&g, paths[i], "error", 0, msg);
            pr.failed++;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (!(dirs[nd++] = strdup(real))) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); break; }
            rc = walk(real, &files, 0, err);
        } else if ((rc = push(&files, real, &st, false)) < 0) {
            rc = qe_errf(err, rc, "out of memory");
        }
    }
    if (rc == QE_OK) rc = known_load(kb, &known, err);
    for (size_t i = 0; i < files.n; i++) pr.bytes_total += files.v[i].size;
    pr.files_total = (int)files.n;
    pipeline pl = {.files = &files, .known = &known, .counter = o ? &o->counter : &no_counter};
    pthread_mutex_init(&pl.mu, NULL);
    pthread_cond_init(&pl.cv, NULL);
    pthread_t worker;
    bool started = false;
    if (rc == QE_OK && files.n) {
        xmlInitParser(); /* libxml2 wants its one-time set-up on the main thread before other threads parse */
        if (pthread_create(&worker, NULL, pipeline_worker, &pl) != 0) rc = qe_errf(err, QE_ERR, "cannot start a thread");
        else started = true;
    }
    for (size_t i = 0; i < files.n && rc == QE_OK; i++) {
        pr.current = files.v[i].path;
        progress(&g, t0);
        pthread_mutex_lock(&pl.mu);
        while (pl.produced <= i) pthread_cond_wait(&pl.cv, &pl.mu);
        pthread_mutex_unlock(&pl.mu);
        prepared *p = &pl.slot[i % SLOTS];
        const char *status = p->status;
        if (!status && (rc = commit_doc(&g, p, &status, err)) < 0) {
            qe_err_prefix(err, "%s", p->path);
        } else if (!strcmp(status, "error")) {
            pr.failed++;
            report(&g, p->path, status, 0, p->err);
        } else if (!strcmp(status, "skipped")) {
            pr.skipped++;
            report(&g, p->path, status, 0, p->err);
        } else {
            if (!strcmp(status, "added")) pr.added++;
            else if (!strcmp(status, "updated")) pr.updated++;
            else pr.unchanged++;
            pr.chunks += (int64_t)p->nch;
            report(&g, p->path, status, (int)p->nch, NULL);
        }
        prepared_free(p);
        pthread_mutex_lock(&pl.mu);
        pl.consumed++;
        pthread_cond_broadcast(&pl.cv);
        pthread_mutex_unlock(&pl.mu);
        pr.files_done++;
        pr.bytes_done += files.v[i].size;
        pr.current = NULL;
        progress(&g, t0);
    }
    if (started) {
        pthread_mutex_lock(&pl.mu);
        pl.stop = true;
        pthread_cond_broadcast(&pl.cv);
        pthread_mutex_unlock(&pl.mu);
        pthread_join(worker, NULL);
        /* after a failure the worker may have prepared documents nobody committed */
        for (size_t i = pl.consumed; i < pl.produced; i++) prepared_free(&pl.slot[i % SLOTS]);
    }
    pthread_mutex_destroy(&pl.mu);
    pthread_cond_destroy(&pl.cv);
    for (int i = 0; i < nd && rc == QE_OK; i++) rc = remove_missing(&g, dirs[i], &files, err);
    ingest_end(&g);
    known_free(&known);
    for (int i = 0; i < nd; i++) free(dirs[i]);
    free(dirs);
    for (size_t i = 0; i < files.n; i++) free(files.v[i].path);
    free(files.v);
    pr.elapsed = qe_now() - t0;
    if (result) *result = pr;
    if (rc < 0) return rc;
    return pr.failed ? QE_EFORMAT : QE_OK;
}

int qe_kb_add_buffer(qe_kb *kb, const char *name, const char *data, size_t len, const qe_kb_ingest_opts *o, int *n_chunks,
                     char *err) {
    qe_kb_progress pr = {0};
    ingest g;
    known_docs known = {0};
    int rc = ingest_begin(&g, kb, o, &pr, err);
    if (rc < 0) return rc;
    if ((rc = known_load(kb, &known, err)) < 0) { ingest_end(&g); return rc; }
    static const qe_kb_counter no_counter = {0};
    prepared p = {.path = name, .mtime = (int64_t)time(NULL)};
    prepare_bytes(&p, data, len, &known, o ? &o->counter : &no_counter);
    const char *status = p.status;
    if (!status) rc = commit_doc(&g, &p, &status, err);
    else if (!strcmp(status, "error")) rc = qe_errf(err, QE_EFORMAT, "%s", p.err);
    if (n_chunks) *n_chunks = rc == QE_OK ? (int)p.nch : 0;
    prepared_free(&p);
    known_free(&known);
    ingest_end(&g);
    return rc;
}
