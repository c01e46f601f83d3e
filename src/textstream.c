/* textstream.c — whole-UTF-8 text chunks with stop strings held back (see textstream.h).
 *
 * Why holding back is enough: the detokenizer only hands us whole characters, and every stop string is
 * valid UTF-8, so a suffix of the held text that equals a prefix of a stop string starts on a character
 * boundary (a stop string starts with a lead byte, and a lead byte in valid text starts a character).
 * Cutting there therefore never splits a character. The held text never grows past the longest stop string
 * minus one byte plus the last token's text, so the scans below are over a few bytes. */
#define _GNU_SOURCE /* memmem */
#include "textstream.h"

#include <stdlib.h>
#include <string.h>

bool qe_utf8_valid(const char *str, size_t n) {
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) { i++; continue; }
        int len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
        else return false;
        if (i + len > n) return false;
        for (int k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return false;
        if (cp >= 0xD800 && cp <= 0xDFFF) return false;
        i += len;
    }
    return true;
}

int qe_textstream_init(qe_textstream *ts, const qe_tokenizer *tok, const char *const *stops, int n_stops,
                       char *err) {
    memset(ts, 0, sizeof *ts);
    ts->tok = tok;
    qe_detok_init(&ts->detok);
    if (n_stops > 0) {
        ts->stops = calloc((size_t)n_stops, sizeof *ts->stops);
        if (!ts->stops) return qe_errf(err, QE_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n_stops; i++) {
        const char *s = stops[i];
        size_t n = s ? strlen(s) : 0;
        if (n == 0) continue;
        if (!qe_utf8_valid(s, n)) {
            qe_textstream_free(ts);
            return qe_errf(err, QE_EINVAL, "stop string %d is not valid UTF-8", i);
        }
        if (!(ts->stops[ts->n_stops] = strdup(s))) {
            qe_textstream_free(ts);
            return qe_errf(err, QE_ENOMEM, "out of memory");
        }
        ts->n_stops++;
        if (n > ts->max_stop) ts->max_stop = n;
    }
    return QE_OK;
}

void qe_textstream_free(qe_textstream *ts) {
    if (!ts) return;
    for (int i = 0; i < ts->n_stops; i++) free(ts->stops[i]);
    free(ts->stops);
    qe_buf_free(&ts->held);
    qe_buf_free(&ts->scratch);
    ts->stops = NULL;
    ts->n_stops = 0;
}

/* Earliest position in h where a stop string starts in full, or -1. */
static long find_stop(const qe_textstream *ts, const char *h, size_t n) {
    long best = -1;
    for (int i = 0; i < ts->n_stops; i++) {
        const char *p = memmem(h, n, ts->stops[i], strlen(ts->stops[i]));
        if (p && (best < 0 || p - h < best)) best = p - h;
    }
    return best;
}

/* Length of the longest suffix of h that is a proper prefix of some stop string. */
static size_t partial_stop_len(const qe_textstream *ts, const char *h, size_t n) {
    size_t lim = ts->max_stop > 0 ? ts->max_stop - 1 : 0;
    if (lim > n) lim = n;
    for (size_t k = lim; k > 0; k--) {
        const char *tail = h + n - k;
        for (int i = 0; i < ts->n_stops; i++)
            if (strlen(ts->stops[i]) > k && memcmp(ts->stops[i], tail, k) == 0) return k;
    }
    return 0;
}

static int emit(qe_textstream *ts, qe_buf *out, const char *p, size_t n) {
    ts->n_emitted += n;
    return n ? qe_buf_append(out, p, n) : QE_OK;
}

/* Moves everything safe out of `held` into out; reports a completed stop string. */
static int drain(qe_textstream *ts, qe_buf *out, bool final) {
    qe_buf *h = &ts->held;
    long at = find_stop(ts, h->p, h->n);
    int rc;
    if (at >= 0) {
        ts->stopped = true;
        rc = emit(ts, out, h->p, (size_t)at);
        h->n = 0;
        return rc ? rc : QE_TEXTSTREAM_STOP;
    }
    size_t keep = final ? 0 : partial_stop_len(ts, h->p, h->n);
    size_t n_out = h->n - keep;
    if ((rc = emit(ts, out, h->p, n_out))) return rc;
    memmove(h->p, h->p + n_out, keep);
    h->n = keep;
    if (h->p) h->p[h->n] = 0;
    return QE_OK;
}

int qe_textstream_push(qe_textstream *ts, int32_t id, qe_buf *out) {
    if (ts->stopped || ts->finished) return ts->stopped ? QE_TEXTSTREAM_STOP : QE_OK;
    ts->scratch.n = 0;
    int rc = qe_detok_push(&ts->detok, ts->tok, id, &ts->scratch);
    if (rc < 0) return rc;
    if (ts->scratch.n == 0) return QE_OK;
    if (ts->n_stops == 0) return emit(ts, out, ts->scratch.p, ts->scratch.n);
    if ((rc = qe_buf_append(&ts->held, ts->scratch.p, ts->scratch.n))) return rc;
    return drain(ts, out, false);
}

int qe_textstream_finish(qe_textstream *ts, qe_buf *out) {
    if (ts->stopped || ts->finished) return QE_OK;
    ts->finished = true;
    ts->scratch.n = 0;
    int rc = qe_detok_flush(&ts->detok, &ts->scratch);
    if (rc < 0) return rc;
    if (ts->n_stops == 0) return emit(ts, out, ts->scratch.p, ts->scratch.n);
    if ((rc = qe_buf_append(&ts->held, ts->scratch.p, ts->scratch.n))) return rc;
    rc = drain(ts, out, true);
    return rc == QE_TEXTSTREAM_STOP ? QE_OK : rc;
}
