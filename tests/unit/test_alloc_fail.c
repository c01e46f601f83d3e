/* test_alloc_fail.c — out-of-memory tests in SQLite's way: for N = 1, 2, ... the N-th allocation of an operation
 * fails (src/base.c's qe_alloc_fail_at), until an N is reached that the operation never gets to. Every run must
 * end in a clean error (a negative code, an err message, no crash) or in the exact result of a run without
 * failures, never in a wrong or partial result passed off as success. Each loop is run twice: with one failed
 * allocation, and with that one and every later one failing ("persistent", as when memory is really gone).
 *
 * Operations: the engine's job queue (submit, then the token events the engine thread posts: a DONE that could
 * not be queued used to leave the reader waiting forever), the chat window (a conversation rendered to ids,
 * older rounds dropped to fit a budget) and the tokenizer (a text with special tokens, invalid UTF-8 and long
 * words).
 * Leaks: every loop compares glibc's heap in use before and after each run (mallinfo2; main() runs the test with
 * one arena and no per-thread cache, so the count is exact and covers the engine thread); under `make test-asan`
 * LeakSanitizer checks the whole run at exit instead. */
#include "test.h"

#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include "chat.h"
#include "engine.h"
#include "model.h"
#include "tokenizer.h"

static qe_model *g_model;

static qe_model *tiny_model(void) {
    if (g_model) return g_model;
    char path[600], cmd[1400], err[QE_ERR_LEN];
    const char *bin = getenv("QE_BIN") ? getenv("QE_BIN") : "build/qwen-edge";
    snprintf(path, sizeof path, "%s/alloc-tiny-f16.gguf", test_tmpdir());
    snprintf(cmd, sizeof cmd, "'%s' mkmodel -o '%s' --shape tiny --type f16 --seed 3 >/dev/null", bin, path);
    if (system(cmd) != 0) { fprintf(stderr, "mkmodel failed\n"); exit(1); }
    if (qe_model_load(path, &g_model, err)) { fprintf(stderr, "%s\n", err); exit(1); }
    return g_model;
}

/* heap bytes in use, mmapped chunks included; equal before and after = nothing leaked (see main) */
static size_t heap_in_use(void) { struct mallinfo2 mi = mallinfo2(); return mi.uordblks + mi.hblkhd; }

static bool ids_eq(const qe_ids *a, const qe_ids *b) {
    return a->n == b->n && (a->n == 0 || memcmp(a->p, b->p, a->n * sizeof *a->p) == 0);
}

/* ---- tokenizer ---------------------------------------------------------------------------------------------- */

/* special tokens (parse_special), invalid UTF-8 (the cleaned copy), a word longer than the word cache holds
 * (scratch and heap growth), text not in NFC, and more than 64 ids (the output grows twice) */
static const char tok_text[] =
    "<|im_start|>user\nHello, world! \xff\xfe broken bytes, Cafe\xcc\x81 "
    "supercalifragilisticexpialidocious-antidisestablishmentarianism-pneumonoultramicroscopicsilicovolcanoconiosis "
    "你好，世界。这是一个测试。 1234567890 The quick brown fox jumps over the lazy dog, again and again and again."
    "<|im_end|>\n";

typedef struct { const qe_tokenizer *t; qe_ids *out; char *err; int rc; } tok_call;
static void *tokenize_thread(void *p) {
    tok_call *c = p;
    c->rc = qe_tokenize(c->t, tok_text, sizeof tok_text - 1, true, c->out, c->err);
    return NULL;
}
/* in a new thread each time: its word cache starts empty (allocated on first use, freed at thread exit), so
 * every piece goes through the BPE merge and its scratch space, as on a server's first request */
static int tokenize_op(const qe_tokenizer *t, qe_ids *out, char *err) {
    tok_call c = {t, out, err, QE_ERR};
    pthread_t th;
    if (pthread_create(&th, NULL, tokenize_thread, &c) != 0) { fprintf(stderr, "pthread_create\n"); exit(1); }
    pthread_join(th, NULL);
    return c.rc;
}

