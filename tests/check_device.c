#include "testutil.h"

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
                          "max work-group:", "OpenCL C:", "fp16:", "fp64:"};
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
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
