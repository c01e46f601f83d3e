/* grammar.c — the byte grammar: builder, checks (left recursion, productivity), code point classes as UTF-8, and
 * the pushdown automaton with interned stack sets (see grammar.h for the model and the contract). */
#include "grammar.h"

#include <stdlib.h>
#include <string.h>

/* Element encoding: a terminal is the index of its byte set; a rule reference has the top bit set; END closes an
 * alternative in the frozen element array. */
#define EL_REF 0x80000000u
#define EL_END 0xFFFFFFFFu
#define UNKNOWN QE_GSTATE_UNKNOWN

static inline bool set_has(const qe_byteset *s, uint8_t c) { return s->b[c >> 3] >> (c & 7) & 1; }
static inline void set_put(qe_byteset *s, uint8_t c) { s->b[c >> 3] |= (uint8_t)(1u << (c & 7)); }
static bool set_empty(const qe_byteset *s) {
    for (int i = 0; i < 32; i++) if (s->b[i]) return false;
    return true;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* ---- builder ---------------------------------------------------------------------------------------------------- */

typedef struct { uint32_t *e; size_t n, cap; int rule; } galt;

struct qe_gbuild {
    char **names; size_t n_rules, cap_rules;
    int *n_alts;                            /* [n_rules] */
    galt *alts; size_t n_alt, cap_alt;
    qe_byteset *sets; size_t n_sets, cap_sets;
    uint32_t *set_ht; size_t set_ht_cap;    /* open addressing: set index + 1, 0 = empty */
    size_t n_elems;                         /* all elements so far: a budget against grammars that explode */
    bool oom, too_large;
    int anon;
};

qe_gbuild *qe_gb_new(void) { return calloc(1, sizeof(qe_gbuild)); }

void qe_gb_free(qe_gbuild *b) {
    if (!b) return;
    for (size_t i = 0; i < b->n_rules; i++) free(b->names[i]);
    for (size_t i = 0; i < b->n_alt; i++) free(b->alts[i].e);
    free(b->names); free(b->n_alts); free(b->alts); free(b->sets); free(b->set_ht);
    free(b);
}

int qe_gb_rule(qe_gbuild *b, const char *name) {
    if (b->n_rules >= QE_GRAMMAR_MAX_ELEMS) { b->too_large = b->oom = true; return 0; }
    size_t cap = b->cap_rules;
    if (!grow((void **)&b->names, &cap, b->n_rules + 1, sizeof(char *))) { b->oom = true; return 0; }
    size_t cap2 = b->cap_rules;
    if (!grow((void **)&b->n_alts, &cap2, b->n_rules + 1, sizeof(int))) { b->oom = true; return 0; }
    b->cap_rules = cap < cap2 ? cap : cap2;
    char buf[32];
    if (!name) { snprintf(buf, sizeof buf, "_%d", b->anon++); name = buf; }
    b->names[b->n_rules] = strdup(name);
    if (!b->names[b->n_rules]) { b->oom = true; return 0; }
    b->n_alts[b->n_rules] = 0;
    return (int)b->n_rules++;
}

int qe_gb_find(const qe_gbuild *b, const char *name, size_t n) {
    for (size_t i = 0; i < b->n_rules; i++)
        if (strlen(b->names[i]) == n && !memcmp(b->names[i], name, n)) return (int)i;
    return -1;
}

const char *qe_gb_name(const qe_gbuild *b, int rule) {
    return rule >= 0 && (size_t)rule < b->n_rules ? b->names[rule] : "?";
}

int qe_gb_alt(qe_gbuild *b, int rule) {
    if (b->oom || rule < 0 || (size_t)rule >= b->n_rules) { b->oom = true; return -1; }
    if (!grow((void **)&b->alts, &b->cap_alt, b->n_alt + 1, sizeof(galt))) { b->oom = true; return -1; }
    b->alts[b->n_alt] = (galt){.rule = rule};
    b->n_alts[rule]++;
    return (int)b->n_alt++;
}

int qe_gb_n_alts(const qe_gbuild *b, int rule) { return rule >= 0 && (size_t)rule < b->n_rules ? b->n_alts[rule] : 0; }

static void alt_push(qe_gbuild *b, int alt, uint32_t e) {
    if (b->oom || alt < 0) { b->oom = true; return; }
    if (++b->n_elems > QE_GRAMMAR_MAX_ELEMS) { b->too_large = b->oom = true; return; }
    galt *a = &b->alts[alt];
    if (!grow((void **)&a->e, &a->cap, a->n + 1, sizeof(uint32_t))) { b->oom = true; return; }
    a->e[a->n++] = e;
}

static uint32_t set_hash(const qe_byteset *s) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < 32; i++) h = (h ^ s->b[i]) * 16777619u;
    return h;
}

