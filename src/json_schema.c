/* json_schema.c — JSON Schema → byte grammar (see json_schema.h for what is supported), plus the subset of
 * ECMAScript regular expressions that `pattern` accepts, compiled straight to the JSON-escaped form of the string.
 *
 * One rule per schema node; shared rules (the string loop, numbers, "any value") are built once per grammar.
 * Loops are written as tail-recursive rules whose terminals are inline (the string body is one rule that calls
 * itself last), so the automaton stays in one frame inside a string or a number and token_mask.c's per-position
 * cache covers whole runs of characters. Errors carry the JSON pointer of the schema node. */
#include "json_schema.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64        /* schema nesting (guards the C stack against hostile schemas) */
#define INT_DIGITS 16       /* unbounded integers: at most this many digits (the model cannot run on forever) */
#define FRAC_DIGITS 15

typedef struct {
    qe_gbuild *b;
    json_t *root;
    char *err;
    int rc, depth;
    char path[512];
    size_t path_n;
    /* shared rules, -1 until first use */
    int ws, str_body, string, esc, jchar, digit_any, integer, number, value, object_any, array_any;
    struct { json_t *node; int rule; } *refs;
    size_t n_refs, cap_refs;
} jsc;

static int err_at(jsc *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int err_at(jsc *c, int code, const char *fmt, ...) {
    if (c->rc) return c->rc;
    char msg[QE_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->rc = qe_errf(c->err, code, "JSON Schema: %s (at %s)", msg, c->path_n ? c->path : "/");
    return c->rc;
}

static size_t path_push(jsc *c, const char *a, const char *b) {
    size_t old = c->path_n;
    int n = snprintf(c->path + old, sizeof c->path - old, "/%s%s%s", a, b ? "/" : "", b ? b : "");
    c->path_n = n > 0 && old + (size_t)n < sizeof c->path ? old + (size_t)n : sizeof c->path - 1;
    return old;
}
static void path_pop(jsc *c, size_t old) { c->path_n = old; c->path[old] = 0; }

/* ---- building blocks ------------------------------------------------------------------------------------------ */

static int lit_rule(jsc *c, const char *s) {
    int r = qe_gb_rule(c->b, NULL);
    qe_gb_lit(c->b, qe_gb_alt(c->b, r), s, strlen(s));
    return r;
}

static qe_byteset byte_range(int lo, int hi) {
    qe_byteset s = {{0}};
    for (int x = lo; x <= hi; x++) s.b[x >> 3] |= (uint8_t)(1u << (x & 7));
    return s;
}

/* set{min,max} of one byte set as a tail-recursive chain with the terminal inline (max < 0: unbounded). */
static int set_repeat(jsc *c, const qe_byteset *set, int min, int max) {
    int tail = -1;
    if (max < 0) {
        tail = qe_gb_rule(c->b, NULL);
        int a = qe_gb_alt(c->b, tail);
        qe_gb_set(c->b, a, set);
        qe_gb_ref(c->b, a, tail);
        qe_gb_alt(c->b, tail);
    } else {
        for (int k = 0; k < max - min; k++) {
            int t = qe_gb_rule(c->b, NULL);
            int a = qe_gb_alt(c->b, t);
            qe_gb_set(c->b, a, set);
            if (tail >= 0) qe_gb_ref(c->b, a, tail);
            qe_gb_alt(c->b, t);
            tail = t;
        }
    }
    int r = qe_gb_rule(c->b, NULL);
    int a = qe_gb_alt(c->b, r);
    for (int i = 0; i < min; i++) qe_gb_set(c->b, a, set);
    if (tail >= 0) qe_gb_ref(c->b, a, tail);
    return r;
}

/* One optional space, after ':' and ','. */
static int ws(jsc *c) {
    if (c->ws < 0) {
        c->ws = qe_gb_rule(c->b, "ws");
        qe_gb_byte(c->b, qe_gb_alt(c->b, c->ws), ' ');
        qe_gb_alt(c->b, c->ws);
    }
    return c->ws;
}

/* The code points a JSON string may hold unescaped: everything but '"', '\' and the controls. */
static void raw_chars(qe_cpset *s) {
    qe_cpset_add(s, 0x20, 0x21);
    qe_cpset_add(s, 0x23, 0x5B);
    qe_cpset_add(s, 0x5D, 0x10FFFF);
    qe_cpset_norm(s);
}

/* After a backslash: one of "\/bfnrt or u and four hex digits that are not a surrogate (so every escape is exactly
 * one code point, which keeps minLength / maxLength exact). */
static int esc(jsc *c) {
    if (c->esc >= 0) return c->esc;
    int r = c->esc = qe_gb_rule(c->b, "esc");
    qe_byteset simple = {{0}};
    for (const char *p = "\"\\/bfnrt"; *p; p++) simple.b[(uint8_t)*p >> 3] |= (uint8_t)(1u << (*p & 7));
    qe_gb_set(c->b, qe_gb_alt(c->b, r), &simple);
    qe_byteset hex = byte_range('0', '9'), nond = byte_range('0', '9'), lo7 = byte_range('0', '7');
    for (int x = 'a'; x <= 'f'; x++) { hex.b[x >> 3] |= (uint8_t)(1u << (x & 7)); hex.b[(x - 32) >> 3] |= (uint8_t)(1u << ((x - 32) & 7)); }
    for (int x = 'a'; x <= 'f'; x++) if (x != 'd') { nond.b[x >> 3] |= (uint8_t)(1u << (x & 7)); nond.b[(x - 32) >> 3] |= (uint8_t)(1u << ((x - 32) & 7)); }
    int a = qe_gb_alt(c->b, r);
    qe_gb_byte(c->b, a, 'u'); qe_gb_set(c->b, a, &nond); qe_gb_set(c->b, a, &hex); qe_gb_set(c->b, a, &hex); qe_gb_set(c->b, a, &hex);
    a = qe_gb_alt(c->b, r);
    qe_gb_byte(c->b, a, 'u');
    qe_byteset dD = byte_range('d', 'd');
    dD.b['D' >> 3] |= (uint8_t)(1u << ('D' & 7));
    qe_gb_set(c->b, a, &dD); qe_gb_set(c->b, a, &lo7); qe_gb_set(c->b, a, &hex); qe_gb_set(c->b, a, &hex);
    return r;
}

/* Adds to rule the alternatives "one JSON string character, then tail" (tail < 0: nothing after). */
static void json_char_alts(jsc *c, int rule, int tail) {
    qe_cpset raw = {0};
    raw_chars(&raw);
    qe_gb_class(c->b, rule, &raw, tail);
    qe_cpset_free(&raw);
    int a = qe_gb_alt(c->b, rule);
    qe_gb_byte(c->b, a, '\\');
    qe_gb_ref(c->b, a, esc(c));
    if (tail >= 0) qe_gb_ref(c->b, a, tail);
}

/* string ::= '"' body ;  body ::= char body | '"'  (one frame for the whole string) */
static int string_any(jsc *c) {
    if (c->string >= 0) return c->string;
    c->str_body = qe_gb_rule(c->b, "string-body");
    json_char_alts(c, c->str_body, c->str_body);
    qe_gb_byte(c->b, qe_gb_alt(c->b, c->str_body), '"');
    c->string = qe_gb_rule(c->b, "string");
    int a = qe_gb_alt(c->b, c->string);
    qe_gb_byte(c->b, a, '"');
    qe_gb_ref(c->b, a, c->str_body);
    return c->string;
}

/* A string of min..max characters (max < 0: unbounded): C_i ::= char C_i+1 | '"' (when i >= min). */
static int string_len(jsc *c, int min, int max) {
    if (min == 0 && max < 0) return string_any(c);
    int top = max < 0 ? min : max;
    int *C = malloc(sizeof(int) * (size_t)(top + 1));
    if (!C) { c->rc = qe_errf(c->err, QE_ENOMEM, "out of memory"); return 0; }
    for (int i = 0; i <= top; i++) C[i] = qe_gb_rule(c->b, NULL);
    for (int i = 0; i <= top; i++) {
        if (i < top) json_char_alts(c, C[i], C[i + 1]);
        else if (max < 0) json_char_alts(c, C[i], C[i]);
        if (i >= min) qe_gb_byte(c->b, qe_gb_alt(c->b, C[i]), '"');
    }
    int r = qe_gb_rule(c->b, NULL);
    int a = qe_gb_alt(c->b, r);
    qe_gb_byte(c->b, a, '"');
    qe_gb_ref(c->b, a, C[0]);
    free(C);
    return r;
}

/* -?(0|[1-9][0-9]{0,15}) */
static int integer_any(jsc *c) {
    if (c->integer >= 0) return c->integer;
    qe_byteset d19 = byte_range('1', '9'), d09 = byte_range('0', '9');
    int rest = set_repeat(c, &d09, 0, INT_DIGITS - 1);
    int u = qe_gb_rule(c->b, "uint");
    qe_gb_byte(c->b, qe_gb_alt(c->b, u), '0');
    int a = qe_gb_alt(c->b, u);
    qe_gb_set(c->b, a, &d19);
    qe_gb_ref(c->b, a, rest);
    int r = c->integer = qe_gb_rule(c->b, "integer");
    qe_gb_ref(c->b, qe_gb_alt(c->b, r), u);
    a = qe_gb_alt(c->b, r);
    qe_gb_byte(c->b, a, '-');
    qe_gb_ref(c->b, a, u);
    return r;
}

/* "." [0-9]* [1-9]: a fraction that is never zero (so x.F is strictly between x and x + 1), or any fraction. */
static int fraction(jsc *c, bool nonzero) {
    qe_byteset d09 = byte_range('0', '9'), d19 = byte_range('1', '9');
    int r = qe_gb_rule(c->b, NULL);
    int a = qe_gb_alt(c->b, r);
    qe_gb_byte(c->b, a, '.');
    qe_gb_ref(c->b, a, set_repeat(c, &d09, 0, FRAC_DIGITS - 1));
    if (nonzero) qe_gb_set(c->b, a, &d19);
    else qe_gb_set(c->b, a, &d09);
    return r;
}

static int number_any(jsc *c) {
    if (c->number >= 0) return c->number;
    qe_byteset d09 = byte_range('0', '9'), eE = {{0}}, sign = {{0}};
    eE.b['e' >> 3] |= (uint8_t)(1u << ('e' & 7)); eE.b['E' >> 3] |= (uint8_t)(1u << ('E' & 7));
    sign.b['+' >> 3] |= (uint8_t)(1u << ('+' & 7)); sign.b['-' >> 3] |= (uint8_t)(1u << ('-' & 7));
    int frac = qe_gb_rule(c->b, NULL);
    qe_gb_ref(c->b, qe_gb_alt(c->b, frac), fraction(c, false));
    qe_gb_alt(c->b, frac);
    int ex = qe_gb_rule(c->b, NULL);
    int a = qe_gb_alt(c->b, ex);
    qe_gb_set(c->b, a, &eE);
    qe_gb_ref(c->b, a, set_repeat(c, &sign, 0, 1));
    qe_gb_set(c->b, a, &d09);
    qe_gb_ref(c->b, a, set_repeat(c, &d09, 0, 1));
    qe_gb_alt(c->b, ex);
    int r = c->number = qe_gb_rule(c->b, "number");
    a = qe_gb_alt(c->b, r);
    qe_gb_ref(c->b, a, integer_any(c));
    qe_gb_ref(c->b, a, frac);
    qe_gb_ref(c->b, a, ex);
    return r;
}

static int value_any(jsc *c);

/* { } | { string : value (, string : value)* } with values of rule v */
static int object_map(jsc *c, int v) {
    int member = qe_gb_rule(c->b, NULL);
    int a = qe_gb_alt(c->b, member);
    qe_gb_ref(c->b, a, string_any(c));
    qe_gb_byte(c->b, a, ':');
    qe_gb_ref(c->b, a, ws(c));
    qe_gb_ref(c->b, a, v);
    int more = qe_gb_rule(c->b, NULL);
    a = qe_gb_alt(c->b, more);
    qe_gb_byte(c->b, a, ',');
    qe_gb_ref(c->b, a, ws(c));
    qe_gb_ref(c->b, a, member);
    qe_gb_ref(c->b, a, more);
    qe_gb_byte(c->b, qe_gb_alt(c->b, more), '}');
    int r = qe_gb_rule(c->b, NULL);
    qe_gb_lit(c->b, qe_gb_alt(c->b, r), "{}", 2);
    a = qe_gb_alt(c->b, r);
    qe_gb_byte(c->b, a, '{');
    qe_gb_ref(c->b, a, member);
    qe_gb_ref(c->b, a, more);
    return r;
}

/* [ ] | [ v (, v){min-1, max-1} ] */
static int array_of(jsc *c, int v, int min, int max) {
    int r = qe_gb_rule(c->b, NULL);
    if (min == 0) qe_gb_lit(c->b, qe_gb_alt(c->b, r), "[]", 2);
    if (max == 0) return r;
    int sep = qe_gb_rule(c->b, NULL);
    int a = qe_gb_alt(c->b, sep);
    qe_gb_byte(c->b, a, ',');
    qe_gb_ref(c->b, a, ws(c));
    qe_gb_ref(c->b, a, v);
    int tail;
    if (qe_gb_repeat(c->b, sep, min > 0 ? min - 1 : 0, max < 0 ? -1 : max - 1, &tail, c->err)) {
        c->rc = QE_ERANGE;
        return r;
    }
    a = qe_gb_alt(c->b, r);
    qe_gb_byte(c->b, a, '[');
    qe_gb_ref(c->b, a, v);
    qe_gb_ref(c->b, a, tail);
    qe_gb_byte(c->b, a, ']');
    return r;
}

static int value_any(jsc *c) {
    if (c->value >= 0) return c->value;
    int r = c->value = qe_gb_rule(c->b, "value");
    c->object_any = object_map(c, r);
    c->array_any = array_of(c, r, 0, -1);
    qe_gb_ref(c->b, qe_gb_alt(c->b, r), c->object_any);
    qe_gb_ref(c->b, qe_gb_alt(c->b, r), c->array_any);
    qe_gb_ref(c->b, qe_gb_alt(c->b, r), string_any(c));
    qe_gb_ref(c->b, qe_gb_alt(c->b, r), number_any(c));
    qe_gb_lit(c->b, qe_gb_alt(c->b, r), "true", 4);
    qe_gb_lit(c->b, qe_gb_alt(c->b, r), "false", 5);
    qe_gb_lit(c->b, qe_gb_alt(c->b, r), "null", 4);
    return r;
}

/* ---- integer ranges ------------------------------------------------------------------------------------------- */

static int ndigits(uint64_t x) { int n = 1; while (x >= 10) { x /= 10; n++; } return n; }

/* Alternatives for the decimal strings of exactly L digits between lo and hi (equal length), after the fixed
 * prefix pre[0..np): digit by digit, a shared prefix, then lo's branch, the free middle, and hi's branch. */
static void same_len(jsc *c, int rule, const char *lo, const char *hi, int L, const qe_byteset *pre, int np) {
    qe_byteset buf[48];
    if (np) memcpy(buf, pre, sizeof(qe_byteset) * (size_t)np);
    int i = 0;
    while (i < L && lo[i] == hi[i]) { buf[np++] = byte_range(lo[i], lo[i]); i++; }
    if (i == L) {
        int a = qe_gb_alt(c->b, rule);
        for (int k = 0; k < np; k++) qe_gb_set(c->b, a, &buf[k]);
        return;
    }
    bool lo_zeros = true, hi_nines = true;
    for (int k = i + 1; k < L; k++) { if (lo[k] != '0') lo_zeros = false; if (hi[k] != '9') hi_nines = false; }
    int mlo = lo_zeros ? lo[i] : lo[i] + 1, mhi = hi_nines ? hi[i] : hi[i] - 1;
    static const char nines[] = "999999999999999999999999", zeros[] = "000000000000000000000000";
    if (!lo_zeros) {
        buf[np] = byte_range(lo[i], lo[i]);
        same_len(c, rule, lo + i + 1, nines, L - i - 1, buf, np + 1);
    }
    if (mlo <= mhi) {
        int a = qe_gb_alt(c->b, rule);
        for (int k = 0; k < np; k++) qe_gb_set(c->b, a, &buf[k]);
        qe_byteset m = byte_range(mlo, mhi), d = byte_range('0', '9');
        qe_gb_set(c->b, a, &m);
        for (int k = i + 1; k < L; k++) qe_gb_set(c->b, a, &d);
    }
    if (!hi_nines) {
        buf[np] = byte_range(hi[i], hi[i]);
        same_len(c, rule, zeros, hi + i + 1, L - i - 1, buf, np + 1);
    }
}

/* Non-negative integers in [a, b] (b < 0: unbounded, at most INT_DIGITS digits), as alternatives of a new rule. */
static int uint_range(jsc *c, int64_t a, int64_t b) {
    int r = qe_gb_rule(c->b, NULL);
    int la = ndigits((uint64_t)a), lb = b < 0 ? (la > INT_DIGITS ? la : INT_DIGITS) : ndigits((uint64_t)b);
    for (int L = la; L <= lb; L++) {
        uint64_t pow = 1;
        for (int k = 1; k < L; k++) pow *= 10;
        uint64_t lo = L == 1 ? 0 : pow, hi = pow * 10 - 1;
        if (L == la && (uint64_t)a > lo) lo = (uint64_t)a;
        if (b >= 0 && L == lb && (uint64_t)b < hi) hi = (uint64_t)b;
        if (lo > hi) continue;
        char slo[24], shi[24];
        snprintf(slo, sizeof slo, "%0*llu", L, (unsigned long long)lo);
        snprintf(shi, sizeof shi, "%0*llu", L, (unsigned long long)hi);
        /* the middle positions of a range that starts at L digits must not start with 0: lo has no leading 0 */
        same_len(c, r, slo, shi, L, NULL, 0);
    }
    return r;
}

#define BIG 1000000000000000LL /* bounds beyond ±1e15 are treated as unbounded */

/* Integers in [lo, hi]; has_lo / has_hi false: unbounded on that side. */
static int int_range(jsc *c, bool has_lo, int64_t lo, bool has_hi, int64_t hi) {
    if (!has_lo && !has_hi) return integer_any(c);
    if (has_lo && has_hi && lo > hi) { err_at(c, QE_EINVAL, "the schema can never be satisfied: minimum > maximum"); return 0; }
    int r = qe_gb_rule(c->b, NULL);
    /* non-negative part */
    if (!has_hi || hi >= 0) qe_gb_ref(c->b, qe_gb_alt(c->b, r), uint_range(c, has_lo && lo > 0 ? lo : 0, has_hi ? hi : -1));
    /* negative part: "-" y with y in [max(1, -hi), -lo] */
    if (!has_lo || lo < 0) {
        int64_t ylo = has_hi && hi < 0 ? -hi : 1, yhi = has_lo ? -lo : -1;
        int a = qe_gb_alt(c->b, r);
        qe_gb_byte(c->b, a, '-');
        qe_gb_ref(c->b, a, uint_range(c, ylo, yhi));
    }
    return r;
}

/* ---- regex (pattern) ------------------------------------------------------------------------------------------ */

typedef struct { const char *s; size_t n, i; jsc *c; int depth; } rx;

static int rx_fail(rx *x, const char *what) {
    return err_at(x->c, QE_EUNSUPPORTED, "pattern: %s at offset %zu (see json_schema.h for the supported subset)", what, x->i);
}

/* a ∩ b of two normalised sets */
static void cpset_intersect(const qe_cpset *a, const qe_cpset *b, qe_cpset *out) {
    for (int i = 0, j = 0; i < a->n && j < b->n;) {
        uint32_t lo = a->r[i].lo > b->r[j].lo ? a->r[i].lo : b->r[j].lo;
        uint32_t hi = a->r[i].hi < b->r[j].hi ? a->r[i].hi : b->r[j].hi;
        if (lo <= hi) qe_cpset_add(out, lo, hi);
        if (a->r[i].hi < b->r[j].hi) i++;
        else j++;
    }
    qe_cpset_norm(out);
}

static bool cpset_has(const qe_cpset *s, uint32_t cp) {
    for (int k = 0; k < s->n; k++) if (s->r[k].lo <= cp && cp <= s->r[k].hi) return true;
    return false;
}

/* A rule matching one character of the (normalised) set s, written as it appears inside a JSON string: raw, or
 * escaped where JSON requires it (", \, controls). */
static int json_class_rule(jsc *c, const qe_cpset *s) {
    int r = qe_gb_rule(c->b, NULL);
    static const char *short_esc[32] = {[8] = "\\b", [9] = "\\t", [10] = "\\n", [12] = "\\f", [13] = "\\r"};
    for (uint32_t cp = 0; cp < 0x20; cp++) {
        if (!cpset_has(s, cp)) continue;
        char e[8];
        if (short_esc[cp]) snprintf(e, sizeof e, "%s", short_esc[cp]);
        else snprintf(e, sizeof e, "\\u%04x", cp);
        qe_gb_lit(c->b, qe_gb_alt(c->b, r), e, strlen(e));
    }
    if (cpset_has(s, '"')) qe_gb_lit(c->b, qe_gb_alt(c->b, r), "\\\"", 2);
    if (cpset_has(s, '\\')) qe_gb_lit(c->b, qe_gb_alt(c->b, r), "\\\\", 2);
    qe_cpset ok = {0}, raw = {0};
    raw_chars(&ok);
    cpset_intersect(s, &ok, &raw);
    qe_gb_class(c->b, r, &raw, -1);
    qe_cpset_free(&ok);
    qe_cpset_free(&raw);
    return r;
}

static void add_class_escape(qe_cpset *s, char e, bool *ok) {
    switch (e) {
    case 'd': qe_cpset_add(s, '0', '9'); break;
    case 'w': qe_cpset_add(s, '0', '9'); qe_cpset_add(s, 'A', 'Z'); qe_cpset_add(s, 'a', 'z'); qe_cpset_add(s, '_', '_'); break;
    case 's':
        qe_cpset_add(s, '\t', '\r'); qe_cpset_add(s, ' ', ' '); qe_cpset_add(s, 0xA0, 0xA0); qe_cpset_add(s, 0x1680, 0x1680);
        qe_cpset_add(s, 0x2000, 0x200A); qe_cpset_add(s, 0x2028, 0x2029); qe_cpset_add(s, 0x202F, 0x202F);
        qe_cpset_add(s, 0x205F, 0x205F); qe_cpset_add(s, 0x3000, 0x3000); qe_cpset_add(s, 0xFEFF, 0xFEFF);
        break;
    default: *ok = false;
    }
}

/* One escaped character after '\' (not a class escape): its code point, or -1 if unsupported. */
static int64_t rx_escape_char(rx *x) {
    if (x->i >= x->n) return -1;
    char e = x->s[x->i++];
    switch (e) {
    case 't': return '\t';
    case 'n': return '\n';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    case '0': return 0;
    case 'x': case 'u': {
        int digits = e == 'x' ? 2 : 4;
        uint32_t v = 0;
        for (int k = 0; k < digits; k++) {
            if (x->i >= x->n) return -1;
            char h = x->s[x->i++];
            int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) return -1;
            v = v * 16 + (uint32_t)d;
        }
        return v;
    }
    default:
        if (strchr("^$\\.*+?()[]{}|/-,:=!<>'\"#&%@~`;_ ", e)) return (unsigned char)e;
        return -1;
    }
}

/* One UTF-8 character of the pattern. */
static int64_t rx_utf8(rx *x) {
    unsigned char c0 = (unsigned char)x->s[x->i];
    int len = c0 < 0x80 ? 1 : (c0 & 0xE0) == 0xC0 ? 2 : (c0 & 0xF0) == 0xE0 ? 3 : (c0 & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || x->i + (size_t)len > x->n) return -1;
    uint32_t v = len == 1 ? c0 : len == 2 ? (c0 & 0x1F) : len == 3 ? (c0 & 0x0F) : (c0 & 0x07);
    for (int k = 1; k < len; k++) {
        unsigned char d = (unsigned char)x->s[x->i + (size_t)k];
        if ((d & 0xC0) != 0x80) return -1;
        v = v << 6 | (d & 0x3F);
    }
    x->i += (size_t)len;
    return v;
}

static int rx_alternation(rx *x, int rule);

/* An atom as the set of characters it matches (classes, ., escapes, literals) or, for a group, a rule. */
static int rx_atom(rx *x, qe_cpset *set, int *group) {
    *group = -1;
    char ch = x->s[x->i];
    if (ch == '(') {
        x->i++;
        if (x->i < x->n && x->s[x->i] == '?') {
            if (x->i + 1 < x->n && x->s[x->i + 1] == ':') x->i += 2;
            else if (x->i + 1 < x->n && x->s[x->i + 1] == '<' && x->i + 2 < x->n && x->s[x->i + 2] != '=' && x->s[x->i + 2] != '!') {
                while (x->i < x->n && x->s[x->i] != '>') x->i++;
                x->i++;
            } else return rx_fail(x, "lookaround is not supported");
        }
        if (++x->depth > MAX_DEPTH) return rx_fail(x, "groups nested too deeply");
        *group = qe_gb_rule(x->c->b, NULL);
        if (rx_alternation(x, *group)) return x->c->rc;
        if (x->i >= x->n || x->s[x->i] != ')') return rx_fail(x, "missing ')'");
        x->i++;
        x->depth--;
        return QE_OK;
    }
    if (ch == '[') {
        x->i++;
        bool neg = x->i < x->n && x->s[x->i] == '^';
        if (neg) x->i++;
        while (x->i < x->n && x->s[x->i] != ']') {
            int64_t lo;
            if (x->s[x->i] == '\\') {
                x->i++;
                if (x->i >= x->n) return rx_fail(x, "pattern ends after '\\'");
                char e = x->s[x->i];
                bool ok = true;
                if (strchr("dws", e)) { x->i++; add_class_escape(set, e, &ok); continue; }
                if (strchr("DWS", e)) {
                    x->i++;
                    qe_cpset t = {0};
                    add_class_escape(&t, (char)(e + 32), &ok);
                    qe_cpset_negate(&t);
                    for (int k = 0; k < t.n; k++) qe_cpset_add(set, t.r[k].lo, t.r[k].hi);
                    qe_cpset_free(&t);
                    continue;
                }
                if (e == 'b') { x->i++; lo = 8; }
                else if ((lo = rx_escape_char(x)) < 0) return rx_fail(x, "unsupported escape");
            } else if ((lo = rx_utf8(x)) < 0) return rx_fail(x, "invalid UTF-8");
            int64_t hi = lo;
            if (x->i + 1 < x->n && x->s[x->i] == '-' && x->s[x->i + 1] != ']') {
                x->i++;
                if (x->s[x->i] == '\\') {
                    x->i++;
                    if ((hi = rx_escape_char(x)) < 0) return rx_fail(x, "unsupported escape in a range");
                } else if ((hi = rx_utf8(x)) < 0) return rx_fail(x, "invalid UTF-8");
                if (hi < lo) return rx_fail(x, "character range out of order");
            }
            qe_cpset_add(set, (uint32_t)lo, (uint32_t)hi);
        }
        if (x->i >= x->n) return rx_fail(x, "missing ']'");
        x->i++;
        if (neg) qe_cpset_negate(set);
        else qe_cpset_norm(set);
        return QE_OK;
    }
    if (ch == '.') {
        x->i++;
        qe_cpset_add(set, '\n', '\n'); qe_cpset_add(set, '\r', '\r'); qe_cpset_add(set, 0x2028, 0x2029);
        qe_cpset_negate(set);
        return QE_OK;
    }
    if (ch == '\\') {
        x->i++;
        if (x->i >= x->n) return rx_fail(x, "pattern ends after '\\'");
        char e = x->s[x->i];
        bool ok = true;
        if (strchr("dws", e)) { x->i++; add_class_escape(set, e, &ok); qe_cpset_norm(set); return QE_OK; }
        if (strchr("DWS", e)) { x->i++; add_class_escape(set, (char)(e + 32), &ok); qe_cpset_negate(set); return QE_OK; }
        if (e == 'b' || e == 'B') return rx_fail(x, "word boundaries (\\b) are not supported");
        if (e >= '1' && e <= '9') return rx_fail(x, "backreferences are not supported");
        int64_t cp = rx_escape_char(x);
        if (cp < 0) return rx_fail(x, "unsupported escape");
        qe_cpset_add(set, (uint32_t)cp, (uint32_t)cp);
        qe_cpset_norm(set);
        return QE_OK;
    }
    if (ch == '^' || ch == '$') return rx_fail(x, "'^' and '$' are supported only at the start and the end");
    if (ch == '*' || ch == '+' || ch == '?' || ch == '{') return rx_fail(x, "a quantifier with nothing to repeat");
    int64_t cp = rx_utf8(x);
    if (cp < 0) return rx_fail(x, "invalid UTF-8");
    qe_cpset_add(set, (uint32_t)cp, (uint32_t)cp);
    qe_cpset_norm(set);
    return QE_OK;
}

static bool rx_number(rx *x, int *v) {
    if (x->i >= x->n || x->s[x->i] < '0' || x->s[x->i] > '9') return false;
    long n = 0;
    while (x->i < x->n && x->s[x->i] >= '0' && x->s[x->i] <= '9') { n = n * 10 + (x->s[x->i++] - '0'); if (n > 100000) n = 100000; }
    *v = (int)n;
    return true;
}

static int rx_sequence(rx *x, int alt) {
    while (x->i < x->n && x->s[x->i] != '|' && x->s[x->i] != ')') {
        qe_cpset set = {0};
        int group;
        if (rx_atom(x, &set, &group)) { qe_cpset_free(&set); return x->c->rc; }
        int unit = group >= 0 ? group : json_class_rule(x->c, &set);
        if (group < 0 && set.n == 0) qe_gb_set(x->c->b, qe_gb_alt(x->c->b, unit), &(qe_byteset){{0}}); /* [^\s\S] */
        qe_cpset_free(&set);
        int min = -1, max = -1;
        if (x->i < x->n) {
            char q = x->s[x->i];
            if (q == '*') { min = 0; x->i++; }
            else if (q == '+') { min = 1; x->i++; }
            else if (q == '?') { min = 0; max = 1; x->i++; }
            else if (q == '{') {
                x->i++;
                if (!rx_number(x, &min)) return rx_fail(x, "a '{' that is not a quantifier");
                max = min;
                if (x->i < x->n && x->s[x->i] == ',') { x->i++; max = -1; rx_number(x, &max); }
                if (x->i >= x->n || x->s[x->i] != '}') return rx_fail(x, "unterminated {n,m}");
                x->i++;
                if (max >= 0 && max < min) return err_at(x->c, QE_EINVAL, "pattern: {n,m} with m < n");
            }
            if (min >= 0 && x->i < x->n && x->s[x->i] == '?') x->i++; /* lazy: the same language */
        }
        if (min >= 0) {
            int rep;
            int rc = qe_gb_repeat(x->c->b, unit, min, max, &rep, x->c->err);
            if (rc) { x->c->rc = rc; return err_at(x->c, rc, "pattern: %s", "repetition count too large"); }
            unit = rep;
        }
        qe_gb_ref(x->c->b, alt, unit);
    }
    return QE_OK;
}

static int rx_alternation(rx *x, int rule) {
    for (;;) {
        if (rx_sequence(x, qe_gb_alt(x->c->b, rule))) return x->c->rc;
        if (x->i >= x->n || x->s[x->i] != '|') return QE_OK;
        x->i++;
    }
}

/* A JSON string whose content matches the pattern (search semantics unless anchored). */
static int string_pattern(jsc *c, const char *pat, size_t n) {
    bool a0 = n > 0 && pat[0] == '^', a1 = false;
    if (n > 0 && pat[n - 1] == '$') {
        size_t bs = 0;
        for (size_t k = n - 1; k > 0 && pat[k - 1] == '\\'; k--) bs++;
        a1 = bs % 2 == 0;
    }
    /* a top-level | with anchors would change meaning once the anchors are taken off */
    int depth = 0;
    bool top_bar = false, in_class = false;
    for (size_t k = 0; k < n; k++) {
        if (pat[k] == '\\') { k++; continue; }
        if (in_class) { if (pat[k] == ']') in_class = false; continue; }
        if (pat[k] == '[') in_class = true;
        else if (pat[k] == '(') depth++;
        else if (pat[k] == ')') depth--;
        else if (pat[k] == '|' && depth == 0) top_bar = true;
    }
    if (top_bar && (a0 || a1)) return err_at(c, QE_EUNSUPPORTED, "pattern: a top-level '|' with '^' or '$': group the alternatives");
    rx x = {.s = pat + a0, .n = n - a0 - a1, .c = c};
    int body = qe_gb_rule(c->b, NULL);
    if (rx_alternation(&x, body)) return 0;
    if (x.i < x.n) { rx_fail(&x, "unbalanced ')'"); return 0; }
    int any = -1;
    if (!a0 || !a1) { /* anything around an unanchored match */
        qe_cpset all = {0};
        qe_cpset_add(&all, 0, 0x10FFFF);
        qe_cpset_norm(&all);
        int ch = json_class_rule(c, &all);
        qe_cpset_free(&all);
        qe_gb_repeat(c->b, ch, 0, -1, &any, c->err);
    }
    int r = qe_gb_rule(c->b, NULL);
    int a = qe_gb_alt(c->b, r);
    qe_gb_byte(c->b, a, '"');
    if (!a0) qe_gb_ref(c->b, a, any);
    qe_gb_ref(c->b, a, body);
    if (!a1) qe_gb_ref(c->b, a, any);
    qe_gb_byte(c->b, a, '"');
    return r;
}

/* ---- formats ------------------------------------------------------------------------------------------------------ */

/* A rule from a tiny GBNF-like list of alternatives of digit sets: each alternative a string where a digit is
 * itself, '#' is [0-9], and "x-y" pairs in brackets are ranges, e.g. "0[1-9]" — enough for dates and times. */
static void dig_alt(jsc *c, int rule, const char *spec) {
    int a = qe_gb_alt(c->b, rule);
    for (const char *p = spec; *p; p++) {
        if (*p == '#') { qe_byteset d = byte_range('0', '9'); qe_gb_set(c->b, a, &d); }
        else if (*p == '[') { qe_byteset d = byte_range(p[1], p[3]); qe_gb_set(c->b, a, &d); p += 4; }
        else qe_gb_byte(c->b, a, (uint8_t)*p);
    }
}

static int fmt_date(jsc *c) {
    int md = qe_gb_rule(c->b, NULL);
    /* days per month; February stops at 28 (29 would need the year: leap years are left out) */
    static const char *m31[] = {"01", "03", "05", "07", "08", "10", "12"}, *m30[] = {"04", "06", "09", "11"};
    for (int i = 0; i < 7; i++) {
        char s[32];
        snprintf(s, sizeof s, "%s-0[1-9]", m31[i]); dig_alt(c, md, s);
        snprintf(s, sizeof s, "%s-[1-2]#", m31[i]); dig_alt(c, md, s);
        snprintf(s, sizeof s, "%s-3[0-1]", m31[i]); dig_alt(c, md, s);
    }
    for (int i = 0; i < 4; i++) {
        char s[32];
        snprintf(s, sizeof s, "%s-0[1-9]", m30[i]); dig_alt(c, md, s);
        snprintf(s, sizeof s, "%s-[1-2]#", m30[i]); dig_alt(c, md, s);
        snprintf(s, sizeof s, "%s-30", m30[i]); dig_alt(c, md, s);
    }
    dig_alt(c, md, "02-0[1-9]"); dig_alt(c, md, "02-1#"); dig_alt(c, md, "02-2[0-8]");
    int r = qe_gb_rule(c->b, NULL);
    int year = qe_gb_rule(c->b, NULL);
    dig_alt(c, year, "####");
    int a = qe_gb_alt(c->b, r);
    qe_gb_ref(c->b, a, year);
    qe_gb_byte(c->b, a, '-');
    qe_gb_ref(c->b, a, md);
    return r;
}

static int fmt_time(jsc *c) {
    int hh = qe_gb_rule(c->b, NULL);
    dig_alt(c, hh, "[0-1]#"); dig_alt(c, hh, "2[0-3]");
    int mm = qe_gb_rule(c->b, NULL);
    dig_alt(c, mm, "[0-5]#");
    int frac = qe_gb_rule(c->b, NULL);
    qe_byteset d = byte_range('0', '9');
    int a = qe_gb_alt(c->b, frac);
    qe_gb_byte(c->b, a, '.');
    qe_gb_ref(c->b, a, set_repeat(c, &d, 1, 6));
    qe_gb_alt(c->b, frac);
    int tz = qe_gb_rule(c->b, NULL);
    qe_gb_byte(c->b, qe_gb_alt(c->b, tz), 'Z');
    a = qe_gb_alt(c->b, tz);
    qe_byteset pm = {{0}};
    pm.b['+' >> 3] |= (uint8_t)(1u << ('+' & 7)); pm.b['-' >> 3] |= (uint8_t)(1u << ('-' & 7));
    qe_gb_set(c->b, a, &pm);
    qe_gb_ref(c->b, a, hh);
    qe_gb_byte(c->b, a, ':');
    qe_gb_ref(c->b, a, mm);
    int r = qe_gb_rule(c->b, NULL);
    a = qe_gb_alt(c->b, r);
    qe_gb_ref(c->b, a, hh); qe_gb_byte(c->b, a, ':'); qe_gb_ref(c->b, a, mm); qe_gb_byte(c->b, a, ':'); qe_gb_ref(c->b, a, mm);
    qe_gb_ref(c->b, a, frac);
    qe_gb_ref(c->b, a, tz);
    return r;
}

static int string_format(jsc *c, const char *f) {
    int inner;
    if (!strcmp(f, "date")) inner = fmt_date(c);
    else if (!strcmp(f, "time")) inner = fmt_time(c);
    else if (!strcmp(f, "date-time")) {
        inner = qe_gb_rule(c->b, NULL);
        int a = qe_gb_alt(c->b, inner);
        qe_gb_ref(c->b, a, fmt_date(c));
        qe_gb_byte(c->b, a, 'T');
        qe_gb_ref(c->b, a, fmt_time(c));
    } else if (!strcmp(f, "uuid")) {
        qe_byteset hex = byte_range('0', '9');
        for (int x = 'a'; x <= 'f'; x++) hex.b[x >> 3] |= (uint8_t)(1u << (x & 7));
        inner = qe_gb_rule(c->b, NULL);
        int a = qe_gb_alt(c->b, inner);
        static const int groups[] = {8, 4, 4, 4, 12};
        for (int g = 0; g < 5; g++) {
            if (g) qe_gb_byte(c->b, a, '-');
            for (int k = 0; k < groups[g]; k++) qe_gb_set(c->b, a, &hex);
        }
    } else return err_at(c, QE_EUNSUPPORTED, "format '%s' is not supported (date, time, date-time, uuid are)", f);
    int r = qe_gb_rule(c->b, NULL);
    int a = qe_gb_alt(c->b, r);
    qe_gb_byte(c->b, a, '"');
    qe_gb_ref(c->b, a, inner);
    qe_gb_byte(c->b, a, '"');
    return r;
}

/* ---- schema nodes ------------------------------------------------------------------------------------------------ */

static const char *const ANNOTATIONS[] = {"title", "description", "default", "examples", "$comment", "$schema", "$id",
                                          "deprecated", "readOnly", "writeOnly", "$defs", "definitions", NULL};
static const char *const KEYWORDS[] = {"type", "enum", "const", "anyOf", "oneOf", "$ref", "nullable", "properties",
                                       "required", "additionalProperties", "items", "minItems", "maxItems", "minLength",
                                       "maxLength", "pattern", "format", "minimum", "maximum", "exclusiveMinimum",
                                       "exclusiveMaximum", NULL};

static bool in_list(const char *const *l, const char *k) {
    for (; *l; l++) if (!strcmp(*l, k)) return true;
    return false;
}

static int gen(jsc *c, json_t *s);

static bool get_count(jsc *c, json_t *s, const char *k, int *out) {
    json_t *v = json_object_get(s, k);
    if (!v) return true;
    if (!json_is_integer(v) || json_integer_value(v) < 0) { err_at(c, QE_EINVAL, "'%s' must be a non-negative integer", k); return false; }
    if (json_integer_value(v) > QE_GRAMMAR_MAX_REPEAT) {
        err_at(c, QE_EUNSUPPORTED, "'%s' %lld is above the supported %d", k, (long long)json_integer_value(v), QE_GRAMMAR_MAX_REPEAT);
        return false;
    }
    *out = (int)json_integer_value(v);
    return true;
}

static int literal_json(jsc *c, json_t *v) {
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) { c->rc = qe_errf(c->err, QE_ENOMEM, "out of memory"); return 0; }
    int r = lit_rule(c, s);
    free(s);
    return r;
}

