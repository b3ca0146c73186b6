/* ramp-cl command line: parses arguments and dispatches to the subcommands. */
#include "config.h"
#include "ramp/device.h"
#include "ramp/selftest.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fputs("Usage: ramp-cl [OPTION]... COMMAND\n"
          "Robust training against several l_p adversaries at once, on any OpenCL device.\n"
          "\n"
          "Commands:\n"
          "  selftest            run a CLBlast SGEMM and a ramp-cl kernel on the device and\n"
          "                      compare them with the host (also: --selftest)\n"
          "\n"
          "Options:\n"
          "  -d, --device N      use OpenCL device N (see --list-devices; default 0)\n"
          "  -l, --list-devices  list every OpenCL platform and device with its index\n"
          "  -v, --verbose       report what the kernel cache did\n"
          "  -h, --help          show this help and exit\n"
          "  -V, --version       show the version and exit\n"
          "\n"
          "Environment:\n"
          "  RAMP_CL_CACHE_DIR   compiled-kernel cache (default $XDG_CACHE_HOME/ramp-cl)\n"
          "  RAMP_CL_NO_CACHE    set to 1 to compile kernels on every run\n"
          "  RAMP_CL_KERNEL_DIR  read kernels from this directory instead of the built-in ones\n"
          "\n"
          "See ramp-cl(1) for details.\n",
          f);
}

static int parse_index(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT_MAX) return -1;
    *out = (int)v;
    return 0;
}

static int list_devices(rc_err *e) {
    rc_device_desc *list;
    int n;
    if (rc_devices_enumerate(&list, &n, e)) return -1;
    for (int i = 0; i < n; i++) rc_device_print(stdout, &list[i]);
    free(list);
    return 0;
}

static void print_cache_stats(const rc_ctx *ctx) {
    fprintf(stderr,
            "ramp-cl: kernel cache %s: %d built from source, %d loaded, %d rejected, %d written\n",
            ctx->cache_dir[0] ? ctx->cache_dir : "(disabled)", ctx->stats.source_builds,
            ctx->stats.cache_hits, ctx->stats.cache_rejects, ctx->stats.cache_writes);
}

static int run_selftest(int device, int verbose, rc_err *e) {
    rc_ctx ctx;
    if (rc_ctx_open(&ctx, device, e)) return -1;
    rc_selftest_result r;
    int rc = rc_selftest(&ctx, stdout, &r, e);
    rc_ctx_close(&ctx);
    fflush(stdout);
    if (verbose) print_cache_stats(&ctx);
    if (rc) return -1;
    printf("selftest: %s\n", r.passed ? "PASS" : "FAIL");
    return r.passed ? 0 : 1;
}

int main(int argc, char **argv) {
    int device = 0, verbose = 0, do_list = 0;
    const char *command = NULL;
    rc_err e;
    rc_err_clear(&e);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            printf("%s\n", PACKAGE_STRING);
            return 0;
        } else if (!strcmp(a, "-l") || !strcmp(a, "--list-devices")) {
            do_list = 1;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--device") || !strncmp(a, "--device=", 9)) {
            const char *v = a[1] == '-' && a[8] == '=' ? a + 9 : i + 1 < argc ? argv[++i] : NULL;
            if (!v || parse_index(v, &device)) {
                fprintf(stderr, "ramp-cl: --device needs a non-negative integer index%s%s\n",
                        v ? ", got " : "", v ? v : "");
                return 2;
            }
        } else if (!strcmp(a, "--selftest")) {
            command = "selftest";
        } else if (a[0] == '-') {
            fprintf(stderr, "ramp-cl: unknown option %s (see ramp-cl --help)\n", a);
            return 2;
        } else if (command) {
            fprintf(stderr, "ramp-cl: unexpected argument %s after %s\n", a, command);
            return 2;
        } else {
            command = a;
        }
    }
    int rc = 0;
    if (do_list) {
        rc = list_devices(&e);
        if (!rc && !command) return 0;
    }
    if (!rc) {
        if (!command) {
            usage(stderr);
            return 2;
        } else if (!strcmp(command, "selftest")) {
            rc = run_selftest(device, verbose, &e);
            if (rc == 1) return 1;
        } else {
            fprintf(stderr, "ramp-cl: unknown command %s (see ramp-cl --help)\n", command);
            return 2;
        }
    }
    if (rc) {
        fprintf(stderr, "ramp-cl: error: %s\n", e.msg);
        return 1;
    }
    return 0;
}
