/* Running a config: data, model, optimiser, the training loop, evaluation, the run directory. */
#ifndef RAMP_TRAIN_H
#define RAMP_TRAIN_H

#include "ramp/config.h"
#include "ramp/dataset.h"
#include "ramp/model.h"

/* Train as the config says and leave config.yaml, metrics.jsonl and checkpoints in its run
 * directory. `verbose` adds per-run diagnostics (kernel cache). */
int rc_train_run(rc_ctx *ctx, const rc_config *cfg, int verbose, rc_err *e);

/* `ramp-cl eval`: load `checkpoint` (default: the run directory's model.safetensors), evaluate it
 * with `protocol` on the first n test points (n <= 0: eval.final_n), print the table and write
 * eval-<protocol>.json into the run directory. */
int rc_eval_run(rc_ctx *ctx, const rc_config *cfg, const char *checkpoint, int full, int n,
                rc_err *e);

/* Load the config's training or test split. */
int rc_load_split(const rc_config *cfg, int train, uint32_t first_k, rc_dataset *d, rc_err *e);

/* Clean accuracy (eval mode) on the first n points of d, in batches of at most m->max_batch.
 * The device accumulates the counts; the host reads them once. */
int rc_eval_clean(rc_ctx *ctx, rc_model *m, const rc_dataset *d, uint32_t n, double *acc,
                  double *loss, rc_err *e);

#endif
