#include "testutil.h"
#include "ramp/program.h"
#include "ramp/selftest.h"

#include <stdint.h>
#include <unistd.h>
#include <zlib.h>

/* Every test gets its own empty cache directory. The selftest's GEMM goes through CLBlast (which
 * keeps its own programs) so that the only ramp-cl program it builds is selftest.cl. */
static void fresh_cache(char *dir, size_t n) {
    test_tmpdir(dir, n, "cache");
    setenv("RAMP_CL_GEMM", "clblast", 1);
    setenv("RAMP_CL_CACHE_DIR", dir, 1);
    unsetenv("RAMP_CL_NO_CACHE");
    unsetenv("RAMP_CL_KERNEL_DIR");
}

static void get_selftest_program(rc_ctx *ctx) {
    cl_program p;
    rc_err e;
    ck_assert_msg(rc_program_get(ctx, "selftest.cl", "", &p, &e) == 0, "%s", e.msg);
}

static void assert_selftest_passes(rc_ctx *ctx) {
    rc_selftest_result r;
    rc_err e;
    ck_assert_msg(rc_selftest(ctx, NULL, &r, &e) == 0, "%s", e.msg);
    ck_assert_msg(r.passed, "selftest failed: gemm %g kernel %g", r.gemm_max_rel_err,
                  r.kernel_max_rel_err);
}

static char *selftest_cache_file(rc_ctx *ctx, char *path, size_t n) {
    ck_assert_int_eq(rc_program_cache_path(ctx, rc_cl_source_find("selftest.cl"), "", path, n), 0);
    return path;
}

/* A new context that has got the selftest program, with these numbers of builds from source,
 * cache hits and cache rejects (-1: not checked). */
static void open_and_get(rc_ctx *ctx, int builds, int hits, int rejects) {
    test_open_ctx(ctx);
    get_selftest_program(ctx);
    if (builds >= 0) ck_assert_int_eq(ctx->stats.source_builds, builds);
    if (hits >= 0) ck_assert_int_eq(ctx->stats.cache_hits, hits);
    if (rejects >= 0) ck_assert_int_eq(ctx->stats.cache_rejects, rejects);
}

/* Closes the context, which writes that many programs to the cache. */
static void close_writing(rc_ctx *ctx, int writes) {
    rc_ctx_close(ctx);
    ck_assert_int_eq(ctx->stats.cache_writes, writes);
}

/* First context builds from source and writes the binary on close; the second loads it. */
static void build_and_save(void) {
    rc_ctx ctx;
    open_and_get(&ctx, 1, 0, -1);
    assert_selftest_passes(&ctx); /* launches the kernel before the binary is saved */
    close_writing(&ctx, 1);
}

START_TEST(embedded_sources_are_present) {
    ck_assert_int_ge(rc_cl_source_count, 1);
    const char *s = rc_cl_source_find("selftest.cl");
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(strstr(s, "__kernel void selftest_axpby"));
    /* every embedded program carries the prelude, before the file's own #line */
    const char *prelude = strstr(s, "static inline int row_argmax(");
    const char *line = strstr(s, "#line 1 \"selftest.cl\"\n");
    ck_assert_ptr_nonnull(prelude);
    ck_assert_ptr_nonnull(line);
    ck_assert_msg(prelude < line, "the prelude is not before selftest.cl's #line");
    ck_assert_ptr_null(rc_cl_source_find("missing.cl"));
}
END_TEST

START_TEST(second_build_is_a_cache_hit) {
    char dir[1024];
    fresh_cache(dir, sizeof dir);
    build_and_save();
    rc_ctx ctx;
    open_and_get(&ctx, 0, 1, 0);
    assert_selftest_passes(&ctx); /* the cached binary computes the right thing */
    close_writing(&ctx, 0);       /* nothing rebuilt, nothing rewritten */
}
END_TEST

START_TEST(same_program_is_built_once_per_context) {
    char dir[1024];
    fresh_cache(dir, sizeof dir);
    rc_ctx ctx;
    open_and_get(&ctx, 1, -1, -1);
    get_selftest_program(&ctx);
    ck_assert_int_eq(ctx.stats.source_builds, 1);
    cl_program p;
    rc_err e;
    ck_assert_msg(rc_program_get(&ctx, "selftest.cl", "-DUNUSED=1", &p, &e) == 0, "%s", e.msg);
    ck_assert_int_eq(ctx.stats.source_builds, 2); /* other options, other program */
    close_writing(&ctx, 2);
}
END_TEST

