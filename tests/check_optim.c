/* Learning-rate schedules (RAMP's utils.py get_lr_schedule, evaluated per batch at t = epoch +
 * (i+1)/n_batches) and SGD with PyTorch's semantics and the reference's parameter groups
 * (utils.py get_params_no_decay); the divergence guard that watches training's numbers. */
#include "testutil.h"
#include "ramp/guard.h"
#include "ramp/optim.h"

#include <math.h>

START_TEST(schedules_match_the_reference) {
    /* piecewise-ft over 3 epochs of 10 batches: x0.1 per epoch, shifted by one batch */
    ck_assert_float_eq(rc_schedule_lr(RC_SCHEDULE_PIECEWISE_FT, 0.05f, 3, 0.1f, 70), 0.05f);
    ck_assert_float_eq(rc_schedule_lr(RC_SCHEDULE_PIECEWISE_FT, 0.05f, 3, 0.9f, 70), 0.05f);
    ck_assert_float_eq(rc_schedule_lr(RC_SCHEDULE_PIECEWISE_FT, 0.05f, 3, 1.0f, 70), 0.005f);
    ck_assert_float_eq(rc_schedule_lr(RC_SCHEDULE_PIECEWISE_FT, 0.05f, 3, 2.0f, 70), 0.0005f);
    /* static: lr_max while t <= 70, then a tenth (epoch index 70 is already reduced) */
    ck_assert_float_eq(rc_schedule_lr(RC_SCHEDULE_STATIC, 0.05f, 80, 70.0f, 70), 0.05f);
    ck_assert_float_eq(rc_schedule_lr(RC_SCHEDULE_STATIC, 0.05f, 80, 70.01f, 70), 0.005f);
    /* superconverge over 30 epochs: 0 -> 0.1 at epoch 12 -> 0 at 30 */
    ck_assert_double_eq_tol(rc_schedule_lr(RC_SCHEDULE_SUPERCONVERGE, 0.1f, 30, 6.0f, 0), 0.05,
                            1e-7);
    ck_assert_double_eq_tol(rc_schedule_lr(RC_SCHEDULE_SUPERCONVERGE, 0.1f, 30, 12.0f, 0), 0.1,
                            1e-7);
    ck_assert_double_eq_tol(rc_schedule_lr(RC_SCHEDULE_SUPERCONVERGE, 0.1f, 30, 21.0f, 0), 0.05,
                            1e-7);
    ck_assert_double_eq_tol(rc_schedule_lr(RC_SCHEDULE_SUPERCONVERGE, 0.1f, 30, 30.0f, 0), 0.0,
                            1e-7);
    /* piecewise: /10 from half way, /100 from three quarters */
    ck_assert_float_eq(rc_schedule_lr(RC_SCHEDULE_PIECEWISE, 0.1f, 100, 49.9f, 0), 0.1f);
    ck_assert_float_eq(rc_schedule_lr(RC_SCHEDULE_PIECEWISE, 0.1f, 100, 50.0f, 0), 0.01f);
    ck_assert_float_eq(rc_schedule_lr(RC_SCHEDULE_PIECEWISE, 0.1f, 100, 75.0f, 0), 0.001f);
    ck_assert_float_eq(rc_schedule_lr(RC_SCHEDULE_CONSTANT, 0.1f, 100, 75.0f, 0), 0.1f);
}
END_TEST

/* Two SGD steps on small-cnn against the host formula, for a weight (group 0, decayed, scheduled
 * lr) and a BN weight (group 1: no decay; lr 1.0 when only group 0 follows the schedule). */
static void sgd_case(int split, int lr_all) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_model m;
    rc_model_opts o;
    rc_err e;
    rc_model_opts_default(&o, RC_ARCH_SMALL_CNN, 1, 28);
    o.width = 2;
    ck_assert(rc_model_create(&ctx, &m, &o, 1, &e) == 0);
    ck_assert(rc_model_init(&ctx, &m, 1, &e) == 0);
    rc_param *ps[2] = {rc_model_param(&m, "conv2.weight"), rc_model_param(&m, "bn2.weight")};
    float p0[2][144], g[2][144], want[2][144], buf[2][144];
    rc_sgd opt;
    rc_sgd_init(&opt, 0.9f, 5e-4f, 0, split, lr_all);
    const float lr[2] = {0.05f, 0.02f};
    for (int k = 0; k < 2; k++) ck_assert(rc_param_read(&ctx, ps[k], p0[k], &e) == 0);
    for (int step = 0; step < 2; step++) {
        for (int k = 0; k < 2; k++) {
            for (size_t i = 0; i < ps[k]->numel; i++)
                g[k][i] = 0.01f * (float)((int)i % 7 - 3 + step);
            upload(&ctx, ps[k]->grad, g[k], ps[k]->numel);
        }
        ck_assert_msg(rc_sgd_step(&ctx, &opt, &m, lr[step], &e) == 0, "%s", e.msg);
        for (int k = 0; k < 2; k++) {
            int group1 = split && k == 1;
            float wd = group1 ? 0.0f : 5e-4f;
            float l = group1 && !lr_all ? 1.0f : lr[step];
            for (size_t i = 0; i < ps[k]->numel; i++) {
                float pv = step ? want[k][i] : p0[k][i];
                float d = g[k][i] + wd * pv;
                buf[k][i] = step ? 0.9f * buf[k][i] + d : d;
                want[k][i] = pv - l * buf[k][i];
            }
        }
    }
    for (int k = 0; k < 2; k++) {
        float got[144];
        ck_assert(rc_param_read(&ctx, ps[k], got, &e) == 0);
        for (size_t i = 0; i < ps[k]->numel; i++)
            ck_assert_msg(fabsf(got[i] - want[k][i]) <= 1e-6f * fmaxf(1, fabsf(want[k][i])),
                          "%s[%zu] split %d lr_all %d: %g vs %g", ps[k]->name, i, split, lr_all,
                          got[i], want[k][i]);
    }
    rc_model_free(&m);
    rc_ctx_close(&ctx);
}

