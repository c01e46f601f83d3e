/* engine_stub.c — DEVELOPMENT STAND-IN, built only while src/engine.c is absent (mk/server.mk). Implements
 * engine.h with one thread per job that "generates" a fixed multilingual text (its real token ids), honouring slots, the queue limit, the context, max_tokens, cancellation and a longest-common-prefix
 * cache per slot, so the HTTP layer can be tested before the real engine lands. Deleted once it does. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

static const char SCRIPT[] = "Hello! 你好，世界。🦙 This is the stub engine speaking. ";

struct qe_engine {
    qe_model *model;
    qe_engine_opts o;
    pthread_mutex_t mu;
    pthread_cond_t slot_free;
    int busy, queued, n_live;
    bool stopping;
    int32_t *cache[64];
    int n_cache[64];
    bool slot_used[64];
    qe_engine_stats st;
    qe_ids script;
};

struct qe_job {
    qe_engine *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qe_event *ev;
    int n_ev, cap_ev, head;
    int refs;
    bool cancel;
    int32_t *prompt;
    int n_prompt, max_tokens;
};

int qe_engine_new(qe_model *model, const qe_engine_opts *opts, qe_engine **out, char *err) {
    qe_engine *e = calloc(1, sizeof *e);
    if (!e) return QE_ENOMEM;
    e->model = model;
    e->o = *opts;
    if (e->o.n_ctx <= 0) e->o.n_ctx = 4096;
    if (e->o.n_parallel <= 0) e->o.n_parallel = 4;
    if (e->o.n_parallel > 64) e->o.n_parallel = 64;
    if (e->o.max_queue <= 0) e->o.max_queue = 64;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->slot_free, NULL);
    e->st.n_slots = e->o.n_parallel;
    qe_tokenize(model->tok, SCRIPT, strlen(SCRIPT), false, &e->script, NULL);
    *out = e;
    return QE_OK;
}

void qe_engine_free(qe_engine *e) {
    if (!e) return;
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    pthread_cond_broadcast(&e->slot_free);
    while (e->n_live > 0) {
        pthread_mutex_unlock(&e->mu);
        nanosleep(&(struct timespec){0, 2000000}, NULL);
        pthread_mutex_lock(&e->mu);
    }
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < 64; i++) free(e->cache[i]);
    qe_ids_free(&e->script);
    free(e);
}

const qe_model *qe_engine_model(const qe_engine *e) { return e->model; }
int qe_engine_n_ctx(const qe_engine *e) { return e->o.n_ctx; }

static void push_ev(qe_job *j, const qe_event *ev) {
    pthread_mutex_lock(&j->mu);
    if (j->head + j->n_ev == j->cap_ev) {
        if (j->head > 0) { memmove(j->ev, j->ev + j->head, j->n_ev * sizeof *j->ev); j->head = 0; }
        if (j->n_ev == j->cap_ev) {
            j->cap_ev = j->cap_ev ? j->cap_ev * 2 : 64;
            j->ev = realloc(j->ev, j->cap_ev * sizeof *j->ev);
        }
    }
    j->ev[j->head + j->n_ev++] = *ev;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void job_unref(qe_job *j) {
    pthread_mutex_lock(&j->mu);
    int r = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (r) return;
    free(j->ev);
    free(j->prompt);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static bool canceled(qe_job *j) {
    pthread_mutex_lock(&j->mu);
    bool c = j->cancel;
    pthread_mutex_unlock(&j->mu);
    return c || j->e->stopping;
}

static void *job_main(void *arg) {
    qe_job *j = arg;
    qe_engine *e = j->e;
    double t0 = qe_now();
    pthread_mutex_lock(&e->mu);
    while (e->busy >= e->o.n_parallel && !e->stopping && !j->cancel) pthread_cond_wait(&e->slot_free, &e->mu);
    e->queued--;
    if (e->busy >= e->o.n_parallel) { /* canceled while waiting */
        e->n_live--;
        pthread_mutex_unlock(&e->mu);
        qe_event done = {.kind = QE_EV_DONE, .finish = QE_FINISH_CANCELED, .n_prompt = j->n_prompt};
        push_ev(j, &done);
        job_unref(j);
        return NULL;
    }
    int slot = -1, best = -1;
    for (int s = 0; s < e->o.n_parallel; s++) {
        if (e->slot_used[s]) continue;
        int l = 0;
        while (l < e->n_cache[s] && l < j->n_prompt && e->cache[s][l] == j->prompt[l]) l++;
        if (l > best) { best = l; slot = s; }
    }
    e->slot_used[slot] = true;
    e->busy++;
    pthread_mutex_unlock(&e->mu);
    if (best >= j->n_prompt) best = j->n_prompt - 1;
    double t1 = qe_now();
    int32_t *seq = malloc((size_t)(j->n_prompt + e->o.n_ctx + 1) * sizeof *seq);
    memcpy(seq, j->prompt, j->n_prompt * sizeof *seq);
    int n_seq = j->n_prompt, n_gen = 0;
    qe_finish fin = QE_FINISH_STOP;
    double t2 = 0;
    int script_n = (int)e->script.n;
    for (;;) {
        nanosleep(&(struct timespec){0, 3000000}, NULL);
        if (canceled(j)) { fin = QE_FINISH_CANCELED; break; }
        if (j->max_tokens > 0 && n_gen >= j->max_tokens) { fin = QE_FINISH_LENGTH; break; }
        if (n_seq >= e->o.n_ctx) { fin = QE_FINISH_LENGTH; break; }
        int32_t tok = e->script.p[n_gen % script_n];
        if (!t2) t2 = qe_now();
        seq[n_seq++] = tok;
        n_gen++;
        qe_event ev = {.kind = QE_EV_TOKEN, .token = tok};
        push_ev(j, &ev);
    }
    double t3 = qe_now();
    pthread_mutex_lock(&e->mu);
    free(e->cache[slot]);
    e->cache[slot] = seq;
    e->n_cache[slot] = n_seq;
    e->slot_used[slot] = false;
    e->busy--;
    e->st.prompt_tokens_total += j->n_prompt;
    e->st.cached_tokens_total += best;
    e->st.gen_tokens_total += n_gen;
    pthread_cond_broadcast(&e->slot_free);
    pthread_mutex_unlock(&e->mu);
    qe_event done = {.kind = QE_EV_DONE, .finish = fin, .n_prompt = j->n_prompt, .n_cached = best, .n_gen = n_gen,
                     .t_queue_ms = (t1 - t0) * 1e3, .t_prompt_ms = ((t2 ? t2 : t3) - t1) * 1e3,
                     .t_gen_ms = (t3 - (t2 ? t2 : t3)) * 1e3};
    push_ev(j, &done);
    job_unref(j);
    pthread_mutex_lock(&e->mu);
    e->n_live--;
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

