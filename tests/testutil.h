/* Helpers shared by the Check tests. Devices are opened inside each test body: with PoCL 3.1 a
 * forked child hangs if its parent already opened a device, and Check forks each test. */
#ifndef RAMP_TESTUTIL_H
#define RAMP_TESTUTIL_H

#include "ramp/context.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A fresh, empty directory under the build tree's tests/tmp (or /tmp). */
static inline void test_tmpdir(char *out, size_t n, const char *tag) {
    const char *base = getenv("RAMP_CL_TEST_TMP");
    snprintf(out, n, "%s/%s-XXXXXX", base && *base ? base : "/tmp", tag);
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp %s failed", out);
}

static inline void test_open_ctx(rc_ctx *ctx) {
    rc_err e;
    rc_err_clear(&e);
    ck_assert_msg(rc_ctx_open(ctx, 0, &e) == 0, "opening device 0: %s", e.msg);
}

/* Seconds a single test may take: cold PoCL compiles of CLBlast kernels take several. */
#define TEST_TIMEOUT 300

static inline int test_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

#endif
