/* `ramp-cl bench`: throughput of a training step, a forward pass and an attack step (forward +
 * input gradient, BN in eval mode) for each model, on random data. Times whole steps with one
 * clFinish at the end of each timed run; no step waits for the device. */
#ifndef RAMP_BENCH_H
#define RAMP_BENCH_H

#include "ramp/device.h"

typedef struct rc_bench_opts {
    const char *model; /* "small-cnn", "preact-resnet18" or NULL for both */
    int batch;
    double min_seconds; /* time each workload for at least this long */
} rc_bench_opts;

int rc_bench_run(rc_ctx *ctx, const rc_bench_opts *o, rc_err *e);

#endif