TEST(tokenizer_fails_cleanly_at_every_allocation) {
    const qe_tokenizer *t = tiny_model()->tok;
    qe_ids want = {0};
    char err[QE_ERR_LEN];
    CHECK(tokenize_op(t, &want, err) == QE_OK && want.n > 64);
    for (int persist = 0; persist < 2; persist++) {
        long n, n_err = 0;
        for (n = 1; n < 1000; n++) {
            qe_ids got = {0};
            err[0] = 0;
            size_t before = heap_in_use();
            qe_alloc_fail_at(n, persist);
            int rc = tokenize_op(t, &got, err);
            long hits = qe_alloc_fail_hits();
            qe_alloc_fail_at(0, false);
            n_err += rc < 0;
            if (rc < 0) CHECKF(hits > 0 && rc == QE_ENOMEM && err[0], "n=%ld rc=%d hits=%ld err=%s", n, rc, hits, err);
            else CHECKF(rc == QE_OK && ids_eq(&got, &want), "n=%ld: success with other ids (%zu vs %zu)", n, got.n, want.n);
            qe_ids_free(&got);
            CHECKF(heap_in_use() == before, "n=%ld: %zd bytes leaked", n, (ssize_t)(heap_in_use() - before));
            if (hits == 0) break;
        }
        printf("  %s (%s): N = 1..%ld: %ld clean errors, %ld exact results; N = %ld: no failure\n", "tokenizer",
               persist ? "persistent" : "once", n - 1, n_err, n - 1 - n_err, n);
        CHECK(n > 4 && n < 1000);
    }
    qe_ids_free(&want);
}

/* ---- chat window -------------------------------------------------------------------------------------------- */

/* A conversation of 6 rounds kept to 4, rendered into a budget that holds only the newest 2: conversation
 * memory (copies, growth, trimming), the template walk and the binary search over windows, all allocating. */
static int chat_op(const qe_tokenizer *t, qe_ids *out, size_t *n_msgs, char *err) {
    qe_conv *c = qe_conv_new("You are a careful assistant. Answer briefly.", 4);
    if (!c) return qe_errf(err, QE_ENOMEM, "conversation: out of memory");
    int rc = QE_OK;
    char text[200];
    for (int r = 0; r < 6 && rc == QE_OK; r++) {
        snprintf(text, sizeof text, "Question %d: what is %d times %d? Explain the steps.", r, r + 3, r + 7);
        rc = qe_conv_add(c, QE_ROLE_USER, text, strlen(text));
        snprintf(text, sizeof text, "Answer %d: %d. Multiply the tens, then the units, then add them up.", r,
                 (r + 3) * (r + 7));
        if (rc == QE_OK) rc = qe_conv_add(c, QE_ROLE_ASSISTANT, text, strlen(text));
    }
    if (rc == QE_OK) rc = qe_conv_add(c, QE_ROLE_USER, "And 12 times 13?", 16);
    if (rc < 0) { qe_errf(err, rc, "conversation: out of memory"); goto done; }
    rc = qe_conv_render_ids(c, t, 150, out, err);
    qe_conv_messages(c, n_msgs);
done:
    qe_conv_free(c);
    return rc;
}

