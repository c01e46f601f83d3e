/* gbnf.c — a recursive-descent parser for GBNF over (pointer, length), building a grammar.h grammar (see gbnf.h).
 * Every failure names its line and column; nothing here trusts the input (nesting and sizes are bounded). */
#include "gbnf.h"

#include <stdlib.h>
#include <string.h>

#define MAX_NEST 128

typedef struct {
    const char *s;
    size_t n, i;
    qe_gbuild *b;
    unsigned char *defined;   /* by rule id */
    size_t cap_defined;
    int depth;
    char *err;
    int rc;
} parser;

/* A parsed element before it is appended: literal bytes, one byte set, or a rule reference. */
typedef struct {
    enum { U_LIT, U_SET, U_REF } kind;
    qe_buf lit;
    qe_byteset set;
    int rule;
} unit;

static int fail(parser *p, const char *fmt, const char *arg) {
    if (p->rc) return p->rc;
    int line = 1, col = 1;
    for (size_t k = 0; k < p->i && k < p->n; k++) {
        if (p->s[k] == '\n') { line++; col = 1; }
        else col++;
    }
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
    p->rc = qe_errf(p->err, QE_EINVAL, "grammar: line %d, column %d: %s", line, col, msg);
    return p->rc;
}

static int peek(parser *p) { return p->i < p->n ? (unsigned char)p->s[p->i] : -1; }

static bool is_word(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Skips blanks and comments; newlines too when newline_ok. */
static void space(parser *p, bool newline_ok) {
    while (p->i < p->n) {
        char c = p->s[p->i];
        if (c == ' ' || c == '\t') p->i++;
        else if (c == '#') { while (p->i < p->n && p->s[p->i] != '\n') p->i++; }
        else if (newline_ok && (c == '\n' || c == '\r')) p->i++;
        else break;
    }
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One character of a literal or class: an escape or a UTF-8 sequence; its code point, or -1 after an error. */
static int64_t read_char(parser *p) {
    if (p->i >= p->n) { fail(p, "unexpected end of input", NULL); return -1; }
    unsigned char c = (unsigned char)p->s[p->i];
    if (c == '\\') {
        p->i++;
        if (p->i >= p->n) { fail(p, "unexpected end of input after \\", NULL); return -1; }
        char e = p->s[p->i++];
        int digits = 0;
        switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case '\\': case '"': case '[': case ']': case '-': case '^': case '/': return e;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default: p->i--; { char s[2] = {e, 0}; fail(p, "unknown escape \\%s", s); } return -1;
        }
        uint32_t v = 0;
        for (int k = 0; k < digits; k++) {
            int h = p->i < p->n ? hexval((unsigned char)p->s[p->i]) : -1;
            if (h < 0) { fail(p, "expected a hex digit in an escape", NULL); return -1; }
            v = v * 16 + (uint32_t)h;
            p->i++;
        }
        if (v > 0x10FFFF) { fail(p, "escape beyond U+10FFFF", NULL); return -1; }
        return v;
    }
    /* UTF-8, strictly */
    int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || p->i + (size_t)len > p->n) { fail(p, "invalid UTF-8", NULL); return -1; }
    uint32_t v = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (int k = 1; k < len; k++) {
        unsigned char d = (unsigned char)p->s[p->i + (size_t)k];
        if ((d & 0xC0) != 0x80) { fail(p, "invalid UTF-8", NULL); return -1; }
        v = v << 6 | (d & 0x3F);
    }
    static const uint32_t min_of_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_of_len[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) { fail(p, "invalid UTF-8", NULL); return -1; }
    p->i += (size_t)len;
    return v;
}

static void lit_put(qe_buf *b, uint32_t cp) {
    char o[4];
    int n;
    if (cp < 0x80) { o[0] = (char)cp; n = 1; }
    else if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
    else if (cp < 0x10000) { o[0] = (char)(0xE0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F)); n = 3; }
    else { o[0] = (char)(0xF0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 0x3F)); o[2] = (char)(0x80 | (cp >> 6 & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); n = 4; }
    qe_buf_append(b, o, (size_t)n);
}

static int named_rule(parser *p, const char *name, size_t n) {
    int r = qe_gb_find(p->b, name, n);
    if (r >= 0) return r;
    char buf[256];
    if (n >= sizeof buf) { fail(p, "rule name too long", NULL); return -1; }
    memcpy(buf, name, n);
    buf[n] = 0;
    r = qe_gb_rule(p->b, buf);
    if ((size_t)r >= p->cap_defined) {
        size_t cap = p->cap_defined ? p->cap_defined * 2 : 64;
        while (cap <= (size_t)r) cap *= 2;
        unsigned char *d = realloc(p->defined, cap);
        if (!d) { p->rc = qe_errf(p->err, QE_ENOMEM, "out of memory"); return -1; }
        memset(d + p->cap_defined, 0, cap - p->cap_defined);
        p->defined = d;
        p->cap_defined = cap;
    }
    return r;
}

