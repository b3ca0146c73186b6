/* Running a config: data, model, optimiser, the training loop, evaluation, the run directory. */
#ifndef RAMP_TRAIN_H
#define RAMP_TRAIN_H

#include "ramp/config.h"
#include "ramp/dataset.h"
#include "ramp/model.h"
#include "ramp/progress.h"

typedef struct rc_run_opts {
    rc_progress_mode progress; /* how much goes to stdout */
    int resume; /* continue from the run directory's checkpoint.safetensors */
    /* resume: config keys whose change since the checkpoint the user accepts (ramp/rundir.h) */
    const char *const *accept;
    int n_accept;
} rc_run_opts;

/* Train as the config says and leave config.yaml, metrics.jsonl and checkpoints in its run
 * directory, which the run holds locked (opts NULL: quiet, from the start). A non-finite loss,
 * gradient, weight or BN statistic stops the run with an error before anything of it is saved.
 * Returns 0 when done, -1 on an error, or the signal (SIGINT, SIGTERM) that stopped it after a
 * checkpoint was written. */
int rc_train_run(rc_ctx *ctx, const rc_config *cfg, const rc_run_opts *opts, rc_err *e);

#endif
