/* kb.h — the knowledge base (KB): one SQLite file per KB under $QWEN_EDGE_HOME/kb/NAME.sqlite holding
 * documents, their chunks, an FTS5 index over the chunks and FAQ entries. This header is the whole public
 * contract for the CLI (src/cli/cmd_kb.c) and the server: store (open/close/list/remove), ingest, search,
 * the grounded prompt block, FAQ matching and hand-off detection.
 *
 * Where things live: kb.c (schema, open/close, names, documents), kb_ingest.c (files -> one transaction per
 * document), kb_extract_*.c (one file per format), kb_chunk.c (blocks -> chunks), kb_fts_tokenizer.c (the
 * FTS5 tokenizer "qe"), kb_search.c (BM25 queries, prompt block), kb_faq.c (FAQ parsers, matching, hand-off).
 *
 * Threads: a qe_kb handle is used by one thread at a time (SQLite connection rules); open one handle per
 * thread. Readers and one writer may run at once on the same file (WAL mode). Errors follow base.h. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "tokenizer.h"

#define QE_KB_SCHEMA_VERSION 1 /* PRAGMA user_version; a newer file is refused, an older one upgraded */
#define QE_KB_NAME_MAX 64

typedef struct qe_kb qe_kb;

/* --- store ---------------------------------------------------------------------------------------------- */

/* A KB name is 1..64 bytes of ASCII letters, digits, '_' and '-', or CJK ideographs; it may not start with
 * '-' (it would read as an option). Nothing else, so a name can never reach outside the kb folder. */
int qe_kb_name_check(const char *name, char *err);

/* $QWEN_EDGE_HOME/kb (QWEN_EDGE_HOME is resolved as in modelstore.h), created if missing. */
int qe_kb_dir(char *out, size_t cap, char *err);

/* FTS5 tokenizer of a new KB's index. QE_KB_FTS_QE (kb_fts_tokenizer.c: Han unigrams + bigrams, other
 * scripts NFKC-case-folded words) is the default, chosen by bench/kb_fts.md; trigram is FTS5's built-in. */
typedef enum { QE_KB_FTS_QE = 0, QE_KB_FTS_TRIGRAM = 1 } qe_kb_fts;

/* Opens $QWEN_EDGE_HOME/kb/NAME.sqlite. With create, a missing KB is made (fts picks its tokenizer; ignored
 * for an existing one); without, a missing KB is QE_ENOTFOUND. A file written by a newer qwen-edge
 * (user_version > QE_KB_SCHEMA_VERSION) is QE_EUNSUPPORTED with a message saying so. */
int qe_kb_open(const char *name, bool create, qe_kb_fts fts, qe_kb **out, char *err);
/* The same for an explicit file path (tests, benchmarks). */
int qe_kb_open_path(const char *path, bool create, qe_kb_fts fts, qe_kb **out, char *err);
void qe_kb_close(qe_kb *kb); /* NULL is fine */

/* Names of the KBs in qe_kb_dir(), sorted. *names is owned: free each, then the array. */
int qe_kb_list(char ***names, int *n, char *err);
/* Deletes a whole KB (its .sqlite, -wal and -shm files). QE_ENOTFOUND if absent. */
int qe_kb_delete(const char *name, char *err);

typedef struct {
    int64_t id;
    char *path;      /* absolute path of the file, or the upload name */
    char *title;
    char *format;    /* "text", "markdown", "html", "pdf", "docx" */
    char sha256[65];
    int64_t size, mtime;
    int n_chunks;
    int64_t text_bytes; /* extracted text */
} qe_kb_doc;
/* All documents, ordered by path. *docs is owned: qe_kb_docs_free. */
int qe_kb_docs(qe_kb *kb, qe_kb_doc **docs, int *n, char *err);
void qe_kb_docs_free(qe_kb_doc *docs, int n);
/* Removes one document (by its stored path, or a unique suffix of it such as the file name) with its chunks
 * and index entries, in one transaction. QE_ENOTFOUND / QE_EINVAL (ambiguous) with the reason in err. */
