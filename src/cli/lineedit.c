/* lineedit.c — the terminal chat's input line on libedit (see lineedit.h).
 *
 * Bracketed paste: libedit does not know it, so we ask the terminal for it (ESC [?2004h while a line is read,
 * ESC [?2004l after, so nothing stays switched on during an answer or after we exit) and bind the start marker
 * ESC [200~ to our own function. That function reads the pasted characters up to the end marker ESC [201~ and
 * inserts them into the line being edited. libedit edits one line: a newline in its buffer would be drawn as ^J,
 * so pasted line breaks and tabs are shown as the marks ↵ and ⇥ while editing and turned back into '\n' and
 * '\t' when the line is sent. The user can still edit around the block and press Enter once: one message. */
#include "lineedit.h"

#include <errno.h>
#include <fcntl.h>
#include <histedit.h>
#include <langinfo.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#define NEWLINE_MARK L'\x21B5' /* ↵ */
#define TAB_MARK L'\x21E5'     /* ⇥ */
#define HISTORY_SIZE 500
#define PASTE_MAX (1 << 20)    /* characters: a bigger paste is cut (the chat would not fit it anyway) */
#define HISTORY_ENTRY_MAX 16384 /* bytes: a longer message (a pasted document) is not kept in the history */

struct cli_lineedit {
    EditLine *el;
    HistoryW *hist;
    char *hist_path;
    wchar_t *wprompt; /* the prompt being shown */
    char *out;        /* the last line read, UTF-8 */
    size_t out_cap;
    wchar_t *paste;   /* scratch of the paste function */
    size_t paste_cap;
};

static wchar_t *prompt_fn(EditLine *el) {
    cli_lineedit *le = NULL;
    el_get(el, EL_CLIENTDATA, &le);
    return le && le->wprompt ? le->wprompt : (wchar_t *)L"";
}

static void terminal_write(const char *s) {
    fputs(s, stdout);
    fflush(stdout);
}

static int paste_push(cli_lineedit *le, size_t *n, wchar_t c) {
    if (*n + 2 > le->paste_cap) {
        if (le->paste_cap >= PASTE_MAX) return 0; /* full: the rest is dropped, the end marker still ends it */
        size_t cap = le->paste_cap ? le->paste_cap * 2 : 1024;
        wchar_t *p = realloc(le->paste, cap * sizeof *p);
        if (!p) return -1;
        le->paste = p;
        le->paste_cap = cap;
    }
    le->paste[(*n)++] = c;
    return 0;
}

/* Bound to ESC [200~: reads up to ESC [201~ and inserts what came between. */
static unsigned char paste_fn(EditLine *el, int ch) {
    (void)ch;
    cli_lineedit *le = NULL;
    el_get(el, EL_CLIENTDATA, &le);
    static const wchar_t end[] = L"\033[201~";
    enum { N_END = 6 };
    wchar_t last[N_END]; /* the last characters read, to see the end marker even when the scratch is full */
    size_t n = 0, n_last = 0;
    wchar_t c, prev = 0;
    while (el_wgetc(el, &c) == 1) {
        if (n_last == N_END) memmove(last, last + 1, --n_last * sizeof *last);
        last[n_last++] = c;
        if (n_last == N_END && wmemcmp(last, end, N_END) == 0) {
            /* the marker's first characters went into the scratch (unless it was full): take them out */
            for (size_t k = N_END - 1; k > 0; k--)
                if (n >= k && wmemcmp(le->paste + n - k, end, k) == 0) { n -= k; break; }
            break;
        }
        if (c == L'\n' && prev == L'\r') { prev = c; continue; } /* CR LF is one line break */
        prev = c;
        wchar_t shown = c == L'\r' || c == L'\n' ? NEWLINE_MARK : c == L'\t' ? TAB_MARK : c;
        if (paste_push(le, &n, shown) < 0) break;
    }
    /* a block ending in a line break (a copied whole line) sends on Enter without an empty last line */
    while (n && le->paste[n - 1] == NEWLINE_MARK) n--;
    if (!n) return CC_NORM;
    le->paste[n] = 0;
    el_winsertstr(el, le->paste);
    return CC_REFRESH;
}