static bool type_matches(const char *t, json_t *v) {
    if (!strcmp(t, "null")) return json_is_null(v);
    if (!strcmp(t, "boolean")) return json_is_boolean(v);
    if (!strcmp(t, "integer")) return json_is_integer(v) || (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v));
    if (!strcmp(t, "number")) return json_is_number(v);
    if (!strcmp(t, "string")) return json_is_string(v);
    if (!strcmp(t, "array")) return json_is_array(v);
    if (!strcmp(t, "object")) return json_is_object(v);
    return false;
}

static bool bound(jsc *c, json_t *s, const char *k, double *out) {
    json_t *v = json_object_get(s, k);
    if (!v) return false;
    if (!json_is_number(v)) { err_at(c, QE_EINVAL, "'%s' must be a number", k); return false; }
    *out = json_number_value(v);
    return true;
}

static int gen_number(jsc *c, json_t *s, bool integer) {
    double lo = 0, hi = 0, xlo = 0, xhi = 0;
    bool has_lo = bound(c, s, "minimum", &lo), has_hi = bound(c, s, "maximum", &hi);
    bool has_xlo = bound(c, s, "exclusiveMinimum", &xlo), has_xhi = bound(c, s, "exclusiveMaximum", &xhi);
    if (c->rc) return 0;
    if (!has_lo && !has_hi && !has_xlo && !has_xhi) return integer ? integer_any(c) : number_any(c);
    /* the tightest bounds; for integers everything becomes an inclusive integer bound */
    for (double *b = (double[]){lo, hi, xlo, xhi}, *e = b + 4; b < e; b++)
        if (fabs(*b) > (double)BIG) return err_at(c, QE_EUNSUPPORTED, "bounds beyond ±1e15 are not supported");
    if (integer) {
        int64_t L = INT64_MIN, H = INT64_MAX;
        if (has_lo) L = (int64_t)ceil(lo);
        if (has_xlo && (int64_t)floor(xlo) + 1 > L) L = (int64_t)floor(xlo) + 1;
        if (has_hi) H = (int64_t)floor(hi);
        if (has_xhi && (int64_t)ceil(xhi) - 1 < H) H = (int64_t)ceil(xhi) - 1;
        bool hl = has_lo || has_xlo, hh = has_hi || has_xhi;
        if (hl && hh && L > H) return err_at(c, QE_EINVAL, "the schema can never be satisfied: no integer lies between the bounds");
        return int_range(c, hl, L, hh, H);
    }
    /* numbers: integer-valued bounds only; x in [L, H] with strict ends where exclusive */
    for (double *b = (double[]){lo, hi, xlo, xhi}, *e = b + 4; b < e; b++)
        if (floor(*b) != *b) return err_at(c, QE_EUNSUPPORTED, "a fractional minimum / maximum for type number is not supported");
    bool hl = has_lo || has_xlo, hh = has_hi || has_xhi;
    int64_t L = has_lo ? (int64_t)lo : (int64_t)xlo, H = has_hi ? (int64_t)hi : (int64_t)xhi;
    bool xl = !has_lo && has_xlo, xh = !has_hi && has_xhi;
    if (has_lo && has_xlo && xlo >= lo) { L = (int64_t)xlo; xl = true; }
    if (has_hi && has_xhi && xhi <= hi) { H = (int64_t)xhi; xh = true; }
    if (hl && hh && (L > H || (L == H && (xl || xh))))
        return err_at(c, QE_EINVAL, "the schema can never be satisfied: the bounds leave no number");
    /* integers in range, plus I.F (F nonzero: strictly inside (I, I+1)) for I with [I, I+1] inside the range, and
     * -I.F likewise below zero */
    int r = qe_gb_rule(c->b, NULL);
    int64_t il = hl ? (xl ? L + 1 : L) : 0, ih = hh ? (xh ? H - 1 : H) : 0;
    if (!hl || !hh || il <= ih) qe_gb_ref(c->b, qe_gb_alt(c->b, r), int_range(c, hl, il, hh, ih));
    int frac = fraction(c, true);
    /* non-negative I in [max(L,0), H-1] */
    if (!hh || H - 1 >= (hl && L > 0 ? L : 0)) {
        int a = qe_gb_alt(c->b, r);
        qe_gb_ref(c->b, a, uint_range(c, hl && L > 0 ? L : 0, hh ? H - 1 : -1));
        qe_gb_ref(c->b, a, frac);
    }
    /* negative: -I.F in (-(I+1), -I): needs -(I+1) >= L and -I <= H, I >= 0 */
    int64_t nlo = hh && H < 0 ? -H : 0, nhi = hl ? -L - 1 : -1;
    if (!hl || nhi >= nlo) {
        int a = qe_gb_alt(c->b, r);
        qe_gb_byte(c->b, a, '-');
        qe_gb_ref(c->b, a, uint_range(c, nlo, hl ? nhi : -1));
        qe_gb_ref(c->b, a, frac);
    }
    return r;
}

