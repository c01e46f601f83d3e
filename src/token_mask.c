/* token_mask.c — the vocabulary trie, the per-grammar mask cache and the matcher (see token_mask.h).
 *
 * The trie is stored flat in depth-first order: node i has its byte, its depth and end[i], the index just past its
 * subtree, so a walk is one forward loop that jumps over a dead subtree in one step. Each walk keeps the automaton
 * state of every depth on a small stack, so a node costs one load of a transition row. */
#include "token_mask.h"

#include <stdlib.h>
#include <string.h>

enum { TK_TEXT = 0, TK_EOG = 1, TK_NEVER = 2 };

struct qe_vtrie {
    int n_vocab;
    uint32_t n_nodes;
    uint8_t *byte;          /* [n_nodes] */
    uint16_t *depth;        /* [n_nodes] 1 for a child of the root */
    uint32_t *end;          /* [n_nodes] index past the subtree */
    uint32_t *tok_start;    /* [n_nodes + 1]: tokens ending at node i are tok_ids[tok_start[i] .. tok_start[i+1]) */
    int32_t *tok_ids;
    uint8_t *kind;          /* [n_vocab] TK_* */
    int32_t eog[4];
    int n_eog, max_depth;
    const qe_tokenizer *tok;   /* borrowed: the token bytes for accept */
};

typedef struct { const char *p; uint32_t n; int32_t id; } tokref;

