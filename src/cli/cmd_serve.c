/* cmd_serve.c — `qwen-edge serve`: parses the options, starts listening at once (so /health can say
 * "loading"), loads the model, starts the engine, then waits for SIGINT/SIGTERM and shuts down gracefully:
 * no new connections, running answers get a few seconds, then the rest are canceled. */
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base.h"
#include "commands.h"
#include "cli_util.h"
#include "engine.h"
#include "model.h"
#include "pull.h"
#include "server/server.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: qwen-edge serve [-m MODEL] [options]\n"
            "\n"
            "Serves a chat page at http://HOST:PORT/ and an OpenAI- and ollama-compatible API:\n"
            "  POST /v1/chat/completions  POST /v1/completions  GET /v1/models\n"
            "  POST /api/chat  POST /api/generate  GET /api/tags  GET /api/version  POST /api/show\n"
            "  GET /health  GET /metrics (Prometheus)\n"
            "\n"
            "options:\n"
            "  -m, --model MODEL      a GGUF file, a Hugging Face folder, a model name or a URL\n"
            "                         (default: the default model, downloaded on the first run)\n"
            "      --host ADDR        address to listen on (default 127.0.0.1; 0.0.0.0 = every interface:\n"
            "                         then set an API key, see docs/SERVER.md)\n"
            "      --port N           port (default 8080; 0 = any free port, printed at start)\n"
            "      --api-key KEY      require 'Authorization: Bearer KEY' on every route but the page and\n"
            "                         /health (default: env QWEN_EDGE_API_KEY; the page asks for it);\n"
            "                         may be given several times\n"
            "      --api-key-file FILE  the keys, one per line ('#' comments and blank lines ignored);\n"
            "                         unlike --api-key, they do not show in 'ps'. Several keys are several\n"
            "                         tenants whose prompt caches are kept apart (a request may also send\n"
            "                         \"cache_salt\"). Wrong keys: 10 per address, then one per 3 s (else 429)\n"
            "  -c, --ctx N            context per conversation in tokens, 16 to 1048576 (default 4096)\n"
            "      --parallel N       conversations answered at once (default 4)\n"
            "  -t, --threads N        compute threads, 1 to 256 (default: physical cores)\n"
            "      --cors ORIGIN      allow browser pages from ORIGIN ('*' = any) to call the API\n"
            "                         (default: same origin only; other pages get 403)\n"
            "      --memory-rounds N  earlier rounds of a chat the model sees besides the question (default 3;\n"
            "                         0 = all); a request may set its own with \"memory_rounds\"\n"
            "      --max-queue N      requests waiting for a free slot before 429 (default 32)\n"
            "      --max-body BYTES   largest request body (default 4194304)\n"
            "      --header-timeout S seconds a client has to send a request's headers (default 10)\n"
            "      --quiet            no access log\n"
            "  -h, --help             this text\n");
}

static int int_arg(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "qwen-edge serve: %s needs a number from %ld to %ld (got '%s')\n", opt, lo, hi, v ? v : "");
        return -1;
    }
    *out = x;
    return 0;
}

/* The API keys, copied (the server keeps only their hashes, and the copies are wiped when it has them). */
#define MAX_CLI_KEYS 16
typedef struct {
    char **k;
    int n;
} key_list;

static int key_add(key_list *l, const char *key) {
    char **p = realloc(l->k, sizeof *p * (size_t)(l->n + 1));
    if (p) l->k = p;
    if (!p || !(l->k[l->n] = strdup(key))) {
        fprintf(stderr, "qwen-edge serve: out of memory\n");
        return -1;
    }
    l->n++;
    return 0;
}

static void key_list_free(key_list *l) {
    for (int i = 0; i < l->n; i++) {
        memset(l->k[i], 0, strlen(l->k[i]));
        free(l->k[i]);
    }
    free(l->k);
    l->k = NULL;
    l->n = 0;
}

/* One key per line; blank lines and lines starting with '#' are skipped, spaces around a key ignored. A file
 * without any key is an error: starting without authentication because of an empty file would be a surprise. */
