/* assets.h — the chat page's files, embedded in the binary at build time (mk/web.mk generates
 * build/gen/web_assets.c from web/ and the npm libraries it bundles). */
#pragma once
#include <stddef.h>

typedef struct {
    const char *path;          /* URL path, e.g. "/app.js" */
    const char *content_type;
    const unsigned char *data; /* borrowed, static */
    size_t len;
    const char *etag;          /* quoted, from the file's checksum */
    int vendor;                /* third-party library: cacheable for a day */
} qe_asset;

/* The asset for a URL path ("/" is "/index.html"), or NULL. */
const qe_asset *qe_asset_find(const char *path);
