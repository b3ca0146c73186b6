#include "testutil.h"
#include "ramp/launch.h"

START_TEST(enumerate_lists_devices_with_stable_indices) {
    rc_device_desc *list, *again;
    int n, n2;
    rc_err e;
    ck_assert_msg(rc_devices_enumerate(&list, &n, &e) == 0, "%s", e.msg);
    ck_assert_int_ge(n, 1);
    ck_assert_msg(rc_devices_enumerate(&again, &n2, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(n, n2);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(list[i].index, i);
        ck_assert_str_eq(list[i].name, again[i].name);
        ck_assert_str_ne(list[i].name, "");
        ck_assert_str_ne(list[i].vendor, "");
        ck_assert_uint_gt(list[i].compute_units, 0);
        ck_assert_uint_gt(list[i].global_mem, 0);
        ck_assert_uint_gt(list[i].max_work_group, 0);
        ck_assert_msg(strncmp(list[i].c_version, "OpenCL C ", 9) == 0, "C version '%s'",
                      list[i].c_version);
    }
    free(list);
    free(again);
}
END_TEST

START_TEST(print_shows_every_field) {
    rc_device_desc *list;
    int n;
    rc_err e;
    ck_assert_msg(rc_devices_enumerate(&list, &n, &e) == 0, "%s", e.msg);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    rc_device_print(f, &list[0]);
    fclose(f);
    const char *want[] = {"[0] ", "type:", "vendor:", "compute units:", "global memory:",
                          "max work-group:", "OpenCL C:", "local memory:", "fp16:", "fp64:",
                          "class:"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        ck_assert_msg(strstr(text, want[i]) != NULL, "missing '%s' in:\n%s", want[i], text);
    free(text);
    free(list);
}
END_TEST

START_TEST(bad_index_is_an_error_listing_devices) {
    rc_ctx ctx;
    rc_err e;
    rc_err_clear(&e);
    ck_assert_int_eq(rc_ctx_open(&ctx, 99, &e), -1);
    ck_assert_msg(strstr(e.msg, "no OpenCL device with index 99") != NULL, "%s", e.msg);
    ck_assert_msg(strstr(e.msg, "[0] ") != NULL, "error does not list devices: %s", e.msg);
    rc_ctx_close(&ctx);
    ck_assert_int_eq(rc_ctx_open(&ctx, -1, &e), -1);
    rc_ctx_close(&ctx);
}
END_TEST

START_TEST(open_and_close_device) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    ck_assert_ptr_nonnull(ctx.context);
    ck_assert_ptr_nonnull(ctx.queue);
    rc_err e;
    ck_assert_msg(rc_ctx_finish(&ctx, &e) == 0, "%s", e.msg);
    rc_ctx_close(&ctx);
    ck_assert_ptr_null(ctx.context);
}
END_TEST

START_TEST(buffer_round_trip_and_oversize_error) {
    rc_ctx ctx;
    test_open_ctx(&ctx);
    rc_err e;
    cl_mem b;
    float in[64], out[64];
    for (int i = 0; i < 64; i++) in[i] = (float)i * 0.5f;
    ck_assert_msg(rc_buffer_create(&ctx, sizeof in, "t", &b, &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_buffer_write(&ctx, b, 0, sizeof in, in, "t", &e) == 0, "%s", e.msg);
    ck_assert_msg(rc_buffer_read(&ctx, b, 0, sizeof out, out, "t", &e) == 0, "%s", e.msg);
    ck_assert_mem_eq(in, out, sizeof in);
    /* Reading past the end is reported with the call, status and sizes. */
    ck_assert_int_eq(rc_buffer_read(&ctx, b, 0, 2 * sizeof out, out, "tensor t", &e), -1);
    ck_assert_msg(strstr(e.msg, "clEnqueueReadBuffer") && strstr(e.msg, "tensor t") &&
                      strstr(e.msg, "CL_"),
                  "%s", e.msg);
    clReleaseMemObject(b);
    ck_assert_int_eq(rc_buffer_create(&ctx, (size_t)ctx.dev.max_alloc + 1, "huge", &b, &e), -1);
    ck_assert_msg(strstr(e.msg, "huge") != NULL, "%s", e.msg);
    rc_ctx_close(&ctx);
}
END_TEST

START_TEST(status_names) {
    ck_assert_str_eq(rc_cl_status_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    ck_assert_str_eq(rc_cl_status_name(CL_BUILD_PROGRAM_FAILURE), "CL_BUILD_PROGRAM_FAILURE");
    ck_assert_str_eq(rc_cl_status_name(-12345), "unknown OpenCL status");
    ck_assert_str_eq(rc_clblast_status_name(-1017), "CLBlastInvalidDimension");
    ck_assert_str_eq(rc_clblast_status_name(-5), "CL_OUT_OF_RESOURCES");
    rc_err e;
    rc_err_cl(&e, "clFoo", CL_INVALID_VALUE, "kernel %s, global %d", "k", 64);
    ck_assert_str_eq(e.msg, "clFoo failed: CL_INVALID_VALUE (-30): kernel k, global 64");
    rc_err_prefix(&e, "step %d: ", 3);
    ck_assert_str_eq(e.msg, "step 3: clFoo failed: CL_INVALID_VALUE (-30): kernel k, global 64");
}
END_TEST

/* A device's class comes from what it reports, never its vendor; RAMP_CL_PATH overrides. */
START_TEST(class_from_properties_and_environment) {
    rc_device_desc d;
    memset(&d, 0, sizeof d);
    snprintf(d.vendor, sizeof d.vendor, "NVIDIA Corporation");
    d.type = CL_DEVICE_TYPE_CPU;
    ck_assert_int_eq(rc_device_class_natural(&d), RC_CLASS_CPU);
    d.type = CL_DEVICE_TYPE_GPU;
    ck_assert_int_eq(rc_device_class_natural(&d), RC_CLASS_GPU);
    d.type = CL_DEVICE_TYPE_ACCELERATOR;
    d.local_mem_dedicated = 1;
    d.max_work_group = 1024;
    ck_assert_int_eq(rc_device_class_natural(&d), RC_CLASS_GPU);
    d.local_mem_dedicated = 0;
    ck_assert_int_eq(rc_device_class_natural(&d), RC_CLASS_CPU);
    rc_device_class c;
    int forced;
    rc_err e;
    d.type = CL_DEVICE_TYPE_CPU;
    setenv("RAMP_CL_PATH", "gpu", 1);
    ck_assert_int_eq(rc_device_class_choose(&d, &c, &forced, &e), 0);
    ck_assert_int_eq(c, RC_CLASS_GPU);
    ck_assert_int_eq(forced, 1);
    setenv("RAMP_CL_PATH", "fast", 1);
    ck_assert_int_eq(rc_device_class_choose(&d, &c, &forced, &e), -1);
    ck_assert_str_eq(e.msg, "RAMP_CL_PATH=fast: expected cpu or gpu");
    rc_ctx ctx;
    ck_assert_int_eq(rc_ctx_open(&ctx, test_device_index(), &e), -1);
    rc_ctx_close(&ctx);
    unsetenv("RAMP_CL_PATH");
    ck_assert_int_eq(rc_device_class_choose(&d, &c, &forced, &e), 0);
    ck_assert_int_eq(c, RC_CLASS_CPU);
    ck_assert_int_eq(forced, 0);
}
END_TEST

/* The host's copy of wg_tree_sum's order (cl/common.cl): lane v adds elements v, v + 256, ...,
 * then lanes pair (v, v + s) for s = 128 ... 1. Only additions: every device rounds it alike. */
static float fixed_lane_sum(const float *p, int n) {
    float lanes[256];
    for (int v = 0; v < 256; v++) {
        lanes[v] = 0.0f;
        for (int j = v; j < n; j += 256) lanes[v] += p[j];
    }
    for (int s = 128; s > 0; s >>= 1)
        for (int v = 0; v < s; v++) lanes[v] += lanes[v + s];
    return lanes[0];
}

/* Work-group reductions give the same bits whatever the work-group size: forced to 1, 16 and 64
 * (in fresh contexts, the size is fixed at a kernel's first launch) and the default, on rows
 * shorter and longer than the 256 lanes, equal to the host's copy of the order. */
START_TEST(group_sums_do_not_depend_on_the_work_group_size) {
    enum { ROWS = 4, N = 1000 };
    const int lens[] = {1, 200, 256, 1000};
    float *x = malloc(ROWS * N * sizeof *x);
    unsigned seed = 7;
    for (int i = 0; i < ROWS * N; i++) x[i] = urand(&seed, -1.0f, 1.0f) * (float)(1 + i % 97);
    const unsigned sizes[] = {1, 16, 64, 0};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
            rc_ctx ctx;
            test_open_ctx(&ctx);
            ctx.testing.group_size = sizes[k];
            const int n = lens[l];
            cl_mem dx = dev_from(&ctx, x, (size_t)ROWS * N), ds = dev_buf(&ctx, ROWS);
            /* rows of n floats packed at stride n: the kernel's layout */
            rc_err e;
            ck_assert_msg(RC_LAUNCH_GROUPS(&ctx, "selftest.cl", "selftest_group_sum", ROWS, &e,
                                           RC_ARG(dx), RC_ARG(n), RC_ARG(ds)) == 0,
                          "%s", e.msg);
            float got[ROWS];
            download(&ctx, ds, got, ROWS);
            for (int r = 0; r < ROWS; r++) {
                float want = fixed_lane_sum(x + (size_t)r * n, n);
                ck_assert_msg(memcmp(&got[r], &want, sizeof want) == 0,
                              "group size %u, n %d, row %d: %.9g, host %.9g", sizes[k], n, r,
                              got[r], want);
            }
            clReleaseMemObject(dx);
            clReleaseMemObject(ds);
            rc_ctx_close(&ctx);
        }
    }
    free(x);
}
END_TEST

int main(void) {
    Suite *s = suite_create("device");
    TCase *tc = tcase_create("device");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, enumerate_lists_devices_with_stable_indices);
    tcase_add_test(tc, print_shows_every_field);
    tcase_add_test(tc, bad_index_is_an_error_listing_devices);
    tcase_add_test(tc, open_and_close_device);
    tcase_add_test(tc, buffer_round_trip_and_oversize_error);
    tcase_add_test(tc, status_names);
    tcase_add_test(tc, class_from_properties_and_environment);
    tcase_add_test(tc, group_sums_do_not_depend_on_the_work_group_size);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
