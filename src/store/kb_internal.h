/* kb_internal.h — what the KB's own files share and nobody else needs: the KB handle, the extracted-document
 * model every format extractor fills (blocks over one text buffer), the chunker, the term splitter behind
 * the FTS5 tokenizer, and the format table. Public API: kb.h. */
#pragma once
#include <sqlite3.h>

#include "store/kb.h"

struct qe_kb {
    sqlite3 *db;
    qe_kb_fts fts;
    char path[1024];
};

/* --- extracted document ------------------------------------------------------------------------------- */

typedef enum { QE_KB_HEADING, QE_KB_PARA, QE_KB_ITEM, QE_KB_ROW, QE_KB_PRE } qe_kb_block_kind;

/* A block is a span of ext->text: blocks are stored one after the other separated by "\n\n", so a chunk (a
 * run of blocks) is one contiguous byte span of the extracted text. */
typedef struct {
    qe_kb_block_kind kind;
    int level;  /* headings: 1 = top */
    int page;   /* 1-based, 0 when the format has no pages */
    size_t off, len;
} qe_kb_block;

typedef struct {
    qe_buf text;
    qe_kb_block *b;
    size_t n, cap;
    char title[256];
    int page; /* current page for blocks being added (extractors with pages set it) */
} qe_kb_extracted;

/* Appends a block: whitespace runs collapse to one space (PRE keeps line breaks), a line break between two
 * CJK characters disappears (hard-wrapped Chinese), leading/trailing space is trimmed; an empty result adds
 * nothing. The bytes must be valid UTF-8 (extractors check their input first). */
int qe_kb_ext_add(qe_kb_extracted *x, qe_kb_block_kind kind, int level, const char *s, size_t n);
void qe_kb_ext_free(qe_kb_extracted *x);
/* Sets the title (first 200 bytes, whole characters, spaces collapsed) unless one is set. */
void qe_kb_ext_title(qe_kb_extracted *x, const char *s, size_t n);
/* QE_OK if p[0..n) is valid UTF-8, else QE_EFORMAT naming the first bad byte offset. */
int qe_kb_utf8_check(const char *p, size_t n, char *err);

/* An extractor: a pure function of the file's bytes (except PDF, which poppler parses from memory too). */
typedef int (*qe_kb_extract_fn)(const char *p, size_t n, qe_kb_extracted *out, char *err);
int qe_kb_extract_txt(const char *p, size_t n, qe_kb_extracted *out, char *err);
int qe_kb_extract_md(const char *p, size_t n, qe_kb_extracted *out, char *err);
int qe_kb_extract_html(const char *p, size_t n, qe_kb_extracted *out, char *err);
int qe_kb_extract_pdf(const char *p, size_t n, qe_kb_extracted *out, char *err);
int qe_kb_extract_docx(const char *p, size_t n, qe_kb_extracted *out, char *err);

typedef struct { const char *ext; const char *format; qe_kb_extract_fn fn; } qe_kb_format;
/* The format of a file name by extension (case-insensitive), or NULL. */
const qe_kb_format *qe_kb_format_of(const char *name);
/* "txt md markdown html htm pdf docx" for messages. */
const char *qe_kb_format_list(void);

/* --- chunker (kb_chunk.c) ------------------------------------------------------------------------------- */

#define QE_KB_CHUNK_MIN 200 /* tokens: a chunk is closed at a heading, or before it would pass MAX */
#define QE_KB_CHUNK_MAX 400

typedef struct {
    char *heading; /* owned: "H1 > H2 > H3" */
    int page;
    size_t off, len; /* span of x->text */
    int n_tokens;
} qe_kb_chunk;

/* Splits x into chunks following its structure: a heading closes the current chunk; blocks are packed up to
 * max_tokens; a longer block is cut at sentence ends (then at any UTF-8 boundary). *out is owned:
 * qe_kb_chunks_free. */
int qe_kb_chunk_doc(const qe_kb_extracted *x, const qe_kb_counter *c, int max_tokens, qe_kb_chunk **out, size_t *n);
void qe_kb_chunks_free(qe_kb_chunk *c, size_t n);

/* --- terms (kb_fts_tokenizer.c) ------------------------------------------------------------------------- */

/* Term splitter shared by the FTS5 tokenizer, the query builder and FAQ matching. Calls cb for each term:
 * CJK runs (Han, kana, Hangul) give bigrams, each with its unigram co-located (flag 1) in DOC mode; in QUERY
 * mode a run gives its bigrams only (a one-character run: the unigram), so a quoted phrase lines up with the
 * document's positions. Other letters/digits form words, NFKC-case-folded (ASCII fast path), cut at 64
 * bytes. Everything else separates. start/end are byte offsets of the term's source in s. cb returns
 * non-zero to stop; that value is returned. */
enum { QE_KB_TERMS_DOC = 0, QE_KB_TERMS_QUERY = 1, QE_KB_TERMS_ALL = 2 /* bigrams and unigrams, no flags */ };
typedef int (*qe_kb_term_cb)(void *user, int colocated, const char *t, int nt, int start, int end, int cjk);
int qe_kb_terms(const char *s, size_t n, int mode, qe_kb_term_cb cb, void *user);

/* Registers the "qe" tokenizer on a connection. */
int qe_kb_fts_register(sqlite3 *db, char *err);

/* --- kb.c helpers for the other KB files --------------------------------------------------------------- */
int qe_kb_exec(qe_kb *kb, const char *sql, char *err);
int qe_kb_sqlerr(qe_kb *kb, int code, char *err, const char *what);
int qe_kb_doc_delete_id(qe_kb *kb, int64_t id, char *err); /* inside the caller's transaction */