/* The index of set s, added if new: equal sets share one index (fewer distinct terminals, smaller dumps). */
static uint32_t set_intern(qe_gbuild *b, const qe_byteset *s) {
    if (b->n_sets * 2 >= b->set_ht_cap) {
        size_t cap = b->set_ht_cap ? b->set_ht_cap * 2 : 64;
        uint32_t *ht = calloc(cap, sizeof *ht);
        if (!ht) { b->oom = true; return 0; }
        for (size_t i = 0; i < b->n_sets; i++) {
            size_t h = set_hash(&b->sets[i]) & (cap - 1);
            while (ht[h]) h = (h + 1) & (cap - 1);
            ht[h] = (uint32_t)i + 1;
        }
        free(b->set_ht);
        b->set_ht = ht;
        b->set_ht_cap = cap;
    }
    size_t h = set_hash(s) & (b->set_ht_cap - 1);
    while (b->set_ht[h]) {
        uint32_t i = b->set_ht[h] - 1;
        if (!memcmp(&b->sets[i], s, sizeof *s)) return i;
        h = (h + 1) & (b->set_ht_cap - 1);
    }
    if (!grow((void **)&b->sets, &b->cap_sets, b->n_sets + 1, sizeof(qe_byteset))) { b->oom = true; return 0; }
    b->sets[b->n_sets] = *s;
    b->set_ht[h] = (uint32_t)b->n_sets + 1;
    return (uint32_t)b->n_sets++;
}

void qe_gb_set(qe_gbuild *b, int alt, const qe_byteset *set) { alt_push(b, alt, set_intern(b, set)); }

void qe_gb_byte(qe_gbuild *b, int alt, uint8_t c) {
    qe_byteset s = {{0}};
    set_put(&s, c);
    qe_gb_set(b, alt, &s);
}

void qe_gb_lit(qe_gbuild *b, int alt, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) qe_gb_byte(b, alt, (uint8_t)s[i]);
}

void qe_gb_ref(qe_gbuild *b, int alt, int rule) {
    if (rule < 0 || (size_t)rule >= b->n_rules) { b->oom = true; return; }
    alt_push(b, alt, EL_REF | (uint32_t)rule);
}

int qe_gb_repeat(qe_gbuild *b, int x, int min, int max, int *out, char *err) {
    if (min < 0 || (max >= 0 && max < min))
        return qe_errf(err, QE_EINVAL, "bad repetition {%d,%d}", min, max);
    if (min > QE_GRAMMAR_MAX_REPEAT || max > QE_GRAMMAR_MAX_REPEAT)
        return qe_errf(err, QE_ERANGE, "repetition count %d is above the supported %d", max > min ? max : min,
                       QE_GRAMMAR_MAX_REPEAT);
    /* tail: what follows the min mandatory copies. Unbounded: t ::= x t | ε (a tail call, no stack growth).
     * Bounded: t_k ::= x t_{k-1} | ε, nested so that each count has exactly one parse (no ambiguity). */
    int tail = -1;
    if (max < 0) {
        tail = qe_gb_rule(b, NULL);
        qe_gb_ref(b, qe_gb_alt(b, tail), x);
        qe_gb_ref(b, (int)b->n_alt - 1, tail);
        qe_gb_alt(b, tail);
    } else {
        for (int k = 0; k < max - min; k++) {
            int t = qe_gb_rule(b, NULL);
            int a = qe_gb_alt(b, t);
            qe_gb_ref(b, a, x);
            if (tail >= 0) qe_gb_ref(b, a, tail);
            qe_gb_alt(b, t);
            tail = t;
        }
    }
    int r = qe_gb_rule(b, NULL);
    int a = qe_gb_alt(b, r);
    for (int i = 0; i < min; i++) qe_gb_ref(b, a, x);
    if (tail >= 0) qe_gb_ref(b, a, tail);
    *out = r;
    if (b->too_large) return qe_errf(err, QE_ERANGE, "the grammar is too large (more than %d elements)", QE_GRAMMAR_MAX_ELEMS);
    return b->oom ? qe_errf(err, QE_ENOMEM, "out of memory") : QE_OK;
}

/* ---- code point sets and UTF-8 ---------------------------------------------------------------------------------- */

void qe_cpset_add(qe_cpset *s, uint32_t lo, uint32_t hi) {
    if (lo > hi) return;
    size_t cap = (size_t)s->cap;
    if (!grow((void **)&s->r, &cap, (size_t)s->n + 1, sizeof(qe_cprange))) return; /* dropped: caller sees fewer */
    s->cap = (int)cap;
    s->r[s->n++] = (qe_cprange){lo, hi};
}