static int gen_string(jsc *c, json_t *s) {
    json_t *pat = json_object_get(s, "pattern"), *fmt = json_object_get(s, "format");
    int min = 0, max = -1;
    if (!get_count(c, s, "minLength", &min) || !get_count(c, s, "maxLength", &max)) return 0;
    bool lens = json_object_get(s, "minLength") || json_object_get(s, "maxLength");
    if ((pat != NULL) + (fmt != NULL) + lens > 1)
        return err_at(c, QE_EUNSUPPORTED, "pattern, format and minLength/maxLength cannot be combined");
    if (pat) {
        if (!json_is_string(pat)) return err_at(c, QE_EINVAL, "'pattern' must be a string");
        return string_pattern(c, json_string_value(pat), json_string_length(pat));
    }
    if (fmt) {
        if (!json_is_string(fmt)) return err_at(c, QE_EINVAL, "'format' must be a string");
        return string_format(c, json_string_value(fmt));
    }
    if (max >= 0 && min > max) return err_at(c, QE_EINVAL, "the schema can never be satisfied: minLength > maxLength");
    return string_len(c, min, max);
}

static int gen_array(jsc *c, json_t *s) {
    int min = 0, max = -1;
    if (!get_count(c, s, "minItems", &min) || !get_count(c, s, "maxItems", &max)) return 0;
    if (max >= 0 && min > max) return err_at(c, QE_EINVAL, "the schema can never be satisfied: minItems > maxItems");
    json_t *items = json_object_get(s, "items");
    int v;
    if (!items) v = value_any(c);
    else {
        if (json_is_array(items)) return err_at(c, QE_EUNSUPPORTED, "'items' as an array (tuples) is not supported");
        size_t old = path_push(c, "items", NULL);
        v = gen(c, items);
        path_pop(c, old);
        if (c->rc) return 0;
    }
    return array_of(c, v, min, max);
}

