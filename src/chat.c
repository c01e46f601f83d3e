/* chat.c — ChatML rendering (text and ids), the round window, and the conversation memory (see chat.h).
 *
 * The template is walked once by walk() into a sink that either appends text or produces ids. The id sink
 * collects the text between two markers and tokenizes it in one piece with parse_special off: that is
 * exactly how HF and llama.cpp tokenize the rendered prompt (they split at special tokens first), minus the
 * injection of control tokens from message text. */
#include "chat.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "chat_reset.h"

const char qe_chat_default_system[] = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

static const char *const role_names[] = {"system", "user", "assistant", "tool"};

int qe_chat_role_parse(const char *name, qe_role *out) {
    for (int r = 0; r < 4; r++)
        if (name && strcmp(name, role_names[r]) == 0) { *out = (qe_role)r; return QE_OK; }
    return QE_EINVAL;
}

const char *qe_chat_role_name(qe_role r) { return (unsigned)r < 4 ? role_names[r] : "?"; }

/* ---------------------------------------------------------------------------------------------------
 * The template walk */

enum { MARK_START, MARK_END };

typedef struct {
    qe_buf *text_out;          /* text sink */
    const qe_tokenizer *t;     /* id sink: */
    qe_ids *ids;
    size_t max_ids;            /* QE_ERANGE beyond this many ids */
    qe_buf pending;            /* text since the last marker */
    char *err;
} sink;

static int sink_text(sink *s, const char *p, size_t n) {
    int rc = qe_buf_append(s->text_out ? s->text_out : &s->pending, p, n);
    return rc < 0 ? qe_errf(s->err, rc, "out of memory") : QE_OK;
}
static int sink_str(sink *s, const char *z) { return sink_text(s, z, strlen(z)); }

static int sink_flush(sink *s) {
    if (s->text_out || s->pending.n == 0) return QE_OK;
    int rc = qe_tokenize_max(s->t, s->pending.p, s->pending.n, false, s->max_ids, s->ids, s->err);
    s->pending.n = 0;
    return rc;
}

static int sink_mark(sink *s, int which) {
    if (s->text_out) return sink_str(s, which == MARK_START ? "<|im_start|>" : "<|im_end|>");
    int rc = sink_flush(s);
    if (rc < 0) return rc;
    if (s->ids->n >= s->max_ids) return qe_errf(s->err, QE_ERANGE, "the prompt is longer than %zu tokens", s->max_ids);
    rc = qe_ids_push(s->ids, which == MARK_START ? qe_tokenizer_im_start(s->t) : qe_tokenizer_im_end(s->t));
    return rc < 0 ? qe_errf(s->err, rc, "out of memory") : QE_OK;
}

#define TRY(x) do { int rc_ = (x); if (rc_ < 0) return rc_; } while (0)

static int turn(sink *s, const char *role, const char *text, size_t len) {
    TRY(sink_mark(s, MARK_START));
    TRY(sink_str(s, role));
    TRY(sink_str(s, "\n"));
    TRY(sink_text(s, text, len));
    TRY(sink_mark(s, MARK_END));
    return sink_str(s, "\n");
}

/* Qwen2.5-Instruct's chat template, the branch without tools. */
static int walk(sink *s, const qe_chat_msg *m, size_t n, bool add_generation_prompt) {
    size_t i0 = 0;
    if (n > 0 && m[0].role == QE_ROLE_SYSTEM) {
        TRY(turn(s, "system", m[0].text, m[0].len));
        i0 = 1;
    } else {
        TRY(turn(s, "system", qe_chat_default_system, strlen(qe_chat_default_system)));
    }
    for (size_t i = i0; i < n; i++) {
        if (m[i].role != QE_ROLE_TOOL) {
            TRY(turn(s, qe_chat_role_name(m[i].role), m[i].text, m[i].len));
            continue;
        }
        if (i == 0 || m[i - 1].role != QE_ROLE_TOOL) {
            TRY(sink_mark(s, MARK_START));
            TRY(sink_str(s, "user"));
        }
        TRY(sink_str(s, "\n<tool_response>\n"));
        TRY(sink_text(s, m[i].text, m[i].len));
        TRY(sink_str(s, "\n</tool_response>"));
        if (i + 1 == n || m[i + 1].role != QE_ROLE_TOOL) {
            TRY(sink_mark(s, MARK_END));
            TRY(sink_str(s, "\n"));
        }
    }
    if (add_generation_prompt) {
        TRY(sink_mark(s, MARK_START));
        TRY(sink_str(s, "assistant\n"));
    }
    return sink_flush(s);
}

