/* Softmax cross-entropy on device buffers (src/nn/layers/loss.c). */
#ifndef RAMP_LOSS_H
#define RAMP_LOSS_H

#include "ramp/device.h"

/* Mean softmax cross-entropy: per-sample loss and correctness [N], dlogits = d(mean loss)/dz
 * (dz NULL: no gradient). labels are int32. */
int rc_ce_forward_backward(rc_ctx *ctx, int n, int k, cl_mem logits, cl_mem labels, cl_mem loss,
                           cl_mem correct, cl_mem dz, rc_err *e);
/* The same for n samples of a batch of n_batch split across processes (ramp/dist.h): the
 * gradient of the whole batch's mean loss. */
int rc_ce_forward_backward_part(rc_ctx *ctx, int n, int n_batch, int k, cl_mem logits,
                                cl_mem labels, cl_mem loss, cl_mem correct, cl_mem dz, rc_err *e);

#endif