static int cmp_range(const void *a, const void *b) {
    const qe_cprange *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

void qe_cpset_norm(qe_cpset *s) {
    if (s->n == 0) return;
    qsort(s->r, (size_t)s->n, sizeof *s->r, cmp_range);
    int m = 0;
    for (int i = 0; i < s->n; i++) {
        qe_cprange r = s->r[i];
        if (r.hi > 0x10FFFF) r.hi = 0x10FFFF;
        if (r.lo > r.hi) continue;
        if (m > 0 && r.lo <= s->r[m - 1].hi + 1) { if (r.hi > s->r[m - 1].hi) s->r[m - 1].hi = r.hi; }
        else s->r[m++] = r;
    }
    s->n = m;
    /* cut out the surrogates: they have no UTF-8 form */
    for (int i = 0; i < s->n; i++) {
        qe_cprange r = s->r[i];
        if (r.hi < 0xD800 || r.lo > 0xDFFF) continue;
        if (r.lo < 0xD800 && r.hi > 0xDFFF) {
            s->r[i].hi = 0xD7FF;
            qe_cpset_add(s, 0xE000, r.hi);
            qe_cpset_norm(s);
            return;
        }
        if (r.lo < 0xD800) s->r[i].hi = 0xD7FF;
        else if (r.hi > 0xDFFF) s->r[i].lo = 0xE000;
        else { memmove(s->r + i, s->r + i + 1, sizeof *s->r * (size_t)(s->n - i - 1)); s->n--; i--; }
    }
}

void qe_cpset_negate(qe_cpset *s) {
    qe_cpset_norm(s);
    qe_cpset o = {0};
    uint32_t next = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->r[i].lo > next) qe_cpset_add(&o, next, s->r[i].lo - 1);
        next = s->r[i].hi + 1;
    }
    if (next <= 0x10FFFF) qe_cpset_add(&o, next, 0x10FFFF);
    qe_cpset_free(s);
    *s = o;
    qe_cpset_norm(s);
}

void qe_cpset_free(qe_cpset *s) { free(s->r); *s = (qe_cpset){0}; }

static int utf8_encode(uint32_t cp, uint8_t *o) {
    if (cp < 0x80) { o[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { o[0] = (uint8_t)(0xC0 | cp >> 6); o[1] = (uint8_t)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12); o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)); o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18); o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)); o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* One alternative per UTF-8 shape of [lo, hi] (no surrogates, lo/hi of one encoded length handled by splitting):
 * the range is split until every byte position covers a contiguous byte range (the classic UTF-8 range split). */
static void class_range(qe_gbuild *b, int rule, uint32_t lo, uint32_t hi, int tail) {
    static const uint32_t len_max[] = {0x7F, 0x7FF, 0xFFFF};
    for (int i = 0; i < 3; i++)
        if (lo <= len_max[i] && hi > len_max[i]) {
            class_range(b, rule, lo, len_max[i], tail);
            class_range(b, rule, len_max[i] + 1, hi, tail);
            return;
        }
    uint8_t a[4], z[4];
    int n = utf8_encode(lo, a);
    utf8_encode(hi, z);
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if ((lo & m) != 0) { class_range(b, rule, lo, lo | m, tail); class_range(b, rule, (lo | m) + 1, hi, tail); return; }
            if ((hi & m) != m) { class_range(b, rule, lo, (hi & ~m) - 1, tail); class_range(b, rule, hi & ~m, hi, tail); return; }
        }
    }
    int alt = qe_gb_alt(b, rule);
    for (int i = 0; i < n; i++) {
        qe_byteset s = {{0}};
        for (int c = a[i]; c <= z[i]; c++) set_put(&s, (uint8_t)c);
        qe_gb_set(b, alt, &s);
    }
    if (tail >= 0) qe_gb_ref(b, alt, tail);
}

void qe_gb_class(qe_gbuild *b, int rule, const qe_cpset *s, int tail) {
    qe_byteset ascii = {{0}};
    bool any_ascii = false;
    for (int i = 0; i < s->n; i++)
        for (uint32_t c = s->r[i].lo; c <= s->r[i].hi && c < 0x80; c++) { set_put(&ascii, (uint8_t)c); any_ascii = true; }
    if (any_ascii) {
        int alt = qe_gb_alt(b, rule);
        qe_gb_set(b, alt, &ascii);
        if (tail >= 0) qe_gb_ref(b, alt, tail);
    }
    for (int i = 0; i < s->n; i++) {
        uint32_t lo = s->r[i].lo < 0x80 ? 0x80 : s->r[i].lo;
        if (lo <= s->r[i].hi) class_range(b, rule, lo, s->r[i].hi, tail);
    }
}