TEST(chat_window_fails_cleanly_at_every_allocation) {
    const qe_tokenizer *t = tiny_model()->tok;
    qe_ids want = {0};
    size_t n_msgs = 0, n_msgs_got = 0;
    char err[QE_ERR_LEN];
    CHECKF(chat_op(t, &want, &n_msgs, err) == QE_OK, "%s", err);
    CHECK(want.n > 64 && want.n <= 150 && n_msgs == 10); /* the system prompt + 4 rounds + the new question */
    /* the text rendering too (qe_buf): same loop, smaller */
    for (int persist = 0; persist < 2; persist++) {
        long n, n_err = 0;
        for (n = 1; n < 5000; n++) {
            qe_ids got = {0};
            err[0] = 0;
            size_t before = heap_in_use();
            qe_alloc_fail_at(n, persist);
            int rc = chat_op(t, &got, &n_msgs_got, err);
            long hits = qe_alloc_fail_hits();
            qe_alloc_fail_at(0, false);
            n_err += rc < 0;
            if (rc < 0) CHECKF(hits > 0 && rc == QE_ENOMEM && err[0], "n=%ld rc=%d hits=%ld err=%s", n, rc, hits, err);
            else CHECKF(rc == QE_OK && ids_eq(&got, &want), "n=%ld: success with other ids (%zu vs %zu)", n, got.n, want.n);
            qe_ids_free(&got);
            CHECKF(heap_in_use() == before, "n=%ld: %zd bytes leaked", n, (ssize_t)(heap_in_use() - before));
            if (hits == 0) break;
        }
        printf("  %s (%s): N = 1..%ld: %ld clean errors, %ld exact results; N = %ld: no failure\n", "chat window",
               persist ? "persistent" : "once", n - 1, n_err, n - 1 - n_err, n);
        CHECK(n > 10 && n < 5000);
    }
    qe_ids_free(&want);
}

TEST(chat_text_render_fails_cleanly) {
    qe_chat_msg msgs[] = {{QE_ROLE_USER, "hi", 2}, {QE_ROLE_ASSISTANT, "hello", 5}, {QE_ROLE_TOOL, "{\"x\": 1}", 8}};
    qe_buf want = {0};
    CHECK(qe_chat_render(msgs, 3, true, &want) == QE_OK);
    long n;
    for (n = 1; n < 100; n++) {
        qe_buf got = {0};
        qe_alloc_fail_at(n, true);
        int rc = qe_chat_render(msgs, 3, true, &got);
        long hits = qe_alloc_fail_hits();
        qe_alloc_fail_at(0, false);
        if (rc < 0) CHECKF(hits > 0 && rc == QE_ENOMEM, "n=%ld rc=%d", n, rc);
        else CHECK(got.n == want.n && memcmp(got.p, want.p, want.n) == 0);
        qe_buf_free(&got);
        if (hits == 0) break;
    }
    CHECK(n >= 2 && n < 100);
    qe_buf_free(&want);
}

/* ---- the engine's job queue ----------------------------------------------------------------------------------- */

#define JOB_MAX_TOKENS 150 /* the event ring grows 0 -> 64 -> 128 -> 256 */

/* Submits one greedy job on a fresh engine (so every run computes exactly the same tokens), waits until the
 * engine is done with it, then reads its events: the ring holds all of them at once and grows every time (a
 * reader that keeps up would keep it at its first size). Returns the submit code, or 1 if a read timed out
 * (a lost final event), else 0; *final gets the last event. */
static int job_op(qe_model *m, int32_t *toks, int *n_toks, qe_event *final) {
    qe_engine *e;
    qe_engine_opts o = {.n_threads = 1, .n_ctx = 256, .n_parallel = 1};
    char err[QE_ERR_LEN] = "";
    if (qe_engine_new(m, &o, &e, err)) { fprintf(stderr, "%s\n", err); exit(1); }
    int32_t prompt[8] = {9707, 11, 1879, 0, 151644, 872, 198, 13};
    qe_job_params p = {.prompt = prompt, .n_prompt = 8, .max_tokens = JOB_MAX_TOKENS, .ignore_eos = true};
    qe_sample_params_greedy(&p.sample);
    qe_job *j;
    *n_toks = 0;
    int rc = qe_engine_submit(e, &p, &j, err);
    if (rc < 0) {
        CHECKF(err[0] && j == NULL, "submit failed without a message");
    } else {
        /* done = a forward pass ran and no slot is busy: slot_start marks the slot busy before the first pass,
         * and the slot is freed only after its DONE or ERROR was posted. 60 s: the tiny model makes 150 tokens
         * in well under a second, even under ASan on a busy machine. */
        qe_engine_stats st;
        for (int ms = 0; ms < 60000; ms++) {
            qe_engine_get_stats(e, &st);
            if (st.forward_passes > 0 && st.slots_busy == 0 && st.queue_len == 0) break;
            usleep(1000);
        }
        memset(final, 0, sizeof *final);
        qe_event ev;
        for (;;) {
            /* everything was posted already: a read that times out waits for an event that was lost */
            if (qe_job_next(j, &ev, 2000) != QE_OK) { rc = 1; break; }
            if (ev.kind != QE_EV_TOKEN) { *final = ev; break; }
            if (*n_toks < JOB_MAX_TOKENS) toks[*n_toks] = ev.token;
            ++*n_toks;
        }
        qe_job_release(j);
    }
    qe_engine_free(e);
    return rc;
}

