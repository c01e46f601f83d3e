/* modelstore.h — where downloaded models live and what their names mean. No network here (pull.h does
 * the downloading); this file maps a user's spec ("qwen2.5-0.5b-instruct:q4_k_m", "Owner/Repo/file.gguf",
 * "https://…/x.gguf") to a hub repository + file name, and lists / finds / removes files in the store.
 *
 * The store is one flat folder: $QWEN_EDGE_HOME, default ~/.local/share/qwen-edge/models. Each model is
 * the hub's own file name (e.g. qwen2.5-0.5b-instruct-q8_0.gguf) plus a sidecar <file>.json written by
 * pull (source URL, sha256, size). A download in progress is <file>.part; it never has the final name.
 * $QWEN_EDGE_HOME/cache/ holds GGUF files converted from Hugging Face folders (hf.h does the conversion; the
 * cache, its names and when to convert are decided here). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "base.h"

#define QE_DEFAULT_MODEL "qwen2.5-0.5b-instruct"
#define QE_DEFAULT_QUANT "q8_0"

typedef enum { QE_SOURCE_HF = 0, QE_SOURCE_MODELSCOPE = 1 } qe_source;

/* A parsed model spec. Exactly one of (repo, file) or url is the download address. */
typedef struct {
    char name[160];   /* canonical name: "qwen2.5-0.5b-instruct:q8_0", "Owner/Repo/file.gguf", or the URL's file */
    char repo[160];   /* hub repository "Qwen/Qwen2.5-0.5B-Instruct-GGUF"; empty for a URL */
    char file[256];   /* file name in the repo and in the store: "qwen2.5-0.5b-instruct-q8_0.gguf" */
    char url[2048];   /* set (and repo empty) when the spec was an http(s) URL */
    int official;     /* 1 for a name from the built-in Qwen2.5 catalog */
} qe_model_ref;

/* Parses a spec. NULL or "" means the default model. Names are case-insensitive; the quantization after ':'
 * defaults to q8_0. Unknown names give QE_EINVAL with the list of known ones in err. */
int qe_model_ref_parse(const char *spec, qe_model_ref *out, char *err);

/* The store folder ($QWEN_EDGE_HOME or ~/.local/share/qwen-edge/models), created if missing (what is created
 * is not group- or world-writable, whatever the umask). QE_EINVAL, saying `chmod go-w`, when other users can
 * write to it: a model or a symbolic link slipped in there would be loaded or written through. */
int qe_models_dir(char *out, size_t cap, char *err);

/* Path of the default model's file in the store. Returns QE_OK if the file is there, QE_ENOTFOUND if not
 * (out is filled either way), another negative code if the store folder cannot be made. */
int qe_model_default_path(char *out, size_t cap);

/* If spec names an existing file on disk, or a model already in the store, writes its path and returns
 * QE_OK; QE_ENOTFOUND otherwise (err says what to run to get it). */
int qe_model_find_local(const char *spec, char *path, size_t cap, char *err);

typedef struct {
    char name[160];   /* canonical name when the file is from the catalog, else the file name */
    char file[256];
    char path[1024];
    uint64_t size;
    int64_t mtime;
    char sha256[65];  /* from the sidecar; "" if unknown */
    char url[1024];   /* where it came from; "" if unknown */
    int partial;      /* 1 for an unfinished download (<file>.part) */
} qe_model_entry;

/* Lists the store: *.gguf files and unfinished *.part downloads, sorted by name. *out is owned (free()). */
int qe_model_list(qe_model_entry **out, int *n, char *err);

/* Removes a stored model (by spec or file name) with its sidecar and any .part. QE_ENOTFOUND if absent. */
int qe_model_remove(const char *spec, char *removed_path, size_t cap, char *err);

/* Sidecar: writes <path>.json describing a finished download; best effort (returns QE_OK or QE_EIO). */
int qe_model_write_meta(const char *path, const char *name, const char *url, const char *sha256, uint64_t size);

/* For help texts: "0.5b 1.5b 3b 7b" and "fp16 q8_0 …". */
const char *qe_model_catalog_sizes(void);
const char *qe_model_catalog_quants(void);

/* The cache file for a Hugging Face folder (dir, out_type): $QWEN_EDGE_HOME/cache/<folder>-<type>-<key>.gguf,
 * where key hashes the folder's real path and the size and mtime of each file it reads, so editing the folder
 * makes a new conversion. out_type as for qe_hf_to_gguf (-1 keeps the stored types). Creates the cache folder. */
int qe_hf_cache_path(const char *dir, int out_type, char *out, size_t cap, char *err);

/* For `-m DIR` (qe_model_resolve): path_out = the cached GGUF of dir, converting first if it is not there yet. */
int qe_hf_convert_cached(const char *dir, int out_type, char *path_out, size_t cap, char *err);