/* ---- the frozen grammar ----------------------------------------------------------------------------------------- */

typedef struct {
    uint32_t off, len;      /* serialisation in pool */
    uint32_t hash;
    bool can_end;
    qe_byteset first;       /* union of the top terminals: a byte outside it is dead without expanding */
    int32_t *next;          /* [256] lazily: UNKNOWN, QE_GSTATE_DEAD or a state */
} gstate;

struct qe_grammar {
    uint32_t *el; size_t n_el;
    uint32_t *rule_alt;     /* [n_rules + 1]: alternatives of rule r are alt_start[rule_alt[r] .. rule_alt[r+1]) */
    uint32_t *alt_start;
    qe_byteset *sets;
    char **names;
    int n_rules, root;
    /* automaton */
    gstate *st; size_t n_st, cap_st;
    uint32_t *pool; size_t n_pool, cap_pool;
    int32_t *ht; size_t ht_cap;
    int32_t start;
    uint32_t *scr; size_t n_scr, cap_scr;     /* expansion output: (len, elems...) per stack */
    uint32_t *ser; size_t cap_ser;            /* canonical serialisation being interned */
    size_t *idx; size_t cap_idx;
    bool oom;
    void *cache; void (*cache_free)(void *);
};

void qe_grammar_free(qe_grammar *g) {
    if (!g) return;
    if (g->cache && g->cache_free) g->cache_free(g->cache);
    for (size_t i = 0; i < g->n_st; i++) free(g->st[i].next);
    for (int i = 0; g->names && i < g->n_rules; i++) free(g->names[i]);
    free(g->el); free(g->rule_alt); free(g->alt_start); free(g->sets); free(g->names);
    free(g->st); free(g->pool); free(g->ht); free(g->scr); free(g->ser); free(g->idx);
    free(g);
}

int qe_grammar_n_rules(const qe_grammar *g) { return g->n_rules; }
int qe_grammar_n_elems(const qe_grammar *g) { return (int)g->n_el; }
bool qe_grammar_is_terminal(const qe_grammar *g, uint32_t pos) { return pos < g->n_el && !(g->el[pos] & EL_REF); }
int32_t qe_grammar_n_states(const qe_grammar *g) { return (int32_t)g->n_st; }
void *qe_grammar_cache(const qe_grammar *g) { return g->cache; }
void qe_grammar_set_cache(qe_grammar *g, void *cache, void (*free_fn)(void *)) { g->cache = cache; g->cache_free = free_fn; }

/* Left-recursion check: a DFS over "rule r can start with rule s" edges (through nullable prefixes); a back edge
 * is a cycle, which the automaton's expansion would follow forever. Iterative: grammars can nest deeply. */
static int check_left_recursion(qe_gbuild *b, const bool *nullable, const int *alt_of_rule_first,
                                const int *alt_next, char *err) {
    size_t n = b->n_rules;
    uint8_t *color = calloc(n, 1);
    int *stk_rule = malloc(sizeof(int) * (n + 1)), *stk_alt = malloc(sizeof(int) * (n + 1));
    size_t *stk_el = malloc(sizeof(size_t) * (n + 1));
    int rc = QE_OK;
    if (!color || !stk_rule || !stk_alt || !stk_el) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto done; }
    for (size_t r0 = 0; r0 < n && rc == QE_OK; r0++) {
        if (color[r0]) continue;
        int sp = 0;
        stk_rule[0] = (int)r0; stk_alt[0] = alt_of_rule_first[r0]; stk_el[0] = 0;
        color[r0] = 1;
        while (sp >= 0) {
            int r = stk_rule[sp], a = stk_alt[sp];
            if (a < 0) { color[r] = 2; sp--; continue; }
            galt *al = &b->alts[a];
            size_t i = stk_el[sp];
            int child = -1;
            /* find the next left-corner reference of this alternative at or after element i */
            while (i < al->n) {
                uint32_t e = al->e[i];
                if (!(e & EL_REF)) { i = al->n; break; }
                child = (int)(e & ~EL_REF);
                break;
            }
            if (child < 0) { stk_alt[sp] = alt_next[a]; stk_el[sp] = 0; continue; }
            /* advance past this element only if it is nullable; else this alternative is done after it */
            stk_el[sp] = nullable[child] ? i + 1 : al->n;
            if (color[child] == 1) {
                rc = qe_errf(err, QE_EINVAL, "rule '%s' is left-recursive (it can reach itself without consuming input)",
                             b->names[child]);
                break;
            }
            if (color[child] == 0) {
                color[child] = 1;
                sp++;
                stk_rule[sp] = child; stk_alt[sp] = alt_of_rule_first[child]; stk_el[sp] = 0;
            }
        }
    }
