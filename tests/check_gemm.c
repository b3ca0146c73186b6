/* rc_sgemm against a host reference, for both implementations (RAMP_CL_GEMM=own|clblast, set in
 * each test before its first GEMM; Check runs every test in its own process). */
#include "testutil.h"
#include "ramp/gemm.h"
#include "ramp/selftest.h"

#include <math.h>

static void fill(float *v, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        v[i] = (float)((seed >> 9) / 4194304.0 - 1.0);
    }
}

/* Row-major host reference in double. A is m x k (or k x m when transposed), B k x n (or n x k).
 * beta == 0 does not read C (it may hold NaN). */
static void host_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                      size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0;
            for (size_t p = 0; p < k; p++)
                acc += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                       (tb ? b[j * ldb + p] : b[p * ldb + j]);
            double old = beta != 0.0f ? beta * (double)c[i * ldc + j] : 0.0;
            c[i * ldc + j] = (float)(alpha * acc + old);
        }
}

/* Opens device 0 with the implementation `impl` and own-kernel tuning `params` (NULL: default). */
static void open_with(rc_ctx *ctx, const char *impl, const char *params) {
    setenv("RAMP_CL_GEMM", impl, 1);
    if (params) setenv("RAMP_CL_GEMM_PARAMS", params, 1);
    else unsetenv("RAMP_CL_GEMM_PARAMS");
    test_open_ctx(ctx);
    rc_err e;
    const char *got = rc_gemm_impl(ctx, &e);
    ck_assert_msg(got != NULL, "%s", e.msg);
    ck_assert_str_eq(got, impl);
}

typedef struct gcase {
    int ta, tb;
    size_t m, n, k;
    size_t off;   /* the same offset (in floats) for A, B and C */
    size_t ldpad; /* added to every leading dimension */
    float alpha, beta;
} gcase;

/* One GEMM on the device and on the host; returns the device result (caller frees). Everything
 * outside the m x n window of C (offset, ld padding) must be left untouched. */
static float *run_case(rc_ctx *ctx, const gcase *g, double *worst) {
    size_t lda = (g->ta ? g->m : g->k) + g->ldpad, ldb = (g->tb ? g->k : g->n) + g->ldpad,
           ldc = g->n + g->ldpad;
    size_t na = (g->ta ? g->k : g->m) * lda + g->off, nb = (g->tb ? g->n : g->k) * ldb + g->off,
           nc = g->m * ldc + g->off;
    float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4), *got = malloc(nc * 4);
    ck_assert(a && b && c && got);
    fill(a, na, (unsigned)(g->m * 7 + 1));
    fill(b, nb, (unsigned)(g->n * 5 + 2));
    fill(c, nc, (unsigned)(g->k * 3 + 3));
    if (g->beta == 0.0f) /* C is write-only then: NaN inside the window must not leak out */
        for (size_t i = 0; i < g->m; i++)
            for (size_t j = 0; j < g->n; j++) c[g->off + i * ldc + j] = NAN;
    rc_err e;
    cl_mem da = dev_from(ctx, a, na), db = dev_from(ctx, b, nb), dc = dev_from(ctx, c, nc);
    ck_assert_msg(rc_sgemm(ctx, g->ta, g->tb, g->m, g->n, g->k, g->alpha,
                           (rc_matrix){da, g->off, lda}, (rc_matrix){db, g->off, ldb}, g->beta,
                           (rc_matrix){dc, g->off, ldc}, "test", &e) == 0,
                  "%s", e.msg);
    download(ctx, dc, got, nc);
    host_gemm(g->ta, g->tb, g->m, g->n, g->k, g->alpha, a + g->off, lda, b + g->off, ldb, g->beta,
              c + g->off, ldc);
    *worst = 0;
    for (size_t i = 0; i < nc; i++) {
        double d = fabs(got[i] - c[i]) / fmax(1.0, fabs(c[i]));
        if (!(d <= *worst)) *worst = isnan(d) ? INFINITY : d;
    }
    clReleaseMemObject(da);
    clReleaseMemObject(db);
    clReleaseMemObject(dc);
    free(a);
    free(b);
    free(c);
    return got;
}

/* Float sums drift from the double reference by about sqrt(k) roundings; an indexing mistake
 * gives errors of order 1. */
