/* textstream.h — turns a job's token ids into text chunks safe to send: whole UTF-8 only, and no text that
 * might turn out to be the start of a stop string. Shared by the server and the terminal chat.
 *
 *     qe_textstream ts; qe_textstream_init(&ts, tok, stops, n_stops, err);
 *     for each token:  r = qe_textstream_push(&ts, id, &out);  send out;  if (r == QE_TEXTSTREAM_STOP) cancel job
 *     at the end:      qe_textstream_finish(&ts, &out);  send out;
 *     qe_textstream_free(&ts);
 *
 * Text that could still become a stop string is held back until it either completes the stop string (then
 * the text before it is emitted, the stop string itself never is, and push reports QE_TEXTSTREAM_STOP) or
 * stops matching (then it is emitted). Incomplete UTF-8 is held back by the detokenizer (qe_detok_*).
 * Every chunk appended to `out` ends on a character boundary. Nothing here is thread-safe: one stream
 * belongs to one request. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base.h"
#include "tokenizer.h"

#define QE_TEXTSTREAM_STOP 1

typedef struct {
    const qe_tokenizer *tok;  /* borrowed */
    qe_detok detok;
    char **stops;             /* owned copies, non-empty strings only */
    int n_stops;
    size_t max_stop;          /* longest stop string in bytes */
    qe_buf held;              /* decoded text not yet emitted (a possible stop-string prefix) */
    qe_buf scratch;
    bool stopped;             /* a stop string matched: further pushes emit nothing */
    bool finished;
    size_t n_emitted;         /* bytes emitted so far */
} qe_textstream;

/* stops: n_stops UTF-8 strings (copied; empty ones are ignored). QE_EINVAL if one is not valid UTF-8. */
int qe_textstream_init(qe_textstream *ts, const qe_tokenizer *tok, const char *const *stops, int n_stops,
                       char *err);
/* Appends the text that is now safe to emit to out. Returns QE_OK, QE_TEXTSTREAM_STOP when a stop string
 * completed (the caller should cancel the job), or a negative QE_E* code (out of memory). */
int qe_textstream_push(qe_textstream *ts, int32_t id, qe_buf *out);
/* End of generation (not after a stop): emits everything held back, an unfinished UTF-8 tail as U+FFFD. */
int qe_textstream_finish(qe_textstream *ts, qe_buf *out);
void qe_textstream_free(qe_textstream *ts);

/* True if s[0..n) is valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
bool qe_utf8_valid(const char *s, size_t n);