done:
    free(color); free(stk_rule); free(stk_alt); free(stk_el);
    return rc;
}

int qe_gb_finish(qe_gbuild *b, int root, qe_grammar **out, char *err) {
    *out = NULL;
    qe_grammar *g = NULL;
    bool *prod = NULL, *nullable = NULL, *reach = NULL, *alt_ok = NULL;
    int *first = NULL, *nxt = NULL, *queue = NULL;
    int rc = QE_OK;
    size_t nr = b->n_rules, na = b->n_alt;
    if (b->too_large) { rc = qe_errf(err, QE_ERANGE, "the grammar is too large (more than %d elements)", QE_GRAMMAR_MAX_ELEMS); goto fail; }
    if (b->oom) { rc = qe_errf(err, QE_ENOMEM, "out of memory building the grammar"); goto fail; }
    if (root < 0 || (size_t)root >= nr) { rc = qe_errf(err, QE_EINVAL, "the grammar has no root rule"); goto fail; }
    /* every referenced rule must be defined */
    for (size_t a = 0; a < na; a++)
        for (size_t i = 0; i < b->alts[a].n; i++) {
            uint32_t e = b->alts[a].e[i];
            if ((e & EL_REF) && b->n_alts[e & ~EL_REF] == 0) {
                rc = qe_errf(err, QE_EINVAL, "rule '%s' is used but not defined", b->names[e & ~EL_REF]);
                goto fail;
            }
        }
    prod = calloc(nr + 1, 1); nullable = calloc(nr + 1, 1); reach = calloc(nr + 1, 1); alt_ok = calloc(na + 1, 1);
    first = malloc(sizeof(int) * (nr + 1)); nxt = malloc(sizeof(int) * (na + 1)); queue = malloc(sizeof(int) * (nr + 1));
    if (!prod || !nullable || !reach || !alt_ok || !first || !nxt || !queue) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto fail; }
    /* productive rules (derive some finite string) and nullable ones (derive the empty string), by fixpoint */
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t a = 0; a < na; a++) {
            galt *al = &b->alts[a];
            bool p = true, z = true;
            for (size_t i = 0; i < al->n && p; i++) {
                uint32_t e = al->e[i];
                if (e & EL_REF) { p = prod[e & ~EL_REF]; z = z && nullable[e & ~EL_REF]; }
                else { p = !set_empty(&b->sets[e]); z = false; }
            }
            if (p && !prod[al->rule]) { prod[al->rule] = true; changed = true; }
            if (p && z && !nullable[al->rule]) { nullable[al->rule] = true; changed = true; }
        }
    }
    if (!prod[root]) {
        rc = qe_errf(err, QE_EINVAL, "the grammar can never be satisfied: rule '%s' derives no finite string",
                     b->names[root]);
        goto fail;
    }
    /* an alternative that uses an unproductive rule or an empty byte set can never complete: drop it, so that
     * every state the automaton reaches is a viable prefix */
    for (size_t a = 0; a < na; a++) {
        galt *al = &b->alts[a];
        bool ok = true;
        for (size_t i = 0; i < al->n && ok; i++) {
            uint32_t e = al->e[i];
            ok = (e & EL_REF) ? prod[e & ~EL_REF] : !set_empty(&b->sets[e]);
        }
        alt_ok[a] = ok;
    }
    /* per-rule linked lists of kept alternatives, in order */
    for (size_t r = 0; r < nr; r++) first[r] = -1;
    for (size_t a = na; a-- > 0;) {
        if (!alt_ok[a]) continue;
        nxt[a] = first[b->alts[a].rule];
        first[b->alts[a].rule] = (int)a;
    }
    if ((rc = check_left_recursion(b, nullable, first, nxt, err))) goto fail;
    /* reachable rules from the root */
    int qh = 0, qt = 0;
    queue[qt++] = root;
    reach[root] = true;
    while (qh < qt) {
        int r = queue[qh++];
        for (int a = first[r]; a >= 0; a = nxt[a])
            for (size_t i = 0; i < b->alts[a].n; i++) {
                uint32_t e = b->alts[a].e[i];
                if ((e & EL_REF) && !reach[e & ~EL_REF]) { reach[e & ~EL_REF] = true; queue[qt++] = (int)(e & ~EL_REF); }
            }
    }
    g = calloc(1, sizeof *g);
    if (!g) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto fail; }
    size_t n_el = 0, n_alt = 0;
    for (size_t r = 0; r < nr; r++)
        if (reach[r])
            for (int a = first[r]; a >= 0; a = nxt[a]) { n_el += b->alts[a].n + 1; n_alt++; }
    g->n_rules = (int)nr;
    g->root = root;
    g->el = malloc(sizeof(uint32_t) * (n_el + 1));
    g->alt_start = malloc(sizeof(uint32_t) * (n_alt + 1));
    g->rule_alt = malloc(sizeof(uint32_t) * (nr + 1));
    g->sets = malloc(sizeof(qe_byteset) * (b->n_sets + 1));
    g->names = calloc(nr + 1, sizeof(char *));
    if (!g->el || !g->alt_start || !g->rule_alt || !g->sets || !g->names) { rc = qe_errf(err, QE_ENOMEM, "out of memory"); goto fail; }
    if (b->n_sets) memcpy(g->sets, b->sets, sizeof(qe_byteset) * b->n_sets);
    size_t ie = 0, ia = 0;
    for (size_t r = 0; r < nr; r++) {
        g->rule_alt[r] = (uint32_t)ia;
        g->names[r] = b->names[r];
        b->names[r] = NULL;
        if (!reach[r]) continue;
        for (int a = first[r]; a >= 0; a = nxt[a]) {
            g->alt_start[ia++] = (uint32_t)ie;
            if (b->alts[a].n) memcpy(g->el + ie, b->alts[a].e, sizeof(uint32_t) * b->alts[a].n);
            ie += b->alts[a].n;
            g->el[ie++] = EL_END;
        }
    }
    g->rule_alt[nr] = (uint32_t)ia;
    g->el[ie] = EL_END; /* a guard: el[pos + 1] is always readable */
    g->n_el = ie;
    g->start = UNKNOWN;
    *out = g;
    g = NULL;
