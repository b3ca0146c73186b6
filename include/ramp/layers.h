/* Layers on device buffers, NCHW float32: forward and backward. Each backward writes the input
 * gradient, or adds to it when `acc` is set (for tensors read by two layers). Parameter gradients
 * are written, not accumulated. Nothing here waits for the device or allocates. */
#ifndef RAMP_LAYERS_H
#define RAMP_LAYERS_H

#include "ramp/device.h"

/* Scratch shared by every convolution of a model: im2col columns and the GEMM output. */
typedef struct rc_workspace {
    cl_mem col, z;
    size_t col_floats, z_floats;
} rc_workspace;

typedef struct rc_conv_shape {
    int n, c, h, w;         /* input */
    int oc, kh, kw, stride, pad;
    int oh, ow;             /* output, from rc_conv_shape_init */
} rc_conv_shape;

void rc_conv_shape_init(rc_conv_shape *s, int n, int c, int h, int w, int oc, int k, int stride,
                        int pad);
/* Workspace floats this convolution needs (columns, GEMM output). */
void rc_conv_workspace_need(const rc_conv_shape *s, size_t *col, size_t *z);
int rc_workspace_alloc(rc_ctx *ctx, rc_workspace *ws, size_t col, size_t z, rc_err *e);
void rc_workspace_free(rc_workspace *ws);

int rc_conv_forward(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, cl_mem w, cl_mem bias,
                    cl_mem y, rc_workspace *ws, rc_err *e);
/* dx, dw and db may each be NULL when not wanted (attacks freeze parameters). `param_acc` adds
 * dw and db to what is there (a loss summed over several forward passes). */
int rc_conv_backward(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, cl_mem w, cl_mem dy, cl_mem dx,
                     int acc, cl_mem dw, cl_mem db, int param_acc, rc_workspace *ws, rc_err *e);

/* Batch norm. Train mode uses batch statistics (kept in `mean`/`invstd` [C] for backward) and
 * updates running stats; eval mode uses the running statistics. `part_a`/`part_b` are scratch of
 * N*C floats. */
typedef struct rc_bn_buffers {
    cl_mem gamma, beta, running_mean, running_var; /* parameters and state, [C] */
    cl_mem mean, invstd;                           /* batch statistics of the last train forward */
    cl_mem part_a, part_b;                         /* scratch, [C * N] */
} rc_bn_buffers;

#define RC_BN_EPS 1e-5f
#define RC_BN_MOMENTUM 0.1f

int rc_bn_forward(rc_ctx *ctx, int train, int n, int c, int hw, cl_mem x, cl_mem y,
                  const rc_bn_buffers *b, rc_err *e);
/* Train mode writes dgamma, dbeta (may be NULL only in eval mode); dx needs this pass's values,
 * so they are never accumulated here. */
int rc_bn_backward(rc_ctx *ctx, int train, int n, int c, int hw, cl_mem x, cl_mem dy, cl_mem dx,
                   int acc, cl_mem dgamma, cl_mem dbeta, const rc_bn_buffers *b, rc_err *e);

/* Where element (n, c, h, w) of a gradient tensor lives: n * n_stride + c * c_stride +
 * h * row_stride + w. `padded` layouts hold zeros in columns w >= W and after the last row up to
 * c_stride (the implicit-GEMM data gradient reads whole vectors of them). */
typedef struct rc_grad_layout {
    int n_stride, c_stride, row_stride, padded;
} rc_grad_layout;
rc_grad_layout rc_layout_nchw(int c, int h, int w);
rc_grad_layout rc_layout_cnp(int n, int h, int w); /* [C][N*H*W], what the GEMMs read */

/* Eval-mode fused path (src/nn/model.c): the layout in which the backward of convolution s reads its
 * output gradient: padded (rc_conv_implicit_dz_layout) where its data gradient is an implicit
 * GEMM, else [OC][N*OH*OW]. */
int rc_conv_dz_layout(rc_ctx *ctx, const rc_conv_shape *s, rc_grad_layout *l, rc_err *e);
/* The input gradient of a convolution from dz laid out as rc_conv_dz_layout says, written to
 * (acc: added to) dx in layout dxl. With mask_bn, x being relu(bn(t)) of an earlier tensor t (bn
 * in eval mode), dx is the gradient at t (the implicit-GEMM data gradient only). */
int rc_conv_backward_dz(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, cl_mem w, cl_mem dz,
                        cl_mem dx, const rc_grad_layout *dxl, int acc,
                        const rc_bn_buffers *mask_bn, rc_workspace *ws, rc_err *e);

/* Eval mode, batch norm followed by ReLU (y = the ReLU's output, dy its gradient, NCHW): the
 * gradient at the batch norm's input, written to dz in layout l. */
int rc_bn_relu_backward_eval(rc_ctx *ctx, int n, int c, int h, int w, cl_mem y, cl_mem dy,
                             cl_mem dz, const rc_grad_layout *l, const rc_bn_buffers *b,
                             rc_err *e);

typedef enum rc_act { RC_ACT_RELU, RC_ACT_SOFTPLUS } rc_act;
int rc_act_forward(rc_ctx *ctx, rc_act a, size_t total, cl_mem x, cl_mem y, rc_err *e);
int rc_act_backward(rc_ctx *ctx, rc_act a, size_t total, cl_mem x, cl_mem dy, cl_mem dx, int acc,
                    rc_err *e);

int rc_add_forward(rc_ctx *ctx, size_t total, cl_mem a, cl_mem b, cl_mem y, rc_err *e);
/* dx (+)= dy */
int rc_grad_pass(rc_ctx *ctx, size_t total, cl_mem dy, cl_mem dx, int acc, rc_err *e);

int rc_gap_forward(rc_ctx *ctx, int n, int c, int hw, cl_mem x, cl_mem y, rc_err *e);
int rc_gap_backward(rc_ctx *ctx, int n, int c, int hw, cl_mem dy, cl_mem dx, int acc, rc_err *e);

/* y[N][O] = x[N][I] W[O][I]^T + b[O] */
int rc_linear_forward(rc_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem w, cl_mem b, cl_mem y,
                      rc_err *e);
int rc_linear_backward(rc_ctx *ctx, int n, int in, int out, cl_mem x, cl_mem w, cl_mem dy,
                       cl_mem dx, int acc, cl_mem dw, cl_mem db, int param_acc, rc_err *e);

/* Mean softmax cross-entropy: per-sample loss and correctness [N], dlogits = d(mean loss)/dz
 * (dz NULL: no gradient). labels are int32. */
int rc_ce_forward_backward(rc_ctx *ctx, int n, int k, cl_mem logits, cl_mem labels, cl_mem loss,
                           cl_mem correct, cl_mem dz, rc_err *e);

#endif