static int cmp_tokref(const void *a, const void *b) {
    const tokref *x = a, *y = b;
    uint32_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    if (c) return c;
    if (x->n != y->n) return x->n < y->n ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

void qe_vtrie_free(qe_vtrie *v) {
    if (!v) return;
    free(v->byte); free(v->depth); free(v->end); free(v->tok_start); free(v->tok_ids); free(v->kind);
    free(v);
}

int qe_vtrie_n(const qe_vtrie *v) { return v->n_vocab; }

int qe_vtrie_new(const qe_tokenizer *t, qe_vtrie **out, char *err) {
    *out = NULL;
    int n = qe_tokenizer_n_vocab(t), rc = QE_OK;
    tokref *tk = malloc(sizeof(tokref) * (size_t)(n + 1));
    uint32_t *path = malloc(sizeof(uint32_t) * 65537);
    qe_vtrie *v = calloc(1, sizeof *v);
    if (!tk || !path || !v) goto oom;
    v->n_vocab = n;
    v->tok = t;
    v->kind = malloc((size_t)n + 1);
    if (!v->kind) goto oom;
    size_t n_tok = 0, n_bytes = 0;
    for (int32_t id = 0; id < n; id++) {
        const char *b;
        size_t len;
        qe_token_bytes(t, id, &b, &len);
        if (qe_tokenizer_is_eog(t, id)) {
            v->kind[id] = TK_EOG;
            if (v->n_eog < 4) v->eog[v->n_eog++] = id;
        } else if (qe_tokenizer_is_control(t, id) || len == 0 || len > 65535) {
            v->kind[id] = TK_NEVER;
        } else {
            v->kind[id] = TK_TEXT;
            tk[n_tok++] = (tokref){b, (uint32_t)len, id};
            n_bytes += len;
        }
    }
    qsort(tk, n_tok, sizeof *tk, cmp_tokref);
    /* at most one node per byte of every token */
    v->byte = malloc(n_bytes + 1);
    v->depth = malloc(sizeof(uint16_t) * (n_bytes + 1));
    v->end = malloc(sizeof(uint32_t) * (n_bytes + 1));
    v->tok_start = malloc(sizeof(uint32_t) * (n_bytes + 2));
    v->tok_ids = malloc(sizeof(int32_t) * (n_tok + 1));
    if (!v->byte || !v->depth || !v->end || !v->tok_start || !v->tok_ids) goto oom;
    uint32_t nn = 0, cur = 0, nt = 0;
    for (size_t k = 0; k < n_tok; k++) {
        uint32_t lcp = 0;
        if (k > 0) {
            uint32_t m = tk[k - 1].n < tk[k].n ? tk[k - 1].n : tk[k].n;
            while (lcp < m && tk[k - 1].p[lcp] == tk[k].p[lcp]) lcp++;
        }
        for (uint32_t d = cur; d > lcp; d--) v->end[path[d]] = nn;   /* close the nodes we leave */
        for (uint32_t d = lcp + 1; d <= tk[k].n; d++) {
            v->byte[nn] = (uint8_t)tk[k].p[d - 1];
            v->depth[nn] = (uint16_t)d;
            v->tok_start[nn] = nt;
            path[d] = nn++;
        }
        cur = tk[k].n;
        if ((int)cur > v->max_depth) v->max_depth = (int)cur;
        v->tok_ids[nt++] = tk[k].id; /* sorted: it belongs to the last node created (or repeats its bytes) */
    }
    for (uint32_t d = cur; d > 0; d--) v->end[path[d]] = nn;
    v->tok_start[nn] = nt;
    v->n_nodes = nn;
    free(tk);
    free(path);
    *out = v;
    return QE_OK;
oom:
    rc = qe_errf(err, QE_ENOMEM, "out of memory for the vocabulary trie");
    free(tk);
    free(path);
    qe_vtrie_free(v);
    return rc;
}

/* ---- per-grammar cache ------------------------------------------------------------------------------------------ */

typedef struct {
    bool built;
    uint32_t n_ids, n_res;
    int32_t *ids;           /* sparse accepted set (sorted by trie order), or NULL with bits */
    uint32_t *bits;         /* dense accepted set */
    uint32_t *res;          /* trie nodes where the position's rule returns with bytes left */
} posmask;

#define LRU_N 8
typedef struct {
    int32_t state;
    bool eos;
    uint64_t tick;
    uint32_t *bits;
} lru_ent;

typedef struct {
    const qe_vtrie *v;
    posmask *pm;            /* [n_elems] by position */
    size_t n_pm;
    int32_t *wstate;        /* [max_depth + 1] walk scratch */
    const int32_t **wrow;
    int32_t *ids; size_t n_ids, cap_ids;
    uint32_t *res; size_t n_res, cap_res;
    uint32_t *stk; size_t cap_stk;   /* copy of the current state's stacks (the pool moves while we walk) */
    lru_ent lru[LRU_N];
    uint64_t tick;
} gcache;

static void cache_free(void *p) {
    gcache *c = p;
    if (!c) return;
    for (size_t i = 0; i < c->n_pm; i++) { free(c->pm[i].ids); free(c->pm[i].bits); free(c->pm[i].res); }
    for (int i = 0; i < LRU_N; i++) free(c->lru[i].bits);
    free(c->pm); free(c->wstate); free(c->wrow); free(c->ids); free(c->res); free(c->stk);
    free(c);
}

static gcache *get_cache(qe_grammar *g, const qe_vtrie *v, char *err) {
    gcache *c = qe_grammar_cache(g);
    if (c) {
        if (c->v == v) return c;
        qe_errf(err, QE_EINVAL, "this grammar was prepared for another vocabulary");
        return NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c) goto oom;
    c->v = v;
    c->n_pm = (size_t)qe_grammar_n_elems(g);
    c->pm = calloc(c->n_pm + 1, sizeof(posmask));
    c->wstate = malloc(sizeof(int32_t) * (size_t)(v->max_depth + 2));
    c->wrow = malloc(sizeof(int32_t *) * (size_t)(v->max_depth + 2));
    for (int i = 0; i < LRU_N; i++) c->lru[i].state = -1;
    if (!c->pm || !c->wstate || !c->wrow) { cache_free(c); goto oom; }
    qe_grammar_set_cache(g, c, cache_free);
    return c;
oom:
    qe_errf(err, QE_ENOMEM, "out of memory for the grammar's mask cache");
    return NULL;
}

static bool push_u32(uint32_t **p, size_t *n, size_t *cap, uint32_t x) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        uint32_t *q = realloc(*p, c * sizeof *q);
        if (!q) return false;
        *p = q;
        *cap = c;
    }
    (*p)[(*n)++] = x;
    return true;
}

