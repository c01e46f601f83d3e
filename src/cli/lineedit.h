/* lineedit.h — the terminal chat's input line: libedit (arrow keys, Ctrl-A/E/K/L..., ~/.editrc) with wide
 * characters, a history kept across runs, and bracketed paste: a pasted block, newlines and all, is one message.
 * Only for a terminal; when stdin is a pipe the chat reads plain lines itself (scripts pipe into it).
 *
 * Not here: what a message means (/reset, /quit...: cmd_chat.c). */
#pragma once

typedef struct cli_lineedit cli_lineedit;

/* Sets LC_CTYPE from the environment, or C.UTF-8 when that is not UTF-8 (LANG=C): the chat's text is UTF-8
 * whatever the locale, and libedit measures and erases characters by the locale's encoding.
 * history_path: file of earlier messages (created 0600; the last 500 messages of up to 16 KB are kept), NULL for none. NULL on failure. */
cli_lineedit *cli_lineedit_new(const char *prog, const char *history_path);
void cli_lineedit_free(cli_lineedit *le);

/* Reads one message after showing prompt. Returns 1 and *out (UTF-8, no final newline; borrowed until the next
 * call) for a line; 0 at the end of input (Ctrl-D on an empty line; a newline is printed so the shell's prompt
 * starts on its own line); -1 when Ctrl-C dropped the line. */
int cli_lineedit_read(cli_lineedit *le, const char *prompt, const char **out);

/* Adds a message the user sent to the history (and saves the file). */
void cli_lineedit_remember(cli_lineedit *le, const char *msg);
