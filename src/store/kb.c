/* kb.c — the KB store: names and paths, the SQLite schema (version in PRAGMA user_version), open/close in WAL
 * mode, listing and deleting KBs and documents. Ingest, search and FAQ live in their own kb_*.c files.
 *
 * Schema (version 1):
 *   meta(key, value)            fts = "qe" | "trigram", counter = how tokens were counted
 *   docs(id, path UNIQUE, title, format, sha256, size, mtime, n_chunks, text_bytes, added_at)
 *   chunks(id, doc_id, ord, heading, page, text, n_tokens, span_start, span_end)
 *   chunks_fts                  FTS5 over chunks(heading, text), external content: the text is stored once
 *   faq(id, source, line, question, alternates, answer)
 * The FTS index is kept in step by hand (insert after each chunk, 'delete' before removing one): triggers
 * would do the same work but hide it from the one place that writes (kb_ingest.c). */
#include "store/kb.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "modelstore.h"
#include "store/kb_internal.h"

int qe_kb_name_check(const char *name, char *err) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0) return qe_errf(err, QE_EINVAL, "a KB name is needed");
    if (n > QE_KB_NAME_MAX) return qe_errf(err, QE_EINVAL, "KB name too long (at most %d bytes)", QE_KB_NAME_MAX);
    if (name[0] == '-') return qe_errf(err, QE_EINVAL, "a KB name may not start with '-'");
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)name + i, n - i, &cp);
        bool ok = k > 0 && ((cp < 128 && (cp == '_' || cp == '-' || (cp >= '0' && cp <= '9') || ((cp | 32) >= 'a' && (cp | 32) <= 'z'))) ||
                            (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2FFFF));
        if (!ok)
            return qe_errf(err, QE_EINVAL, "'%s' is not a valid KB name (letters, digits, '_', '-' and Chinese characters only)", name);
        i += (size_t)k;
    }
    return QE_OK;
}

int qe_kb_dir(char *out, size_t cap, char *err) {
    char home[1024];
    int rc = qe_models_dir(home, sizeof home, err);
    if (rc < 0) return rc;
    int k = snprintf(out, cap, "%s/kb", home);
    if (k < 0 || (size_t)k >= cap) return qe_errf(err, QE_ERANGE, "KB folder path too long");
    if (mkdir(out, 0755) != 0 && errno != EEXIST) return qe_errf(err, QE_EIO, "cannot create %s: %s", out, strerror(errno));
    return QE_OK;
}

static int kb_file(const char *name, char *out, size_t cap, char *err) {
    int rc = qe_kb_name_check(name, err);
    if (rc < 0) return rc;
    char dir[1024];
    if ((rc = qe_kb_dir(dir, sizeof dir, err)) < 0) return rc;
    int k = snprintf(out, cap, "%s/%s.sqlite", dir, name);
    if (k < 0 || (size_t)k >= cap) return qe_errf(err, QE_ERANGE, "KB path too long");
    return QE_OK;
}

int qe_kb_sqlerr(qe_kb *kb, int code, char *err, const char *what) {
    return qe_errf(err, code, "%s: %s (%s)", what, sqlite3_errmsg(kb->db), kb->path);
}

