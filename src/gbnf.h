/* gbnf.h — llama.cpp's GBNF grammar format, compiled to grammar.h's byte grammar (for users who already have one).
 *
 * Supported, as llama.cpp's grammar parser reads it: rules `name ::= alternatives` (one per line; newlines are
 * allowed inside parentheses and after `|`), the start rule `root`, "literals" and [character classes] (ranges,
 * [^negation]) with the escapes \n \r \t \\ \" \[ \] \- \xHH \uHHHH \UHHHHHHHH, `.` (any character), rule
 * references, ( groups ), the postfix operators * + ? {m} {m,} {m,n}, and # comments. Not supported (an error):
 * llama.cpp's token-level extensions (<[id]>, !tokens). Text is UTF-8; classes and `.` match whole code points.
 * Errors say "line L, column C: ..." (1-based). */
#pragma once
#include <stddef.h>

#include "grammar.h"

int qe_grammar_from_gbnf(const char *text, size_t n, qe_grammar **out, char *err);
