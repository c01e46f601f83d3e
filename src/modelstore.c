/* modelstore.c — model names, the store folder, list / find / remove (see modelstore.h). No network. */
#include "modelstore.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hf.h"
#include "quant.h"

/* The official Qwen2.5 GGUF repositories (Qwen/Qwen2.5-<S>-Instruct-GGUF) all publish these nine
 * quantizations under the name qwen2.5-<s>-instruct-<quant>.gguf. The bigger ones (7b; 3b fp16) are
 * split into parts named …-<quant>-0000k-of-0000n.gguf; pull_hub.c finds those through the hub's file list. */
static const char *const k_sizes[] = {"0.5b", "1.5b", "3b", "7b"};
static const char *const k_sizes_repo[] = {"0.5B", "1.5B", "3B", "7B"};
static const char *const k_quants[] = {"fp16", "q8_0", "q6_k", "q5_k_m", "q5_0", "q4_k_m", "q4_0", "q3_k_m", "q2_k"};
#define N_SIZES (int)(sizeof k_sizes / sizeof k_sizes[0])
#define N_QUANTS (int)(sizeof k_quants / sizeof k_quants[0])

const char *qe_model_catalog_sizes(void) { return "0.5b 1.5b 3b 7b"; }
const char *qe_model_catalog_quants(void) { return "fp16 q8_0 q6_k q5_k_m q5_0 q4_k_m q4_0 q3_k_m q2_k"; }

static void lower(char *s) { for (; *s; s++) *s = (char)tolower((unsigned char)*s); }

/* A file name we are willing to create in the store: no path separators, no leading dot, printable ASCII
 * from a small set. Hub file names always fit; anything else is refused rather than escaped. */
static bool safe_file_name(const char *s) {
    if (!s[0] || s[0] == '.' || strlen(s) > 200) return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("._-+", *p))) return false;
    return true;
}

static int find_str(const char *const *tab, int n, const char *s) {
    for (int i = 0; i < n; i++) if (!strcmp(tab[i], s)) return i;
    return -1;
}

static int parse_catalog(const char *spec, qe_model_ref *out, char *err) {
    char s[160];
    if (strlen(spec) >= sizeof s) return qe_errf(err, QE_EINVAL, "model name too long: %.40s…", spec);
    snprintf(s, sizeof s, "%s", spec);
    lower(s);
    char *quant = strchr(s, ':');
    if (quant) *quant++ = 0;
    else quant = (char *)QE_DEFAULT_QUANT;
    if (!strcmp(quant, "f16")) quant = (char *)"fp16";
    /* accept "qwen2.5-<size>-instruct" and the short "qwen2.5-<size>" */
    const char *prefix = "qwen2.5-";
    int si = -1;
    if (!strncmp(s, prefix, strlen(prefix))) {
        char size[32];
        snprintf(size, sizeof size, "%s", s + strlen(prefix));
        char *dash = strchr(size, '-');
        if (dash) {
            if (strcmp(dash, "-instruct") != 0) size[0] = 0;
            else *dash = 0;
        }
        si = find_str(k_sizes, N_SIZES, size);
    }
    if (si < 0)
        return qe_errf(err, QE_EINVAL,
                       "unknown model '%s'. Known: qwen2.5-<size>-instruct[:<quant>] with size one of %s and quant "
                       "one of %s; or Owner/Repo/file.gguf (a Hugging Face repo file); or an http(s) URL",
                       spec, qe_model_catalog_sizes(), qe_model_catalog_quants());
    int qi = find_str(k_quants, N_QUANTS, quant);
    if (qi < 0)
        return qe_errf(err, QE_EINVAL, "unknown quantization '%s' for %s: use one of %s", quant, spec,
                       qe_model_catalog_quants());
    snprintf(out->name, sizeof out->name, "qwen2.5-%s-instruct:%s", k_sizes[si], k_quants[qi]);
    snprintf(out->repo, sizeof out->repo, "Qwen/Qwen2.5-%s-Instruct-GGUF", k_sizes_repo[si]);
    snprintf(out->file, sizeof out->file, "qwen2.5-%s-instruct-%s.gguf", k_sizes[si], k_quants[qi]);
    out->official = 1;
    return QE_OK;
}

