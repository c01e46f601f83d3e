/* grammar.h — a context-free grammar over BYTES, its builder, and the pushdown automaton that matches it.
 *
 * This is the engine of constrained decoding. Front ends compile to it: json_schema.c (JSON Schema and "any JSON
 * object"), gbnf.c (llama.cpp's GBNF). token_mask.c walks the vocabulary with it to build the token mask and holds
 * the per-sequence matcher (qe_gmatch). What does NOT live here: JSON, GBNF syntax, tokens.
 *
 * The grammar: rules, each a list of alternatives, each a sequence of elements; an element is a terminal (a set of
 * bytes, 256 bits) or a reference to a rule. Code points are compiled to their UTF-8 byte sequences by the front
 * ends (qe_gb_class), so the automaton never decodes UTF-8 and a token that ends in the middle of a character is
 * handled like any other prefix. Repetition is right recursion (qe_gb_repeat); a reference in last position is a
 * tail call, so `x*` never grows the stack.
 *
 * The automaton (llama.cpp's design, with the stack sets interned): a parse position is a stack of element
 * indices, the top one a terminal still to match (the next byte), the others where each calling rule resumes. A
 * state is the SET of stacks the bytes so far allow (the grammar may be ambiguous). Each distinct set is interned
 * once and gets a 256-entry transition row built on first use, so after warm-up advancing by a byte is one table
 * load, and equal positions seen again (every character inside a string brings back the same set) cost nothing.
 * The empty stack in a set means "the grammar is complete here" (for a state started from a single position, as
 * token_mask.c does for its per-position cache: "that position's rule has returned").
 *
 * Guarantees after qe_gb_finish: no rule is left-recursive (the automaton would never finish expanding); every
 * rule left can derive a finite string (alternatives that cannot are pruned; a root that cannot is the error
 * "can never be satisfied"), so every non-dead state is a viable prefix: some continuation reaches the end.
 * Limits: a stack deeper than QE_GRAMMAR_MAX_DEPTH is dropped (nesting beyond it is refused), and a grammar
 * whose states outgrow QE_GRAMMAR_MAX_STATES makes qe_gstate_next return QE_ERANGE.
 *
 * Threads: a qe_grammar is built and compiled by one thread (the HTTP thread) and then used by one thread at a
 * time (the engine thread): the state table and the mask cache grow lazily inside it, without locks. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

#define QE_GRAMMAR_MAX_DEPTH 512
#define QE_GRAMMAR_MAX_STATES (1 << 20)
#define QE_GRAMMAR_MAX_ELEMS (1 << 21) /* elements and rules of one grammar (a 2M-element grammar is a mistake) */
#define QE_GRAMMAR_MAX_REPEAT 1024   /* x{m,n}: m and n above this are refused (the grammar is unrolled) */

typedef struct qe_grammar qe_grammar;
void qe_grammar_free(qe_grammar *g);
int qe_grammar_n_rules(const qe_grammar *g);
/* Human-readable dump of the rules in GBNF-like syntax (tests, debugging). Owned by the caller (free). */
char *qe_grammar_dump(const qe_grammar *g);

/* ---- builder (front ends) ------------------------------------------------------------------------------------
 * Rules and alternatives may be created in any order and interleaved (a schema compiler builds sub-rules while
 * it is in the middle of an alternative). Appending never fails on its own: out of memory is remembered and
 * reported by qe_gb_finish. */
typedef struct qe_gbuild qe_gbuild;
typedef struct { uint8_t b[32]; } qe_byteset;     /* bit i of b[i >> 3]: byte i */

qe_gbuild *qe_gb_new(void);
void qe_gb_free(qe_gbuild *b);
/* A new, still empty rule; name is copied (NULL: a generated name). Returns its id. */
int qe_gb_rule(qe_gbuild *b, const char *name);
/* Looks a rule up by name (GBNF), -1 if none. */
int qe_gb_find(const qe_gbuild *b, const char *name, size_t n);
const char *qe_gb_name(const qe_gbuild *b, int rule);
/* Starts a new alternative of rule (appended after its existing ones); returns its handle. */
int qe_gb_alt(qe_gbuild *b, int rule);
int qe_gb_n_alts(const qe_gbuild *b, int rule);
void qe_gb_set(qe_gbuild *b, int alt, const qe_byteset *set);
void qe_gb_byte(qe_gbuild *b, int alt, uint8_t c);
void qe_gb_lit(qe_gbuild *b, int alt, const char *s, size_t n);
void qe_gb_ref(qe_gbuild *b, int alt, int rule);
/* A rule x{min,max} of rule x (max < 0: unbounded), as nested right recursion: x x (x (x)?)? ... QE_ERANGE (in
 * err) above QE_GRAMMAR_MAX_REPEAT. */