static int read_key_file(const char *path, key_list *l) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "qwen-edge serve: --api-key-file %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 0044))
        fprintf(stderr, "qwen-edge serve: warning: %s is readable by other users (chmod 600 it)\n", path);
    char line[4096];
    int n0 = l->n, lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
            fprintf(stderr, "qwen-edge serve: --api-key-file %s: line %d is longer than %zu bytes\n", path, lineno,
                    sizeof line - 2);
            rc = -1;
            break;
        }
        char *a = line;
        while (*a == ' ' || *a == '\t') a++;
        while (n > 0 && strchr("\r\n \t", line[n - 1])) line[--n] = 0;
        if (!*a || *a == '#') continue;
        for (const char *p = a; *p; p++)
            if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
                fprintf(stderr, "qwen-edge serve: --api-key-file %s: line %d: a key may not contain spaces or control "
                        "characters\n", path, lineno);
                rc = -1;
                break;
            }
        if (rc) break;
        if (key_add(l, a)) { rc = -1; break; }
    }
    if (!rc && ferror(f)) {
        fprintf(stderr, "qwen-edge serve: --api-key-file %s: cannot read: %s\n", path, strerror(errno));
        rc = -1;
    }
    fclose(f);
    memset(line, 0, sizeof line);
    if (!rc && l->n == n0) {
        fprintf(stderr, "qwen-edge serve: --api-key-file %s holds no key (one per line; '#' starts a comment)\n", path);
        rc = -1;
    }
    return rc;
}

/* After the server could not listen: true if that is because something else has host:port (binding a socket of
 * our own there fails with EADDRINUSE), so the hint to pick another port is the right one. */
static bool port_in_use(const char *host, int port) {
    if (port <= 0) return false;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    if (getaddrinfo(host, ps, &hints, &ai) != 0 || !ai) return false;
    bool used = false;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd >= 0) {
        int one = 1; /* as the server binds: a port in TIME_WAIT is free */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        used = bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE;
        close(fd);
    }
    freeaddrinfo(ai);
    return used;
}

static char *model_id_from_path(const char *path) {
    const char *b = strrchr(path, '/');
    b = b && b[1] ? b + 1 : path;
    char *id = strdup(b);
    if (!id) return NULL;
    size_t n = strlen(id);
    if (n > 5 && !strcasecmp(id + n - 5, ".gguf")) id[n - 5] = 0;
    else if (n > 1 && id[n - 1] == '/') id[n - 1] = 0;
    return id;
}

