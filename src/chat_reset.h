/* chat_reset.h — what a user types to start the conversation over, as data only: the terminal chat reads it
 * through qe_chat_is_reset (chat.c), and the chat page through /reset.js, which the build makes from this file
 * with the C preprocessor (mk/reset.js.in, rule in mk/web.mk). One list, one rule, both places.
 *
 * The rule: leading and trailing SPACES are ignored, and so are ENDS at the end (an input method adds "。" or
 * "！"); what is left must be one of WORDS (ASCII letters in any case). "重新开始。", " /reset ", "　重新开始！"
 * start over; "请重新开始" and "重新开始吧" are ordinary messages.
 *
 * Keep this file preprocessor-only: string literals that are the same in C and JavaScript ("\u3000" is UTF-8
 * in a C string and U+3000 in a JavaScript one). */
#pragma once

#define QE_RESET_WORDS "重新开始", "/reset", "/new"
/* ASCII white space, no-break space, ideographic (full-width) space, byte order mark */
#define QE_RESET_SPACES " ", "\t", "\n", "\r", "\v", "\f", "\u00A0", "\u3000", "\uFEFF"
/* full-width and ASCII sentence ends */
#define QE_RESET_ENDS "。", "！", "!", "．", ".", "？", "?", "～", "~", "…"