int qe_engine_submit(qe_engine *e, const qe_job_params *p, qe_job **out, char *err) {
    if (p->n_prompt <= 0) return qe_errf(err, QE_EINVAL, "empty prompt");
    if (p->n_prompt >= e->o.n_ctx)
        return qe_errf(err, QE_ERANGE, "the prompt has %d tokens but the context holds %d", p->n_prompt, e->o.n_ctx);
    pthread_mutex_lock(&e->mu);
    if (e->queued >= e->o.max_queue || e->stopping) {
        pthread_mutex_unlock(&e->mu);
        return qe_errf(err, QE_EBUSY, "the queue is full (%d waiting)", e->o.max_queue);
    }
    e->queued++;
    e->n_live++;
    e->st.jobs_total++;
    pthread_mutex_unlock(&e->mu);
    qe_job *j = calloc(1, sizeof *j);
    j->e = e;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 2;
    j->prompt = malloc(p->n_prompt * sizeof *j->prompt);
    memcpy(j->prompt, p->prompt, p->n_prompt * sizeof *j->prompt);
    j->n_prompt = p->n_prompt;
    j->max_tokens = p->max_tokens;
    pthread_t th;
    pthread_create(&th, NULL, job_main, j);
    pthread_detach(th);
    *out = j;
    return QE_OK;
}

int qe_job_next(qe_job *j, qe_event *ev, int timeout_ms) {
    pthread_mutex_lock(&j->mu);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000) { dl.tv_sec++; dl.tv_nsec -= 1000000000; }
    }
    while (j->n_ev == 0) {
        if (timeout_ms < 0) pthread_cond_wait(&j->cv, &j->mu);
        else if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) != 0) break;
    }
    int rc = QE_ERR;
    if (j->n_ev > 0) {
        *ev = j->ev[j->head++];
        j->n_ev--;
        rc = QE_OK;
    }
    pthread_mutex_unlock(&j->mu);
    return rc;
}

void qe_job_cancel(qe_job *j) {
    pthread_mutex_lock(&j->mu);
    j->cancel = true;
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&j->e->mu);
    pthread_cond_broadcast(&j->e->slot_free);
    pthread_mutex_unlock(&j->e->mu);
}

void qe_job_release(qe_job *j) {
    if (!j) return;
    qe_job_cancel(j);
    job_unref(j);
}

void qe_engine_get_stats(qe_engine *e, qe_engine_stats *st) {
    pthread_mutex_lock(&e->mu);
    *st = e->st;
    st->slots_busy = e->busy;
    st->queue_len = e->queued;
    pthread_mutex_unlock(&e->mu);
}
