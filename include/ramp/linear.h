/* Fully connected layer on device buffers (src/nn/layers/linear.c). dx is written, or added to
 * with `acc`; `param_acc` adds dw and db to what is there. Nothing here waits for the device. */
#ifndef RAMP_LINEAR_H
#define RAMP_LINEAR_H

#include "ramp/device.h"

/* y[N][O] = x[N][I] W[O][I]^T + b[O] */
int rc_linear_forward(rc_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem w, cl_mem b, cl_mem y,
                      rc_err *e);
int rc_linear_backward(rc_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem w, cl_mem dy,
                       cl_mem dx, int acc, cl_mem dw, cl_mem db, int param_acc, rc_err *e);

#endif