static int gen_object(jsc *c, json_t *s) {
    json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    json_t *addl = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props)) return err_at(c, QE_EINVAL, "'properties' must be an object");
    if (req && !json_is_array(req)) return err_at(c, QE_EINVAL, "'required' must be an array");
    size_t n = props ? json_object_size(props) : 0;
    if (addl && !json_is_boolean(addl) && !json_is_object(addl)) return err_at(c, QE_EINVAL, "'additionalProperties' must be a boolean or a schema");
    for (size_t k = 0; req && k < json_array_size(req); k++) {
        json_t *r = json_array_get(req, k);
        if (!json_is_string(r)) return err_at(c, QE_EINVAL, "'required' must list strings");
        if (!props || !json_object_get(props, json_string_value(r)))
            return err_at(c, QE_EINVAL, "required property '%s' is not in 'properties'", json_string_value(r));
    }
    if (n == 0) {
        if (json_is_false(addl)) return lit_rule(c, "{}");
        int v;
        if (json_is_object(addl)) {
            size_t old = path_push(c, "additionalProperties", NULL);
            v = gen(c, addl);
            path_pop(c, old);
            if (c->rc) return 0;
        } else v = value_any(c);
        return object_map(c, v);
    }
    if (addl && !json_is_false(addl))
        return err_at(c, QE_EUNSUPPORTED, "'additionalProperties' other than false together with 'properties'");
    /* first_i: the properties from i on, the first written without a comma; rest_i: each with a leading comma.
     * An optional property may be skipped; the declared order is kept. */
    int *kv = malloc(sizeof(int) * n), *first = malloc(sizeof(int) * (n + 1)), *rest = malloc(sizeof(int) * (n + 1));
    bool *opt = malloc(sizeof(bool) * n);
    if (!kv || !first || !rest || !opt) { free(kv); free(first); free(rest); free(opt); c->rc = qe_errf(c->err, QE_ENOMEM, "out of memory"); return 0; }
    size_t i = 0;
    const char *key;
    json_t *ps;
    json_object_foreach(props, key, ps) {
        opt[i] = true;
        for (size_t k = 0; req && k < json_array_size(req); k++)
            if (!strcmp(json_string_value(json_array_get(req, k)), key)) opt[i] = false;
        size_t old = path_push(c, "properties", key);
        int v = gen(c, ps);
        path_pop(c, old);
        if (c->rc) break;
        json_t *ks = json_string(key);
        char *kj = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
        json_decref(ks);
        if (!kj) { c->rc = qe_errf(c->err, QE_ENOMEM, "out of memory"); break; }
        kv[i] = qe_gb_rule(c->b, NULL);
        int a = qe_gb_alt(c->b, kv[i]);
        qe_gb_lit(c->b, a, kj, strlen(kj));
        qe_gb_byte(c->b, a, ':');
        qe_gb_ref(c->b, a, ws(c));
        qe_gb_ref(c->b, a, v);
        free(kj);
        i++;
    }
    int r = 0;
    if (!c->rc) {
        for (size_t k = 0; k <= n; k++) { first[k] = qe_gb_rule(c->b, NULL); rest[k] = qe_gb_rule(c->b, NULL); }
        qe_gb_byte(c->b, qe_gb_alt(c->b, first[n]), '}');
        qe_gb_byte(c->b, qe_gb_alt(c->b, rest[n]), '}');
        for (size_t k = n; k-- > 0;) {
            int a = qe_gb_alt(c->b, first[k]);
            qe_gb_ref(c->b, a, kv[k]);
            qe_gb_ref(c->b, a, rest[k + 1]);
            if (opt[k]) qe_gb_ref(c->b, qe_gb_alt(c->b, first[k]), first[k + 1]);
            a = qe_gb_alt(c->b, rest[k]);
            qe_gb_byte(c->b, a, ',');
            qe_gb_ref(c->b, a, ws(c));
            qe_gb_ref(c->b, a, kv[k]);
            qe_gb_ref(c->b, a, rest[k + 1]);
            if (opt[k]) qe_gb_ref(c->b, qe_gb_alt(c->b, rest[k]), rest[k + 1]);
        }
        r = qe_gb_rule(c->b, NULL);
        int a = qe_gb_alt(c->b, r);
        qe_gb_byte(c->b, a, '{');
        qe_gb_ref(c->b, a, first[0]);
    }
    free(kv); free(first); free(rest); free(opt);
    return r;
}

