#include "ramp/selftest.h"
#include "ramp/gemm.h"
#include "ramp/launch.h"

#include <math.h>
#include <string.h>
#include <stdlib.h>

/* Relative error with a floor on the denominator so that values near zero do not dominate. */
static double rel_err(double got, double want) { return fabs(got - want) / fmax(1.0, fabs(want)); }

/* Fill with a deterministic pseudo-random sequence in [-1, 1). */
static void fill(float *v, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)((seed >> 8) / 8388608.0 - 1.0);
    }
}

static const float SELFTEST_TOL = 1e-4f;

/* One SGEMM against the host: through CLBlast, or through the ctx's own choice. */
static int check_gemm(rc_ctx *ctx, int clblast, double *max_err, rc_err *e) {
    /* Odd sizes so that padding paths in the GEMM are exercised. */
    const size_t m = 67, n = 45, k = 33;
    float *a = malloc(m * k * sizeof *a), *b = malloc(k * n * sizeof *b),
          *c = malloc(m * n * sizeof *c);
    cl_mem da = NULL, db = NULL, dc = NULL;
    int r = -1;
    if (!a || !b || !c) {
        rc_err_set(e, "out of host memory in selftest");
        goto out;
    }
    fill(a, m * k, 1);
    fill(b, k * n, 2);
    fill(c, m * n, 3);
    if (rc_buffer_create(ctx, m * k * 4, "selftest A", &da, e) ||
        rc_buffer_create(ctx, k * n * 4, "selftest B", &db, e) ||
        rc_buffer_create(ctx, m * n * 4, "selftest C", &dc, e) ||
        rc_buffer_write(ctx, da, 0, m * k * 4, a, "selftest A", e) ||
        rc_buffer_write(ctx, db, 0, k * n * 4, b, "selftest B", e) ||
        rc_buffer_write(ctx, dc, 0, m * n * 4, c, "selftest C", e))
        goto out;
    const float alpha = 0.75f, beta = -0.5f;
    if ((clblast ? rc_sgemm_clblast : rc_sgemm)(ctx, 0, 0, m, n, k, alpha, (rc_matrix){da, 0, k},
                                                (rc_matrix){db, 0, n}, beta,
                                                (rc_matrix){dc, 0, n}, "selftest", e))
        goto out;
    float *got = malloc(m * n * sizeof *got);
    if (!got) {
        rc_err_set(e, "out of host memory in selftest");
        goto out;
    }
    if (rc_buffer_read(ctx, dc, 0, m * n * 4, got, "selftest C", e)) {
        free(got);
        goto out;
    }
    *max_err = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double want = beta * (double)c[i * n + j];
            for (size_t p = 0; p < k; p++) want += alpha * (double)a[i * k + p] * b[p * n + j];
            *max_err = fmax(*max_err, rel_err(got[i * n + j], want));
        }
    free(got);
    r = 0;
out:
    if (da) clReleaseMemObject(da);
    if (db) clReleaseMemObject(db);
    if (dc) clReleaseMemObject(dc);
    free(a);
    free(b);
    free(c);
    return r;
}

static int check_kernel(rc_ctx *ctx, double *max_err, rc_err *e) {
    const int n = 1000;
    const float alpha = 1.5f, beta = -0.25f;
    float x[1000], y[1000], got[1000];
    fill(x, (size_t)n, 4);
    fill(y, (size_t)n, 5);
    cl_mem dx = NULL, dy = NULL;
    int r = -1;
    size_t global = (size_t)n;
    if (rc_buffer_create(ctx, sizeof x, "selftest x", &dx, e) ||
        rc_buffer_create(ctx, sizeof y, "selftest y", &dy, e) ||
        rc_buffer_write(ctx, dx, 0, sizeof x, x, "selftest x", e) ||
        rc_buffer_write(ctx, dy, 0, sizeof y, y, "selftest y", e) ||
        RC_LAUNCH(ctx, "selftest.cl", "selftest_axpby", 1, &global, e, RC_ARG(n), RC_ARG(alpha),
                  RC_ARG(dx), RC_ARG(beta), RC_ARG(dy)) ||
        rc_buffer_read(ctx, dy, 0, sizeof got, got, "selftest y", e))
        goto out;
    *max_err = 0;
    for (int i = 0; i < n; i++)
        *max_err = fmax(*max_err, rel_err(got[i], (double)alpha * x[i] + (double)beta * y[i]));
    r = 0;
out:
    if (dx) clReleaseMemObject(dx);
    if (dy) clReleaseMemObject(dy);
    return r;
}