static double tolerance(size_t k) { return 1e-5 * fmax(1.0, sqrt((double)k / 64.0)); }

static void check_case(rc_ctx *ctx, const gcase *g) {
    double worst;
    free(run_case(ctx, g, &worst));
    ck_assert_msg(worst < tolerance(g->k),
                  "trans %d%d %zux%zux%zu off %zu ldpad %zu alpha %g beta %g: max rel err %g",
                  g->ta, g->tb, g->m, g->n, g->k, g->off, g->ldpad, g->alpha, g->beta, worst);
}

/* Odd sizes (edges that are not multiples of any tile), all four transposes, offsets, padded
 * leading dimensions, beta 0 / 1 / other, alpha 1 / other. */
static void check_all(rc_ctx *ctx) {
    static const size_t shapes[][3] = {{1, 1, 1},    {7, 5, 3},     {1, 17, 33},  {17, 1, 7},
                                       {64, 64, 64}, {33, 100, 17}, {100, 7, 1},  {16, 32, 8},
                                       {9, 33, 100}, {128, 49, 288}};
    static const float ab[][2] = {{1.0f, 0.0f}, {1.25f, 0.5f}, {-0.75f, 1.0f}, {2.0f, -1.5f}};
    int i = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 4; t++, i++) {
            gcase g = {t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2],
                       (size_t)(i % 3 == 1 ? 5 : 0), (size_t)(i % 5 == 2 ? 3 : 0),
                       ab[i % 4][0], ab[i % 4][1]};
            check_case(ctx, &g);
        }
}

START_TEST(own_matches_host) {
    rc_ctx ctx;
    open_with(&ctx, "own", NULL);
    check_all(&ctx);
    rc_ctx_close(&ctx);
}
END_TEST

START_TEST(clblast_matches_host) {
    rc_ctx ctx;
    open_with(&ctx, "clblast", NULL);
    check_all(&ctx);
    rc_ctx_close(&ctx);
}
END_TEST

/* Other tile shapes, both work-item orders, op(B) copied to local memory or packed, A x B^T
 * with and without packing, K split into many short parts (the last one ragged), several passes
 * over N and over M. */
START_TEST(own_tunings_match_host) {
    static const char *params[] = {
        "mr=5,nr=32,split=never,order=rows,local=never",
        "mr=7,nr=16,split=never,order=rows,local=always",
        "cmr=3,cnr=32,kc=7,split=always,dm=3,dn=5,order=cols",
        "mr=16,nr=32,kc=16,split=always,dot=never,order=rows",
        "cmr=6,cnr=16,panel=1,apanel=1,split=never,dot=never,order=cols",
        "mr=4,nr=32,kc=100,panel=1,apanel=1,split=always,dm=1,dn=8,dot=always",
        "mr=1,nr=16,cmr=16,cnr=32"};
    static const size_t shapes[][3] = {{33, 100, 17}, {7, 40, 64}, {61, 300, 1000}, {300, 45, 999}};
    for (size_t p = 0; p < sizeof params / sizeof *params; p++) {
        rc_ctx ctx;
        open_with(&ctx, "own", params[p]);
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
            for (int t = 0; t < 4; t++) {
                gcase g = {t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2],
                           t == 1 ? 3 : 0, t == 2 ? 1 : 0, 1.5f, t == 3 ? 0.0f : -1.0f};
                check_case(&ctx, &g);
            }
        rc_ctx_close(&ctx);
    }
    unsetenv("RAMP_CL_GEMM_PARAMS");
}
END_TEST

/* Default tuning, long K against a small output, so K is split: A x B^T (weight-gradient-like,
 * gemm_dot; the last part 52 and 1 long) and A^T x B (packed; the last part 404 long). */
START_TEST(own_k_split_matches_host) {
    rc_ctx ctx;
    open_with(&ctx, "own", NULL);
    gcase cases[] = {{0, 1, 33, 45, 2100, 0, 0, 1.0f, 0.0f},
                     {0, 1, 64, 72, 4097, 2, 1, 0.5f, 1.0f},
                     {1, 0, 20, 17, 4500, 0, 0, 1.0f, 0.25f}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        double worst;
        free(run_case(&ctx, &cases[i], &worst));
        ck_assert_msg(worst < tolerance(cases[i].k), "case %zu: max rel err %g", i, worst);
    }
    rc_ctx_close(&ctx);
}
END_TEST