static int gen_type(jsc *c, json_t *s, const char *t) {
    if (!strcmp(t, "null")) return lit_rule(c, "null");
    if (!strcmp(t, "boolean")) {
        int r = qe_gb_rule(c->b, NULL);
        qe_gb_lit(c->b, qe_gb_alt(c->b, r), "true", 4);
        qe_gb_lit(c->b, qe_gb_alt(c->b, r), "false", 5);
        return r;
    }
    if (!strcmp(t, "integer")) return gen_number(c, s, true);
    if (!strcmp(t, "number")) return gen_number(c, s, false);
    if (!strcmp(t, "string")) return gen_string(c, s);
    if (!strcmp(t, "array")) return gen_array(c, s);
    if (!strcmp(t, "object")) return gen_object(c, s);
    return err_at(c, QE_EINVAL, "unknown type '%s'", t);
}

/* Resolves a local $ref ("#" or "#/a/b" with ~0 ~1 escapes). */
static json_t *resolve_ref(jsc *c, const char *ref) {
    if (ref[0] != '#') { err_at(c, QE_EUNSUPPORTED, "$ref '%s' is not local (only \"#...\" references are supported)", ref); return NULL; }
    json_t *node = c->root;
    const char *p = ref + 1;
    while (*p == '/') {
        p++;
        char tok[256];
        size_t n = 0;
        while (*p && *p != '/' && n < sizeof tok - 1) {
            if (p[0] == '~' && p[1] == '0') { tok[n++] = '~'; p += 2; }
            else if (p[0] == '~' && p[1] == '1') { tok[n++] = '/'; p += 2; }
            else tok[n++] = *p++;
        }
        tok[n] = 0;
        if (json_is_object(node)) node = json_object_get(node, tok);
        else if (json_is_array(node)) { char *e; long k = strtol(tok, &e, 10); node = *e ? NULL : json_array_get(node, (size_t)k); }
        else node = NULL;
        if (!node) { err_at(c, QE_EINVAL, "$ref '%s' points to nothing", ref); return NULL; }
    }
    if (*p) { err_at(c, QE_EINVAL, "$ref '%s' is not a JSON pointer", ref); return NULL; }
    return node;
}