int qe_model_ref_parse(const char *spec, qe_model_ref *out, char *err) {
    memset(out, 0, sizeof *out);
    if (!spec || !spec[0]) spec = QE_DEFAULT_MODEL;
    if (!strncmp(spec, "http://", 7) || !strncmp(spec, "https://", 8)) {
        if (strlen(spec) >= sizeof out->url) return qe_errf(err, QE_EINVAL, "URL too long");
        snprintf(out->url, sizeof out->url, "%s", spec);
        const char *host = strstr(spec, "://") + 3;
        size_t end = strcspn(host, "?#");
        const char *slash = NULL;
        for (const char *p = host; p < host + end; p++) if (*p == '/') slash = p;
        if (!slash || (size_t)(host + end - slash - 1) >= sizeof out->file)
            return qe_errf(err, QE_EINVAL, "cannot take a file name from the URL %s (it must end in /NAME.gguf)", spec);
        snprintf(out->file, sizeof out->file, "%.*s", (int)(host + end - slash - 1), slash + 1);
        if (!safe_file_name(out->file))
            return qe_errf(err, QE_EINVAL, "the URL's file name '%s' is not a plain file name (letters, digits, . _ - +)",
                           out->file);
        snprintf(out->name, sizeof out->name, "%s", out->file);
        return QE_OK;
    }
    const char *s1 = strchr(spec, '/');
    if (s1) { /* Owner/Repo/file.gguf */
        const char *s2 = strchr(s1 + 1, '/');
        if (!s2 || s1 == spec || s2 == s1 + 1 || strchr(s2 + 1, '/') || (size_t)(s2 - spec) >= sizeof out->repo)
            return qe_errf(err, QE_EINVAL, "'%s': expected Owner/Repo/file.gguf (a file at the top of a hub repository)",
                           spec);
        snprintf(out->repo, sizeof out->repo, "%.*s", (int)(s2 - spec), spec);
        snprintf(out->file, sizeof out->file, "%s", s2 + 1);
        if (!safe_file_name(out->file))
            return qe_errf(err, QE_EINVAL, "'%s' is not a plain file name (letters, digits, . _ - +)", s2 + 1);
        for (const char *p = out->repo; *p; p++)
            if (!(isalnum((unsigned char)*p) || strchr("._-/", *p)))
                return qe_errf(err, QE_EINVAL, "'%s' is not a valid repository name", out->repo);
        snprintf(out->name, sizeof out->name, "%s", spec);
        return QE_OK;
    }
    return parse_catalog(spec, out, err);
}

/* World-writable (sticky or not: others could still create names first), or group-writable unless the group
 * is the owner's own (Debian's user private groups: group = user name, no other members; umask 002). */
static bool writable_by_others(const struct stat *st) {
    if (st->st_mode & S_IWOTH) return true;
    if (!(st->st_mode & S_IWGRP)) return false;
    struct passwd *pw = getpwuid(st->st_uid);
    struct group *gr = getgrgid(st->st_gid);
    if (!pw || !gr || pw->pw_gid != st->st_gid || strcmp(pw->pw_name, gr->gr_name) != 0) return true;
    for (char **m = gr->gr_mem; *m; m++)
        if (strcmp(*m, pw->pw_name) != 0) return true;
    return false;
}