TEST(job_queue_fails_cleanly_and_always_delivers_the_end) {
    qe_model *m = tiny_model();
    int32_t want[JOB_MAX_TOKENS], got[JOB_MAX_TOKENS];
    int n_want, n_got;
    qe_event fin;
    CHECK(job_op(m, want, &n_want, &fin) == 0 && fin.kind == QE_EV_DONE && n_want == JOB_MAX_TOKENS);
    for (int persist = 0; persist < 2; persist++) {
        long n, n_err = 0;
        for (n = 1; n < 50; n++) {
            size_t before = heap_in_use();
            qe_alloc_fail_at(n, persist);
            int rc = job_op(m, got, &n_got, &fin);
            long hits = qe_alloc_fail_hits();
            qe_alloc_fail_at(0, false);
            CHECKF(heap_in_use() == before, "n=%ld: %zd bytes leaked", n, (ssize_t)(heap_in_use() - before));
            CHECKF(rc != 1, "n=%ld %s: the reader waited for an end that never came (after %d tokens)", n,
                   persist ? "persistent" : "once", n_got);
            if (rc == 1) break;
            n_err += rc < 0 || fin.kind == QE_EV_ERROR;
            if (rc < 0) {
                CHECKF(rc == QE_ENOMEM && hits > 0, "n=%ld: submit rc=%d", n, rc);
            } else if (fin.kind == QE_EV_ERROR) {
                /* the tokens before the error are the right ones, and none is missing in between */
                CHECKF(hits > 0 && n_got < JOB_MAX_TOKENS && strstr(fin.message, "out of memory"), "n=%ld: %s", n,
                       fin.message);
                CHECKF(n_got <= JOB_MAX_TOKENS && memcmp(got, want, (size_t)n_got * sizeof *got) == 0,
                       "n=%ld: the %d tokens before the error are not the first ones", n, n_got);
            } else {
                /* a DONE: then every token arrived (a token dropped from the middle is the bug this catches) */
                CHECKF(fin.kind == QE_EV_DONE && n_got == JOB_MAX_TOKENS &&
                       memcmp(got, want, sizeof want) == 0, "n=%ld %s: DONE after %d of %d tokens, or other tokens",
                       n, persist ? "persistent" : "once", n_got, JOB_MAX_TOKENS);
            }
            if (hits == 0) break;
        }
        printf("  %s (%s): N = 1..%ld: %ld clean errors, %ld exact results; N = %ld: no failure\n", "job queue",
               persist ? "persistent" : "once", n - 1, n_err, n - 1 - n_err, n);
        CHECK(n >= 5 && n < 50);
    }
}

int main(int argc, char **argv) {
    /* Exact heap accounting for the leak checks: one malloc arena for every thread (the engine's and the
     * tokenizer's threads included) and no per-thread cache (freed chunks held there still count as in use).
     * glibc reads these tunables at start only, so the test runs itself again with them. */
    if (!getenv("GLIBC_TUNABLES")) {
        setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1", 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "re-exec failed; leak counts may be off\n");
    }
    (void)argc;
    RUN(tokenizer_fails_cleanly_at_every_allocation);
    RUN(chat_window_fails_cleanly_at_every_allocation);
    RUN(chat_text_render_fails_cleanly);
    RUN(job_queue_fails_cleanly_and_always_delivers_the_end);
    qe_model_free(g_model);
    return TEST_DONE();
}