/* A unit as a rule of its own (for repetition). */
static int unit_rule(parser *p, unit *u) {
    if (u->kind == U_REF) return u->rule;
    int r = qe_gb_rule(p->b, NULL);
    int a = qe_gb_alt(p->b, r);
    if (u->kind == U_LIT) qe_gb_lit(p->b, a, u->lit.p ? u->lit.p : "", u->lit.n);
    else qe_gb_set(p->b, a, &u->set);
    return r;
}

static void unit_emit(parser *p, int alt, unit *u) {
    if (u->kind == U_LIT) qe_gb_lit(p->b, alt, u->lit.p ? u->lit.p : "", u->lit.n);
    else if (u->kind == U_SET) qe_gb_set(p->b, alt, &u->set);
    else qe_gb_ref(p->b, alt, u->rule);
}

static int parse_alternates(parser *p, int rule, bool nested);

static int parse_class(parser *p, unit *u) {
    size_t open = p->i++; /* [ */
    bool neg = peek(p) == '^';
    if (neg) p->i++;
    qe_cpset set = {0};
    while (peek(p) != ']') {
        if (p->i >= p->n) { qe_cpset_free(&set); p->i = open; return fail(p, "unterminated character class", NULL); }
        size_t at = p->i;
        int64_t lo = read_char(p);
        if (lo < 0) { qe_cpset_free(&set); return p->rc; }
        int64_t hi = lo;
        if (peek(p) == '-' && p->i + 1 < p->n && p->s[p->i + 1] != ']') {
            p->i++;
            hi = read_char(p);
            if (hi < 0) { qe_cpset_free(&set); return p->rc; }
            if (hi < lo) { qe_cpset_free(&set); p->i = at; return fail(p, "character range is out of order", NULL); }
        }
        qe_cpset_add(&set, (uint32_t)lo, (uint32_t)hi);
    }
    p->i++; /* ] */
    if (neg) qe_cpset_negate(&set);
    else qe_cpset_norm(&set);
    bool ascii = true;
    for (int k = 0; k < set.n; k++) if (set.r[k].hi >= 0x80) ascii = false;
    if (ascii && set.n > 0) { /* one terminal: the cheap and common case */
        u->kind = U_SET;
        memset(&u->set, 0, sizeof u->set);
        for (int k = 0; k < set.n; k++)
            for (uint32_t c = set.r[k].lo; c <= set.r[k].hi; c++) u->set.b[c >> 3] |= (uint8_t)(1u << (c & 7));
    } else {
        u->kind = U_REF;
        u->rule = qe_gb_rule(p->b, NULL);
        qe_gb_class(p->b, u->rule, &set, -1);
        if (set.n == 0) qe_gb_set(p->b, qe_gb_alt(p->b, u->rule), &(qe_byteset){{0}}); /* matches nothing */
    }
    qe_cpset_free(&set);
    return QE_OK;
}

static int parse_primary(parser *p, unit *u) {
    int c = peek(p);
    memset(u, 0, sizeof *u);
    if (c == '"') {
        size_t open = p->i++;
        u->kind = U_LIT;
        while (peek(p) != '"') {
            if (p->i >= p->n || p->s[p->i] == '\n') { p->i = open; return fail(p, "unterminated string literal", NULL); }
            int64_t cp = read_char(p);
            if (cp < 0) return p->rc;
            lit_put(&u->lit, (uint32_t)cp);
        }
        p->i++;
        return QE_OK;
    }
    if (c == '[') return parse_class(p, u);
    if (c == '.') {
        p->i++;
        qe_cpset all = {0};
        qe_cpset_add(&all, 0, 0x10FFFF);
        qe_cpset_norm(&all);
        u->kind = U_REF;
        u->rule = qe_gb_rule(p->b, NULL);
        qe_gb_class(p->b, u->rule, &all, -1);
        qe_cpset_free(&all);
        return QE_OK;
    }
    if (c == '(') {
        if (++p->depth > MAX_NEST) return fail(p, "groups nested too deeply", NULL);
        p->i++;
        space(p, true);
        u->kind = U_REF;
        u->rule = qe_gb_rule(p->b, NULL);
        if (parse_alternates(p, u->rule, true)) return p->rc;
        if (peek(p) != ')') return fail(p, "expected ')'", NULL);
        p->i++;
        p->depth--;
        return QE_OK;
    }
    if (is_word(c)) {
        size_t st = p->i;
        while (is_word(peek(p))) p->i++;
        u->kind = U_REF;
        u->rule = named_rule(p, p->s + st, p->i - st);
        return u->rule < 0 ? p->rc : QE_OK;
    }
    if (c == '<' || c == '!') return fail(p, "token-level syntax (<[id]>, !) is not supported", NULL);
    if (c < 0) return fail(p, "unexpected end of input", NULL);
    char s[2] = {(char)c, 0};
    return fail(p, "unexpected character '%s'", s);
}