int qe_models_dir(char *out, size_t cap, char *err) {
    const char *home = getenv("QWEN_EDGE_HOME");
    int n;
    if (home && home[0]) n = snprintf(out, cap, "%s", home);
    else {
        const char *h = getenv("HOME");
        if (!h || !h[0]) return qe_errf(err, QE_EINVAL, "neither QWEN_EDGE_HOME nor HOME is set: set QWEN_EDGE_HOME=/some/folder");
        n = snprintf(out, cap, "%s/.local/share/qwen-edge/models", h);
    }
    if (n < 0 || (size_t)n >= cap) return qe_errf(err, QE_ERANGE, "model folder path too long");
    /* mkdir -p; what we create is not writable by group or others, whatever the umask */
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", out);
    for (char *p = tmp + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(tmp, 0755) == 0) {
                struct stat cs;
                if (stat(tmp, &cs) == 0 && (cs.st_mode & 022)) chmod(tmp, cs.st_mode & 07755);
            } else if (errno != EEXIST) {
                return qe_errf(err, QE_EIO, "cannot create the model folder %s: %s (set QWEN_EDGE_HOME to a writable folder)",
                               tmp, strerror(errno));
            }
            *p = c;
            if (!c) break;
        }
    }
    struct stat st;
    if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode))
        return qe_errf(err, QE_EIO, "%s is not a folder (set QWEN_EDGE_HOME to a writable folder)", out);
    /* Like ssh with ~/.ssh: a folder others may write to could get a model (loaded and run by us) or a
     * symbolic link under a name we are about to write slipped in, so it is refused, not used. */
    if (writable_by_others(&st))
        return qe_errf(err, QE_EINVAL, "refusing to use the model folder %s: other users can write to it (mode %04o). "
                       "Run `chmod go-w %s`, or set QWEN_EDGE_HOME to a folder of your own", out,
                       (unsigned)(st.st_mode & 07777), out);
    return QE_OK;
}

static int store_path(const char *file, char *out, size_t cap, char *err) {
    char dir[1024];
    int rc = qe_models_dir(dir, sizeof dir, err);
    if (rc) return rc;
    int n = snprintf(out, cap, "%s/%s", dir, file);
    if (n < 0 || (size_t)n >= cap) return qe_errf(err, QE_ERANGE, "model path too long");
    return QE_OK;
}

static bool is_file(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }

int qe_model_default_path(char *out, size_t cap) {
    qe_model_ref ref;
    int rc = qe_model_ref_parse(NULL, &ref, NULL);
    if (rc) return rc;
    if ((rc = store_path(ref.file, out, cap, NULL))) return rc;
    return is_file(out) ? QE_OK : QE_ENOTFOUND;
}

int qe_model_find_local(const char *spec, char *path, size_t cap, char *err) {
    struct stat st;
    if (spec && spec[0] && stat(spec, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        if (strlen(spec) >= cap) return qe_errf(err, QE_ERANGE, "path too long");
        snprintf(path, cap, "%s", spec);
        return QE_OK;
    }
    qe_model_ref ref;
    char perr[QE_ERR_LEN];
    int rc = qe_model_ref_parse(spec, &ref, perr);
    if (rc == QE_OK) {
        if ((rc = store_path(ref.file, path, cap, err))) return rc;
        if (is_file(path)) return QE_OK;
        return qe_errf(err, QE_ENOTFOUND, "model %s is not downloaded yet: run `qwen-edge pull %s`", ref.name, ref.name);
    }
    /* a bare file name of something in the store (e.g. from `qwen-edge list`) */
    if (spec && safe_file_name(spec)) {
        if ((rc = store_path(spec, path, cap, err))) return rc;
        if (is_file(path)) return QE_OK;
    }
    if (spec && (strchr(spec, '/') || strstr(spec, ".gguf")))
        return qe_errf(err, QE_ENOTFOUND, "%s: no such file", spec);
    return qe_errf(err, QE_ENOTFOUND, "%s", perr);
}

/* "qwen2.5-0.5b-instruct-q8_0.gguf" -> "qwen2.5-0.5b-instruct:q8_0"; anything else keeps its file name. */
static void name_from_file(const char *file, char *name, size_t cap) {
    snprintf(name, cap, "%s", file);
    for (int s = 0; s < N_SIZES; s++)
        for (int q = 0; q < N_QUANTS; q++) {
            char f[128];
            snprintf(f, sizeof f, "qwen2.5-%s-instruct-%s.gguf", k_sizes[s], k_quants[q]);
            if (!strcmp(f, file)) { snprintf(name, cap, "qwen2.5-%s-instruct:%s", k_sizes[s], k_quants[q]); return; }
        }
}

static bool ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && !strcmp(s + n - m, suf);
}

