#include "ramp/files.h"
#include "ramp/interrupt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int rc_mkdir_p(const char *path) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p) continue;
        char c = *p;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        if (!c) return 0;
        *p = '/';
    }
}

/* Open a new temporary file beside a->path. The name carries the pid and a clock-derived number
 * so that concurrent writers (two processes sharing a kernel cache) never share one; O_EXCL makes
 * a collision a retry, not a clobber. Mode 0666 under the umask: the same as fopen's files. */
static int open_tmp(rc_atomic_file *a, size_t cap) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long n = (unsigned long long)ts.tv_nsec ^ (unsigned long long)ts.tv_sec << 20;
    for (int attempt = 0; attempt < 100; attempt++, n = n * 6364136223846793005ULL + 1) {
        snprintf(a->tmp, cap, "%s.tmp-%ld-%llx", a->path, (long)getpid(), n >> 40);
        int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

int rc_atomic_begin(rc_atomic_file *a, const char *path, rc_err *e) {
    memset(a, 0, sizeof *a);
    size_t len = strlen(path), cap = len + 64;
    a->path = malloc(len + 1);
    a->tmp = malloc(cap);
    if (!a->path || !a->tmp) {
        free(a->path), free(a->tmp);
        return rc_err_set(e, "%s: out of host memory", path);
    }
    memcpy(a->path, path, len + 1);
    rc_signals_hold(&a->signals);
    int fd = open_tmp(a, cap);
    const char *what = "cannot create a temporary file";
    if (fd >= 0) {
        what = "fdopen of the temporary file failed";
        a->f = fdopen(fd, "wb");
        if (a->f) return 0;
    }
    int err = errno;
    if (fd >= 0) close(fd), unlink(a->tmp);
    rc_signals_release(&a->signals);
    rc_err_set(e, "%s: %s: %s", path, what, strerror(err));
    free(a->path), free(a->tmp);
    a->path = a->tmp = NULL;
    return -1;
}

int rc_atomic_write(rc_atomic_file *a, const void *data, size_t n) {
    if (a->err) return -1;
    if (n == 0 || fwrite(data, 1, n, a->f) == n) return 0;
    a->err = errno ? errno : EIO;
    return -1;
}

static void release(rc_atomic_file *a) {
    rc_signals_release(&a->signals);
    free(a->path), free(a->tmp);
    a->path = a->tmp = NULL;
    a->f = NULL;
}

int rc_atomic_commit(rc_atomic_file *a, rc_err *e) {
    /* errno of a failed fprintf is still set when nothing since has failed; EIO otherwise */
    const char *step = "writing";
    int err = a->err ? a->err : errno ? errno : EIO;
    int ok = !a->err && !ferror(a->f);
    if (ok) {
        step = "flushing";
        ok = fflush(a->f) == 0;
        err = errno;
    }
    if (ok) {
        step = "syncing";
        ok = fsync(fileno(a->f)) == 0;
        err = errno;
    }
    if (fclose(a->f) != 0 && ok) {
        step = "closing";
        ok = 0;
        err = errno;
    }
    if (ok && rename(a->tmp, a->path) != 0) {
        step = "renaming the temporary file over it";
        ok = 0;
        err = errno;
    }
    if (!ok) {
        unlink(a->tmp);
        rc_err_set(e, "%s: %s failed: %s", a->path, step, strerror(err));
    }
    release(a);
    return ok ? 0 : -1;
}

void rc_atomic_abort(rc_atomic_file *a) {
    fclose(a->f);
    unlink(a->tmp);
    release(a);
}
