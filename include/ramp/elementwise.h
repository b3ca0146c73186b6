/* Element-wise layers and global average pooling on device buffers, NCHW float32
 * (src/nn/layers/elementwise.c). Each backward writes dx, or adds to it when `acc` is set.
 * Nothing here waits for the device or allocates. */
#ifndef RAMP_ELEMENTWISE_H
#define RAMP_ELEMENTWISE_H

#include "ramp/device.h"
#include "ramp/names.h"

int rc_act_forward(rc_ctx *ctx, rc_activation a, size_t total, cl_mem x, cl_mem y, rc_err *e);
int rc_act_backward(rc_ctx *ctx, rc_activation a, size_t total, cl_mem x, cl_mem dy, cl_mem dx,
                    int acc, rc_err *e);

/* Input normalisation over [n][c][hw]: y = (x - mean[c]) / std[c]; dx (+)= dy / std[c]. */
int rc_normalize_forward(rc_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem mean, cl_mem std,
                         cl_mem y, rc_err *e);
int rc_normalize_backward(rc_ctx *ctx, int n, int c, int hw, cl_mem std, cl_mem dy, cl_mem dx,
                          int acc, rc_err *e);

int rc_add_forward(rc_ctx *ctx, size_t total, cl_mem a, cl_mem b, cl_mem y, rc_err *e);
/* dx (+)= dy */
int rc_grad_pass(rc_ctx *ctx, size_t total, cl_mem dy, cl_mem dx, int acc, rc_err *e);

int rc_gap_forward(rc_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem y, rc_err *e);
int rc_gap_backward(rc_ctx *ctx, int n, int c, int hw, cl_mem dy, cl_mem dx, int acc, rc_err *e);

#endif