int qe_gb_repeat(qe_gbuild *b, int x, int min, int max, int *out, char *err);

/* Sets of code points as sorted, non-overlapping inclusive ranges. */
typedef struct { uint32_t lo, hi; } qe_cprange;
typedef struct { qe_cprange *r; int n, cap; } qe_cpset;
void qe_cpset_add(qe_cpset *s, uint32_t lo, uint32_t hi);   /* any order; normalised by qe_cpset_norm */
void qe_cpset_norm(qe_cpset *s);                            /* sort, merge, drop the surrogates D800-DFFF */
void qe_cpset_negate(qe_cpset *s);                          /* complement within U+0000..U+10FFFF */
void qe_cpset_free(qe_cpset *s);
/* Adds to `rule` one alternative per UTF-8 byte shape of the (normalised) set — all one-byte code points in one
 * terminal — each followed by a reference to `tail` if tail >= 0 (a loop: tail == rule gives set*). */
void qe_gb_class(qe_gbuild *b, int rule, const qe_cpset *s, int tail);

/* Checks and freezes the grammar (root = start rule): every referenced rule must have alternatives, no rule may be
 * left-recursive, and the root must derive some finite string. Errors name the rule. b is left empty either way. */
int qe_gb_finish(qe_gbuild *b, int root, qe_grammar **out, char *err);

/* ---- the automaton (token_mask.c) --------------------------------------------------------------------------- */
enum { QE_GSTATE_DEAD = -1 };
#define QE_GSTATE_UNKNOWN INT32_MIN
/* The transition row of state s (256 entries: a state, QE_GSTATE_DEAD, or QE_GSTATE_UNKNOWN = not built yet, ask
 * qe_gstate_next), allocated on first call (NULL if out of memory). Rows never move: a walk may keep pointers. */
const int32_t *qe_gstate_row(qe_grammar *g, int32_t s);
/* The start state (all stacks of the root rule), interned on first call; < 0: error (QE_ENOMEM / QE_ERANGE). */
int32_t qe_gstate_start(qe_grammar *g);
/* The state after byte c, QE_GSTATE_DEAD if no stack accepts it, or a negative QE_E* code (< QE_GSTATE_DEAD) when
 * a limit is hit. After warm-up a table load. */
int32_t qe_gstate_next(qe_grammar *g, int32_t s, uint8_t c);
/* True if the state holds the empty stack (the grammar / the position's rule can end here). */
bool qe_gstate_can_end(const qe_grammar *g, int32_t s);
/* The state's stacks, serialised: n_stacks, then per stack its length and its element indices bottom to top. */
const uint32_t *qe_gstate_stacks(const qe_grammar *g, int32_t s);
/* The state made of the one stack [pos] (pos: a terminal element), for the per-position mask cache. */
int32_t qe_gstate_of_pos(qe_grammar *g, uint32_t pos);
/* The state in which the stack stk[0..n) continues after its top frame's rule has returned (the top element is
 * dropped and what remains is expanded); n == 1 gives the "complete" state. */
int32_t qe_gstate_after_return(qe_grammar *g, const uint32_t *stk, uint32_t n);
int qe_grammar_n_elems(const qe_grammar *g);
bool qe_grammar_is_terminal(const qe_grammar *g, uint32_t pos);   /* positions the per-position cache covers */
int32_t qe_grammar_n_states(const qe_grammar *g);

/* The mask cache token_mask.c keeps per grammar (opaque here; freed with the grammar). */
void *qe_grammar_cache(const qe_grammar *g);
void qe_grammar_set_cache(qe_grammar *g, void *cache, void (*free_fn)(void *));