/* Walks the trie nodes [lo, hi) — the descendants of a node of depth d0, or the whole trie with d0 = 0 — from
 * automaton state s0. Accepted tokens go to bits (if given) or to c->ids; with `local`, the nodes with children
 * at which the state can end (the start position's rule returns there) go to c->res. */
static int walk(qe_grammar *g, gcache *c, int32_t s0, uint32_t lo, uint32_t hi, int d0, bool local, uint32_t *bits) {
    const qe_vtrie *v = c->v;
    c->wstate[d0] = s0;
    if (!(c->wrow[d0] = qe_gstate_row(g, s0))) return QE_ENOMEM;
    for (uint32_t i = lo; i < hi;) {
        int d = v->depth[i];
        uint8_t b = v->byte[i];
        int32_t r = c->wrow[d - 1][b];
        if (r == QE_GSTATE_UNKNOWN) r = qe_gstate_next(g, c->wstate[d - 1], b);
        if (r < 0) {
            if (r != QE_GSTATE_DEAD) return r;
            i = v->end[i];
            continue;
        }
        for (uint32_t t = v->tok_start[i]; t < v->tok_start[i + 1]; t++) {
            int32_t id = v->tok_ids[t];
            if (bits) bits[id >> 5] |= 1u << (id & 31);
            else if (!push_u32((uint32_t **)&c->ids, &c->n_ids, &c->cap_ids, (uint32_t)id)) return QE_ENOMEM;
        }
        if (v->end[i] > i + 1) {
            if (local && qe_gstate_can_end(g, r) && !push_u32(&c->res, &c->n_res, &c->cap_res, i)) return QE_ENOMEM;
            c->wstate[d] = r;
            if (!(c->wrow[d] = qe_gstate_row(g, r))) return QE_ENOMEM;
        }
        i++;
    }
    return QE_OK;
}

static int build_pos(qe_grammar *g, gcache *c, uint32_t pos, char *err) {
    posmask *pm = &c->pm[pos];
    int32_t s = qe_gstate_of_pos(g, pos);
    int rc = s < 0 ? s : QE_OK;
    c->n_ids = c->n_res = 0;
    if (rc == QE_OK) rc = walk(g, c, s, 0, c->v->n_nodes, 0, true, NULL);
    if (rc) goto fail;
    int words = qe_mask_words(c->v->n_vocab);
    if (c->n_ids * 32 < (size_t)c->v->n_vocab) {
        pm->ids = malloc(sizeof(int32_t) * (c->n_ids + 1));
        if (!pm->ids) { rc = QE_ENOMEM; goto fail; }
        memcpy(pm->ids, c->ids, sizeof(int32_t) * c->n_ids);
        pm->n_ids = (uint32_t)c->n_ids;
    } else {
        pm->bits = calloc((size_t)words, sizeof(uint32_t));
        if (!pm->bits) { rc = QE_ENOMEM; goto fail; }
        for (size_t k = 0; k < c->n_ids; k++) pm->bits[c->ids[k] >> 5] |= 1u << (c->ids[k] & 31);
    }
    if (c->n_res) {
        pm->res = malloc(sizeof(uint32_t) * c->n_res);
        if (!pm->res) { free(pm->ids); free(pm->bits); pm->ids = NULL; pm->bits = NULL; rc = QE_ENOMEM; goto fail; }
        memcpy(pm->res, c->res, sizeof(uint32_t) * c->n_res);
        pm->n_res = (uint32_t)c->n_res;
    }
    pm->built = true;
    return QE_OK;
fail:
    return rc == QE_ERANGE ? qe_errf(err, rc, "the grammar is too complex (more than %d parser states)", QE_GRAMMAR_MAX_STATES)
                           : qe_errf(err, rc, "out of memory computing a token mask");
}

