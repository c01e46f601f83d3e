/* cmd_chat.c — `qwen-edge chat`: an interactive terminal chat that streams answers and remembers the last N
 * rounds (default 3). Commands: /reset (or 重新开始), /system TEXT, /help, /quit. Ctrl-C stops the answer being
 * written and returns to the prompt. In a terminal the line is edited with libedit (lineedit.c: arrow keys, a
 * history in $QWEN_EDGE_HOME/chat_history, a pasted block is one message); with a pipe on stdin each line is one
 * message and there are no prompt decorations. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"
#include "cli_util.h"
#include "commands.h"
#include "engine.h"
#include "lineedit.h"
#include "modelstore.h"

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

static void usage(FILE *out) {
    fprintf(out,
            "usage: qwen-edge chat [-m MODEL] [options]\n\n"
            "Talk to the model in the terminal. It remembers the last rounds of the conversation.\n\n"
            CLI_MODEL_HELP
            "  -s, --system TEXT       system prompt (default: Qwen's own)\n"
            "      --memory-rounds N   earlier rounds of the conversation the model sees (default 3;\n"
            "                          0 = all that fit the context)\n"
            "  -n, --max-tokens N      at most N tokens per answer, at least 1 (default 1024; at most half the\n"
            "                          context)\n"
            CLI_GEN_HELP
            "  -h, --help              this help\n\n"
            "While chatting:\n"
            "  /reset or 重新开始   forget the conversation        /system TEXT   new system prompt (and reset)\n"
            "  /help              this help                       /quit          leave (or Ctrl-D)\n"
            "  Ctrl-C             stop the answer being written (at the prompt: drop the line)\n"
            "  arrow keys, Ctrl-A/E/K/U/W, Ctrl-L   edit the line (libedit; ~/.editrc applies)\n"
            "  Up/Down, Ctrl-R    earlier messages (kept in $QWEN_EDGE_HOME/chat_history)\n"
            "  a pasted block of several lines is one message\n");
}

static void trim_newline(char *s) {
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
}

/* Streams one answer; returns its text (owned) or NULL if nothing was generated. */
static char *answer(qe_engine *eng, const qe_model *m, const qe_ids *prompt, int n_predict, const qe_sample_params *sp,
                    bool tty) {
    char err[QE_ERR_LEN];
    qe_job *job;
    qe_job_params jp = {.prompt = prompt->p, .n_prompt = (int)prompt->n, .max_tokens = n_predict, .sample = *sp};
    if (qe_engine_submit(eng, &jp, &job, err)) { fprintf(stderr, "qwen-edge: %s\n", err); return NULL; }
    qe_detok dt;
    qe_detok_init(&dt);
    qe_buf all = {0}, piece = {0};
    qe_event ev;
    g_interrupted = 0;
    bool stopped = false, length_limit = false;
    for (;;) {
        if (g_interrupted && !stopped) { qe_job_cancel(job); stopped = true; }
        if (qe_job_next(job, &ev, 100) != QE_OK) continue;
        if (ev.kind != QE_EV_TOKEN) {
            if (ev.kind == QE_EV_ERROR) fprintf(stderr, "\nqwen-edge: %s\n", ev.message);
            length_limit = ev.kind == QE_EV_DONE && ev.finish == QE_FINISH_LENGTH;
            break;
        }
        piece.n = 0;
        qe_detok_push(&dt, m->tok, ev.token, &piece);
        fwrite(piece.p, 1, piece.n, stdout);
        fflush(stdout);
        qe_buf_append(&all, piece.p, piece.n);
    }
    piece.n = 0;
    qe_detok_flush(&dt, &piece);
    fwrite(piece.p, 1, piece.n, stdout);
    qe_buf_append(&all, piece.p, piece.n);
    fflush(stdout); /* the held-back end of the text before the note on stderr, not after it */
    if (length_limit && tty) fprintf(stderr, " [length limit]");
    if (stopped && tty) fprintf(stderr, " [stopped]");
    printf("\n");
    fflush(stdout);
    qe_buf_free(&piece);
    qe_job_release(job);
    if (!all.p) qe_buf_append(&all, "", 0);
    return all.p;
}

