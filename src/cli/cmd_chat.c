/* cmd_chat.c — `qwen-edge chat`: an interactive terminal chat that streams answers and remembers the last N
 * rounds (default 3). Commands: /reset (or 重新开始), /system TEXT, /help, /quit. Ctrl-C stops the answer being
 * written and returns to the prompt. Works with a pipe on stdin too (no prompt decorations then). */
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

static volatile sig_atomic_t g_interrupted;
static void on_sigint(int sig) { (void)sig; g_interrupted = 1; }

static void usage(FILE *out) {
    fprintf(out,
            "usage: qwen-edge chat [-m MODEL] [options]\n\n"
            "Talk to the model in the terminal. It remembers the last rounds of the conversation.\n\n"
            "  -m, --model FILE   GGUF file or Hugging Face folder (default: the downloaded default model)\n"
            "  -s, --system TEXT  system prompt (default: Qwen's own)\n"
            "  --rounds N         rounds of conversation to remember (default 3)\n"
            "  -n N               at most N tokens per answer (default 1024)\n"
            "  --temp T, --top-k K, --top-p P, --min-p P, --repeat-penalty R, --seed S   sampling (Qwen's defaults)\n"
            "  -t N               threads (default: physical cores)\n"
            "  -c, --ctx N        context size (default 4096)\n\n"
            "While chatting:\n"
            "  /reset or 重新开始   forget the conversation        /system TEXT   new system prompt (and reset)\n"
            "  /help              this help                       /quit          leave (or Ctrl-D)\n"
            "  Ctrl-C             stop the answer being written\n");
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
    bool stopped = false;
    for (;;) {
        if (g_interrupted && !stopped) { qe_job_cancel(job); stopped = true; }
        if (qe_job_next(job, &ev, 100) != QE_OK) continue;
        if (ev.kind != QE_EV_TOKEN) {
            if (ev.kind == QE_EV_ERROR) fprintf(stderr, "\nqwen-edge: %s\n", ev.message);
            if (ev.kind == QE_EV_DONE && ev.finish == QE_FINISH_LENGTH && tty) fprintf(stderr, " [length limit]");
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
    int n_predict = 1024, n_threads = 0, n_ctx = 4096, rounds = QE_CHAT_DEFAULT_ROUNDS;
    qe_sample_params sp;
    qe_sample_params_default(&sp);
    for (int i = 1; i < argc; i++) {
        int sampling;
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) ok = cli_str(argc, argv, &i, &model_path);
        else if (!strcmp(a, "-s") || !strcmp(a, "--system")) ok = cli_str(argc, argv, &i, &system);
        else if (!strcmp(a, "--rounds")) ok = cli_int(argc, argv, &i, &rounds);
        else if (!strcmp(a, "-n") || !strcmp(a, "--max-tokens")) ok = cli_int(argc, argv, &i, &n_predict);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) ok = cli_int(argc, argv, &i, &n_threads);
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) ok = cli_int(argc, argv, &i, &n_ctx);
        else if ((sampling = cli_sample_option(argc, argv, &i, &sp)) != 0) ok = sampling > 0;
        else { fprintf(stderr, "qwen-edge chat: unknown option '%s' (see qwen-edge chat --help)\n", a); return 2; }
        if (!ok) return 2;
    }
    if (rounds < 0 || n_predict < 1 || n_ctx < 64) { fprintf(stderr, "qwen-edge chat: bad --rounds, -n or --ctx\n"); return 2; }
    bool tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    qe_model *m = cli_open_model(model_path, !tty);
    if (!m) return 1;
    char err[QE_ERR_LEN];
    qe_engine *eng;
    qe_engine_opts eo = {.n_threads = n_threads, .n_ctx = n_ctx, .n_parallel = 1};
    if (qe_engine_new(m, &eo, &eng, err)) { fprintf(stderr, "qwen-edge: %s\n", err); qe_model_free(m); return 1; }
    n_ctx = qe_engine_n_ctx(eng);
    if (n_predict > n_ctx / 2) n_predict = n_ctx / 2;
    qe_conv *conv = qe_conv_new(system, rounds ? rounds : QE_CHAT_DEFAULT_ROUNDS);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART: Ctrl-C at the prompt interrupts the read */
    sigaction(SIGINT, &sa, NULL);
    if (tty)
        fprintf(stderr, "qwen-edge chat — %s (%s). /help for commands, /quit to leave.\n", m->name, m->weight_types);
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        if (tty) { fputs("\n>>> ", stdout); fflush(stdout); }
        g_interrupted = 0;
        errno = 0;
        ssize_t got = getline(&line, &cap, stdin);
        if (got < 0) {
            if (errno == EINTR) { clearerr(stdin); if (tty) fputs("\n(type /quit to leave)", stdout); continue; }
            break; /* end of input */
        }
        trim_newline(line);
        char *text = line;
        while (*text == ' ' || *text == '\t') text++;
        if (!*text) continue;
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
            conv = qe_conv_new(s && *s ? s : NULL, rounds ? rounds : QE_CHAT_DEFAULT_ROUNDS);
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
    qe_conv_free(conv);
    qe_engine_free(eng);
    qe_model_free(m);
    return rc;
}
