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
} rc_run_opts;

/* Train as the config says and leave config.yaml, metrics.jsonl and checkpoints in its run
 * directory (opts NULL: quiet, from the start). Returns 0 when done, -1 on an error, or the
 * signal (SIGINT, SIGTERM) that stopped it after a checkpoint was written. */
int rc_train_run(rc_ctx *ctx, const rc_config *cfg, const rc_run_opts *opts, rc_err *e);

/* `ramp-cl eval`: load `checkpoint` (default: the run directory's model.safetensors), evaluate it
 * with `protocol` on the first n test points (n <= 0: eval.final_n), print the table and write
 * eval-<protocol>.json into the run directory. */
int rc_eval_run(rc_ctx *ctx, const rc_config *cfg, const char *checkpoint, int full, int n,
                rc_progress_mode show, rc_err *e);

/* Load the config's training or test split. */
int rc_load_split(const rc_config *cfg, int train, uint32_t first_k, rc_dataset *d, rc_err *e);

/* Clean accuracy (eval mode) on the first n points of d, in batches of at most m->max_batch.
 * The device accumulates the counts; the host reads them once. */
int rc_eval_clean(rc_ctx *ctx, rc_model *m, const rc_dataset *d, uint32_t n, double *acc,
                  double *loss, rc_err *e);

#endif