/* Open a context, expect the damaged entry to be rejected and rebuilt, and the rebuilt entry to be
 * a clean hit afterwards. */
static void expect_rejected_then_repaired(void) {
    rc_ctx ctx;
    open_and_get(&ctx, 1, 0, 1);
    assert_selftest_passes(&ctx);
    close_writing(&ctx, 1);
    open_and_get(&ctx, -1, 1, 0);
    rc_ctx_close(&ctx);
}

START_TEST(corrupt_cache_entries_are_rebuilt) {
    char dir[1024], path[1200];
    fresh_cache(dir, sizeof dir);
    build_and_save();
    rc_ctx probe;
    test_open_ctx(&probe);
    selftest_cache_file(&probe, path, sizeof path);
    rc_ctx_close(&probe);
    size_t n;
    unsigned char *good = read_file(path, &n);
    ck_assert_uint_gt(n, 64);

    /* 1. a flipped byte in the binary: CRC mismatch */
    unsigned char *bad = malloc(n);
    memcpy(bad, good, n);
    bad[n - 10] ^= 0x5a;
    write_bytes(path, bad, n);
    expect_rejected_then_repaired();

    /* 2. a truncated file */
    write_bytes(path, good, n / 2);
    expect_rejected_then_repaired();

    /* 3. garbage of the right length */
    memset(bad, 'x', n);
    write_bytes(path, bad, n);
    expect_rejected_then_repaired();

    /* 4. a well-formed entry whose binary the driver refuses: identity and CRC check out, so only
     *    the driver can tell. Rebuild the header around random bytes with their correct CRC. */
    uint32_t id_len;
    memcpy(&id_len, good + 12, 4);
    size_t header = 8 + 4 + 4 + id_len + 8 + 4;
    memcpy(bad, good, n);
    for (size_t i = header; i < n; i++) bad[i] = (unsigned char)(i * 131u + 7u);
    uint32_t crc = (uint32_t)crc32(0L, bad + header, (uInt)(n - header));
    memcpy(bad + header - 4, &crc, 4);
    write_bytes(path, bad, n);
    expect_rejected_then_repaired();

    free(bad);
    free(good);
}
END_TEST

START_TEST(syntax_error_reports_build_log) {
    char dir[1024];
    fresh_cache(dir, sizeof dir);
    rc_ctx ctx;
    test_open_ctx(&ctx);
    const char *bad = "__kernel void broken(__global float *x) {\n  x[0] = undeclared_name;\n}\n";
    cl_program p;
    rc_err e;
    rc_err_clear(&e);
    ck_assert_int_eq(rc_program_from_source(&ctx, "broken.cl", bad, "", &p, &e), -1);
    ck_assert_msg(strstr(e.msg, "clBuildProgram failed: CL_BUILD_PROGRAM_FAILURE") != NULL, "%s",
                  e.msg);
    ck_assert_msg(strstr(e.msg, "broken.cl") != NULL, "%s", e.msg);
    ck_assert_msg(strstr(e.msg, "build log:") != NULL, "%s", e.msg);
    ck_assert_msg(strstr(e.msg, "undeclared_name") != NULL, "log lacks the culprit: %s", e.msg);
    ck_assert_int_eq(ctx.stats.source_builds, 0);
    close_writing(&ctx, 0);
}
END_TEST

