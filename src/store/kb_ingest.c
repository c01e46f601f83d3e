/* kb_ingest.c — files into the KB: the format table, walking folders, sha256 to skip unchanged files, and
 * one SQLite transaction per document (extract -> chunk -> insert doc, chunks and FTS rows -> commit), so a
 * crash (kill -9) loses at most the document being written and the next run picks up where it stopped.
 * Per-file failures (unsupported, corrupt, empty, not UTF-8) are reported through file_done and never stop
 * the rest. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
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

/* One document from memory. *status is "added", "updated" or "unchanged" on success. Per-file problems
 * return QE_EFORMAT / QE_EUNSUPPORTED / QE_EIO with err; other codes are the KB's own failures. */
static int ingest_bytes(ingest *g, const char *path, const char *data, size_t n, int64_t mtime, const char **status,
                        int *n_chunks, char *err) {
    *n_chunks = 0;
    const qe_kb_format *f = qe_kb_format_of(path);
    if (!f) return qe_errf(err, QE_EUNSUPPORTED, "unsupported format (supported: %s)", qe_kb_format_list());
    if (n == 0) return qe_errf(err, QE_EFORMAT, "empty file");
    char sha[65];
    sha256_hex(data, n, sha);
    int64_t old_id = 0;
    sqlite3_bind_text(g->find, 1, path, -1, SQLITE_STATIC);
    if (sqlite3_step(g->find) == SQLITE_ROW) {
        old_id = sqlite3_column_int64(g->find, 0);
        const char *s = (const char *)sqlite3_column_text(g->find, 1);
        if (s && !strcmp(s, sha)) {
            sqlite3_reset(g->find);
            *status = "unchanged";
            return QE_OK;
        }
    }
    sqlite3_reset(g->find);
    qe_kb_extracted x = {0};
    qe_kb_chunk *ch = NULL;
    size_t nch = 0;
    int rc = f->fn(data, n, &x, err);
    if (rc < 0) goto done;
    if (x.n == 0) { rc = qe_errf(err, QE_EFORMAT, "no text found in this %s file", f->format); goto done; }
    if (!x.title[0]) {
        const char *base = strrchr(path, '/');
        qe_kb_ext_title(&x, base ? base + 1 : path, strlen(base ? base + 1 : path));
    }
    if ((rc = qe_kb_chunk_doc(&x, g->o ? &g->o->counter : NULL, QE_KB_CHUNK_MAX, &ch, &nch)) < 0) {
        rc = qe_errf(err, rc, "out of memory");
        goto done;
    }
    if (nch == 0) { rc = qe_errf(err, QE_EFORMAT, "no text found in this %s file", f->format); goto done; }
    if ((rc = store_doc(g, path, f, sha, (int64_t)n, mtime, &x, ch, nch, old_id, err)) < 0) {
        rc = QE_ERR; /* a store failure is the KB's, not the file's: it stops the run */
        goto done;
    }
    *status = old_id ? "updated" : "added";
    *n_chunks = (int)nch;
done:
    qe_kb_chunks_free(ch, nch);
    qe_kb_ext_free(&x);
    return rc;
}

static bool file_error(int rc) { return rc == QE_EFORMAT || rc == QE_EUNSUPPORTED || rc == QE_EIO || rc == QE_ERANGE || rc == QE_ENOMEM; }

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

int qe_kb_add_paths(qe_kb *kb, char *const *paths, int n, const qe_kb_ingest_opts *o, qe_kb_progress *result, char *err) {
    qe_kb_progress pr = {0};
    entries files = {0};
    char **dirs = calloc(n ? n : 1, sizeof *dirs);
    int nd = 0, rc = QE_OK;
    double t0 = qe_now();
    ingest g;
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
    for (size_t i = 0; i < files.n; i++) pr.bytes_total += files.v[i].size;
    pr.files_total = (int)files.n;
    for (size_t i = 0; i < files.n && rc == QE_OK; i++) {
        entry *e = &files.v[i];
        pr.current = e->path;
        progress(&g, t0);
        char ferr[QE_ERR_LEN] = "";
        const char *status = "error";
        int nc = 0, frc;
        if (e->from_dir && !qe_kb_format_of(e->path)) {
            pr.skipped++;
            report(&g, e->path, "skipped", 0, "unsupported format");
        } else if (e->size > MAX_FILE_BYTES) {
            pr.failed++;
            snprintf(ferr, sizeof ferr, "file too large (%llu MB; at most %llu MB)", (unsigned long long)(e->size >> 20),
                     MAX_FILE_BYTES >> 20);
            report(&g, e->path, "error", 0, ferr);
        } else {
            char *data = NULL;
            size_t len = 0;
            frc = qe_read_file(e->path, &data, &len, ferr);
            if (frc == QE_OK) frc = ingest_bytes(&g, e->path, data, len, e->mtime, &status, &nc, ferr);
            free(data);
            if (frc == QE_OK) {
                if (!strcmp(status, "added")) pr.added++;
                else if (!strcmp(status, "updated")) pr.updated++;
                else pr.unchanged++;
                pr.chunks += nc;
                report(&g, e->path, status, nc, NULL);
            } else if (file_error(frc)) {
                pr.failed++;
                report(&g, e->path, "error", 0, ferr);
            } else {
                rc = qe_errf(err, frc, "%s: %s", e->path, ferr);
            }
        }
        pr.files_done++;
        pr.bytes_done += e->size;
        pr.current = NULL;
        progress(&g, t0);
    }
    for (int i = 0; i < nd && rc == QE_OK; i++) rc = remove_missing(&g, dirs[i], &files, err);
    ingest_end(&g);
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
    int rc = ingest_begin(&g, kb, o, &pr, err), nc = 0;
    if (rc < 0) return rc;
    const char *status = NULL;
    rc = ingest_bytes(&g, name, data, len, (int64_t)time(NULL), &status, &nc, err);
    ingest_end(&g);
    if (n_chunks) *n_chunks = nc;
    return rc;
}