static int gen(jsc *c, json_t *s) {
    if (c->rc) return 0;
    if (json_is_true(s)) return value_any(c);
    if (json_is_false(s)) { /* matches nothing: an alternative that can never complete */
        int r = qe_gb_rule(c->b, NULL);
        qe_gb_set(c->b, qe_gb_alt(c->b, r), &(qe_byteset){{0}});
        return r;
    }
    if (!json_is_object(s)) return err_at(c, QE_EINVAL, "a schema must be an object or a boolean");
    if (++c->depth > MAX_DEPTH) return err_at(c, QE_EUNSUPPORTED, "the schema is nested more than %d levels", MAX_DEPTH);
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v)
        if (!in_list(KEYWORDS, k) && !in_list(ANNOTATIONS, k)) { c->depth--; return err_at(c, QE_EUNSUPPORTED, "unsupported keyword '%s'", k); }
    int r = 0;
    json_t *ref = json_object_get(s, "$ref"), *any = json_object_get(s, "anyOf"), *one = json_object_get(s, "oneOf");
    json_t *en = json_object_get(s, "enum"), *cn = json_object_get(s, "const"), *ty = json_object_get(s, "type");
    if (ref || any || one) {
        const char *kw = ref ? "$ref" : any ? "anyOf" : "oneOf";
        json_object_foreach(s, k, v)
            if (!in_list(ANNOTATIONS, k) && strcmp(k, kw)) { c->depth--; return err_at(c, QE_EUNSUPPORTED, "'%s' next to '%s' is not supported", k, kw); }
    }
    if (ref) {
        if (!json_is_string(ref)) { c->depth--; return err_at(c, QE_EINVAL, "'$ref' must be a string"); }
        json_t *target = resolve_ref(c, json_string_value(ref));
        if (!target) { c->depth--; return 0; }
        for (size_t i = 0; i < c->n_refs; i++) if (c->refs[i].node == target) { c->depth--; return c->refs[i].rule; }
        if (c->n_refs == c->cap_refs) {
            size_t cap = c->cap_refs ? c->cap_refs * 2 : 16;
            void *p = realloc(c->refs, cap * sizeof *c->refs);
            if (!p) { c->depth--; c->rc = qe_errf(c->err, QE_ENOMEM, "out of memory"); return 0; }
            c->refs = p;
            c->cap_refs = cap;
        }
        r = qe_gb_rule(c->b, json_string_value(ref));
        c->refs[c->n_refs].node = target;
        c->refs[c->n_refs++].rule = r;
        size_t old = c->path_n;
        char saved[sizeof c->path];
        memcpy(saved, c->path, sizeof saved);
        c->path_n = (size_t)snprintf(c->path, sizeof c->path, "%s", json_string_value(ref) + 1);
        if (c->path_n >= sizeof c->path) c->path_n = sizeof c->path - 1;
        int t = gen(c, target);
        memcpy(c->path, saved, sizeof saved);
        c->path_n = old;
        qe_gb_ref(c->b, qe_gb_alt(c->b, r), t);
    } else if (any || one) {
        json_t *list = any ? any : one;
        if (!json_is_array(list) || json_array_size(list) == 0) { c->depth--; return err_at(c, QE_EINVAL, "'%s' must be a non-empty array", any ? "anyOf" : "oneOf"); }
        r = qe_gb_rule(c->b, NULL);
        for (size_t i = 0; i < json_array_size(list) && !c->rc; i++) {
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            size_t old = path_push(c, any ? "anyOf" : "oneOf", idx);
            int t = gen(c, json_array_get(list, i));
            path_pop(c, old);
            qe_gb_ref(c->b, qe_gb_alt(c->b, r), t);
        }
    } else {
        /* the types: named, or inferred from the keywords present, or any value */
        const char *types[8];
        int nt = 0;
        if (ty) {
            if (json_is_string(ty)) types[nt++] = json_string_value(ty);
            else if (json_is_array(ty)) {
                for (size_t i = 0; i < json_array_size(ty) && nt < 7; i++) {
                    if (!json_is_string(json_array_get(ty, i))) { c->depth--; return err_at(c, QE_EINVAL, "'type' must list strings"); }
                    types[nt++] = json_string_value(json_array_get(ty, i));
                }
            } else { c->depth--; return err_at(c, QE_EINVAL, "'type' must be a string or an array"); }
        } else if (!en && !cn) {
            if (json_object_get(s, "properties") || json_object_get(s, "required") || json_object_get(s, "additionalProperties")) types[nt++] = "object";
            else if (json_object_get(s, "items") || json_object_get(s, "minItems") || json_object_get(s, "maxItems")) types[nt++] = "array";
            else if (json_object_get(s, "minLength") || json_object_get(s, "maxLength") || json_object_get(s, "pattern") || json_object_get(s, "format")) types[nt++] = "string";
            else if (json_object_get(s, "minimum") || json_object_get(s, "maximum") || json_object_get(s, "exclusiveMinimum") || json_object_get(s, "exclusiveMaximum")) types[nt++] = "number";
        }
        json_t *nullable = json_object_get(s, "nullable");
        if (json_is_true(nullable) && nt > 0 && nt < 7) types[nt++] = "null";
        for (int i = 0; i < nt; i++) {
            static const char *known[] = {"null", "boolean", "integer", "number", "string", "array", "object", NULL};
            if (!in_list(known, types[i])) { c->depth--; return err_at(c, QE_EINVAL, "unknown type '%s'", types[i]); }
        }
        r = qe_gb_rule(c->b, NULL);
        if (en || cn) {
            if (en && !json_is_array(en)) { c->depth--; return err_at(c, QE_EINVAL, "'enum' must be an array"); }
            size_t ne = en ? json_array_size(en) : 1, kept = 0;
            for (size_t i = 0; i < ne; i++) {
                json_t *val = en ? json_array_get(en, i) : cn;
                bool ok = nt == 0;
                for (int t = 0; t < nt; t++) ok = ok || type_matches(types[t], val);
                if (cn && en) ok = ok && json_equal(val, cn);
                if (!ok) continue;
                qe_gb_ref(c->b, qe_gb_alt(c->b, r), literal_json(c, val));
                kept++;
            }
            if (kept == 0) { c->depth--; return err_at(c, QE_EINVAL, "the schema can never be satisfied: no value of 'enum'/'const' fits"); }
        } else if (nt == 0) {
            qe_gb_ref(c->b, qe_gb_alt(c->b, r), value_any(c));
        } else {
            for (int i = 0; i < nt && !c->rc; i++) {
                int t = gen_type(c, s, types[i]);
                if (!c->rc) qe_gb_ref(c->b, qe_gb_alt(c->b, r), t);
            }
        }
    }
    c->depth--;
    return c->rc ? 0 : r;
}

