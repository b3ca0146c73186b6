/* Files the program writes: directories made as needed, and text files written atomically (a
 * temporary file beside the target, synced, renamed over it), so that a crash or a failed write
 * never leaves a partial file under the real name. */
#ifndef RAMP_FILES_H
#define RAMP_FILES_H

#include "ramp/error.h"

#include <signal.h>
#include <stdio.h>

/* mkdir -p. Returns 0, or -1 with errno set. */
int rc_mkdir_p(const char *path);

typedef struct rc_atomic_file {
    FILE *f; /* write here */
    char path[1100], tmp[1120];
    sigset_t signals; /* SIGINT/SIGTERM are held from begin to commit */
} rc_atomic_file;

int rc_atomic_begin(rc_atomic_file *a, const char *path, rc_err *e);
/* Sync, close and rename; on any failure the temporary file is removed and nothing replaces
 * the target. */
int rc_atomic_commit(rc_atomic_file *a, rc_err *e);
/* Close and remove the temporary file: the target is left as it was. */
void rc_atomic_abort(rc_atomic_file *a);

#endif