int qe_kb_exec(qe_kb *kb, const char *sql, char *err) {
    char *msg = NULL;
    if (sqlite3_exec(kb->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = qe_errf(err, QE_EIO, "%s (%s)", msg ? msg : "sqlite error", kb->path);
        sqlite3_free(msg);
        return rc;
    }
    return QE_OK;
}

static const char *const SCHEMA =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE docs(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, title TEXT, format TEXT, sha256 TEXT,"
    " size INTEGER, mtime INTEGER, n_chunks INTEGER, text_bytes INTEGER, added_at INTEGER);"
    "CREATE TABLE chunks(id INTEGER PRIMARY KEY, doc_id INTEGER NOT NULL, ord INTEGER NOT NULL, heading TEXT,"
    " page INTEGER, text TEXT NOT NULL, n_tokens INTEGER, span_start INTEGER, span_end INTEGER);"
    "CREATE INDEX chunks_doc ON chunks(doc_id, ord);"
    "CREATE TABLE faq(id INTEGER PRIMARY KEY, source TEXT, line INTEGER, question TEXT NOT NULL, alternates TEXT,"
    " answer TEXT NOT NULL);";

static int meta_get(qe_kb *kb, const char *key, char *out, size_t cap) {
    sqlite3_stmt *st = NULL;
    int rc = QE_ENOTFOUND;
    out[0] = 0;
    if (sqlite3_prepare_v2(kb->db, "SELECT value FROM meta WHERE key=?", -1, &st, NULL) != SQLITE_OK) return QE_EIO;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
        rc = QE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int schema_create(qe_kb *kb, qe_kb_fts fts, char *err) {
    char sql[512];
    int rc;
    if ((rc = qe_kb_exec(kb, "BEGIN IMMEDIATE", err)) < 0) return rc;
    /* someone else may have created it between our check and the lock */
    int v = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(kb->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (v != 0) return qe_kb_exec(kb, "COMMIT", err);
    snprintf(sql, sizeof sql,
             "CREATE VIRTUAL TABLE chunks_fts USING fts5(heading, text, content='chunks', content_rowid='id', tokenize='%s');"
             "INSERT INTO chunks_fts(chunks_fts, rank) VALUES('rank', 'bm25(3.0, 1.0)');"
             "INSERT INTO meta VALUES('fts', '%s');"
             "PRAGMA user_version=%d;",
             fts == QE_KB_FTS_TRIGRAM ? "trigram" : "qe", fts == QE_KB_FTS_TRIGRAM ? "trigram" : "qe", QE_KB_SCHEMA_VERSION);
    if ((rc = qe_kb_exec(kb, SCHEMA, err)) < 0 || (rc = qe_kb_exec(kb, sql, err)) < 0) {
        qe_kb_exec(kb, "ROLLBACK", NULL);
        return rc;
    }
    return qe_kb_exec(kb, "COMMIT", err);
}

int qe_kb_open_path(const char *path, bool create, qe_kb_fts fts, qe_kb **out, char *err) {
    *out = NULL;
    struct stat sb;
    if (!create && stat(path, &sb) != 0) return qe_errf(err, QE_ENOTFOUND, "no knowledge base at %s", path);
    qe_kb *kb = calloc(1, sizeof *kb);
    if (!kb) return qe_errf(err, QE_ENOMEM, "out of memory");
    snprintf(kb->path, sizeof kb->path, "%s", path);
    int rc = QE_OK;
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &kb->db, flags, NULL) != SQLITE_OK) {
        rc = qe_errf(err, QE_EIO, "cannot open %s: %s", path, kb->db ? sqlite3_errmsg(kb->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(kb->db, 5000);
    if ((rc = qe_kb_fts_register(kb->db, err)) < 0) goto fail;
    /* WAL: readers (the server) never wait for an ingest; NORMAL sync is still crash-safe for the app dying
     * (kill -9): only a power loss can lose the last committed transactions, never corrupt the file. */
    if ((rc = qe_kb_exec(kb, "PRAGMA page_size=8192; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536;", err)) < 0) {
        qe_err_prefix(err, "not a knowledge base file, or unreadable");
        goto fail;
    }
    int v = -1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(kb->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (v < 0) { rc = qe_errf(err, QE_EFORMAT, "%s is not a knowledge base file", path); goto fail; }
    if (v > QE_KB_SCHEMA_VERSION) {
        rc = qe_errf(err, QE_EUNSUPPORTED,
                     "%s was written by a newer qwen-edge (KB schema %d; this build reads up to %d): upgrade qwen-edge",
                     path, v, QE_KB_SCHEMA_VERSION);
        goto fail;
    }
    if (v == 0) {
        /* an empty file is ours to create; a non-empty one without our version is someone else's database */
        int n_tables = 0;
        if (sqlite3_prepare_v2(kb->db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n_tables = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (n_tables > 0) { rc = qe_errf(err, QE_EFORMAT, "%s is an SQLite file but not a knowledge base", path); goto fail; }
        if ((rc = schema_create(kb, fts, err)) < 0) goto fail;
    }
    char f[32];
    meta_get(kb, "fts", f, sizeof f);
    kb->fts = strcmp(f, "trigram") == 0 ? QE_KB_FTS_TRIGRAM : QE_KB_FTS_QE;
    *out = kb;
    return QE_OK;
fail:
    qe_kb_close(kb);
    return rc;
}

int qe_kb_open(const char *name, bool create, qe_kb_fts fts, qe_kb **out, char *err) {
    char path[1200];
    int rc = kb_file(name, path, sizeof path, err);
    if (rc < 0) return rc;
    struct stat sb;
    if (!create && stat(path, &sb) != 0)
        return qe_errf(err, QE_ENOTFOUND, "no knowledge base named '%s' (qwen-edge kb list shows them; kb add makes one)", name);
    return qe_kb_open_path(path, create, fts, out, err);
}

void qe_kb_close(qe_kb *kb) {
    if (!kb) return;
    if (kb->db) sqlite3_close_v2(kb->db);
    free(kb);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int qe_kb_list(char ***names, int *n, char *err) {
    *names = NULL;
    *n = 0;
    char dir[1024];
    int rc = qe_kb_dir(dir, sizeof dir, err);
    if (rc < 0) return rc;
    DIR *d = opendir(dir);
    if (!d) return qe_errf(err, QE_EIO, "cannot read %s: %s", dir, strerror(errno));
    char **v = NULL;
    int cnt = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 7 || strcmp(e->d_name + l - 7, ".sqlite") != 0) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(l - 7), e->d_name);
        if (qe_kb_name_check(name, NULL) < 0) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = realloc(v, cap * sizeof *v);
            if (!nv) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); break; }
            v = nv;
        }
        if (!(v[cnt] = strdup(name))) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); break; }
        cnt++;
    }
    closedir(d);
    if (rc < 0) {
        for (int i = 0; i < cnt; i++) free(v[i]);
        free(v);
        return rc;
    }
    if (cnt) qsort(v, cnt, sizeof *v, cmp_str);
    *names = v;
    *n = cnt;
    return QE_OK;
}

int qe_kb_delete(const char *name, char *err) {
    char path[1200], side[1300];
    int rc = kb_file(name, path, sizeof path, err);
    if (rc < 0) return rc;
    if (unlink(path) != 0)
        return errno == ENOENT ? qe_errf(err, QE_ENOTFOUND, "no knowledge base named '%s'", name)
                               : qe_errf(err, QE_EIO, "cannot remove %s: %s", path, strerror(errno));
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    return QE_OK;
}

static char *col_dup(sqlite3_stmt *st, int i) {
    const char *s = (const char *)sqlite3_column_text(st, i);
    return strdup(s ? s : "");
}

void qe_kb_docs_free(qe_kb_doc *docs, int n) {
    if (!docs) return;
    for (int i = 0; i < n; i++) {
        free(docs[i].path);
        free(docs[i].title);
        free(docs[i].format);
    }
    free(docs);
}

int qe_kb_docs(qe_kb *kb, qe_kb_doc **docs, int *n, char *err) {
    *docs = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(kb->db, "SELECT id, path, title, format, sha256, size, mtime, n_chunks, text_bytes FROM docs ORDER BY path",
                           -1, &st, NULL) != SQLITE_OK)
        return qe_kb_sqlerr(kb, QE_EIO, err, "listing documents");
    qe_kb_doc *v = NULL;
    int cnt = 0, cap = 0, rc = QE_OK, s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 32;
            qe_kb_doc *nv = realloc(v, cap * sizeof *v);
            if (!nv) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); break; }
            v = nv;
        }
        qe_kb_doc *d = &v[cnt++];
        memset(d, 0, sizeof *d);
        d->id = sqlite3_column_int64(st, 0);
        d->path = col_dup(st, 1);
        d->title = col_dup(st, 2);
        d->format = col_dup(st, 3);
        snprintf(d->sha256, sizeof d->sha256, "%s", sqlite3_column_text(st, 4) ? (const char *)sqlite3_column_text(st, 4) : "");
        d->size = sqlite3_column_int64(st, 5);
        d->mtime = sqlite3_column_int64(st, 6);
        d->n_chunks = sqlite3_column_int(st, 7);
        d->text_bytes = sqlite3_column_int64(st, 8);
        if (!d->path || !d->title || !d->format) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); break; }
    }
    if (rc == QE_OK && s != SQLITE_DONE) rc = qe_kb_sqlerr(kb, QE_EIO, err, "listing documents");
    sqlite3_finalize(st);
    if (rc < 0) { qe_kb_docs_free(v, cnt); return rc; }
    *docs = v;
    *n = cnt;
    return QE_OK;
}

