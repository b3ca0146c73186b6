/* Batch norm on device buffers, NCHW float32 (src/nn/layers/batchnorm.c). Train mode uses batch
 * statistics (kept in `mean`/`invstd` [C] for backward) and updates running stats; eval mode uses
 * the running statistics. Nothing here waits for the device or allocates. */
#ifndef RAMP_BATCHNORM_H
#define RAMP_BATCHNORM_H

#include "ramp/conv.h"
#include "ramp/device.h"

/* `part_a`/`part_b` are scratch of N*C floats. */
typedef struct rc_bn_buffers rc_bn_buffers;
struct rc_bn_buffers {
    cl_mem gamma, beta, running_mean, running_var; /* parameters and state, [C] */
    cl_mem mean, invstd;                           /* batch statistics of the last train forward */
    cl_mem part_a, part_b;                         /* scratch, [C * N] */
};

#define RC_BN_EPS 1e-5f
#define RC_BN_MOMENTUM 0.1f

int rc_bn_forward(rc_ctx *ctx, int train, int n, int c, int hw, cl_mem x, cl_mem y,
                  const rc_bn_buffers *b, rc_err *e);
/* Train mode is synchronised over the processes of ctx->dist (ramp/dist.h) when the batch is
 * split across them: statistics, dgamma and dbeta are those of the whole batch, as one process
 * would compute them; every process must make the same train-mode calls. */

/* Train mode writes dgamma, dbeta (may be NULL only in eval mode); dx needs this pass's values,
 * so they are never accumulated here. dx is written, or added to with `acc`. */
int rc_bn_backward(rc_ctx *ctx, int train, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem dx,
                   int acc, cl_mem dgamma, cl_mem dbeta, const rc_bn_buffers *b, rc_err *e);

/* Eval mode, batch norm followed by ReLU (y = the ReLU's output, dy its gradient, NCHW): the
 * gradient at the batch norm's input, written to dz in layout l (ramp/conv.h). */
int rc_bn_relu_backward_eval(rc_ctx *ctx, int n, int c, int h, int w, cl_mem y, cl_mem dy,
                             cl_mem dz, const rc_grad_layout *l, const rc_bn_buffers *b,
                             rc_err *e);

#endif