int qe_chat_render(const qe_chat_msg *msgs, size_t n, bool add_generation_prompt, qe_buf *out) {
    sink s = {.text_out = out};
    return walk(&s, msgs, n, add_generation_prompt);
}

int qe_chat_render_ids(const qe_tokenizer *t, const qe_chat_msg *msgs, size_t n, bool add_generation_prompt,
                       qe_ids *out, char *err) {
    return qe_chat_render_ids_max(t, msgs, n, add_generation_prompt, SIZE_MAX, out, err);
}

int qe_chat_render_ids_max(const qe_tokenizer *t, const qe_chat_msg *msgs, size_t n, bool add_generation_prompt,
                           size_t max_ids, qe_ids *out, char *err) {
    if (qe_tokenizer_im_start(t) < 0 || qe_tokenizer_im_end(t) < 0)
        return qe_errf(err, QE_EUNSUPPORTED, "the vocabulary has no <|im_start|>/<|im_end|>: not a chat model");
    sink s = {.t = t, .ids = out, .max_ids = max_ids, .err = err};
    int rc = walk(&s, msgs, n, add_generation_prompt);
    qe_buf_free(&s.pending);
    return rc;
}

/* ---------------------------------------------------------------------------------------------------
 * Window */

/* Ids of msgs[0] (if keep_sys) + msgs[from..n) + generation prompt, into out (cleared); QE_ERANGE as soon as
 * they pass budget (the tokenizer stops there: a window that cannot fit costs little to try). */
static int render_from(const qe_tokenizer *t, const qe_chat_msg *msgs, size_t n, bool keep_sys, size_t from,
                       size_t budget, qe_chat_msg *tmp, qe_ids *out, char *err) {
    size_t k = 0;
    if (keep_sys) tmp[k++] = msgs[0];
    for (size_t i = from; i < n; i++) tmp[k++] = msgs[i];
    out->n = 0;
    return qe_chat_render_ids_max(t, tmp, k, true, budget, out, err);
}

int qe_chat_window_ids(const qe_tokenizer *t, const qe_chat_msg *msgs, size_t n, int max_rounds, size_t budget,
                       qe_ids *out, size_t *n_dropped, char *err) {
    bool sys = n > 0 && msgs[0].role == QE_ROLE_SYSTEM;
    size_t first = sys ? 1 : 0;
    /* round starts: every user message, and the first message after the system one if it is not a user's */
    size_t *starts = qe_malloc((n + 1) * sizeof *starts);
    qe_chat_msg *tmp = qe_malloc((n + 1) * sizeof *tmp);
    int rc = QE_OK;
    if (!starts || !tmp) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
    size_t k = 0;
    for (size_t i = first; i < n; i++)
        if (msgs[i].role == QE_ROLE_USER || i == first) starts[k++] = i;
    if (k == 0) starts[k++] = n; /* nothing but a system message */
    size_t lo = 0, hi = k - 1;   /* candidate windows: starts[lo..hi], fewer messages to the right */
    if (max_rounds >= 0 && k - 1 > (size_t)max_rounds) lo = k - 1 - (size_t)max_rounds;
    /* the widest window first: it usually fits, and then there is nothing to search */
    size_t best = lo;
    rc = render_from(t, msgs, n, sys, starts[lo], budget, tmp, out, err);
    if (rc == QE_OK) goto found;
    if (rc != QE_ERANGE) goto done;
    /* the newest round alone must fit */
    if ((rc = render_from(t, msgs, n, sys, starts[hi], budget, tmp, out, err)) == QE_ERANGE) {
        rc = qe_errf(err, QE_ERANGE, "the message is too long: the prompt needs more than the %zu tokens that fit "
                                     "(shorten it, or use a larger context size)", budget);
        goto done;
    }
    if (rc < 0) goto done;
    /* tokens only grow as older rounds are added: binary search for the oldest start that fits; starts[lo] does
     * not, starts[hi] does */
    while (lo + 1 < hi) {
        size_t mid = lo + (hi - lo) / 2;
        rc = render_from(t, msgs, n, sys, starts[mid], budget, tmp, out, err);
        if (rc == QE_OK) hi = mid;
        else if (rc == QE_ERANGE) lo = mid;
        else goto done;
    }
    best = hi;
    if ((rc = render_from(t, msgs, n, sys, starts[best], budget, tmp, out, err)) < 0) goto done;
found:
    if (n_dropped) *n_dropped = starts[best] - first;
done:
    free(starts);
    free(tmp);
    return rc;
}

/* ---------------------------------------------------------------------------------------------------
 * Reset command */

