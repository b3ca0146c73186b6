/* Checkpoints: safetensors files whose tensors carry PyTorch's state-dict names (so
 * `load_state_dict(strict=True)` accepts them after tools/convert_checkpoint.py or any safetensors
 * reader), with the architecture in `__metadata__`. Training state for resuming (momentum
 * buffers, epoch, step) goes under the key prefix "train.". Written atomically. */
#ifndef RAMP_CHECKPOINT_H
#define RAMP_CHECKPOINT_H

#include "ramp/model.h"
#include "ramp/optim.h"

#define RC_CHECKPOINT_FORMAT "ramp-cl-checkpoint"
#define RC_CHECKPOINT_VERSION "1"

/* More training state for a bit-exact resume, saved as a flat tensor named `name` (which must
 * start with "train."): `count` elements from the host array `host` (RC_ST_F32 or RC_ST_I64), or,
 * when host is NULL, `count` floats from the start of the device buffer `dev`. Loading fills the
 * same places and requires every blob to be present with its size. */
typedef struct rc_ckpt_blob {
    const char *name;
    int dtype;
    size_t count;
    void *host;
    cl_mem dev;
} rc_ckpt_blob;

typedef struct rc_train_progress {
    int64_t epoch; /* epochs completed */
    int64_t step;  /* batches completed in total */
    const rc_ckpt_blob *extra;
    int n_extra;
    /* Saving: the run's config (ramp/rundir.h's text; NULL: none), recorded as the metadata
     * "config" with its digest "config_digest". Loading sets saved_config to what the file
     * recorded (NULL if nothing; malloc'd, the caller frees it) and saved_digest. */
    const char *config;
    char *saved_config;
    char saved_digest[17];
} rc_train_progress;

/* Save the model; with opt and progress also the state needed to resume (and progress->extra). */
int rc_checkpoint_save(rc_ctx *ctx, rc_model *m, const rc_sgd *opt,
                       const rc_train_progress *progress, const char *path, rc_err *e);

/* The architecture options a checkpoint was written for. */
int rc_checkpoint_read_opts(const char *path, rc_model_opts *o, rc_err *e);

/* Load weights and BN state into a model built with matching options (checked: every tensor's
 * name, shape and dtype, finite values and variances >= 0; unknown tensors are errors). With
 * opt/progress non-NULL the resume state is required and restored too. */
int rc_checkpoint_load(rc_ctx *ctx, rc_model *m, rc_sgd *opt, rc_train_progress *progress,
                       const char *path, rc_err *e);

#endif
