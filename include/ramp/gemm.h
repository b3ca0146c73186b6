/* Single-precision GEMM on device buffers: C = alpha * op(A) * op(B) + beta * C, row-major.
 * The interface every layer uses. Offsets and leading dimensions are in floats.
 *
 * Two implementations behind the one call:
 *   own      ramp-cl's kernels (cl/gemm.cl), made for CPU devices (PoCL), where CLBlast is 5-20x
 *            slower. A x B^T (weight gradients, linear forward) runs as register-tiled dot
 *            products straight from A and B; the other cases pack op(A) and op(B) into panels
 *            (transposes and ragged edges are handled there) for a register-tiled micro-kernel
 *            with float16 accumulators. A long K is split across work-items and the parts are
 *            summed in a fixed order: results are identical from run to run.
 *   clblast  CLBlastSgemm, which has tuned parameters for GPUs.
 * CPU devices (CL_DEVICE_TYPE_CPU) use `own`, every other device `clblast`.
 *
 * Environment (read when a ctx runs its first GEMM, so per ctx):
 *   RAMP_CL_GEMM=own|clblast   force the implementation
 *   RAMP_CL_GEMM_PARAMS        tuning of `own`, for measurements (tools/gemm_sweep.c): a comma list
 *                              of mr=ROWS (1-16) and nr=COLS (16 or 32) of the packed kernel's
 *                              tile in row-first order, cmr= and cnr= in column-first order,
 *                              dm= and dn= (1-8) of the A x B^T kernel's tile, kc=K per split
 *                              part, split=auto|never|always, dot=auto|never|always (A x B^T
 *                              without packing), order=auto|rows|cols (work-item order),
 *                              panel=MiB of packed op(B) per pass when op(A) is small and
 *                              panel2= otherwise, apanel= the same for op(A)
 *
 * The packed panels and split parts live in scratch buffers kept in the ctx (ctx->gemm); they grow
 * to the largest shape seen (at most about 64 MiB each by default) and are released by
 * rc_ctx_close. */
#ifndef RAMP_GEMM_H
#define RAMP_GEMM_H

#include "ramp/device.h"
#include "ramp/layers.h"

typedef struct rc_matrix {
    cl_mem buf;
    size_t offset; /* in floats */
    size_t ld;     /* leading dimension (row stride) in floats */
} rc_matrix;

int rc_sgemm(rc_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
             rc_matrix a, rc_matrix b, float beta, rc_matrix c, const char *what, rc_err *e);

/* The same product through CLBlast whatever the ctx uses (the selftest checks both). */
int rc_sgemm_clblast(rc_ctx *ctx, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                     float alpha, rc_matrix a, rc_matrix b, float beta, rc_matrix c,
                     const char *what, rc_err *e);

/* The implementation this ctx uses ("own" or "clblast"), deciding it now if no GEMM ran yet.
 * NULL (and *e set) when RAMP_CL_GEMM or RAMP_CL_GEMM_PARAMS is malformed. */
const char *rc_gemm_impl(rc_ctx *ctx, rc_err *e);

/* Convolution on the own implementation (CPU devices) without an im2col column matrix:
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
 *                              OW + 2 / stride, planes rounded up to whole vectors, zeros there)
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

/* Frees ctx->gemm (kernels and scratch buffers); rc_ctx_close calls it. */
void rc_gemm_release(rc_ctx *ctx);

#endif