/* Many parts of a large output: their scratch is capped (longer parts instead).
 * K = 0: C = beta C. */
START_TEST(own_split_parts_capped_and_empty_k) {
    rc_ctx ctx;
    open_with(&ctx, "own", "kc=1,split=always");
    for (int t = 0; t < 4; t++) {
        gcase g = {t >> 1, t & 1, 1024, 1030, 17, 0, 0, 1.0f, t == 2 ? 0.0f : 0.5f};
        check_case(&ctx, &g);
    }
    rc_ctx_close(&ctx);
    open_with(&ctx, "own", NULL);
    for (int t = 0; t < 4; t++) {
        gcase g = {t >> 1, t & 1, 33, 20, 0, 1, 2, 1.5f, t == 1 ? 0.0f : -2.0f};
        check_case(&ctx, &g);
    }
    rc_ctx_close(&ctx);
}
END_TEST

/* Two runs of the same GEMM give the same bits: in one ctx, and in a fresh one. */
START_TEST(own_is_deterministic) {
    gcase cases[] = {{0, 1, 64, 72, 4097, 0, 0, 1.0f, 0.0f},
                     {1, 0, 20, 17, 4500, 0, 0, 1.0f, 0.0f},
                     {1, 0, 100, 333, 77, 5, 3, 1.25f, 0.5f},
                     {0, 0, 128, 49, 288, 0, 0, 1.0f, 0.0f}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float *run[3];
        double worst;
        size_t nc = cases[i].m * (cases[i].n + cases[i].ldpad) + cases[i].off;
        rc_ctx ctx;
        open_with(&ctx, "own", NULL);
        run[0] = run_case(&ctx, &cases[i], &worst);
        run[1] = run_case(&ctx, &cases[i], &worst);
        rc_ctx_close(&ctx);
        open_with(&ctx, "own", NULL);
        run[2] = run_case(&ctx, &cases[i], &worst);
        rc_ctx_close(&ctx);
        ck_assert_msg(memcmp(run[0], run[1], nc * 4) == 0, "case %zu differs between runs", i);
        ck_assert_msg(memcmp(run[0], run[2], nc * 4) == 0, "case %zu differs between ctxs", i);
        for (int r = 0; r < 3; r++) free(run[r]);
    }
}
END_TEST

START_TEST(clblast_error_names_routine_and_sizes) {
    rc_ctx ctx;
    open_with(&ctx, "clblast", NULL);
    rc_err e;
    cl_mem d = dev_buf(&ctx, 16);
    /* Buffers far too small for the sizes: CLBlast refuses, we name the routine and sizes. */
    ck_assert_int_eq(rc_sgemm(&ctx, 0, 0, 100, 100, 100, 1.0f, (rc_matrix){d, 0, 100},
                              (rc_matrix){d, 0, 100}, 0.0f, (rc_matrix){d, 0, 100}, "conv1 fwd",
                              &e),
                     -1);
    ck_assert_msg(strstr(e.msg, "CLBlast CLBlastSgemm failed: CLBlastInsufficientMemory") &&
                      strstr(e.msg, "conv1 fwd, M=100 N=100 K=100"),
                  "%s", e.msg);
    clReleaseMemObject(d);
    rc_ctx_close(&ctx);
}
END_TEST