static void read_meta(qe_model_entry *e) {
    char mp[1100];
    snprintf(mp, sizeof mp, "%s.json", e->path);
    json_t *j = json_load_file(mp, 0, NULL);
    if (!j) return;
    const char *s;
    if ((s = json_string_value(json_object_get(j, "sha256")))) snprintf(e->sha256, sizeof e->sha256, "%s", s);
    if ((s = json_string_value(json_object_get(j, "url")))) snprintf(e->url, sizeof e->url, "%s", s);
    if ((s = json_string_value(json_object_get(j, "name"))) && s[0]) snprintf(e->name, sizeof e->name, "%s", s);
    json_decref(j);
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const qe_model_entry *)a)->name, ((const qe_model_entry *)b)->name);
}

int qe_model_list(qe_model_entry **out, int *n, char *err) {
    *out = NULL;
    *n = 0;
    char dir[1024];
    int rc = qe_models_dir(dir, sizeof dir, err);
    if (rc) return rc;
    DIR *d = opendir(dir);
    if (!d) return qe_errf(err, QE_EIO, "%s: %s", dir, strerror(errno));
    qe_model_entry *v = NULL;
    int cnt = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *f = de->d_name;
        int partial = ends_with(f, ".gguf.part");
        if (f[0] == '.' || (!ends_with(f, ".gguf") && !partial)) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            qe_model_entry *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) { free(v); closedir(d); return qe_errf(err, QE_ENOMEM, "out of memory"); }
            v = nv;
        }
        qe_model_entry *e = &v[cnt];
        memset(e, 0, sizeof *e);
        snprintf(e->file, sizeof e->file, "%s", f);
        snprintf(e->path, sizeof e->path, "%s/%s", dir, f);
        struct stat st;
        if (stat(e->path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        e->size = (uint64_t)st.st_size;
        e->mtime = (int64_t)st.st_mtime;
        e->partial = partial;
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(strlen(f) - (partial ? 5 : 0)), f);
        name_from_file(base, e->name, sizeof e->name);
        if (!partial) read_meta(e);
        cnt++;
    }
    closedir(d);
    if (cnt > 1) qsort(v, (size_t)cnt, sizeof *v, cmp_entry);
    *out = v;
    *n = cnt;
    return QE_OK;
}

int qe_model_remove(const char *spec, char *removed_path, size_t cap, char *err) {
    if (!spec || !spec[0]) return qe_errf(err, QE_EINVAL, "which model? (see `qwen-edge list`)");
    char file[256];
    qe_model_ref ref;
    char perr[QE_ERR_LEN];
    if (qe_model_ref_parse(spec, &ref, perr) == QE_OK) snprintf(file, sizeof file, "%s", ref.file);
    else if (safe_file_name(spec)) snprintf(file, sizeof file, "%s", spec);
    else return qe_errf(err, QE_EINVAL, "%s", perr);
    if (ends_with(file, ".part")) file[strlen(file) - 5] = 0;
    char path[1100], aux[1200];
    int rc = store_path(file, path, sizeof path, err);
    if (rc) return rc;
    int removed = 0;
    if (unlink(path) == 0) removed = 1;
    else if (errno != ENOENT) return qe_errf(err, QE_EIO, "cannot remove %s: %s", path, strerror(errno));
    snprintf(aux, sizeof aux, "%s.json", path);
    unlink(aux);
    snprintf(aux, sizeof aux, "%s.part", path);
    if (unlink(aux) == 0) removed = 1;
    if (!removed) return qe_errf(err, QE_ENOTFOUND, "%s is not in the model folder (see `qwen-edge list`)", spec);
    if (removed_path) snprintf(removed_path, cap, "%s", path);
    return QE_OK;
}