START_TEST(sgd_single_group) { sgd_case(0, 0); }
END_TEST
START_TEST(sgd_split_groups_reference_lr) { sgd_case(1, 0); }
END_TEST
START_TEST(sgd_split_groups_lr_all) { sgd_case(1, 1); }
END_TEST

/* The guard records the first check in launch order that met a NaN or an infinity, with the
 * lowest such index inside its range, whatever checks follow; a clean read starts it over. */
START_TEST(guard_records_the_first_nonfinite_value) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_err e;
    enum { N = 5000 };
    float *v = malloc(N * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (int i = 0; i < N; i++) v[i] = (float)i - 2500.0f;
    cl_mem clean = dev_from(&ctx, v, N);
    v[4321] = NAN, v[1234] = INFINITY, v[77] = -INFINITY;
    cl_mem bad = dev_from(&ctx, v, N);
    free(v);
    rc_guard g;
    int tag, index;
    ck_assert_msg(rc_guard_init(&ctx, &g, &e) == 0, "%s", e.msg);
    ck_assert(rc_guard_check(&ctx, &g, clean, 0, N, 1, &e) == 0);
    ck_assert(rc_guard_check(&ctx, &g, bad, 100, N - 100, 2, &e) == 0); /* 77 is outside */
    ck_assert(rc_guard_check(&ctx, &g, clean, 0, N, 3, &e) == 0);
    ck_assert(rc_guard_check(&ctx, &g, bad, 0, N, 4, &e) == 0); /* later: not recorded */
    ck_assert_msg(rc_guard_read(&ctx, &g, &tag, &index, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(tag, 2);
    ck_assert_int_eq(index, 1234 - 100);
    ck_assert(rc_guard_check(&ctx, &g, bad, 0, 100, 5, &e) == 0);
    ck_assert(rc_guard_read(&ctx, &g, &tag, &index, &e) == 0);
    ck_assert_int_eq(tag, 2); /* a failure stays recorded */
    rc_guard_free(&g);

    ck_assert(rc_guard_init(&ctx, &g, &e) == 0);
    ck_assert(rc_guard_check(&ctx, &g, clean, 0, N, 7, &e) == 0);
    ck_assert(rc_guard_check(&ctx, &g, bad, 0, 1000, 8, &e) == 0); /* bad: 77 only */
    ck_assert(rc_guard_check(&ctx, &g, bad, 200, 1100, 9, &e) == 0);
    ck_assert(rc_guard_read(&ctx, &g, &tag, &index, &e) == 0);
    ck_assert_int_eq(tag, 8);
    ck_assert_int_eq(index, 77);
    rc_guard_free(&g);

    ck_assert(rc_guard_init(&ctx, &g, &e) == 0);
    ck_assert(rc_guard_check(&ctx, &g, clean, 0, N, 7, &e) == 0);
    ck_assert(rc_guard_read(&ctx, &g, &tag, &index, &e) == 0);
    ck_assert_int_eq(tag, -1);
    ck_assert(rc_guard_check(&ctx, &g, bad, 4000, 1000, 11, &e) == 0);
    ck_assert(rc_guard_read(&ctx, &g, &tag, &index, &e) == 0);
    ck_assert_int_eq(tag, 11);
    ck_assert_int_eq(index, 321);
    rc_guard_free(&g);
    clReleaseMemObject(clean);
    clReleaseMemObject(bad);
    rc_ctx_close(&ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, schedules_match_the_reference);
    tcase_add_test(tc, sgd_single_group);
    tcase_add_test(tc, sgd_split_groups_reference_lr);
    tcase_add_test(tc, sgd_split_groups_lr_all);
    tcase_add_test(tc, guard_records_the_first_nonfinite_value);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