int qe_grammar_prepare(qe_grammar *g, const qe_vtrie *v, char *err) {
    gcache *c = get_cache(g, v, err);
    if (!c) return QE_ENOMEM;
    for (uint32_t p = 0; p < c->n_pm; p++) {
        if (!qe_grammar_is_terminal(g, p) || c->pm[p].built) continue;
        int rc = build_pos(g, c, p, err);
        if (rc) return rc;
    }
    return QE_OK;
}

/* ---- matcher ------------------------------------------------------------------------------------------------ */

struct qe_gmatch {
    qe_grammar *g;
    const qe_vtrie *v;
    gcache *c;
    int32_t state;
    bool ended;              /* an end-of-generation token was accepted */
};

int qe_gmatch_new(qe_grammar *g, const qe_vtrie *v, qe_gmatch **out, char *err) {
    *out = NULL;
    gcache *c = get_cache(g, v, err);
    if (!c) return QE_ENOMEM;
    int32_t s = qe_gstate_start(g);
    if (s < 0) return qe_errf(err, s == QE_GSTATE_DEAD ? QE_EINVAL : s, "the grammar has no start state");
    qe_gmatch *m = calloc(1, sizeof *m);
    if (!m) return qe_errf(err, QE_ENOMEM, "out of memory");
    *m = (qe_gmatch){.g = g, .v = v, .c = c, .state = s};
    *out = m;
    return QE_OK;
}

void qe_gmatch_free(qe_gmatch *m) { free(m); }

void qe_gmatch_reset(qe_gmatch *m) {
    m->state = qe_gstate_start(m->g);
    m->ended = false;
}

void qe_gmatch_copy(qe_gmatch *dst, const qe_gmatch *src) { dst->state = src->state; dst->ended = src->ended; }

bool qe_gmatch_done(const qe_gmatch *m) { return m->ended || qe_gstate_can_end(m->g, m->state); }

bool qe_gmatch_must_end(const qe_gmatch *m) {
    if (m->ended) return true;
    const uint32_t *s = qe_gstate_stacks(m->g, m->state);
    return s[0] == 1 && s[1] == 0;
}

static int advance(qe_gmatch *m, const char *b, size_t n, int32_t *out) {
    int32_t s = m->state;
    for (size_t i = 0; i < n && s >= 0; i++) s = qe_gstate_next(m->g, s, (uint8_t)b[i]);
    *out = s;
    return s >= 0 ? QE_OK : s == QE_GSTATE_DEAD ? QE_EINVAL : s;
}

int qe_gmatch_accept_bytes(qe_gmatch *m, const char *s, size_t n, char *err) {
    int32_t ns;
    if (m->ended) return qe_errf(err, QE_EINVAL, "the grammar has already ended");
    int rc = advance(m, s, n, &ns);
    if (rc) return qe_errf(err, rc, rc == QE_EINVAL ? "the text does not match the grammar" : "grammar state limit");
    m->state = ns;
    return QE_OK;
}

int qe_gmatch_accept(qe_gmatch *m, int32_t token, char *err) {
    if (token < 0 || token >= m->v->n_vocab) return qe_errf(err, QE_EINVAL, "token %d is outside the vocabulary", token);
    if (m->ended) return qe_errf(err, QE_EINVAL, "the grammar has already ended");
    if (m->v->kind[token] == TK_EOG) {
        if (!qe_gstate_can_end(m->g, m->state)) return qe_errf(err, QE_EINVAL, "the grammar cannot end here");
        m->ended = true;
        return QE_OK;
    }
    if (m->v->kind[token] != TK_TEXT) return qe_errf(err, QE_EINVAL, "token %d is a control token", token);
    const char *b;
    size_t n;
    qe_token_bytes(m->v->tok, token, &b, &n);
    int32_t ns;
    int rc = advance(m, b, n, &ns);
    if (rc) return qe_errf(err, rc, rc == QE_EINVAL ? "token %d is not allowed by the grammar here" : "grammar state limit", token);
    m->state = ns;
    return QE_OK;
}

