/* Single-precision GEMM on device buffers: C = alpha * op(A) * op(B) + beta * C, row-major.
 * The interface every layer uses; implemented with CLBlast. */
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

#endif