fail:
    free(prod); free(nullable); free(reach); free(alt_ok); free(first); free(nxt); free(queue);
    qe_grammar_free(g);
    /* leave the builder empty either way */
    for (size_t i = 0; i < b->n_alt; i++) free(b->alts[i].e);
    b->n_alt = 0;
    return rc;
}

/* ---- dump ---------------------------------------------------------------------------------------------------- */

static void dump_set(qe_buf *o, const qe_byteset *s) {
    int n = 0, only = -1;
    for (int c = 0; c < 256; c++) if (set_has(s, (uint8_t)c)) { n++; only = c; }
    if (n == 1 && only >= 0x20 && only < 0x7F && only != '"' && only != '\\') { qe_buf_printf(o, "\"%c\"", only); return; }
    qe_buf_append(o, "[", 1);
    for (int c = 0; c < 256;) {
        if (!set_has(s, (uint8_t)c)) { c++; continue; }
        int d = c;
        while (d + 1 < 256 && set_has(s, (uint8_t)(d + 1))) d++;
        if (c >= 0x21 && c < 0x7F && c != ']' && c != '\\' && c != '-' && c != '^') qe_buf_printf(o, "%c", c);
        else qe_buf_printf(o, "\\x%02X", c);
        if (d > c) {
            qe_buf_append(o, "-", 1);
            if (d >= 0x21 && d < 0x7F && d != ']' && d != '\\' && d != '-' && d != '^') qe_buf_printf(o, "%c", d);
            else qe_buf_printf(o, "\\x%02X", d);
        }
        c = d + 1;
    }
    qe_buf_append(o, "]", 1);
}

char *qe_grammar_dump(const qe_grammar *g) {
    qe_buf o = {0};
    for (int r = 0; r < g->n_rules; r++) {
        if (g->rule_alt[r] == g->rule_alt[r + 1]) continue;
        qe_buf_printf(&o, "%s ::=", g->names[r]);
        for (uint32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
            if (a > g->rule_alt[r]) qe_buf_printf(&o, " |");
            for (uint32_t p = g->alt_start[a]; g->el[p] != EL_END; p++) {
                qe_buf_append(&o, " ", 1);
                if (g->el[p] & EL_REF) qe_buf_printf(&o, "%s", g->names[g->el[p] & ~EL_REF]);
                else dump_set(&o, &g->sets[g->el[p]]);
            }
            if (g->el[g->alt_start[a]] == EL_END) qe_buf_printf(&o, " \"\"");
        }
        qe_buf_append(&o, "\n", 1);
    }
    qe_buf_append(&o, "", 1);
    return o.p;
}

