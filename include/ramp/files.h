/* Files the program writes: directories made as needed, and files written atomically (a
 * temporary file beside the target, synced, renamed over it), so that a crash or a failed write
 * never leaves a partial file under the real name. Every file the program writes whole (config,
 * reports, plots, checkpoints, the kernel binary cache) goes through rc_atomic_*. */
#ifndef RAMP_FILES_H
#define RAMP_FILES_H

#include "ramp/error.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

/* mkdir -p. Returns 0, or -1 with errno set. */
int rc_mkdir_p(const char *path);

typedef struct rc_atomic_file {
    FILE *f;          /* write here (opened "wb") */
    char *path;       /* the target */
    char *tmp;        /* "<path>.tmp-<pid>-<n>", created exclusively */
    int err;          /* errno of the first failed rc_atomic_write, or 0 */
    sigset_t signals; /* SIGINT/SIGTERM are held from begin to commit or abort */
} rc_atomic_file;

/* Create the temporary file (mode 0666 less the umask, as fopen gives) and hold the signals. */
int rc_atomic_begin(rc_atomic_file *a, const char *path, rc_err *e);
/* fwrite that remembers the first failure's errno for the commit's message. Returns 0 or -1. */
int rc_atomic_write(rc_atomic_file *a, const void *data, size_t n);
/* Flush, sync, close and rename; on any failure the temporary file is removed, nothing replaces
 * the target, and the message names the target, the step that failed and errno's text. */
int rc_atomic_commit(rc_atomic_file *a, rc_err *e);
/* Close and remove the temporary file: the target is left as it was. */
void rc_atomic_abort(rc_atomic_file *a);

#endif
