/* Helpers shared by the Check tests. Devices are opened inside each test body: with PoCL 3.1 a
 * forked child hangs if its parent already opened a device, and Check forks each test. */
#ifndef RAMP_TESTUTIL_H
#define RAMP_TESTUTIL_H

#include "ramp/context.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A fresh, empty directory under the build tree's tests/tmp (or /tmp). */
static inline void test_tmpdir(char *out, size_t n, const char *tag) {
    const char *base = getenv("RAMP_CL_TEST_TMP");
    snprintf(out, n, "%s/%s-XXXXXX", base && *base ? base : "/tmp", tag);
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp %s failed", out);
}

/* The device under test: RAMP_CL_TEST_DEVICE=N (an index of --list-devices), default 0. The
 * class it runs is the device's own unless RAMP_CL_PATH=cpu|gpu forces one. */
static inline int test_device_index(void) {
    const char *s = getenv("RAMP_CL_TEST_DEVICE");
    return s && *s ? atoi(s) : 0;
}

static inline void test_open_ctx(rc_ctx *ctx) {
    rc_err e;
    rc_err_clear(&e);
    ck_assert_msg(rc_ctx_open(ctx, test_device_index(), &e) == 0, "opening device %d: %s",
                  test_device_index(), e.msg);
}

/* RAMP_CL_TESTS="name name ...": only the named tests are added (Check selects suites and test
 * cases, not single tests). tests/oclgrind.sh uses it to pick the tests small enough for
 * Oclgrind's interpreter. tcase_add_test is Check's own macro, redefined here to filter. */
static inline int test_selected(const char *name) {
    const char *list = getenv("RAMP_CL_TESTS");
    if (!list || !*list) return 1;
    const size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
    return 0;
}
static inline void test_add(TCase *tc, const TTest *t) {
    if (test_selected(t->name)) tcase_add_test_raise_signal(tc, t, 0);
}
#undef tcase_add_test
#define tcase_add_test(tc, tf) test_add(tc, tf)

/* Seconds a single test may take: cold PoCL compiles of CLBlast kernels take several. */
#define TEST_TIMEOUT 300

static inline int test_run_suite(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

/* ---- random numbers: a 32-bit LCG, the same sequence in every test --------------------------- */

static inline unsigned lcg(unsigned *s) { return *s = *s * 1664525u + 1013904223u; }
/* U[0, 1) in steps of 2^-24 */
static inline double urand01(unsigned *s) { return (double)(lcg(s) >> 8) / 16777216.0; }
/* U[lo, hi) */
static inline float urand(unsigned *s, float lo, float hi) {
    return lo + (hi - lo) * (float)(lcg(s) >> 8) / 16777216.0f;
}
/* N(0, 1) by Box-Muller */
static inline float nrand(unsigned *s) {
    float u1 = urand(s, 1e-7f, 1.0f), u2 = urand(s, 0.0f, 1.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

/* ---- device buffers: sizes in bytes (_bytes) or in floats; every failure fails the test ------ */

static inline cl_mem dev_buf_bytes(rc_ctx *ctx, size_t bytes) {
    cl_mem b;
    rc_err e;
    ck_assert_msg(rc_buffer_create(ctx, bytes ? bytes : 1, "test", &b, &e) == 0, "%s", e.msg);
    return b;
}
static inline void upload_bytes(rc_ctx *ctx, cl_mem b, const void *h, size_t bytes) {
    rc_err e;
    ck_assert_msg(rc_buffer_write(ctx, b, 0, bytes, h, "test", &e) == 0, "%s", e.msg);
}
static inline void download_bytes(rc_ctx *ctx, cl_mem b, void *h, size_t bytes) {
    rc_err e;
    ck_assert_msg(rc_buffer_read(ctx, b, 0, bytes, h, "test", &e) == 0, "%s", e.msg);
}
/* A new buffer holding h (h NULL: uninitialised). */
static inline cl_mem dev_from_bytes(rc_ctx *ctx, const void *h, size_t bytes) {
    cl_mem b = dev_buf_bytes(ctx, bytes);
    if (h) upload_bytes(ctx, b, h, bytes);
    return b;
}

static inline cl_mem dev_buf(rc_ctx *ctx, size_t n) {
    return dev_buf_bytes(ctx, n * sizeof(float));
}
static inline void upload(rc_ctx *ctx, cl_mem b, const float *h, size_t n) {
    upload_bytes(ctx, b, h, n * sizeof(float));
}
static inline void download(rc_ctx *ctx, cl_mem b, float *h, size_t n) {
    download_bytes(ctx, b, h, n * sizeof(float));
}
static inline cl_mem dev_from(rc_ctx *ctx, const float *h, size_t n) {
    return dev_from_bytes(ctx, h, n * sizeof(float));
}

/* ---- files ---------------------------------------------------------------------------------- */

/* tests/fixtures/<name> in the source tree ($RAMP_CL_SRCDIR, else the working directory) */
static inline const char *fixture_path(const char *name, char *buf, size_t n) {
    const char *src = getenv("RAMP_CL_SRCDIR");
    snprintf(buf, n, "%s/tests/fixtures/%s", src && *src ? src : ".", name);
    return buf;
}

static inline void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* The whole file, with a NUL after its n bytes (n may be NULL); free() it. */
static inline void *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    ck_assert_int_ge(len, 0);
    rewind(f);
    char *s = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(fread(s, 1, (size_t)len, f), (size_t)len);
    s[len] = '\0';
    fclose(f);
    if (n) *n = (size_t)len;
    return s;
}

/* Writes the printf-formatted text to <dir>/<name>; its path goes to out (when not NULL). */
__attribute__((format(printf, 5, 6))) static inline void
write_text(char *out, size_t n, const char *dir, const char *name, const char *fmt, ...) {
    char path[1200];
    if (!out) out = path, n = sizeof path;
    snprintf(out, n, "%s/%s", dir, name);
    FILE *f = fopen(out, "w");
    ck_assert_msg(f != NULL, "cannot write %s", out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    ck_assert_int_eq(fclose(f), 0);
}

/* Removes dir and everything below it. */
static inline void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "cannot open %s", dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char p[1024];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        ck_assert_int_eq(lstat(p, &st), 0);
        if (S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            ck_assert_int_eq(unlink(p), 0);
    }
    closedir(d);
    ck_assert_int_eq(rmdir(dir), 0);
}

#endif