int qe_kb_doc_remove(qe_kb *kb, const char *which, char *removed, size_t cap, char *err);

/* Consistency check: SQLite's integrity_check, the FTS index against its chunks, and every document's
 * chunk count against its chunks (a document is stored whole or not at all). QE_EFORMAT with the first
 * problem in err. */
int qe_kb_check(qe_kb *kb, char *err);

typedef struct { int n_docs; int64_t n_chunks, text_bytes, file_bytes; char fts[16]; char counter[96]; } qe_kb_stats;
int qe_kb_stats_get(qe_kb *kb, qe_kb_stats *st, char *err);

/* --- token counting -------------------------------------------------------------------------------------- */

/* Chunk sizes and the prompt budget are counted in tokens of the model's own tokenizer when one is given
 * (qwen-edge kb add -m MODEL, or the default model when it is downloaded); without one, an estimate: one
 * token per CJK character plus one per 4 other bytes (Qwen2.5's tokenizer gives ~0.7-1 per Han character and
 * ~4 bytes per English token, so the estimate errs towards smaller chunks). */
typedef struct { const qe_tokenizer *tok; /* NULL: the estimate */ } qe_kb_counter;
size_t qe_kb_count_tokens(const qe_kb_counter *c, const char *s, size_t n);

/* --- ingest (kb_ingest.c) ------------------------------------------------------------------------------ */

typedef struct {
    int files_total, files_done;
    int added, updated, unchanged, removed, failed, skipped; /* skipped: unsupported files found in a folder */
    uint64_t bytes_total, bytes_done;
    int64_t chunks;     /* chunks written in this run */
    double elapsed;     /* seconds since the start */
    const char *current; /* file being read (borrowed, valid during the callback) */
} qe_kb_progress;

typedef struct {
    qe_kb_counter counter;
    /* Called before and after each file (may be NULL). */
    void (*progress)(void *user, const qe_kb_progress *p);
    /* Called once per file: status "added", "updated", "unchanged", "removed", "skipped" or "error" (then msg says why). */
    void (*file_done)(void *user, const char *path, const char *status, int n_chunks, const char *msg);
    void *user;
} qe_kb_ingest_opts;

/* Adds files and folders (recursively; hidden entries skipped) to the KB. Each document is one transaction,
 * so a crash loses at most the document being written and the next run resumes. A file whose sha256 is
 * stored is skipped; a changed one is replaced; documents stored under a given folder whose file is gone are
 * removed. A file that cannot be read or parsed gets file_done(..., "error", msg) and the rest go on.
 * A second thread reads, extracts and chunks the next file while this one writes; the callbacks run here.
 * Returns QE_OK when every file went in, QE_EFORMAT when some failed (see *result), another code when the
 * KB itself failed (err). */
int qe_kb_add_paths(qe_kb *kb, char *const *paths, int n, const qe_kb_ingest_opts *o, qe_kb_progress *result,
                    char *err);
/* Adds one document from memory (an upload): name is its stored path and decides its format by extension.
 * QE_OK also when the same bytes are already stored under that name (*n_chunks 0); a document that cannot be
 * read is QE_EFORMAT with the reason in err; other codes are the KB's own failures. */
int qe_kb_add_buffer(qe_kb *kb, const char *name, const char *data, size_t len, const qe_kb_ingest_opts *o,
                     int *n_chunks, char *err);

/* --- search (kb_search.c) ------------------------------------------------------------------------------ */

typedef struct {
    int64_t chunk_id;
    char *doc;       /* the document's stored path (owned by the hit) */
    char *title;     /* the document's title */
    char *heading;   /* heading path "Chapter > Section > Subsection", "" when none */
    int page;        /* 1-based page for formats with pages (PDF), else 0 */
    char *text;      /* the chunk's text */
    double score;    /* higher is better; BM25 of the question + 0.35 x BM25 of the previous user turn */
} qe_kb_hit;

