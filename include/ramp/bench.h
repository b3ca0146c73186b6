/* `ramp-cl bench`: throughput of a training step, a forward pass and an attack step (forward +
 * input gradient, BN in eval mode) for each model, on random data. Times whole steps with one
 * clFinish at the end of each timed run; no step waits for the device. */
#ifndef RAMP_BENCH_H
#define RAMP_BENCH_H

#include "ramp/device.h"

#include <stddef.h>

typedef struct rc_bench_opts {
    const char *model; /* a name rc_bench_model_known accepts, or NULL for small-cnn and
                        * preact-resnet18 */
    int batch;
    double min_seconds; /* time each workload for at least this long */
    int layers;         /* --layers: the FMA peak and each convolution's calls instead */
} rc_bench_opts;

/* Whether `name` is a benchmarked model ("wrn-28-10", "dm-wrn-70-16", ...) or "all"; the names,
 * comma-separated, for messages. */
int rc_bench_model_known(const char *name);
const char *rc_bench_model_names(char *buf, size_t n);

int rc_bench_run(rc_ctx *ctx, const rc_bench_opts *o, rc_err *e);

/* src/cli/bench_layers.c: the device's single-precision FMA peak in GFLOP/s (printed), and the
 * table of every distinct convolution of m at batch n: forward, data and weight gradients of a
 * training step, the eval-mode data gradient of an attack step, each as a share of `peak`. */
int rc_bench_peak(rc_ctx *ctx, double *gflops, rc_err *e);
typedef struct rc_model rc_model;
int rc_bench_layers(rc_ctx *ctx, rc_model *m, int n, double min_seconds, double peak,
                    rc_err *e);

#endif