/* The work-group tree reduction of the GPU-class kernels: 3 rows of 1000 floats, one work-group
 * each, against double-precision sums on the host. */
static int check_group_sum(rc_ctx *ctx, double *max_err, rc_err *e) {
    enum { ROWS = 3, N = 1000 };
    const int n = N;
    float x[ROWS * N], got[ROWS];
    fill(x, ROWS * N, 6);
    cl_mem dx = NULL, ds = NULL;
    int r = -1;
    if (rc_buffer_create(ctx, sizeof x, "selftest x", &dx, e) ||
        rc_buffer_create(ctx, sizeof got, "selftest sums", &ds, e) ||
        rc_buffer_write(ctx, dx, 0, sizeof x, x, "selftest x", e) ||
        RC_LAUNCH_GROUPS(ctx, "selftest.cl", "selftest_group_sum", ROWS, e, RC_ARG(dx), RC_ARG(n),
                         RC_ARG(ds)) ||
        rc_buffer_read(ctx, ds, 0, sizeof got, got, "selftest sums", e))
        goto out;
    *max_err = 0;
    for (int row = 0; row < ROWS; row++) {
        double want = 0;
        for (int i = 0; i < N; i++) want += x[row * N + i];
        *max_err = fmax(*max_err, rel_err(got[row], want));
    }
    r = 0;
out:
    if (dx) clReleaseMemObject(dx);
    if (ds) clReleaseMemObject(ds);
    return r;
}

int rc_selftest(rc_ctx *ctx, FILE *out, rc_selftest_result *r, rc_err *e) {
    if (check_gemm(ctx, 1, &r->clblast_max_rel_err, e) ||
        check_gemm(ctx, 0, &r->gemm_max_rel_err, e) ||
        check_kernel(ctx, &r->kernel_max_rel_err, e) ||
        check_group_sum(ctx, &r->group_sum_max_rel_err, e))
        return rc_err_prefix(e, "selftest: ");
    const char *impl = rc_gemm_impl(ctx, e);
    if (!impl) return rc_err_prefix(e, "selftest: ");
    int clblast_ok = r->clblast_max_rel_err <= SELFTEST_TOL;
    int gemm_ok = r->gemm_max_rel_err <= SELFTEST_TOL;
    int kern_ok = r->kernel_max_rel_err <= SELFTEST_TOL;
    int group_ok = r->group_sum_max_rel_err <= SELFTEST_TOL;
    r->passed = clblast_ok && gemm_ok && kern_ok && group_ok;
    if (out) {
        fprintf(out, "selftest on [%d] %s (%s class)\n", ctx->dev.index, ctx->dev.name,
                rc_device_class_name(ctx->cls));
        fprintf(out, "  CLBlast SGEMM 67x45x33:        %s (max rel err %.3g, tolerance %.0e)\n",
                clblast_ok ? "PASS" : "FAIL", r->clblast_max_rel_err, SELFTEST_TOL);
        fprintf(out, "  rc_sgemm 67x45x33 (%s): %*s%s (max rel err %.3g, tolerance %.0e)\n",
                impl, (int)(10 - strlen(impl) > 0 ? 10 - strlen(impl) : 0), "",
                gemm_ok ? "PASS" : "FAIL", r->gemm_max_rel_err, SELFTEST_TOL);
        fprintf(out, "  kernel selftest_axpby:         %s (max rel err %.3g, tolerance %.0e)\n",
                kern_ok ? "PASS" : "FAIL", r->kernel_max_rel_err, SELFTEST_TOL);
        fprintf(out, "  work-group sum 3x1000:         %s (max rel err %.3g, tolerance %.0e)\n",
                group_ok ? "PASS" : "FAIL", r->group_sum_max_rel_err, SELFTEST_TOL);
    }
    return 0;
}