static int parse_int(parser *p, int *out) {
    if (!(peek(p) >= '0' && peek(p) <= '9')) return fail(p, "expected a number", NULL);
    long v = 0;
    while (peek(p) >= '0' && peek(p) <= '9') {
        v = v * 10 + (p->s[p->i++] - '0');
        if (v > 1000000) return fail(p, "repetition count too large", NULL);
    }
    *out = (int)v;
    return QE_OK;
}

/* A sequence of (element, postfix operator) up to |, ), or a newline outside parentheses. */
static int parse_sequence(parser *p, int alt, bool nested) {
    for (;;) {
        int c = peek(p);
        if (c < 0 || c == '|' || c == ')' || c == '\n' || c == '\r') return QE_OK;
        unit u;
        if (parse_primary(p, &u)) { qe_buf_free(&u.lit); return p->rc; }
        space(p, nested);
        int min = -1, max = -1;
        c = peek(p);
        if (c == '*') { min = 0; max = -1; p->i++; }
        else if (c == '+') { min = 1; max = -1; p->i++; }
        else if (c == '?') { min = 0; max = 1; p->i++; }
        else if (c == '{') {
            p->i++;
            space(p, false);
            if (parse_int(p, &min)) { qe_buf_free(&u.lit); return p->rc; }
            space(p, false);
            max = min;
            if (peek(p) == ',') {
                p->i++;
                space(p, false);
                max = -1;
                if (peek(p) != '}' && parse_int(p, &max)) { qe_buf_free(&u.lit); return p->rc; }
                space(p, false);
            }
            if (peek(p) != '}') { qe_buf_free(&u.lit); return fail(p, "expected '}'", NULL); }
            p->i++;
            if (max >= 0 && max < min) { qe_buf_free(&u.lit); return fail(p, "repetition {m,n} with n < m", NULL); }
        }
        if (min >= 0) {
            int rep;
            if (u.kind == U_SET && min <= 1 && max < 0) {
                /* [set]* and [set]+ as one self-looping rule: the loop stays in one frame (cheap masks) */
                rep = qe_gb_rule(p->b, NULL);
                int a = qe_gb_alt(p->b, rep);
                qe_gb_set(p->b, a, &u.set);
                qe_gb_ref(p->b, a, rep);
                qe_gb_alt(p->b, rep);
                if (min == 1) unit_emit(p, alt, &u);
            } else {
                int r = unit_rule(p, &u);
                int rc = qe_gb_repeat(p->b, r, min, max, &rep, p->err);
                if (rc) {
                    char m[QE_ERR_LEN];
                    snprintf(m, sizeof m, "%s", p->err ? p->err : "bad repetition");
                    qe_buf_free(&u.lit);
                    return fail(p, "%s", m);
                }
            }
            qe_gb_ref(p->b, alt, rep);
            space(p, nested);
        } else {
            unit_emit(p, alt, &u);
        }
        qe_buf_free(&u.lit);
    }
}

static int parse_alternates(parser *p, int rule, bool nested) {
    for (;;) {
        int alt = qe_gb_alt(p->b, rule);
        if (parse_sequence(p, alt, nested)) return p->rc;
        if (peek(p) != '|') return QE_OK;
        p->i++;
        space(p, true);
    }
}

int qe_grammar_from_gbnf(const char *text, size_t n, qe_grammar **out, char *err) {
    *out = NULL;
    parser p = {.s = text, .n = n, .err = err, .b = qe_gb_new()};
    if (!p.b) return qe_errf(err, QE_ENOMEM, "out of memory");
    space(&p, true);
    while (p.i < p.n && !p.rc) {
        size_t st = p.i;
        while (is_word(peek(&p))) p.i++;
        if (p.i == st) { fail(&p, "expected a rule name", NULL); break; }
        int r = named_rule(&p, text + st, p.i - st);
        if (r < 0) break;
        if (p.defined[r]) { p.i = st; fail(&p, "rule '%s' is defined twice", qe_gb_name(p.b, r)); break; }
        p.defined[r] = 1;
        space(&p, false);
        if (p.i + 3 > p.n || memcmp(text + p.i, "::=", 3)) { fail(&p, "expected '::='", NULL); break; }
        p.i += 3;
        space(&p, true);
        if (parse_alternates(&p, r, false)) break;
        if (peek(&p) == ')') { fail(&p, "unbalanced ')'", NULL); break; }
        if (p.i < p.n && peek(&p) != '\n' && peek(&p) != '\r') { fail(&p, "expected the end of the line", NULL); break; }
        space(&p, true);
    }
    int rc = p.rc;
    if (!rc) {
        int root = qe_gb_find(p.b, "root", 4);
        if (root < 0 || !p.defined[root]) rc = qe_errf(err, QE_EINVAL, "grammar: there is no 'root' rule");
        else {
            rc = qe_gb_finish(p.b, root, out, err);
            if (rc) qe_err_prefix(err, "grammar");
        }
    }
    qe_gb_free(p.b);
    free(p.defined);
    return rc;
}