int qe_kb_doc_delete_id(qe_kb *kb, int64_t id, char *err) {
    static const char *const sql[] = {
        "INSERT INTO chunks_fts(chunks_fts, rowid, heading, text) SELECT 'delete', id, heading, text FROM chunks WHERE doc_id=?1",
        "DELETE FROM chunks WHERE doc_id=?1",
        "DELETE FROM docs WHERE id=?1",
    };
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(kb->db, sql[i], -1, &st, NULL) != SQLITE_OK) return qe_kb_sqlerr(kb, QE_EIO, err, "removing a document");
        sqlite3_bind_int64(st, 1, id);
        int s = sqlite3_step(st);
        sqlite3_finalize(st);
        if (s != SQLITE_DONE) return qe_kb_sqlerr(kb, QE_EIO, err, "removing a document");
    }
    return QE_OK;
}

int qe_kb_doc_remove(qe_kb *kb, const char *which, char *removed, size_t cap, char *err) {
    qe_kb_doc *docs = NULL;
    int n = 0, rc = qe_kb_docs(kb, &docs, &n, err);
    if (rc < 0) return rc;
    int found = -1, matches = 0;
    size_t wl = strlen(which);
    for (int i = 0; i < n; i++) {
        if (!strcmp(docs[i].path, which)) { found = i; matches = 1; break; }
        size_t pl = strlen(docs[i].path);
        /* a suffix at a path-component boundary: "guide.pdf" or "docs/guide.pdf" */
        if (wl < pl && !strcmp(docs[i].path + pl - wl, which) && docs[i].path[pl - wl - 1] == '/') { found = i; matches++; }
    }
    if (matches == 0) rc = qe_errf(err, QE_ENOTFOUND, "no document '%s' in this knowledge base (kb ls shows them)", which);
    else if (matches > 1) rc = qe_errf(err, QE_EINVAL, "'%s' matches %d documents: give the full path (kb ls shows them)", which, matches);
    else {
        if ((rc = qe_kb_exec(kb, "BEGIN IMMEDIATE", err)) < 0) goto done;
        if ((rc = qe_kb_doc_delete_id(kb, docs[found].id, err)) < 0) { qe_kb_exec(kb, "ROLLBACK", NULL); goto done; }
        if ((rc = qe_kb_exec(kb, "COMMIT", err)) < 0) goto done;
        if (removed) snprintf(removed, cap, "%s", docs[found].path);
    }
done:
    qe_kb_docs_free(docs, n);
    return rc;
}