/* The k best chunks for a question. The query is the new question plus, weighted 0.35, the previous user
 * turn (prev_user_turn may be NULL or ""): a follow-up like "那第二步呢？" still finds the section the
 * conversation is about. Chunks are ranked by FTS5's BM25 with heading matches weighted 3x body matches.
 * *hits is owned: qe_kb_hits_free. Fewer than k (or 0) hits is not an error. */
int qe_kb_search(qe_kb *kb, const char *query, const char *prev_user_turn, int k, qe_kb_hit **hits, int *n,
                 char *err);
void qe_kb_hits_free(qe_kb_hit *hits, int n);

/* Appends the grounding block for a chat prompt to out: numbered sources "[1] doc › heading (p. N)\ntext"
 * in hit order, whole sources only, until budget_tokens (counted with c) would be exceeded; the first source
 * is cut at a UTF-8 boundary when it alone is over the budget. Returns the number of sources written (>= 0)
 * or a negative code. The numbering is what the model is asked to cite ("[1]"). */
int qe_kb_prompt_block(const qe_kb_hit *hits, int n, size_t budget_tokens, const qe_kb_counter *c, qe_buf *out);

/* The system message for an answer grounded in hits: instructions (answer only from the numbered sources,
 * cite them as [n], say so when they do not hold the answer; in the question's language) followed by the
 * qe_kb_prompt_block of the hits within budget_tokens. Returns the number of sources used (>= 0). */
int qe_kb_grounded_system(const qe_kb_hit *hits, int n, size_t budget_tokens, const qe_kb_counter *c, qe_buf *out);

/* --- FAQ (kb_faq.c) -------------------------------------------------------------------------------------- */

typedef struct {
    char *question;
    char *alternates; /* other phrasings separated by '|', or NULL */
    char *answer;
    char *source;     /* file it came from */
    int line;         /* line of the question in that file */
} qe_kb_faq_entry;

/* Pure parsers over (ptr, len). CSV: RFC 4180 (quotes, "" escapes, CRLF, a UTF-8 BOM), a header row naming
 * question, answer and optionally alternates (or 问题, 答案, 相似问题); without a header the columns are in
 * that order. Markdown: "## question" (alternates after " | " in the heading) and the answer is everything up
 * to the next heading of level 1 or 2. *out is owned: qe_kb_faq_free. Errors name the line. */
int qe_kb_faq_parse_csv(const char *p, size_t n, const char *source, qe_kb_faq_entry **out, int *count, char *err);
int qe_kb_faq_parse_md(const char *p, size_t n, const char *source, qe_kb_faq_entry **out, int *count, char *err);
/* Picks the parser by extension (.csv, .md). */
int qe_kb_faq_parse(const char *p, size_t n, const char *source, qe_kb_faq_entry **out, int *count, char *err);
void qe_kb_faq_free(qe_kb_faq_entry *e, int n);

/* Similarity of a user question to a FAQ question in [0, 1]: Dice overlap of their terms (CJK bigrams and
 * NFKC-case-folded words, 0.7) and of their characters (0.3), punctuation and spacing ignored. */
double qe_kb_faq_similarity(const char *a, size_t na, const char *b, size_t nb);
#define QE_KB_FAQ_THRESHOLD 0.5

/* Best entry for a question among entries (question and alternates): index, or -1 when none reaches
 * threshold. *score gets the best score either way. */
int qe_kb_faq_best(const qe_kb_faq_entry *e, int n, const char *q, double threshold, double *score);

/* Replaces the KB's FAQ entries from `source` with these (one transaction). */
int qe_kb_faq_store(qe_kb *kb, const char *source, const qe_kb_faq_entry *e, int n, char *err);
/* All stored FAQ entries. */
int qe_kb_faq_load(qe_kb *kb, qe_kb_faq_entry **out, int *n, char *err);

/* Hand-off: true when the question asks for a person. phrases == NULL uses qe_kb_handoff_default (转人工,
 * 人工客服, 人工服务, 找人工, 真人客服, human agent, real person, talk to a human, speak to a human);
 * matching is NFKC-case-folded substring search with spaces ignored. */
extern const char *const qe_kb_handoff_default[];
bool qe_kb_handoff(const char *q, size_t n, const char *const *phrases, int n_phrases);
