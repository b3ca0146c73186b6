/* Helpers shared by the libFuzzer harnesses: readers that only take paths get the fuzz input
 * through files in a directory of this process's own under $TMPDIR (or /tmp), removed at exit. */
#ifndef RAMP_FUZZ_UTIL_H
#define RAMP_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_dir[4096];
static const char *fuzz_files[8];
static int fuzz_n_files;

static inline void fuzz_die(const char *what) {
    perror(what);
    abort();
}

static inline void fuzz_cleanup(void) {
    char path[4200];
    for (int i = 0; i < fuzz_n_files; i++) {
        snprintf(path, sizeof path, "%s/%s", fuzz_dir, fuzz_files[i]);
        unlink(path);
    }
    rmdir(fuzz_dir);
}

/* Creates the directory on the first call; `files` lists every name fuzz_write will be given. */
static inline const char *fuzz_tmpdir(const char *tag, const char *const *files, int n_files) {
    if (fuzz_dir[0]) return fuzz_dir;
    const char *base = getenv("TMPDIR");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/ramp-fuzz-%s-XXXXXX", base && *base ? base : "/tmp",
             tag);
    if (!mkdtemp(fuzz_dir)) fuzz_die(fuzz_dir);
    for (int i = 0; i < n_files && i < 8; i++) fuzz_files[fuzz_n_files++] = files[i];
    atexit(fuzz_cleanup);
    return fuzz_dir;
}

/* Writes n bytes to <fuzz_dir>/<name> and puts that path in out. */
static inline void fuzz_write(char *out, size_t cap, const char *name, const uint8_t *p, size_t n) {
    snprintf(out, cap, "%s/%s", fuzz_dir, name);
    FILE *f = fopen(out, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) fuzz_die(out);
}

/* A failing reader must say why: an empty message would reach the user as a blank line. */
static inline void fuzz_check_message(const char *msg) {
    if (!msg[0]) {
        fprintf(stderr, "the reader failed with an empty message\n");
        abort();
    }
}

#endif