int qe_model_write_meta(const char *path, const char *name, const char *url, const char *sha256, uint64_t size) {
    json_t *j = json_object();
    if (!j) return QE_ENOMEM;
    json_object_set_new(j, "name", json_string(name ? name : ""));
    json_object_set_new(j, "url", json_string(url ? url : ""));
    json_object_set_new(j, "sha256", json_string(sha256 ? sha256 : ""));
    json_object_set_new(j, "size", json_integer((json_int_t)size));
    json_object_set_new(j, "pulled_at", json_integer((json_int_t)time(NULL)));
    char mp[PATH_MAX + 8], tmp[PATH_MAX + 16];
    if (strlen(path) >= PATH_MAX) { json_decref(j); return QE_ERANGE; }
    snprintf(mp, sizeof mp, "%s.json", path);
    snprintf(tmp, sizeof tmp, "%s.json.tmp", path);
    /* written beside and renamed over, never through a symbolic link someone left under either name */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    int rc = fd >= 0 && json_dumpfd(j, fd, JSON_INDENT(2)) == 0 ? QE_OK : QE_EIO;
    if (fd >= 0 && close(fd) != 0) rc = QE_EIO;
    if (rc == QE_OK && rename(tmp, mp) != 0) rc = QE_EIO;
    if (rc != QE_OK && fd >= 0) unlink(tmp);
    json_decref(j);
    return rc;
}

/* ---- the cache of Hugging Face folders converted to GGUF ------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int qe_hf_cache_path(const char *dir, int out_type, char *out, size_t cap, char *err) {
    char real[PATH_MAX];
    if (!realpath(dir, real)) return qe_errf(err, QE_EIO, "%s: %s", dir, strerror(errno));
    uint64_t h = 0xcbf29ce484222325ull;
    const char *version = "qwen-edge-hf-v1";
    h = fnv(h, version, strlen(version));
    h = fnv(h, real, strlen(real) + 1);
    h = fnv(h, &out_type, sizeof out_type);
    /* every .json and .safetensors file: name, size, mtime (sorted, so readdir order does not matter) */
    DIR *d = opendir(real);
    if (!d) return qe_errf(err, QE_EIO, "%s: %s", real, strerror(errno));
    char *names[1024];
    int nn = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nn < 1024) {
        size_t l = strlen(de->d_name);
        if ((l > 5 && !strcmp(de->d_name + l - 5, ".json")) || (l > 12 && !strcmp(de->d_name + l - 12, ".safetensors")))
            if (!(names[nn++] = strdup(de->d_name))) nn--;
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof *names, cmp_str);
    for (int i = 0; i < nn; i++) {
        char p[PATH_MAX + 256];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", real, names[i]);
        h = fnv(h, names[i], strlen(names[i]) + 1);
        if (stat(p, &st) == 0) {
            int64_t v[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
            h = fnv(h, v, sizeof v);
        }
        free(names[i]);
    }
    char store[PATH_MAX];
    int rc = qe_models_dir(store, sizeof store, err);
    if (rc) return rc;
    char cache[PATH_MAX + 8];
    snprintf(cache, sizeof cache, "%s/cache", store);
    if (mkdir(cache, 0755) != 0 && errno != EEXIST) return qe_errf(err, QE_EIO, "cannot create %s: %s", cache, strerror(errno));
    /* a readable prefix: the folder's name with anything unusual replaced */
    const char *base = strrchr(real, '/');
    base = base && base[1] ? base + 1 : "model";
    char safe[64];
    int k = 0;
    for (const char *s = base; *s && k < 48; s++) safe[k++] = (char)((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ? *s : '_');
    safe[k] = 0;
    const char *tn = out_type < 0 ? "keep" : qe_type_name(out_type);
    int n = snprintf(out, cap, "%s/%s-%s-%016llx.gguf", cache, safe, tn, (unsigned long long)h);
    if (n < 0 || (size_t)n >= cap) return qe_errf(err, QE_ERANGE, "cache path too long");
    return QE_OK;
}

int qe_hf_convert_cached(const char *dir, int out_type, char *path_out, size_t cap, char *err) {
    int rc = qe_hf_cache_path(dir, out_type, path_out, cap, err);
    if (rc) return rc;
    struct stat st;
    if (stat(path_out, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) return QE_OK;
    qe_hf_config cfg;
    if ((rc = qe_hf_read_config(dir, &cfg, err))) return rc; /* fail before announcing a conversion */
    qe_log(QE_LOG_INFO, "converting %s to GGUF (%s), once: %s", dir, out_type < 0 ? "weights as stored" : qe_type_name(out_type), path_out);
    return qe_hf_to_gguf(dir, path_out, out_type, err);
}