int qe_gmatch_mask(qe_gmatch *m, uint32_t *allow, char *err) {
    gcache *c = m->c;
    const qe_vtrie *v = m->v;
    int words = qe_mask_words(v->n_vocab);
    memset(allow, 0, sizeof(uint32_t) * (size_t)words);
    if (m->ended) return QE_OK;
    c->tick++;
    lru_ent *slot = &c->lru[0];
    for (int i = 0; i < LRU_N; i++) {
        if (c->lru[i].state == m->state && c->lru[i].bits) {
            memcpy(allow, c->lru[i].bits, sizeof(uint32_t) * (size_t)words);
            c->lru[i].tick = c->tick;
            return QE_OK;
        }
        if (c->lru[i].tick < slot->tick) slot = &c->lru[i];
    }
    /* copy the stacks: walks intern new states, which may move the table they live in */
    const uint32_t *ser = qe_gstate_stacks(m->g, m->state);
    size_t w = 1;
    for (uint32_t k = 0; k < ser[0]; k++) w += ser[w] + 1;
    if (w > c->cap_stk) {
        uint32_t *p = realloc(c->stk, w * sizeof *p);
        if (!p) return qe_errf(err, QE_ENOMEM, "out of memory");
        c->stk = p;
        c->cap_stk = w;
    }
    memcpy(c->stk, ser, w * sizeof *ser);
    bool eos = false;
    int rc = QE_OK;
    for (size_t i = 1; i < w; i += c->stk[i] + 1) {
        uint32_t len = c->stk[i];
        if (len == 0) { eos = true; continue; }
        const uint32_t *stk = c->stk + i + 1;
        uint32_t pos = stk[len - 1];
        posmask *pm = &c->pm[pos];
        if (!pm->built && (rc = build_pos(m->g, c, pos, err))) goto fail;
        if (pm->bits) for (int k = 0; k < words; k++) allow[k] |= pm->bits[k];
        else for (uint32_t k = 0; k < pm->n_ids; k++) allow[pm->ids[k] >> 5] |= 1u << (pm->ids[k] & 31);
        if (pm->n_res == 0) continue;
        /* tokens that run past the end of pos's rule: continue them with the caller's stack */
        int32_t after = qe_gstate_after_return(m->g, stk, len);
        if (after < QE_GSTATE_DEAD) { rc = after; goto fail_state; }
        if (after == QE_GSTATE_DEAD) continue;
        for (uint32_t k = 0; k < pm->n_res; k++) {
            uint32_t x = pm->res[k];
            if ((rc = walk(m->g, c, after, x + 1, v->end[x], v->depth[x], false, allow))) goto fail_state;
        }
    }
    if (eos) for (int k = 0; k < v->n_eog; k++) allow[v->eog[k] >> 5] |= 1u << (v->eog[k] & 31);
    if (!slot->bits) slot->bits = malloc(sizeof(uint32_t) * (size_t)words);
    if (slot->bits) {
        memcpy(slot->bits, allow, sizeof(uint32_t) * (size_t)words);
        slot->state = m->state;
        slot->tick = c->tick;
    }
    return QE_OK;
fail_state:
    rc = rc == QE_ERANGE ? qe_errf(err, rc, "the grammar is too complex (more than %d parser states)", QE_GRAMMAR_MAX_STATES)
                         : qe_errf(err, rc, "out of memory computing a token mask");
fail:
    memset(allow, 0, sizeof(uint32_t) * (size_t)words);
    return rc;
}