static void history_save(cli_lineedit *le) {
    if (!le->hist || !le->hist_path) return;
    /* 0600: what someone asks a model is nobody else's business */
    int fd = open(le->hist_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    FILE *f = fdopen(fd, "w");
    if (!f) { close(fd); return; }
    HistEventW ev;
    history_w(le->hist, &ev, H_SAVE_FP, f);
    fclose(f);
}

cli_lineedit *cli_lineedit_new(const char *prog, const char *history_path) {
    if (!setlocale(LC_CTYPE, "") || strcmp(nl_langinfo(CODESET), "UTF-8") != 0) setlocale(LC_CTYPE, "C.UTF-8");
    cli_lineedit *le = calloc(1, sizeof *le);
    if (!le) return NULL;
    if (!(le->el = el_init(prog, stdin, stdout, stderr))) { free(le); return NULL; }
    el_set(le->el, EL_CLIENTDATA, le);
    el_set(le->el, EL_EDITOR, "emacs");
    el_wset(le->el, EL_PROMPT, prompt_fn);
    el_wset(le->el, EL_ADDFN, L"qe-paste", L"insert a bracketed paste", paste_fn);
    el_wset(le->el, EL_BIND, L"\033[200~", L"qe-paste", NULL);
    el_wset(le->el, EL_BIND, L"^R", L"em-inc-search-prev", NULL); /* as in bash (libedit: redisplay) */
    if ((le->hist = history_winit())) {
        HistEventW ev;
        history_w(le->hist, &ev, H_SETSIZE, HISTORY_SIZE);
        history_w(le->hist, &ev, H_SETUNIQUE, 1);
        if (history_path && (le->hist_path = strdup(history_path))) history_w(le->hist, &ev, H_LOAD, history_path);
        el_wset(le->el, EL_HIST, history_w, le->hist);
    }
    el_source(le->el, NULL); /* the user's ~/.editrc, as every libedit program */
    return le;
}

void cli_lineedit_free(cli_lineedit *le) {
    if (!le) return;
    if (le->el) el_end(le->el);
    if (le->hist) history_wend(le->hist);
    free(le->hist_path);
    free(le->wprompt);
    free(le->out);
    free(le->paste);
    free(le);
}

/* UTF-8 (NUL-terminated) -> owned wide string; NULL on a bad sequence or no memory. */
static wchar_t *to_wide(const char *s) {
    size_t n = mbstowcs(NULL, s, 0);
    if (n == (size_t)-1) return NULL;
    wchar_t *w = malloc((n + 1) * sizeof *w);
    if (w) mbstowcs(w, s, n + 1);
    return w;
}

int cli_lineedit_read(cli_lineedit *le, const char *prompt, const char **out) {
    free(le->wprompt);
    le->wprompt = to_wide(prompt);
    /* libedit learns a new window size only from its own SIGWINCH handler (EL_SIGNAL), which also takes over SIGINT;
     * we keep SIGINT ours (Ctrl-C stops an answer) and measure the window before each line instead */
    el_resize(le->el);
    terminal_write("\033[?2004h");
    int count = 0;
    errno = 0;
    const wchar_t *line = el_wgets(le->el, &count);
    int saved = errno;
    terminal_write("\033[?2004l");
    if (!line) {
        if (count < 0 && saved == EINTR) { terminal_write("\n"); return -1; } /* Ctrl-C */
        terminal_write("\n");
        return 0;
    }
    size_t cap = (size_t)count * MB_CUR_MAX + 1;
    if (cap > le->out_cap) {
        char *p = realloc(le->out, cap);
        if (!p) return 0;
        le->out = p;
        le->out_cap = cap;
    }
    size_t n = 0;
    mbstate_t st;
    memset(&st, 0, sizeof st);
    for (int i = 0; i < count; i++) {
        wchar_t c = line[i] == NEWLINE_MARK ? L'\n' : line[i] == TAB_MARK ? L'\t' : line[i];
        size_t k = wcrtomb(le->out + n, c, &st);
        if (k == (size_t)-1) { memset(&st, 0, sizeof st); continue; } /* not representable: dropped */
        n += k;
    }
    while (n && (le->out[n - 1] == '\n' || le->out[n - 1] == '\r')) n--; /* the Enter that ended the line */
    le->out[n] = 0;
    *out = le->out;
    return 1;
}

void cli_lineedit_remember(cli_lineedit *le, const char *msg) {
    if (!le->hist || !msg[0] || strlen(msg) > HISTORY_ENTRY_MAX) return;
    wchar_t *w = to_wide(msg);
    if (!w) return;
    /* stored as it was shown: line breaks and tabs as their marks, so a recalled block edits as one line */
    for (wchar_t *p = w; *p; p++)
        if (*p == L'\n') *p = NEWLINE_MARK;
        else if (*p == L'\t') *p = TAB_MARK;
    HistEventW ev;
    history_w(le->hist, &ev, H_ENTER, w);
    free(w);
    history_save(le);
}
