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

/* Row-major host reference in double. A is m x k (or k x m when transposed), B k x n (or n x k). */
static void host_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                      size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double acc = 0;
            for (size_t p = 0; p < k; p++)
                acc += (double)(ta ? a[p * lda + i] : a[i * lda + p]) *
                       (tb ? b[j * ldb + p] : b[p * ldb + j]);
            c[i * ldc + j] = (float)(alpha * acc + beta * (double)c[i * ldc + j]);
        }
}

static void check_case(rc_ctx *ctx, int ta, int tb, size_t m, size_t n, size_t k, size_t off) {
    size_t lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
    size_t na = (ta ? k : m) * lda + off, nb = (tb ? n : k) * ldb + off, nc = m * ldc + off;
    float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4), *got = malloc(nc * 4);
    fill(a, na, (unsigned)(m * 7 + 1));
    fill(b, nb, (unsigned)(n * 5 + 2));
    fill(c, nc, (unsigned)(k * 3 + 3));
    rc_err e;
    cl_mem da, db, dc;
    ck_assert_msg(rc_buffer_create(ctx, na * 4, "A", &da, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_buffer_create(ctx, nb * 4, "B", &db, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_buffer_create(ctx, nc * 4, "C", &dc, &e) == 0, "%s", e.msg);
    ck_assert(rc_buffer_write(ctx, da, 0, na * 4, a, "A", &e) == 0);
    ck_assert(rc_buffer_write(ctx, db, 0, nb * 4, b, "B", &e) == 0);
    ck_assert(rc_buffer_write(ctx, dc, 0, nc * 4, c, "C", &e) == 0);
    ck_assert_msg(rc_sgemm(ctx, ta, tb, m, n, k, 1.25f, (rc_matrix){da, off, lda},
                           (rc_matrix){db, off, ldb}, 0.5f, (rc_matrix){dc, off, ldc}, "test",
                           &e) == 0,
                  "%s", e.msg);
    ck_assert(rc_buffer_read(ctx, dc, 0, nc * 4, got, "C", &e) == 0);
    host_gemm(ta, tb, m, n, k, 1.25f, a + off, lda, b + off, ldb, 0.5f, c + off, ldc);
    double worst = 0;
    for (size_t i = 0; i < nc; i++) worst = fmax(worst, fabs(got[i] - c[i]) / fmax(1.0, fabs(c[i])));
    ck_assert_msg(worst < 1e-5, "trans %d%d %zux%zux%zu off %zu: max rel err %g", ta, tb, m, n, k,
                  off, worst);
    clReleaseMemObject(da);
    clReleaseMemObject(db);
    clReleaseMemObject(dc);
    free(a);
    free(b);
    free(c);
    free(got);
}

START_TEST(clblast_sgemm_matches_host) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    static const size_t shapes[][3] = {{1, 1, 1}, {7, 5, 3}, {64, 64, 64}, {33, 100, 17},
                                       {128, 49, 288}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                check_case(&ctx, ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], s % 2 ? 5 : 0);
    rc_ctx_close(&ctx);
}
END_TEST

START_TEST(clblast_error_names_routine_and_sizes) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_err e;
    cl_mem d;
    ck_assert(rc_buffer_create(&ctx, 64, "d", &d, &e) == 0);
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

START_TEST(selftest_passes) {
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
    tcase_add_test(tc, clblast_sgemm_matches_host);
    tcase_add_test(tc, clblast_error_names_routine_and_sizes);
    tcase_add_test(tc, selftest_passes);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