static void jsc_init(jsc *c, char *err) {
    memset(c, 0, sizeof *c);
    c->err = err;
    c->ws = c->str_body = c->string = c->esc = c->jchar = c->digit_any = c->integer = c->number = c->value = -1;
    c->object_any = c->array_any = -1;
}

static int finish(jsc *c, int root, qe_grammar **out) {
    int rc = c->rc;
    if (!rc) {
        rc = qe_gb_finish(c->b, root, out, c->err);
        if (rc && strstr(c->err ? c->err : "", "never be satisfied")) {
            rc = qe_errf(c->err, QE_EINVAL, "JSON Schema: the schema can never be satisfied (a required part of it matches no value)");
        } else if (rc && strstr(c->err ? c->err : "", "left-recursive")) {
            rc = qe_errf(c->err, QE_EINVAL, "JSON Schema: the schema can never be satisfied ($ref cycle that consumes nothing)");
        }
    }
    qe_gb_free(c->b);
    free(c->refs);
    return rc;
}

int qe_grammar_from_json_schema(const char *json, size_t n, qe_grammar **out, char *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, n, JSON_DECODE_ANY, &je);
    if (!root) return qe_errf(err, QE_EINVAL, "JSON Schema: not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
    jsc c;
    jsc_init(&c, err);
    c.root = root;
    c.b = qe_gb_new();
    int r = 0;
    if (!c.b) c.rc = qe_errf(err, QE_ENOMEM, "out of memory");
    else {
        /* the root through its own rule, so a "$ref": "#" recursion has a rule to call */
        r = qe_gb_rule(c.b, "root");
        c.refs = malloc(sizeof *c.refs * 16);
        if (!c.refs) c.rc = qe_errf(err, QE_ENOMEM, "out of memory");
        else {
            c.cap_refs = 16;
            c.refs[c.n_refs].node = root;
            c.refs[c.n_refs++].rule = r;
            int t = gen(&c, root);
            if (!c.rc) qe_gb_ref(c.b, qe_gb_alt(c.b, r), t);
        }
    }
    int rc = finish(&c, r, out);
    json_decref(root);
    return rc;
}

int qe_grammar_json_object(qe_grammar **out, char *err) {
    jsc c;
    jsc_init(&c, err);
    c.b = qe_gb_new();
    if (!c.b) return qe_errf(err, QE_ENOMEM, "out of memory");
    int r = qe_gb_rule(c.b, "root");
    value_any(&c);
    qe_gb_ref(c.b, qe_gb_alt(c.b, r), c.object_any);
    return finish(&c, r, out);
}
