/* `ramp-cl selftest`: a CLBlast SGEMM, the device's own GEMM choice (ramp-cl's kernels on CPUs),
 * one element-wise kernel and one work-group reduction on the device, each compared with a host
 * computation. */
#ifndef RAMP_SELFTEST_H
#define RAMP_SELFTEST_H

#include "ramp/device.h"

#include <stdio.h>

typedef struct rc_selftest_result {
    double clblast_max_rel_err; /* CLBlast SGEMM */
    double gemm_max_rel_err;    /* the GEMM this device uses (the same one on GPUs) */
    double kernel_max_rel_err;
    double group_sum_max_rel_err; /* the GPU class's work-group tree reduction */
    int passed;
} rc_selftest_result;

/* Runs both checks and prints one PASS/FAIL line each to `out` (may be NULL). Returns -1 only
 * when the device could not run them; a wrong result is reported through r->passed. */
int rc_selftest(rc_ctx *ctx, FILE *out, rc_selftest_result *r, rc_err *e);

#endif