static const char *const reset_words[] = {QE_RESET_WORDS};
static const char *const reset_spaces[] = {QE_RESET_SPACES};
static const char *const reset_ends[] = {QE_RESET_ENDS};
#define COUNT(a) (sizeof a / sizeof a[0])

/* Length of the first of list[0..n) that text[0..len) starts with (at_end: ends with), else 0. */
static size_t affix_len(const char *text, size_t len, const char *const *list, size_t n, bool at_end) {
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(list[i]);
        if (k <= len && memcmp(at_end ? text + len - k : text, list[i], k) == 0) return k;
    }
    return 0;
}

/* The rule is in chat_reset.h; the page's /reset.js applies the same one to the same lists. */
bool qe_chat_is_reset(const char *text, size_t len) {
    size_t k;
    while ((k = affix_len(text, len, reset_spaces, COUNT(reset_spaces), false))) { text += k; len -= k; }
    while ((k = affix_len(text, len, reset_spaces, COUNT(reset_spaces), true)) ||
           (k = affix_len(text, len, reset_ends, COUNT(reset_ends), true)))
        len -= k;
    for (size_t i = 0; i < COUNT(reset_words); i++)
        if (strlen(reset_words[i]) == len && strncasecmp(text, reset_words[i], len) == 0) return true;
    return false;
}

/* ---------------------------------------------------------------------------------------------------
 * Conversation memory */

struct qe_conv {
    qe_chat_msg *msgs;  /* text owned (malloc'd, NUL-terminated) */
    size_t n, cap;
    int max_rounds;
};

qe_conv *qe_conv_new(const char *system_prompt, int max_rounds) {
    qe_conv *c = qe_calloc(1, sizeof *c);
    if (!c) return NULL;
    c->max_rounds = max_rounds > 0 ? max_rounds : QE_CHAT_DEFAULT_ROUNDS;
    if (system_prompt && qe_conv_add(c, QE_ROLE_SYSTEM, system_prompt, strlen(system_prompt)) < 0) {
        qe_conv_free(c);
        return NULL;
    }
    return c;
}

void qe_conv_free(qe_conv *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) free((char *)c->msgs[i].text);
    free(c->msgs);
    free(c);
}

static bool has_system(const qe_conv *c) { return c->n > 0 && c->msgs[0].role == QE_ROLE_SYSTEM; }

/* Forgets the oldest rounds beyond max_rounds complete ones (plus the pending user message, if any). */
static void conv_trim(qe_conv *c) {
    size_t first = has_system(c) ? 1 : 0, rounds = 0;
    for (size_t i = first; i < c->n; i++)
        if (c->msgs[i].role == QE_ROLE_USER || i == first) rounds++;
    size_t allowed = (size_t)c->max_rounds + (c->n > first && c->msgs[c->n - 1].role == QE_ROLE_USER ? 1 : 0);
    while (rounds > allowed) { /* drop msgs[first] and what follows it up to the next user message */
        size_t end = first + 1;
        while (end < c->n && c->msgs[end].role != QE_ROLE_USER) end++;
        for (size_t i = first; i < end; i++) free((char *)c->msgs[i].text);
        memmove(c->msgs + first, c->msgs + end, (c->n - end) * sizeof *c->msgs);
        c->n -= end - first;
        rounds--;
    }
}

int qe_conv_add(qe_conv *c, qe_role role, const char *text, size_t len) {
    if ((unsigned)role > QE_ROLE_TOOL) return QE_EINVAL;
    if (role == QE_ROLE_SYSTEM && c->n > 0) return QE_EINVAL;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        qe_chat_msg *m = qe_realloc(c->msgs, cap * sizeof *m);
        if (!m) return QE_ENOMEM;
        c->msgs = m; c->cap = cap;
    }
    char *copy = qe_malloc(len + 1);
    if (!copy) return QE_ENOMEM;
    memcpy(copy, text, len);
    copy[len] = 0;
    c->msgs[c->n++] = (qe_chat_msg){role, copy, len};
    conv_trim(c);
    return QE_OK;
}

void qe_conv_pop(qe_conv *c) {
    if (c->n == 0) return;
    c->n--;
    free((char *)c->msgs[c->n].text);
}

void qe_conv_reset(qe_conv *c) {
    size_t keep = has_system(c) ? 1 : 0;
    while (c->n > keep) qe_conv_pop(c);
}

const qe_chat_msg *qe_conv_messages(const qe_conv *c, size_t *n) {
    *n = c->n;
    return c->msgs;
}

int qe_conv_render_ids(const qe_conv *c, const qe_tokenizer *t, size_t budget, qe_ids *out, char *err) {
    return qe_chat_window_ids(t, c->msgs, c->n, c->max_rounds, budget, out, NULL, err);
}