/* ---- the automaton -------------------------------------------------------------------------------------------- */

static void scr_emit(qe_grammar *g, const uint32_t *stk, uint32_t n) {
    if (!grow((void **)&g->scr, &g->cap_scr, g->n_scr + n + 1, sizeof(uint32_t))) { g->oom = true; return; }
    g->scr[g->n_scr++] = n;
    memcpy(g->scr + g->n_scr, stk, sizeof(uint32_t) * n);
    g->n_scr += n;
}

/* Expands stk[0..n) (capacity QE_GRAMMAR_MAX_DEPTH + 1) until its top is a terminal, appending every resulting
 * stack to the scratch list: a finished alternative returns to its caller, a reference is replaced by the first
 * element of each alternative of the rule (with the caller's continuation kept below it unless the reference was
 * the last element: a tail call). stk is restored to its input on return. */
static void expand(qe_grammar *g, uint32_t *stk, uint32_t n) {
    if (n == 0) { scr_emit(g, stk, 0); return; }
    uint32_t top = stk[n - 1], e = g->el[top];
    if (e == EL_END) { expand(g, stk, n - 1); return; }
    if (!(e & EL_REF)) { scr_emit(g, stk, n); return; }
    uint32_t r = e & ~EL_REF, m = n - 1;
    if (g->el[top + 1] != EL_END) stk[m++] = top + 1;
    if (m < QE_GRAMMAR_MAX_DEPTH) /* deeper nesting is refused: the path is dropped */
        for (uint32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
            stk[m] = g->alt_start[a];
            expand(g, stk, m + 1);
        }
    stk[n - 1] = top;
}

static uint32_t hash_words(const uint32_t *w, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i++) { h ^= w[i]; h *= 0xFF51AFD7ED558CCDull; h ^= h >> 32; }
    return (uint32_t)h;
}

static const uint32_t *scr_base;
static int cmp_stack(const void *a, const void *b) {
    const uint32_t *x = scr_base + *(const size_t *)a, *y = scr_base + *(const size_t *)b;
    if (x[0] != y[0]) return (x[0] > y[0]) - (x[0] < y[0]);
    for (uint32_t i = 1; i <= x[0]; i++) if (x[i] != y[i]) return (x[i] > y[i]) - (x[i] < y[i]);
    return 0;
}

/* Interns the set of stacks in the scratch list (sorted, duplicates dropped): its state id, QE_GSTATE_DEAD if the
 * set is empty, or a negative error code. Clears the scratch list. */
static int32_t intern_scratch(qe_grammar *g) {
    if (g->oom) { g->n_scr = 0; g->oom = false; return QE_ENOMEM; }
    if (g->n_scr == 0) return QE_GSTATE_DEAD;
    size_t n_stacks = 0;
    for (size_t i = 0; i < g->n_scr; i += g->scr[i] + 1) n_stacks++;
    if (!grow((void **)&g->idx, &g->cap_idx, n_stacks, sizeof(size_t)) ||
        !grow((void **)&g->ser, &g->cap_ser, g->n_scr + 1, sizeof(uint32_t))) { g->n_scr = 0; return QE_ENOMEM; }
    size_t k = 0;
    for (size_t i = 0; i < g->n_scr; i += g->scr[i] + 1) g->idx[k++] = i;
    scr_base = g->scr; /* qsort has no context argument; the engine thread alone interns */
    if (n_stacks > 1) qsort(g->idx, n_stacks, sizeof(size_t), cmp_stack);
    size_t w = 1, uniq = 0;
    for (size_t i = 0; i < n_stacks; i++) {
        if (i > 0 && cmp_stack(&g->idx[i - 1], &g->idx[i]) == 0) continue;
        const uint32_t *s = g->scr + g->idx[i];
        memcpy(g->ser + w, s, sizeof(uint32_t) * (s[0] + 1));
        w += s[0] + 1;
        uniq++;
    }
    g->ser[0] = (uint32_t)uniq;
    g->n_scr = 0;
    uint32_t h = hash_words(g->ser, w);
    if (g->ht_cap) {
        for (size_t j = h & (g->ht_cap - 1); g->ht[j] >= 0; j = (j + 1) & (g->ht_cap - 1)) {
            gstate *s = &g->st[g->ht[j]];
            if (s->hash == h && s->len == w && !memcmp(g->pool + s->off, g->ser, w * sizeof(uint32_t))) return g->ht[j];
        }
    }
    if (g->n_st >= QE_GRAMMAR_MAX_STATES) return QE_ERANGE;
    if (!grow((void **)&g->st, &g->cap_st, g->n_st + 1, sizeof(gstate)) ||
        !grow((void **)&g->pool, &g->cap_pool, g->n_pool + w, sizeof(uint32_t))) return QE_ENOMEM;
    if ((g->n_st + 1) * 2 > g->ht_cap) {
        size_t cap = g->ht_cap ? g->ht_cap * 2 : 256;
        int32_t *ht = malloc(sizeof(int32_t) * cap);
        if (!ht) return QE_ENOMEM;
        for (size_t j = 0; j < cap; j++) ht[j] = -1;
        for (size_t i = 0; i < g->n_st; i++) {
            size_t j = g->st[i].hash & (cap - 1);
            while (ht[j] >= 0) j = (j + 1) & (cap - 1);
            ht[j] = (int32_t)i;
        }
        free(g->ht);
        g->ht = ht;
        g->ht_cap = cap;
    }
    gstate *s = &g->st[g->n_st];
    *s = (gstate){.off = (uint32_t)g->n_pool, .len = (uint32_t)w, .hash = h};
    memcpy(g->pool + g->n_pool, g->ser, w * sizeof(uint32_t));
    g->n_pool += w;
    for (size_t i = 1; i < w; i += g->ser[i] + 1) {
        uint32_t len = g->ser[i];
        if (len == 0) { s->can_end = true; continue; }
        const qe_byteset *t = &g->sets[g->el[g->ser[i + len]]];
        for (int j = 0; j < 32; j++) s->first.b[j] |= t->b[j];
    }
    size_t j = h & (g->ht_cap - 1);
    while (g->ht[j] >= 0) j = (j + 1) & (g->ht_cap - 1);
    g->ht[j] = (int32_t)g->n_st;
    return (int32_t)g->n_st++;
}

