/* chat.h — Qwen2.5-Instruct's ChatML prompt (text and token ids) and the conversation window used by the
 * terminal chat and the server.
 *
 * Rendering is exactly Qwen2.5-Instruct's chat template without tools: a system turn first (the default
 * "You are Qwen, created by Alibaba Cloud. ..." when the first message is not a system message), then
 *   <|im_start|>{role}\n{content}<|im_end|>\n
 * per message (consecutive tool messages share one user turn of <tool_response> blocks), then
 * "<|im_start|>assistant\n" with add_generation_prompt.
 *
 * Token ids: the template's own markers become their special ids; message text is tokenized with
 * parse_special off, so a user who types "<|im_start|>" gets those characters, not a new turn. The ids are
 * otherwise identical to tokenizing the rendered text with special tokens on (as HF and llama.cpp do).
 *
 * Window: the system message (if first) is always kept; the newest round — from the last user message to
 * the end — is always kept; of the complete rounds before it (a round = a user message and what follows
 * it up to the next user message) at most max_rounds are kept, and then the oldest are dropped until the
 * prompt fits the token budget (context size minus room for the answer). If the newest round alone does
 * not fit, that is an error (QE_ERANGE) with a message for the user. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "base.h"
#include "tokenizer.h"

typedef enum { QE_ROLE_SYSTEM, QE_ROLE_USER, QE_ROLE_ASSISTANT, QE_ROLE_TOOL } qe_role;

/* One message; text is borrowed (UTF-8, not necessarily NUL-terminated). */
typedef struct {
    qe_role role;
    const char *text;
    size_t len;
} qe_chat_msg;

#define QE_CHAT_DEFAULT_ROUNDS 3
extern const char qe_chat_default_system[]; /* "You are Qwen, created by Alibaba Cloud. You are a helpful assistant." */

/* "system", "user", "assistant", "tool" -> role; QE_EINVAL for anything else. */
int qe_chat_role_parse(const char *name, qe_role *out);
const char *qe_chat_role_name(qe_role r);

/* Appends the prompt text to out. */
int qe_chat_render(const qe_chat_msg *msgs, size_t n, bool add_generation_prompt, qe_buf *out);
/* Appends the prompt's token ids to out (see above). */
int qe_chat_render_ids(const qe_tokenizer *t, const qe_chat_msg *msgs, size_t n, bool add_generation_prompt,
                       qe_ids *out, char *err);

/* The same with a budget for text from outside: QE_ERANGE as soon as the ids would pass max_ids (the tokenizer
 * stops there), so a prompt far too long costs little. */
int qe_chat_render_ids_max(const qe_tokenizer *t, const qe_chat_msg *msgs, size_t n, bool add_generation_prompt,
                           size_t max_ids, qe_ids *out, char *err);

/* Stateless window (for the server): renders msgs[0] if it is a system message plus the newest rounds
 * allowed by max_rounds (< 0: no limit) and budget (tokens, including the generation prompt), with the
 * generation prompt, into out (cleared first). *n_dropped (optional) gets the number of messages left out. */
int qe_chat_window_ids(const qe_tokenizer *t, const qe_chat_msg *msgs, size_t n, int max_rounds, size_t budget,
                       qe_ids *out, size_t *n_dropped, char *err);

/* True if a user message is the reset command: "重新开始", "/reset" or "/new" with surrounding spaces (also
 * full-width ones) and a trailing "。", "！" ... ignored; the rule and its lists are in chat_reset.h, shared with
 * the chat page. */
bool qe_chat_is_reset(const char *text, size_t len);

/* --- conversation memory: an owned message list for the terminal chat -------------------------------- */
typedef struct qe_conv qe_conv;

/* system_prompt NULL = the template's default. max_rounds <= 0 = QE_CHAT_DEFAULT_ROUNDS. NULL on OOM. */
qe_conv *qe_conv_new(const char *system_prompt, int max_rounds);
void qe_conv_free(qe_conv *c);
/* Copies text. Keeps at most max_rounds complete rounds before the newest user message (older ones are
 * forgotten for good). A system message is only accepted as the first message (QE_EINVAL otherwise). */
int qe_conv_add(qe_conv *c, qe_role role, const char *text, size_t len);
/* Removes the last message (e.g. a user message that did not fit); no-op when empty. */
void qe_conv_pop(qe_conv *c);
/* Forgets every round; keeps the system prompt. */
void qe_conv_reset(qe_conv *c);
/* Borrowed view of the messages (system prompt first if one was given); valid until the next change. */
const qe_chat_msg *qe_conv_messages(const qe_conv *c, size_t *n);
/* The prompt ids for the conversation plus the generation prompt, trimmed to budget (see above). */
int qe_conv_render_ids(const qe_conv *c, const qe_tokenizer *t, size_t budget, qe_ids *out, char *err);
