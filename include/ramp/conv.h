/* Convolutions on device buffers, NCHW float32: the shape, the shared workspace, the layouts of
 * gradient tensors, forward and backward (im2col + GEMM, src/nn/layers/conv.c) and the
 * implicit-GEMM convolutions of the eval-mode fused path (src/nn/layers/conv_implicit.c).
 *
 * Like every layer header: each backward writes the input gradient, or adds to it when `acc` is
 * set (for tensors read by two layers); parameter gradients are written, not accumulated.
 * Nothing here waits for the device or allocates (but rc_workspace_alloc). */
#ifndef RAMP_CONV_H
#define RAMP_CONV_H

#include "ramp/device.h"

/* Only pointed to here; ramp/batchnorm.h defines it (the same typedef may be repeated). */
typedef struct rc_bn_buffers rc_bn_buffers;

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
/* `extra` more zero rows and columns after the input only (the output grows; the kernels read
 * them as padding): DeepMind's WideResNet pads F.pad(x, (0, 1, 0, 1)) before its unpadded
 * stride-2 convolutions, TensorFlow's SAME padding. */
void rc_conv_shape_pad_after(rc_conv_shape *s, int extra);
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

/* Where element (n, c, h, w) of a gradient tensor lives: n * n_stride + c * c_stride +
 * h * row_stride + w. `padded` layouts hold zeros in columns w >= W and after the last row up to
 * c_stride (the implicit-GEMM data gradient reads whole vectors of them). */
typedef struct rc_grad_layout {
    int n_stride, c_stride, row_stride, padded;
} rc_grad_layout;
rc_grad_layout rc_layout_nchw(int c, int h, int w);
rc_grad_layout rc_layout_cnp(int n, int h, int w); /* [C][N*H*W], what the GEMMs read */

/* Eval-mode fused path (src/nn/model.c): the layout in which the backward of convolution s reads
 * its output gradient: padded (rc_conv_implicit_dz_layout) where its data gradient is an
 * implicit GEMM, else [OC][N*OH*OW]. */
int rc_conv_dz_layout(rc_ctx *ctx, const rc_conv_shape *s, rc_grad_layout *l, rc_err *e);
/* The input gradient of a convolution from dz laid out as rc_conv_dz_layout says, written to
 * (acc: added to) dx in layout dxl. With mask_bn, x being relu(bn(t)) of an earlier tensor t (bn
 * in eval mode), dx is the gradient at t (the implicit-GEMM data gradient only). */
int rc_conv_backward_dz(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, cl_mem w, cl_mem dz,
                        cl_mem dx, const rc_grad_layout *dxl, int acc,
                        const rc_bn_buffers *mask_bn, rc_workspace *ws, rc_err *e);

/* Convolution on the own GEMM implementation (CPU devices) without an im2col column matrix:
 *   rc_conv_implicit_ok        1 when the forward (data 0) or the data gradient (data 1) of this
 *                              shape can run so on this ctx, 0 when not (other implementation,
 *                              panel or planes too large for local memory; the data gradient
 *                              needs a 3x3 kernel and stride 1 or 2),
 *                              -1 on error
 *   rc_conv_implicit_forward   y = conv(x, w), NCHW; with bn (eval mode: gamma, beta, running
 *                              statistics) y = relu(bn(conv(x, w))). The GEMM's packed-panel
 *                              kernel with its right-hand panel gathered from x in local memory
 *                              and the tile stored straight into y.
 *   rc_conv_implicit_dz_layout the padded layout the data gradient reads dz in (rows of
 *                              OW + 2 / stride, planes rounded up to whole vectors, zeros there);
 *                              only after rc_conv_implicit_ok said 1
 *   rc_conv_implicit_backward_data
 *                              dx (layout dxl; acc: added) from dz, one image per work-group and
 *                              one input channel per work-item summing into its plane in local
 *                              memory (no col2im). With bn, x being relu(bn(t)) of an earlier
 *                              tensor t: dx = the gradient at t (the ReLU mask is read from x). */
int rc_conv_implicit_ok(rc_ctx *ctx, const rc_conv_shape *s, int data, rc_err *e);
int rc_conv_implicit_forward(rc_ctx *ctx, const rc_conv_shape *s, cl_mem x, cl_mem w,
                             const rc_bn_buffers *bn, cl_mem y, rc_err *e);
rc_grad_layout rc_conv_implicit_dz_layout(rc_ctx *ctx, const rc_conv_shape *s);
int rc_conv_implicit_backward_data(rc_ctx *ctx, const rc_conv_shape *s, cl_mem w, cl_mem dz,
                                   const rc_grad_layout *dzl, cl_mem dx,
                                   const rc_grad_layout *dxl, int acc, const rc_bn_buffers *bn,
                                   cl_mem x, rc_err *e);

#endif