int32_t qe_gstate_start(qe_grammar *g) {
    if (g->start != UNKNOWN) return g->start;
    uint32_t stk[QE_GRAMMAR_MAX_DEPTH + 1];
    for (uint32_t a = g->rule_alt[g->root]; a < g->rule_alt[g->root + 1]; a++) {
        stk[0] = g->alt_start[a];
        expand(g, stk, 1);
    }
    int32_t s = intern_scratch(g);
    if (s >= 0) g->start = s;
    return s;
}

int32_t qe_gstate_of_pos(qe_grammar *g, uint32_t pos) {
    uint32_t stk[1] = {pos};
    scr_emit(g, stk, 1);
    return intern_scratch(g);
}

int32_t qe_gstate_after_return(qe_grammar *g, const uint32_t *stk, uint32_t n) {
    uint32_t tmp[QE_GRAMMAR_MAX_DEPTH + 1];
    if (n == 0 || n > QE_GRAMMAR_MAX_DEPTH) return QE_GSTATE_DEAD;
    memcpy(tmp, stk, sizeof(uint32_t) * (n - 1));
    expand(g, tmp, n - 1);
    return intern_scratch(g);
}

const int32_t *qe_gstate_row(qe_grammar *g, int32_t s) {
    gstate *st = &g->st[s];
    if (!st->next) {
        st->next = malloc(sizeof(int32_t) * 256);
        if (!st->next) return NULL;
        for (int i = 0; i < 256; i++) st->next[i] = set_has(&st->first, (uint8_t)i) ? UNKNOWN : QE_GSTATE_DEAD;
    }
    return st->next;
}

int32_t qe_gstate_next(qe_grammar *g, int32_t s, uint8_t c) {
    if (!qe_gstate_row(g, s)) return QE_ENOMEM;
    gstate *st = &g->st[s];
    int32_t r = st->next[c];
    if (r != UNKNOWN) return r;
    uint32_t stk[QE_GRAMMAR_MAX_DEPTH + 1];
    uint32_t off = st->off, w = st->len;
    for (uint32_t i = 1; i < w;) {
        const uint32_t *p = g->pool + off + i;
        uint32_t len = p[0];
        i += len + 1;
        if (len == 0 || !set_has(&g->sets[g->el[p[len]]], c)) continue;
        memcpy(stk, p + 1, sizeof(uint32_t) * len);
        stk[len - 1]++;
        expand(g, stk, len);
    }
    r = intern_scratch(g);
    if (r >= QE_GSTATE_DEAD) g->st[s].next[c] = r; /* st may have moved: intern can grow the table */
    return r;
}

bool qe_gstate_can_end(const qe_grammar *g, int32_t s) { return g->st[s].can_end; }
const uint32_t *qe_gstate_stacks(const qe_grammar *g, int32_t s) { return g->pool + g->st[s].off; }
