/* mapfile.c — open + mmap read-only (see mapfile.h). The mapping is private and read-only, so the page
 * cache is shared between processes that load the same model and pages are loaded on first touch. */
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int qe_mapfile_open(const char *path, qe_mapfile *map, char *err) {
    memset(map, 0, sizeof *map);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return qe_errf(err, QE_ENOTFOUND, "%s: no such file", path);
        return qe_errf(err, QE_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return qe_errf(err, QE_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) { close(fd); return qe_errf(err, QE_EINVAL, "%s: is a directory, not a file", path); }
    if (!S_ISREG(st.st_mode)) { close(fd); return qe_errf(err, QE_EINVAL, "%s: not a regular file", path); }
    if (st.st_size == 0) { close(fd); return qe_errf(err, QE_EFORMAT, "%s: file is empty", path); }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return qe_errf(err, QE_EIO, "%s: cannot map %lld bytes: %s", path, (long long)st.st_size, strerror(e));
    }
    close(fd); /* the mapping keeps the file alive */
    map->data = p;
    map->size = (uint64_t)st.st_size;
    return QE_OK;
}

void qe_mapfile_close(qe_mapfile *map) {
    if (!map) return;
    if (map->data) munmap((void *)map->data, (size_t)map->size);
    map->data = NULL;
    map->size = 0;
}
