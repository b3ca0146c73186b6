#include "ramp/files.h"
#include "ramp/interrupt.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
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

int rc_atomic_begin(rc_atomic_file *a, const char *path, rc_err *e) {
    snprintf(a->path, sizeof a->path, "%s", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp", path);
    rc_signals_hold(&a->signals);
    a->f = fopen(a->tmp, "w");
    if (a->f) return 0;
    int err = errno;
    rc_signals_release(&a->signals);
    return rc_err_set(e, "cannot write %s: %s", a->tmp, strerror(err));
}

int rc_atomic_commit(rc_atomic_file *a, rc_err *e) {
    int bad = ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int err = errno;
    if (fclose(a->f) != 0 && !bad) bad = 1, err = errno;
    a->f = NULL;
    if (!bad && rename(a->tmp, a->path) != 0) bad = 1, err = errno;
    if (bad) unlink(a->tmp);
    rc_signals_release(&a->signals);
    return bad ? rc_err_set(e, "cannot write %s: %s", a->path, strerror(err)) : 0;
}

void rc_atomic_abort(rc_atomic_file *a) {
    fclose(a->f);
    a->f = NULL;
    unlink(a->tmp);
}
