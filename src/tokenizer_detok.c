/* tokenizer_detok.c — the streaming detokenizer (tokenizer.h): token ids in, only complete UTF-8 characters out;
 * an incomplete tail is held back, invalid bytes become U+FFFD (one per maximal subpart, as the encoder does).
 * Stop strings and whole-text streaming are textstream.c's job. */
#include "tokenizer.h"
#include "tokenizer_internal.h"

#include <string.h>

void qe_detok_init(qe_detok *d) { memset(d, 0, sizeof *d); }

/* Emits complete characters of pending[0..np) ++ b[0..n), keeps an incomplete tail (<= 3 bytes) in
 * d->pending. Definitely invalid bytes become U+FFFD at once. */
static int detok_feed(qe_detok *d, const uint8_t *b, size_t n, qe_buf *out) {
    int rc;
    /* first resolve the held-back bytes with at most 3 bytes of the new data */
    while (d->n_pending > 0) {
        uint8_t tmp[8];
        int np = d->n_pending;
        size_t take = n < 4 ? n : 4;
        memcpy(tmp, d->pending, np);
        memcpy(tmp + np, b, take);
        int l; uint32_t cp;
        int st = utf8_next(tmp, np + take, &l, &cp);
        if (st == U8_SHORT) { /* still incomplete: all of b fits in pending (np + take < 4) */
            memcpy(d->pending + np, b, n);
            d->n_pending = np + (int)n;
            return QE_OK;
        }
        if (st == U8_OK) rc = qe_buf_append(out, tmp, l);
        else rc = qe_buf_append(out, QE_UTF8_REPLACEMENT, 3);
        if (rc < 0) return rc;
        if (l >= np) { /* consumed all pending and l - np bytes of b */
            b += l - np; n -= l - np;
            d->n_pending = 0;
        } else { /* a bad subpart inside pending: keep the rest of pending */
            memmove(d->pending, d->pending + l, np - l);
            d->n_pending = np - l;
        }
    }
    size_t i = 0, run = 0;
    while (i < n) {
        if (b[i] < 0x80) { i++; continue; }
        int l; uint32_t cp;
        int st = utf8_next(b + i, n - i, &l, &cp);
        if (st == U8_OK) { i += l; continue; }
        if ((rc = qe_buf_append(out, b + run, i - run)) < 0) return rc;
        if (st == U8_SHORT) {
            memcpy(d->pending, b + i, l);
            d->n_pending = l;
            return QE_OK;
        }
        if ((rc = qe_buf_append(out, QE_UTF8_REPLACEMENT, 3)) < 0) return rc;
        i += l;
        run = i;
    }
    return qe_buf_append(out, b + run, n - run);
}

int qe_detok_push(qe_detok *d, const qe_tokenizer *t, int32_t id, qe_buf *out) {
    const char *p;
    size_t n;
    int rc = qe_token_bytes(t, id, &p, &n);
    if (rc < 0) return rc;
    return detok_feed(d, (const uint8_t *)p, n, out);
}

int qe_detok_flush(qe_detok *d, qe_buf *out) {
    int rc = QE_OK;
    /* what is left is a valid but incomplete prefix: one maximal subpart, one U+FFFD */
    if (d->n_pending > 0) rc = qe_buf_append(out, QE_UTF8_REPLACEMENT, 3);
    d->n_pending = 0;
    return rc;
}
