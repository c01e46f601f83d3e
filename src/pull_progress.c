/* pull_progress.c — the ready-made progress callback of pull.h (a redrawn bar with bytes, speed and ETA on
 * a terminal, one line every 10 % otherwise) and byte counts for people ("1.2 GB").
 *
 * Not here: when the callback is called (pull.c's on_xferinfo), the download itself (pull.c). */
#include "pull_internal.h"

#include <stdio.h>
#include <unistd.h>

void pull_human(uint64_t b, char *out, size_t cap) {
    if (b >= (1ull << 30)) snprintf(out, cap, "%.2f GB", b / 1073741824.0);
    else if (b >= (1ull << 20)) snprintf(out, cap, "%.1f MB", b / 1048576.0);
    else snprintf(out, cap, "%.0f KB", b / 1024.0);
}

/* ---------------------------------------------------------------------------------------------------
 * progress on stderr */

void qe_pull_progress_end(qe_pull_progress_state *s) {
    if (s && s->line_open) { fputc('\n', stderr); s->line_open = 0; }
}

void qe_pull_progress_stderr(void *user, uint64_t done, uint64_t total) {
    qe_pull_progress_state *s = user;
    double now = qe_now();
    if (!s->started) {
        s->started = 1;
        s->t0 = now;
        s->start_done = done; /* resumed bytes do not count toward the speed */
        s->tty = isatty(2);
        s->last_decile = -1;
    }
    if (done < s->last_done) s->start_done = done; /* a restart from zero, or the next part */
    int finished = total && done >= total;
    if (finished && s->last_done == done && !s->line_open && s->last_draw > 0) return; /* already drawn */
    s->last_done = done;
    double dt = now - s->t0;
    double speed = dt > 0.2 ? (double)(done - s->start_done) / dt : 0;
    char a[32], b[32], sp[32];
    pull_human(done, a, sizeof a);
    pull_human(total, b, sizeof b);
    pull_human((uint64_t)speed, sp, sizeof sp);
    const char *label = s->label ? s->label : "", *gap = s->label ? " " : "";
    if (s->tty) {
        if (now - s->last_draw < 0.1 && !finished) return;
        s->last_draw = now;
        char eta[32] = "";
        if (total && speed > 0 && !finished) {
            int left = (int)((double)(total - done) / speed);
            snprintf(eta, sizeof eta, "  ETA %d:%02d", left / 60, left % 60);
        }
        if (total) {
            int pct = (int)(100.0 * (double)done / (double)total), w = 30, fill = pct * w / 100;
            char bar[40];
            for (int i = 0; i < w; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
            bar[w] = 0;
            fprintf(stderr, "\r\033[K%s%s%3d%% [%s] %s / %s  %s/s%s", label, gap, pct, bar, a, b, sp, eta);
        } else {
            fprintf(stderr, "\r\033[K%s%s%s  %s/s", label, gap, a, sp);
        }
        s->line_open = 1;
        if (finished) qe_pull_progress_end(s);
        fflush(stderr);
    } else if (total) {
        int decile = (int)(10.0 * (double)done / (double)total);
        if (decile == s->last_decile) return;
        s->last_decile = decile;
        s->last_draw = now;
        fprintf(stderr, "%s%s%d%% (%s of %s, %s/s)\n", label, gap, decile * 10, a, b, sp);
    }
}
