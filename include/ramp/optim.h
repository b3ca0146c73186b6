/* SGD with PyTorch's semantics and the reference code's parameter groups, and the learning-rate
 * schedules of the RAMP/E-AT code (RAMP's utils.py get_lr_schedule, E-AT's utils.py). */
#ifndef RAMP_OPTIM_H
#define RAMP_OPTIM_H

#include "ramp/config.h" /* rc_schedule_kind */
#include "ramp/model.h"

typedef struct rc_sgd {
    float momentum, weight_decay;
    int nesterov;
    /* Split groups: weights decay; BN parameters and biases (group 1) do not. */
    int split_groups;
    /* The reference updates only group 0's lr; group 1 keeps its constructor lr (1.0 in the
     * reference code) unless lr_all_groups is set. */
    int lr_all_groups;
    float group1_lr;
    long steps; /* steps taken: the first one initialises the momentum buffer */
} rc_sgd;

void rc_sgd_init(rc_sgd *o, float momentum, float weight_decay, int nesterov, int split_groups,
                 int lr_all_groups);
/* One step on every trainable parameter from the gradient arena, with learning rate lr. */
int rc_sgd_step(rc_ctx *ctx, rc_sgd *o, rc_model *m, float lr, rc_err *e);

/* Learning rate at fractional epoch t = epoch + (batch + 1) / n_batches, as the reference
 * sets it per batch. */
float rc_schedule_lr(rc_schedule_kind s, float lr_max, int epochs, float t, int static_drop_epoch);

#endif
