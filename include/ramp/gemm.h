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
 * CPU-class devices (ramp/device.h) use `own`, GPU-class devices `clblast`.
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
 * rc_ctx_close (ramp/context.h). */
#ifndef RAMP_GEMM_H
#define RAMP_GEMM_H

#include "ramp/device.h"

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

/* What the implicit-GEMM convolutions (ramp/conv.h) borrow from the own implementation: kernels
 * of cl/gemm.cl built with its tile options, the tile and the limits they are sized by. The ctx
 * owns the kernels. */
typedef struct rc_gemm_conv_kit {
    cl_kernel pack_a_y;     /* gemm_pack_a_y: op(A) into MR-row panels */
    cl_kernel conv_fwd;     /* conv_gemm_fwd */
    cl_kernel conv_bwd;     /* conv_gemm_bwd_data */
    cl_kernel conv_wt;      /* conv_pack_wt */
    size_t mr, nr;          /* the tile of those kernels */
    size_t conv_items;      /* largest work-group of conv_gemm_fwd and conv_gemm_bwd_data */
    size_t local_bytes;     /* the device's local memory */
    size_t panel_bytes;     /* largest local panel (K x NR floats) that stays in L2 */
} rc_gemm_conv_kit;

/* 1 with *kit filled when this ctx uses the own implementation (kernels built on first use), 0
 * when it does not, -1 on error. */
int rc_gemm_conv_kit_get(rc_ctx *ctx, rc_gemm_conv_kit *kit, rc_err *e);
/* The packed-A scratch buffer grown to at least `floats`; the next GEMM may overwrite it. */
int rc_gemm_scratch_a(rc_ctx *ctx, size_t floats, cl_mem *out, rc_err *e);

/* Frees ctx->gemm (kernels and scratch buffers); rc_ctx_close calls it. */
void rc_gemm_release(rc_ctx *ctx);

#endif