int cmd_serve(int argc, char **argv) {
    qe_server_opts so = {.host = "127.0.0.1", .port = 8080, .memory_rounds = 3};
    const char *model_path = NULL;
    long n_ctx = 0, n_parallel = 0, n_threads = 0, v;
    const char *cli_keys[MAX_CLI_KEYS], *key_file = NULL;
    int n_cli_keys = 0;
    key_list keys = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(s, l) (!strcmp(a, s) || !strcmp(a, l))
        if (OPT("-h", "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--quiet")) so.quiet = true;
        else if (!val) { fprintf(stderr, "qwen-edge serve: %s: missing value or unknown option (see --help)\n", a); return 2; }
        else if (OPT("-m", "--model")) { model_path = val; i++; }
        else if (!strcmp(a, "--host")) { so.host = val; i++; }
        else if (!strcmp(a, "--port")) { if (int_arg(a, val, 0, 65535, &v)) return 2; so.port = (int)v; i++; }
        else if (!strcmp(a, "--api-key")) {
            if (n_cli_keys == MAX_CLI_KEYS) {
                fprintf(stderr, "qwen-edge serve: more than %d --api-key: use --api-key-file\n", MAX_CLI_KEYS);
                return 2;
            }
            cli_keys[n_cli_keys++] = val;
            i++;
        }
        else if (!strcmp(a, "--api-key-file")) { key_file = val; i++; }
        else if (!strcmp(a, "--cors")) { so.cors_origin = val; i++; }
        else if (OPT("-c", "--ctx")) { if (int_arg(a, val, CLI_CTX_MIN, CLI_CTX_MAX, &n_ctx)) return 2; i++; }
        else if (!strcmp(a, "--parallel")) { if (int_arg(a, val, 1, 256, &n_parallel)) return 2; i++; }
        else if (OPT("-t", "--threads")) { if (int_arg(a, val, 1, CLI_THREADS_MAX, &n_threads)) return 2; i++; }
        else if (!strcmp(a, "--memory-rounds")) { if (int_arg(a, val, 0, CLI_ROUNDS_MAX, &v)) return 2; so.memory_rounds = (int)v; i++; }
        else if (!strcmp(a, "--max-queue")) { if (int_arg(a, val, 1, 100000, &v)) return 2; so.max_queue = (int)v; i++; }
        else if (!strcmp(a, "--header-timeout")) { if (int_arg(a, val, 1, 3600, &v)) return 2; so.header_timeout_s = (double)v; i++; }
        else if (!strcmp(a, "--max-body")) { if (int_arg(a, val, 1024, 1L << 30, &v)) return 2; so.max_body = (size_t)v; i++; }
        else { fprintf(stderr, "qwen-edge serve: unknown option '%s' (see --help)\n", a); return 2; }
#undef OPT
    }
    for (int i = 0; i < n_cli_keys; i++)
        if (key_add(&keys, cli_keys[i])) goto bad_keys;
    if (key_file && read_key_file(key_file, &keys)) goto bad_keys;
    /* the environment's key only when none is given on the command line */
    const char *env_key = getenv("QWEN_EDGE_API_KEY");
    if (keys.n == 0 && env_key && env_key[0] && key_add(&keys, env_key)) goto bad_keys;
    so.api_keys = (const char *const *)keys.k;
    so.n_api_keys = keys.n;

    /* Signals are taken by sigwait below, in this thread only: block them before any thread starts so the
     * server's threads inherit the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[QE_ERR_LEN] = "";
    qe_server *srv = NULL;
    qe_model *model = NULL;
    qe_engine *eng = NULL;
    char *model_id = NULL;
    int rc = 1;
    /* a missing file or an unusable model folder is said before anything listens (the download of a model
     * that is not there yet happens after, while /health says "loading") */
    if (qe_model_precheck(model_path, err)) {
        cli_error("qwen-edge serve: cannot load the model", err);
        key_list_free(&keys);
        return 1;
    }
    int started = qe_server_start(&so, &srv, err);
    key_list_free(&keys); /* the server keeps only their hashes */
    so.api_keys = NULL;
    if (started) {
        fprintf(stderr, "qwen-edge serve: %s\n", err);
        if (port_in_use(so.host, so.port))
            fprintf(stderr, "qwen-edge serve: port %d is taken (another qwen-edge serve?): choose another one with --port N,\n"
                            "qwen-edge serve: e.g. --port %d, or --port 0 for any free port\n", so.port, so.port < 65535 ? so.port + 1 : 8081);
        return 1;
    }
    const char *shown = !strcmp(so.host, "0.0.0.0") || !strcmp(so.host, "::") ? "localhost" : so.host;
    fprintf(stderr, "qwen-edge: listening on http://%s%s%s:%d/ (loading %s)\n", strchr(shown, ':') ? "[" : "", shown,
            strchr(shown, ':') ? "]" : "", qe_server_port(srv), model_path ? model_path : "the default model");
    if (!qe_server_loopback(srv) && so.n_api_keys == 0)
        fprintf(stderr,
                "qwen-edge: WARNING: listening on %s without an API key: anyone who can reach this port can use the\n"
                "qwen-edge: WARNING: model. Set one with --api-key KEY (or env QWEN_EDGE_API_KEY), or listen on\n"
                "qwen-edge: WARNING: 127.0.0.1 only (in a container: publish the port as 127.0.0.1:8080:8080).\n",
                so.host);
    double t0 = qe_now();
    /* -m: a file, a Hugging Face folder, a model name or URL, or nothing (the default model, downloaded on the
     * first run); /health says "loading" meanwhile */
    char resolved[4096];
    if (qe_model_resolve(model_path, -1, 0, resolved, sizeof resolved, err) || qe_model_load(resolved, &model, err)) {
        cli_error("qwen-edge serve: cannot load the model", err);
        goto out;
    }
    qe_engine_opts eo = {.n_threads = (int)n_threads, .n_ctx = (int)n_ctx, .n_parallel = (int)n_parallel};
    if (qe_engine_new(model, &eo, &eng, err)) {
        fprintf(stderr, "qwen-edge serve: cannot start the engine: %s\n", err);
        goto out;
    }
    model_id = model_id_from_path(resolved);
    qe_server_set_ready(srv, model, eng, model_id);
    fprintf(stderr, "qwen-edge: ready in %.1fs — model %s, context %d, chat page http://%s%s%s:%d/%s\n", qe_now() - t0,
            model_id, qe_engine_n_ctx(eng), strchr(shown, ':') ? "[" : "", shown, strchr(shown, ':') ? "]" : "",
            qe_server_port(srv),
            so.n_api_keys > 1 ? " (API keys required)" : so.n_api_keys ? " (API key required)" : "");
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "qwen-edge: %s, shutting down\n", sig == SIGINT ? "interrupted" : "terminated");
    rc = 0;
out:
    qe_server_stop(srv);
    qe_server_free(srv);
    qe_engine_free(eng);
    qe_model_free(model);
    free(model_id);
    return rc;
bad_keys:
    key_list_free(&keys);
    return 2;
}
