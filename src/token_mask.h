/* token_mask.h — constrained decoding over the vocabulary: the token trie, the per-grammar mask cache and the
 * per-sequence matcher that the sampler asks "which tokens may come next?".
 *
 * The rule (never weakened for speed): a token is allowed iff its whole byte string can be consumed by the grammar
 * from the current state; an end-of-generation token (<|im_end|>, <|endoftext|>) iff the grammar can end here;
 * any other control token never. Grammars come from json_schema.h / gbnf.h (compiled to grammar.h's byte grammar).
 *
 * How it is fast (XGrammar's "adaptive token mask cache", on llama.cpp's stack automaton): for every terminal
 * position p of the grammar we walk the vocabulary trie once from the single stack [p] and record the tokens that
 * are accepted without leaving p's rule (context-free: true whatever called the rule) and the trie nodes where p's
 * rule returns with bytes still to come (context-dependent, usually a few: `",` `"}` after a string). A mask is
 * then the union over the current stacks of their top position's accepted set, plus a short walk from each of those
 * nodes with the real caller stack. Masks of recent states are kept too (inside a string the state repeats).
 *
 * Contract and threads:
 *   - qe_vtrie: built once per tokenizer (qe_vtrie_new), read-only afterwards, shared by every thread.
 *   - qe_grammar: compiled on any thread (the HTTP thread); optionally qe_grammar_prepare there too (fills the
 *     per-position cache so the first tokens cost no walk). Then handed to ONE thread (the engine thread), which
 *     alone uses it and its matchers from then on: caches grow inside the grammar without locks.
 *   - qe_gmatch: one per sequence (per slot); new/free per job, nothing allocated per token once the grammar's
 *     caches are warm (the state table and caches grow only on states never seen before).
 *   - A mask is a bitset of ceil(n_vocab / 32) uint32 words: token t is allowed iff bit (t & 31) of word t >> 5.
 *
 * Per token:  qe_gmatch_mask(m, bits) → sampler picks a token among the set bits → qe_gmatch_accept(m, token);
 * stop when the token is end-of-generation, or when qe_gmatch_must_end says nothing else can follow. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "base.h"
#include "grammar.h"
#include "tokenizer.h"

typedef struct qe_vtrie qe_vtrie;
/* t is borrowed (the token bytes are read from it) and must outlive the vocab. */
int qe_vtrie_new(const qe_tokenizer *t, qe_vtrie **out, char *err);
void qe_vtrie_free(qe_vtrie *v);
int qe_vtrie_n(const qe_vtrie *v);                 /* tokens (mask bits) */
static inline int qe_mask_words(int n_vocab) { return (n_vocab + 31) / 32; }

/* Precomputes the per-position cache of g for vocabulary v (optional; the matcher otherwise fills it lazily). */
int qe_grammar_prepare(qe_grammar *g, const qe_vtrie *v, char *err);

typedef struct qe_gmatch qe_gmatch;
/* A matcher at the grammar's start. g and v are borrowed and must outlive it. */
int qe_gmatch_new(qe_grammar *g, const qe_vtrie *v, qe_gmatch **out, char *err);
void qe_gmatch_free(qe_gmatch *m);
void qe_gmatch_reset(qe_gmatch *m);
/* Fills allow (qe_mask_words(n_vocab) words) with the tokens allowed next. Fails only on out of memory or a
 * grammar whose state space exceeds the limits (grammar.h); allow is then all zero. */
int qe_gmatch_mask(qe_gmatch *m, uint32_t *allow, char *err);
/* Advances by token; QE_EINVAL (state unchanged) if the grammar does not allow it here. */
int qe_gmatch_accept(qe_gmatch *m, int32_t token, char *err);
/* Advances by raw bytes (tests, and checking a whole text): QE_EINVAL if they leave the grammar. */
int qe_gmatch_accept_bytes(qe_gmatch *m, const char *s, size_t n, char *err);
/* dst takes src's position (same grammar): to try a token and come back, or to fork a sequence. */
void qe_gmatch_copy(qe_gmatch *dst, const qe_gmatch *src);
bool qe_gmatch_done(const qe_gmatch *m);           /* the grammar can end here (end-of-generation allowed) */
bool qe_gmatch_must_end(const qe_gmatch *m);       /* ... and nothing else can follow */