int qe_kb_stats_get(qe_kb *kb, qe_kb_stats *s, char *err) {
    memset(s, 0, sizeof *s);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(kb->db, "SELECT count(*), coalesce(sum(n_chunks),0), coalesce(sum(text_bytes),0) FROM docs", -1, &st,
                           NULL) != SQLITE_OK)
        return qe_kb_sqlerr(kb, QE_EIO, err, "reading statistics");
    if (sqlite3_step(st) == SQLITE_ROW) {
        s->n_docs = sqlite3_column_int(st, 0);
        s->n_chunks = sqlite3_column_int64(st, 1);
        s->text_bytes = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    struct stat sb;
    char wal[1100];
    if (stat(kb->path, &sb) == 0) s->file_bytes = sb.st_size;
    snprintf(wal, sizeof wal, "%s-wal", kb->path);
    if (stat(wal, &sb) == 0) s->file_bytes += sb.st_size;
    snprintf(s->fts, sizeof s->fts, "%s", kb->fts == QE_KB_FTS_TRIGRAM ? "trigram" : "qe");
    meta_get(kb, "counter", s->counter, sizeof s->counter);
    return QE_OK;
}

int qe_kb_check(qe_kb *kb, char *err) {
    sqlite3_stmt *st = NULL;
    int rc = QE_OK;
    if (sqlite3_prepare_v2(kb->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) return qe_kb_sqlerr(kb, QE_EIO, err, "checking");
    if (sqlite3_step(st) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (!r || strcmp(r, "ok")) rc = qe_errf(err, QE_EFORMAT, "integrity_check: %s", r ? r : "?");
    }
    sqlite3_finalize(st);
    if (rc < 0) return rc;
    char *msg = NULL;
    if (sqlite3_exec(kb->db, "INSERT INTO chunks_fts(chunks_fts, rank) VALUES('integrity-check', 1)", NULL, NULL, &msg) != SQLITE_OK) {
        rc = qe_errf(err, QE_EFORMAT, "the search index does not match the chunks: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return rc;
    }
    if (sqlite3_prepare_v2(kb->db,
                           "SELECT d.path, d.n_chunks, (SELECT count(*) FROM chunks c WHERE c.doc_id = d.id) AS n FROM docs d"
                           " WHERE n != d.n_chunks UNION ALL SELECT 'chunk without document', 0, count(*) FROM chunks"
                           " WHERE doc_id NOT IN (SELECT id FROM docs) HAVING count(*) > 0", -1, &st, NULL) != SQLITE_OK)
        return qe_kb_sqlerr(kb, QE_EIO, err, "checking");
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = qe_errf(err, QE_EFORMAT, "%s: %d chunks stored, %d expected", (const char *)sqlite3_column_text(st, 0),
                     sqlite3_column_int(st, 2), sqlite3_column_int(st, 1));
    sqlite3_finalize(st);
    return rc;
}