START_TEST(kernel_dir_overrides_embedded_sources) {
    char dir[1024], kdir[1024], path[1200];
    fresh_cache(dir, sizeof dir);
    test_tmpdir(kdir, sizeof kdir, "kernels");
    snprintf(path, sizeof path, "%s/only_on_disk.cl", kdir);
    const char *src = "__kernel void only_on_disk(__global float *x) { x[0] = one(); }\n";
    write_bytes(path, src, strlen(src));
    snprintf(path, sizeof path, "%s/%s", kdir, RC_CL_PRELUDE);
    const char *prelude = "static inline float one(void) { return 1.0f; }\n";
    write_bytes(path, prelude, strlen(prelude));
    rc_ctx ctx;
    test_open_ctx(&ctx);
    cl_kernel k;
    rc_err e;
    ck_assert_int_eq(rc_kernel_create(&ctx, "only_on_disk.cl", "only_on_disk", "", &k, &e), -1);
    ck_assert_msg(strstr(e.msg, "no kernel source named only_on_disk.cl") != NULL, "%s", e.msg);
    setenv("RAMP_CL_KERNEL_DIR", kdir, 1);
    ck_assert_msg(rc_kernel_create(&ctx, "only_on_disk.cl", "only_on_disk", "", &k, &e) == 0,
                  "%s", e.msg);
    clReleaseKernel(k);
    ck_assert_int_eq(ctx.stats.source_builds, 1);
    /* the prelude is part of the program's identity: changing it rebuilds the program */
    const char *prelude2 = "static inline float one(void) { return 2.0f - 1.0f; }\n";
    write_bytes(path, prelude2, strlen(prelude2));
    ck_assert_msg(rc_kernel_create(&ctx, "only_on_disk.cl", "only_on_disk", "", &k, &e) == 0,
                  "%s", e.msg);
    clReleaseKernel(k);
    ck_assert_int_eq(ctx.stats.source_builds, 2);
    ck_assert_int_eq(ctx.stats.cache_hits, 0);
    ck_assert_int_eq(rc_kernel_create(&ctx, "selftest.cl", "selftest_axpby", "", &k, &e), -1);
    ck_assert_msg(strstr(e.msg, "cannot open kernel file") != NULL, "%s", e.msg);
    unsetenv("RAMP_CL_KERNEL_DIR");
    rc_ctx_close(&ctx);
}
END_TEST

/* cl/ read through RAMP_CL_KERNEL_DIR is assembled exactly as the embedded copy: same identity. */
START_TEST(kernel_dir_assembles_like_embed) {
    const char *srcdir = getenv("RAMP_CL_SRCDIR");
    ck_assert_ptr_nonnull(srcdir);
    char dir[1024], kdir[1200];
    fresh_cache(dir, sizeof dir);
    snprintf(kdir, sizeof kdir, "%s/cl", srcdir);
    rc_ctx ctx;
    test_open_ctx(&ctx);
    get_selftest_program(&ctx);
    setenv("RAMP_CL_KERNEL_DIR", kdir, 1);
    get_selftest_program(&ctx);
    unsetenv("RAMP_CL_KERNEL_DIR");
    ck_assert_int_eq(ctx.stats.source_builds, 1);
    rc_ctx_close(&ctx);
}
END_TEST

START_TEST(cache_can_be_disabled) {
    char dir[1024];
    fresh_cache(dir, sizeof dir);
    setenv("RAMP_CL_NO_CACHE", "1", 1);
    for (int round = 0; round < 2; round++) {
        rc_ctx ctx;
        test_open_ctx(&ctx);
        ck_assert_str_eq(ctx.cache_dir, "");
        get_selftest_program(&ctx);
        ck_assert_int_eq(ctx.stats.source_builds, 1);
        close_writing(&ctx, 0);
    }
    unsetenv("RAMP_CL_NO_CACHE");
}
END_TEST

START_TEST(unknown_kernel_name_is_reported) {
    char dir[1024];
    fresh_cache(dir, sizeof dir);
    rc_ctx ctx;
    test_open_ctx(&ctx);
    cl_kernel k;
    rc_err e;
    ck_assert_int_eq(rc_kernel_create(&ctx, "selftest.cl", "nope", "", &k, &e), -1);
    ck_assert_msg(strstr(e.msg, "clCreateKernel failed: CL_INVALID_KERNEL_NAME") &&
                      strstr(e.msg, "kernel nope in selftest.cl"),
                  "%s", e.msg);
    rc_ctx_close(&ctx);
}
END_TEST

int main(void) {
    Suite *s = suite_create("program");
    TCase *tc = tcase_create("program");
    tcase_set_timeout(tc, TEST_TIMEOUT);
    tcase_add_test(tc, embedded_sources_are_present);
    tcase_add_test(tc, second_build_is_a_cache_hit);
    tcase_add_test(tc, same_program_is_built_once_per_context);
    tcase_add_test(tc, corrupt_cache_entries_are_rebuilt);
    tcase_add_test(tc, syntax_error_reports_build_log);
    tcase_add_test(tc, kernel_dir_overrides_embedded_sources);
    tcase_add_test(tc, kernel_dir_assembles_like_embed);
    tcase_add_test(tc, cache_can_be_disabled);
    tcase_add_test(tc, unknown_kernel_name_is_reported);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
