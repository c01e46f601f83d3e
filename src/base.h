/* base.h — what every file of qwen-edge shares: error codes, the err-buffer convention, QE_ASSERT, logging,
 * a monotonic clock and a few size helpers. Nothing model-specific lives here.
 *
 * Error convention: a function that can fail on outside input returns int (QE_OK = 0, or a negative QE_E*
 * code) and takes an optional `char *err` of QE_ERR_LEN bytes that it fills with one human-readable line.
 * QE_ASSERT is always on and is only for real internal invariants, never for input. Only main() exits. */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
    QE_OK = 0,
    QE_ERR = -1,       /* generic */
    QE_ENOMEM = -2,
    QE_EIO = -3,       /* file or socket I/O */
    QE_EFORMAT = -4,   /* malformed file or data */
    QE_EINVAL = -5,    /* bad argument or request */
    QE_ERANGE = -6,    /* too large: context, body, limits */
    QE_EBUSY = -7,     /* queue full */
    QE_ECANCELED = -8, /* client went away / user stopped */
    QE_ENOTFOUND = -9,
    QE_EUNSUPPORTED = -10,
};

#define QE_ERR_LEN 512

/* Writes a formatted message into err (if err is non-NULL). Returns `code` so callers can write
 * `return qe_errf(err, QE_EFORMAT, "...", ...);`. */
int qe_errf(char *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message in err with "prefix: " (e.g. the file name). */
void qe_err_prefix(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

_Noreturn void qe_panic(const char *file, int line, const char *cond);
#define QE_ASSERT(c) do { if (__builtin_expect(!(c), 0)) qe_panic(__FILE__, __LINE__, #c); } while (0)

typedef enum { QE_LOG_DEBUG, QE_LOG_INFO, QE_LOG_WARN, QE_LOG_ERROR } qe_log_level;
extern qe_log_level qe_log_min; /* messages below this level are dropped; default INFO */
void qe_log(qe_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

double qe_now(void);         /* seconds, monotonic */
uint64_t qe_now_ns(void);

/* Allocation helpers that return NULL on overflow or failure (never abort). The engine's job queue, the chat
 * window, the tokenizer and qe_buf allocate through them, so tests can make any one of those allocations fail.
 * qe_realloc(p, n): on failure p stays valid and owned by the caller (like realloc). */
void *qe_malloc(size_t n);
void *qe_calloc(size_t n, size_t size);
void *qe_realloc(void *p, size_t n);

/* Allocation-failure injection (SQLite's way), for tests: after qe_alloc_fail_at(n, persist), the n-th call
 * to qe_malloc/qe_calloc/qe_realloc from now on (any thread; n >= 1) returns NULL, and with persist every
 * later one too; n = 0 turns it off. qe_alloc_fail_hits() is how many calls failed that way since the last
 * qe_alloc_fail_at: 0 after an operation means it made fewer than n allocations, so it ran to the end.
 * Always compiled in: the tested library is the shipped one, and the cost when off is one load and a branch
 * that is never taken, next to a malloc call (and no allocation is on the per-token path). */
void qe_alloc_fail_at(long n, bool persist);
long qe_alloc_fail_hits(void);
void *qe_aligned_alloc(size_t align, size_t n); /* free with free() */
/* a * b with overflow check: returns false on overflow. */
static inline bool qe_mul_ok(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool qe_add_ok(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }

/* A borrowed, not NUL-terminated string (e.g. pointing into a mapped file). */
typedef struct { const char *p; size_t n; } qe_str;
bool qe_str_eq(qe_str s, const char *z);

/* A growable byte buffer (owned). */
typedef struct { char *p; size_t n, cap; } qe_buf;
int qe_buf_append(qe_buf *b, const void *data, size_t n);
int qe_buf_printf(qe_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void qe_buf_free(qe_buf *b);

/* Reads a whole file into memory (owned, NUL-terminated). */
int qe_read_file(const char *path, char **out, size_t *len, char *err);

/* Finishes a file written as `part`: flush, fsync, close (*out becomes NULL either way), then rename to final_path,
 * so a file appears under its final name only complete. On success part[0] is set to 0 (nothing left to remove). */
int qe_file_commit(FILE **out, char *part, const char *final_path, char *err);

/* Physical cores of this machine (for the default -t). */
int qe_physical_cores(void);

#include "fp16.h"