START_TEST(own_error_names_routine_and_sizes) {
    rc_ctx ctx;
    open_with(&ctx, "own", NULL);
    rc_err e;
    cl_mem d = dev_buf(&ctx, 16), big = dev_buf(&ctx, 100 * 100);
    ck_assert_int_eq(rc_sgemm(&ctx, 0, 1, 100, 100, 100, 1.0f, (rc_matrix){big, 0, 100},
                              (rc_matrix){d, 0, 100}, 0.0f, (rc_matrix){big, 0, 100}, "conv1 fwd",
                              &e),
                     -1);
    ck_assert_msg(strstr(e.msg, "rc_sgemm: B needs 10000 floats") &&
                      strstr(e.msg, "holds 16: conv1 fwd, M=100 N=100 K=100, trans NT"),
                  "%s", e.msg);
    /* one float past the end through the offset */
    ck_assert_int_eq(rc_sgemm(&ctx, 0, 0, 100, 100, 100, 1.0f, (rc_matrix){big, 0, 100},
                              (rc_matrix){big, 0, 100}, 0.0f, (rc_matrix){big, 1, 100}, "x", &e),
                     -1);
    ck_assert_msg(strstr(e.msg, "rc_sgemm: C needs 10001 floats"), "%s", e.msg);
    ck_assert_int_eq(rc_sgemm(&ctx, 1, 0, 100, 100, 100, 1.0f, (rc_matrix){big, 0, 99},
                              (rc_matrix){big, 0, 100}, 0.0f, (rc_matrix){big, 0, 100}, "y", &e),
                     -1);
    ck_assert_msg(strstr(e.msg, "leading dimension of A is 99, needs 100"), "%s", e.msg);
    clReleaseMemObject(d);
    clReleaseMemObject(big);
    rc_ctx_close(&ctx);
}
END_TEST

START_TEST(bad_selection_is_an_error) {
    rc_ctx ctx;
    setenv("RAMP_CL_GEMM", "fast", 1);
    test_open_ctx(&ctx);
    rc_err e;
    ck_assert_ptr_null(rc_gemm_impl(&ctx, &e));
    ck_assert_msg(strstr(e.msg, "RAMP_CL_GEMM=fast: expected own or clblast"), "%s", e.msg);
    rc_ctx_close(&ctx);
    setenv("RAMP_CL_GEMM", "own", 1);
    setenv("RAMP_CL_GEMM_PARAMS", "mr=8,nr=24", 1);
    test_open_ctx(&ctx);
    cl_mem d = dev_buf(&ctx, 16);
    ck_assert_int_eq(rc_sgemm(&ctx, 0, 0, 1, 1, 1, 1.0f, (rc_matrix){d, 0, 1},
                              (rc_matrix){d, 0, 1}, 0.0f, (rc_matrix){d, 0, 1}, "z", &e),
                     -1);
    ck_assert_msg(strstr(e.msg, "RAMP_CL_GEMM_PARAMS: bad setting nr=24"), "%s", e.msg);
    clReleaseMemObject(d);
    rc_ctx_close(&ctx);
    unsetenv("RAMP_CL_GEMM");
    unsetenv("RAMP_CL_GEMM_PARAMS");
}
END_TEST

/* Without RAMP_CL_GEMM: CPU-class devices use the own kernels, GPU-class ones CLBlast. */
START_TEST(default_selection_follows_device_class) {
    unsetenv("RAMP_CL_GEMM");
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_err e;
    const char *impl = rc_gemm_impl(&ctx, &e);
    ck_assert_msg(impl != NULL, "%s", e.msg);
    ck_assert_str_eq(impl, ctx.cls == RC_CLASS_CPU ? "own" : "clblast");
    rc_ctx_close(&ctx);
}
END_TEST

START_TEST(selftest_passes) {
    unsetenv("RAMP_CL_GEMM");
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_selftest_result r;
    rc_err e;
    ck_assert_msg(rc_selftest(&ctx, NULL, &r, &e) == 0, "%s", e.msg);
    ck_assert_msg(r.passed, "gemm %g kernel %g", r.gemm_max_rel_err, r.kernel_max_rel_err);
    ck_assert_double_lt(r.gemm_max_rel_err, 1e-5);
    ck_assert_double_lt(r.kernel_max_rel_err, 1e-6);
    rc_ctx_close(&ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, own_matches_host);
    tcase_add_test(tc, clblast_matches_host);
    tcase_add_test(tc, own_tunings_match_host);
    tcase_add_test(tc, own_k_split_matches_host);
    tcase_add_test(tc, own_split_parts_capped_and_empty_k);
    tcase_add_test(tc, own_is_deterministic);
    tcase_add_test(tc, clblast_error_names_routine_and_sizes);
    tcase_add_test(tc, own_error_names_routine_and_sizes);
    tcase_add_test(tc, bad_selection_is_an_error);
    tcase_add_test(tc, default_selection_follows_device_class);
    tcase_add_test(tc, selftest_passes);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
