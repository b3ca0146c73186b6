/* A training run's directory (output.dir) and what it may write there.
 *
 * A run owns its directory for its whole life through an advisory lock on DIR/.ramp-cl.lock
 * (fcntl, so it also holds across NFS clients) that records the holder's pid and host: a second
 * run in the same directory is refused, naming them. The kernel drops the lock when its holder
 * dies; the file it leaves behind tells the next run that it takes over a stale lock.
 *
 * A run never writes over a file the user wrote (a config.yaml without ramp-cl's first line) or
 * over the checkpoint it starts from, and the eval command writes the report of a checkpoint
 * other than the run's own model under a name of its own. A resumed run checks that its config is
 * the one its checkpoint recorded: only the keys that cannot change the trained weights may
 * differ, and only when the user accepts them by name. */
#ifndef RAMP_RUNDIR_H
#define RAMP_RUNDIR_H

#include "ramp/config.h"

#include <stddef.h>

typedef struct rc_run_lock {
    int fd; /* -1: not held */
    char *path;
} rc_run_lock;

/* Create `dir` (and its parents) and take its lock. `quiet` silences the note about a stale lock
 * taken over. On failure nothing is held and *l can still be released. */
int rc_run_lock_take(rc_run_lock *l, const char *dir, int quiet, rc_err *e);
/* Remove the lock file and drop the lock (nothing if not held). */
void rc_run_lock_release(rc_run_lock *l);

/* Before a fresh run writes into `dir`: its config.yaml, if there is one, must be one ramp-cl
 * wrote, and `init` (may be empty) must not be one of the files the run writes. */
int rc_run_dir_check(const char *dir, const char *init, rc_err *e);

/* The report file of an evaluation of `checkpoint` with `protocol` ("fast", "full") in `dir`:
 * eval-PROTOCOL.json for the run's own model.safetensors, else eval-PROTOCOL-PARENT-NAME.json,
 * PARENT the directory holding the checkpoint and NAME its file name without .safetensors. */
void rc_run_report_path(char *out, size_t cap, const char *dir, const char *checkpoint,
                        const char *protocol);

/* The resolved config as a checkpoint records it: rc_config_print's text without output.dir
 * (a run directory may move). NULL when out of host memory; the caller frees it. */
char *rc_run_config_text(const rc_config *cfg);

/* Whether a resume may accept a change of `key` (a config key path such as "eval.final_n"). */
int rc_run_config_safe_key(const char *key);
/* The keys rc_run_config_safe_key accepts, comma-separated, for messages. */
void rc_run_config_safe_keys(char *out, size_t cap);

/* A resume's config (its text `now`, from rc_run_config_text) against the one the checkpoint
 * recorded (`saved`; `saved_digest` its digest, rc_fnv1a64_hex): equal digests pass; otherwise
 * every changed key must be safe and among the n_accept names of `accept` (a note on stdout lists
 * them unless quiet), else the error lists each change as "key: old -> new". */
int rc_run_config_check(const char *saved, const char *saved_digest, const char *now,
                        const char *const *accept, int n_accept, int quiet, rc_err *e);

#endif
