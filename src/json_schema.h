/* json_schema.h — JSON Schema (and "any JSON object") compiled to grammar.h's byte grammar.
 *
 * The output is compact JSON: no whitespace except one optional space after ':' and ',' (the model's natural
 * style; no free whitespace runs a small model could wander into). Object properties come in the schema's order.
 *
 * Supported (anything else is an error naming the keyword and its JSON pointer, QE_EUNSUPPORTED):
 *   type (a name or an array: nullable types), enum, const, anyOf, oneOf (as anyOf: give disjoint branches),
 *   $ref to "#" or "#/..." (local, recursion allowed) with $defs / definitions, boolean schemas true / false,
 *   nullable: true (OpenAPI);
 *   object: properties (in order), required, additionalProperties (false, or absent: only the declared properties
 *     are generated; true or a schema: allowed only when there are no properties: a map of any keys);
 *   array: items, minItems, maxItems;
 *   string: minLength, maxLength (code points), format date | time | date-time | uuid, pattern (below);
 *   integer: minimum, maximum, exclusiveMinimum, exclusiveMaximum; at most 16 digits when unbounded;
 *   number: the same bounds (integer-valued bounds); at most 16 digits, 15 decimals, a 2-digit exponent when
 *     unbounded, no exponent when bounded.
 *   Annotations are accepted and ignored: title, description, default, examples, $comment, $schema, $id,
 *   deprecated, readOnly, writeOnly.
 *   pattern (ECMAScript syntax, the subset): literals, escapes (\d \D \w \W \s \S \t \n \r \f \v \xHH \uHHHH and
 *   escaped punctuation), ., [classes] with ranges and negation, groups ( ), (?: ), alternation |, quantifiers
 *   * + ? {n} {n,} {n,m} (lazy forms too), ^ at the start and $ at the end (without them the match may have any
 *   text around it, as JSON Schema's search semantics say). Not: lookaround, backreferences, \b, \p{...}.
 * What the grammar generates is always valid for the schema; a few valid values are never generated (February 29;
 * leap seconds; properties not declared; escapes other than the needed ones).
 * A schema that can never be satisfied (empty enum, minLength > maxLength, an empty range, a required recursion)
 * is the error "can never be satisfied" (QE_EINVAL). Bad JSON is QE_EINVAL. */
#pragma once
#include <stddef.h>

#include "grammar.h"

int qe_grammar_from_json_schema(const char *json, size_t n, qe_grammar **out, char *err);
/* Any JSON object (OpenAI response_format json_object, ollama format "json"). */
int qe_grammar_json_object(qe_grammar **out, char *err);