int cmd_chat(int argc, char **argv) {
    const char *model_path = NULL, *system = NULL;
    int rounds = QE_CHAT_DEFAULT_ROUNDS;
    cli_gen_opts g = {.n_ctx = 4096, .n_predict = 1024};
    qe_sample_params_default(&g.sp);
    for (int i = 1; i < argc; i++) {
        int gen;
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) ok = cli_str(argc, argv, &i, &model_path);
        else if (!strcmp(a, "-s") || !strcmp(a, "--system")) ok = cli_str(argc, argv, &i, &system);
        /* --rounds: the old spelling, still accepted; serve and the API say memory rounds */
        else if (cli_is(a, "--rounds", "--memory-rounds")) ok = cli_int(argc, argv, &i, 0, CLI_ROUNDS_MAX, &rounds);
        else if ((gen = cli_gen_option(argc, argv, &i, &g)) != 0) ok = gen > 0;
        else { fprintf(stderr, "qwen-edge chat: unknown option '%s' (see qwen-edge chat --help)\n", a); return 2; }
        if (!ok) return 2;
    }
    qe_sample_params sp = g.sp;
    int n_predict = g.n_predict, n_threads = g.n_threads, n_ctx = g.n_ctx;
    if (rounds == 0) rounds = CLI_ROUNDS_MAX; /* 0 = all, as in serve: the context size is then the only limit */
    bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    qe_model *m = cli_open_model(model_path, !tty);
    if (!m) return 1;
    char err[QE_ERR_LEN];
    qe_engine *eng;
    qe_engine_opts eo = {.n_threads = n_threads, .n_ctx = n_ctx, .n_parallel = 1};
    if (qe_engine_new(m, &eo, &eng, err)) { fprintf(stderr, "qwen-edge: %s\n", err); qe_model_free(m); return 1; }
    n_ctx = qe_engine_n_ctx(eng);
    if (n_predict > n_ctx / 2) n_predict = n_ctx / 2;
    qe_conv *conv = qe_conv_new(system, rounds);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART: Ctrl-C at the prompt interrupts the read */
    sigaction(SIGINT, &sa, NULL);
    if (tty)
        fprintf(stderr, "qwen-edge chat — %s (%s). /help for commands, /quit to leave.\n", m->name, m->weight_types);
    cli_lineedit *le = NULL;
    if (tty) {
        char hist[1200], dir[1024];
        bool have_dir = qe_models_dir(dir, sizeof dir, err) == QE_OK;
        if (have_dir) snprintf(hist, sizeof hist, "%s/chat_history", dir);
        le = cli_lineedit_new("qwen-edge", have_dir ? hist : NULL);
    }
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        const char *text;
        g_interrupted = 0;
        if (le) {
            fputs("\n", stdout);
            int got = cli_lineedit_read(le, ">>> ", &text);
            if (got < 0) continue; /* Ctrl-C at the prompt: the line is dropped */
            if (got == 0) break;   /* Ctrl-D */
        } else {
            if (tty) { fputs("\n>>> ", stdout); fflush(stdout); }
            errno = 0;
            ssize_t got = getline(&line, &cap, stdin);
            if (got < 0) {
                if (errno == EINTR) { clearerr(stdin); if (tty) fputs("\n(type /quit to leave)", stdout); continue; }
                break; /* end of input */
            }
            trim_newline(line);
            text = line;
        }
        while (*text == ' ' || *text == '\t' || *text == '\n') text++;
        if (!*text) continue;
        if (le) cli_lineedit_remember(le, text);
        if (!strcmp(text, "/quit") || !strcmp(text, "/exit") || !strcmp(text, "/bye")) break;
        if (!strcmp(text, "/help")) { usage(stdout); continue; }
        if (qe_chat_is_reset(text, strlen(text))) {
            qe_conv_reset(conv);
            printf("(conversation cleared / 已重新开始)\n");
            fflush(stdout);
            continue;
        }
        if (!strncmp(text, "/system", 7) && (text[7] == ' ' || text[7] == 0)) {
            const char *s = text[7] ? text + 8 : NULL;
            qe_conv_free(conv);
            conv = qe_conv_new(s && *s ? s : NULL, rounds);
            printf("(system prompt set; conversation cleared)\n");
            fflush(stdout);
            continue;
        }
        if (text[0] == '/' && text[1] && !strchr(text, ' ')) {
            printf("(unknown command %s — /help lists them)\n", text);
            fflush(stdout);
            continue;
        }
        if (!conv || qe_conv_add(conv, QE_ROLE_USER, text, strlen(text))) { fprintf(stderr, "qwen-edge: out of memory\n"); rc = 1; break; }
        qe_ids ids = {0};
        if (qe_conv_render_ids(conv, m->tok, (size_t)(n_ctx - n_predict), &ids, err)) {
            fprintf(stderr, "qwen-edge: %s\n", err);
            qe_conv_pop(conv);
            qe_ids_free(&ids);
            continue;
        }
        char *reply = answer(eng, m, &ids, n_predict, &sp, tty);
        qe_ids_free(&ids);
        if (reply) qe_conv_add(conv, QE_ROLE_ASSISTANT, reply, strlen(reply));
        else qe_conv_pop(conv);
        free(reply);
    }
    free(line);
    cli_lineedit_free(le);
    qe_conv_free(conv);
    qe_engine_free(eng);
    qe_model_free(m);
    return rc;
}
