/* GFLOP/s of rc_sgemm's implementations on the GEMM shapes the trainer runs (not built by make).
 *
 *   gcc -std=c11 -O2 -Iinclude tools/gemm_sweep.c libramp.a \
 *       $(pkg-config --libs clblast OpenCL yaml-0.1 zlib) -lm -o gemm_sweep
 *   ./gemm_sweep [-d DEVICE] [-i IMPL]... [-s SUBSTRING] [-t SECONDS] [-r ROUNDS]
 *                [M,N,K,TA,TB ...]
 *
 * IMPL is own, clblast or own:PARAMS (PARAMS as in RAMP_CL_GEMM_PARAMS, see include/ramp/gemm.h);
 * default -i own -i clblast. For every shape: two warm-up calls per implementation (kernel
 * compiles, scratch growth), then -r rounds (default 3); in each round every implementation in
 * turn makes enough calls to fill about -t seconds (3 to 10 calls, one clFinish at the end).
 * The best round per implementation is reported: the machine may be shared, and interleaving
 * the implementations exposes them to the same load. The outputs (alpha 1, beta 0) are
 * compared with the first implementation's. */
#define _POSIX_C_SOURCE 200809L
#include "ramp/context.h"
#include "ramp/gemm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct shape {
    const char *name;
    size_t m, n, k;
    int ta, tb;
} shape;

static const shape default_shapes[] = {
    {"cnn conv1 fwd", 32, 100352, 9, 0, 0},
    {"cnn conv2 fwd", 64, 25088, 288, 0, 0},
    {"cnn conv3 fwd", 128, 6272, 576, 0, 0},
    {"cnn conv2 wgrad", 64, 288, 25088, 0, 1},
    {"cnn conv3 wgrad", 128, 576, 6272, 0, 1},
    {"cnn conv2 dgrad", 288, 25088, 64, 1, 0},
    {"cnn conv3 dgrad", 576, 6272, 128, 1, 0},
    {"cnn linear fwd", 128, 10, 6272, 0, 1},
    {"rn18 l1 fwd", 64, 131072, 576, 0, 0},
    {"rn18 l1 wgrad", 64, 576, 131072, 0, 1},
    {"rn18 l1 dgrad", 576, 131072, 64, 1, 0},
    {"rn18 l2 fwd", 128, 32768, 1152, 0, 0},
    {"rn18 l3 fwd", 256, 8192, 2304, 0, 0},
    {"rn18 l4 fwd", 512, 2048, 4608, 0, 0},
    {"rn18 l4 wgrad", 512, 4608, 2048, 0, 1},
    {"rn18 l4 dgrad", 4608, 2048, 512, 1, 0},
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void die(const rc_err *e) {
    fprintf(stderr, "gemm_sweep: %s\n", e->msg);
    exit(1);
}

static void fill(float *v, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)((seed >> 8) / 8388608.0 - 1.0);
    }
}

/* Makes `spec` the implementation of the next GEMM on ctx. */
static void select_impl(rc_ctx *ctx, const char *spec) {
    char impl[32];
    const char *colon = strchr(spec, ':');
    snprintf(impl, sizeof impl, "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
    setenv("RAMP_CL_GEMM", impl, 1);
    if (colon) setenv("RAMP_CL_GEMM_PARAMS", colon + 1, 1);
    else unsetenv("RAMP_CL_GEMM_PARAMS");
    rc_gemm_release(ctx); /* both are read again at the next GEMM */
}

static void loadavg(double l[3]) {
    l[0] = l[1] = l[2] = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return;
    if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3) l[0] = -1;
    fclose(f);
}

#define MAX_IMPL 8

int main(int argc, char **argv) {
    int dev = 0, rounds = 3, nimpl = 0, ncustom = 0;
    double target = 1.0;
    const char *impl[MAX_IMPL], *filter = NULL;
    shape custom[32];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) dev = atoi(argv[++i]);
        else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc && nimpl < MAX_IMPL)
            impl[nimpl++] = argv[++i];
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) filter = argv[++i];
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) target = atof(argv[++i]);
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (ncustom < 32 && sscanf(argv[i], "%zu,%zu,%zu,%d,%d", &custom[ncustom].m,
                                        &custom[ncustom].n, &custom[ncustom].k,
                                        &custom[ncustom].ta, &custom[ncustom].tb) == 5) {
            custom[ncustom].name = argv[i];
            ncustom++;
        } else {
            fprintf(stderr, "usage: gemm_sweep [-d DEVICE] [-i own|clblast|own:PARAMS]... "
                            "[-s SUBSTRING] [-t SECONDS] [-r ROUNDS] [M,N,K,TA,TB ...]\n");
            return 2;
        }
    }
    if (nimpl == 0) {
        impl[nimpl++] = "own";
        impl[nimpl++] = "clblast";
    }
    if (rounds < 1) rounds = 1;
    const shape *shapes = ncustom ? custom : default_shapes;
    int nshapes = ncustom ? ncustom : (int)(sizeof default_shapes / sizeof *default_shapes);

    rc_ctx ctx;
    rc_err e;
    if (rc_ctx_open(&ctx, dev, &e)) die(&e);
    double load[3];
    loadavg(load);
    printf("# device: %s (%s); load average at start %.2f %.2f %.2f\n", ctx.dev.name,
           ctx.dev.driver_version, load[0], load[1], load[2]);
    printf("# GFLOP/s (best of %d rounds) and ms per call\n", rounds);
    for (int i = 0; i < nimpl; i++) printf("# [%d] %s\n", i, impl[i]);
    printf("%-18s %6s %7s %7s %2s", "shape", "M", "N", "K", "tr");
    for (int i = 0; i < nimpl; i++) printf("  [%d] GF/s       ms", i);
    printf(" %9s\n", "max diff");

    for (int s = 0; s < nshapes; s++) {
        const shape *sh = &shapes[s];
        if (filter && !strstr(sh->name, filter)) continue;
        size_t na = sh->m * sh->k, nb = sh->k * sh->n, nc = sh->m * sh->n;
        float *ha = malloc(na * 4), *hb = malloc(nb * 4), *ref = malloc(nc * 4),
              *got = malloc(nc * 4);
        if (!ha || !hb || !ref || !got) {
            fprintf(stderr, "gemm_sweep: out of host memory\n");
            return 1;
        }
        fill(ha, na, 1);
        fill(hb, nb, 2);
        cl_mem da, db, dc;
        if (rc_buffer_create(&ctx, na * 4, "A", &da, &e) ||
            rc_buffer_create(&ctx, nb * 4, "B", &db, &e) ||
            rc_buffer_create(&ctx, nc * 4, "C", &dc, &e) ||
            rc_buffer_write(&ctx, da, 0, na * 4, ha, "A", &e) ||
            rc_buffer_write(&ctx, db, 0, nb * 4, hb, "B", &e))
            die(&e);
        rc_matrix A = {da, 0, sh->ta ? sh->m : sh->k}, B = {db, 0, sh->tb ? sh->k : sh->n},
                  C = {dc, 0, sh->n};
        printf("%-18s %6zu %7zu %7zu %c%c", sh->name, sh->m, sh->n, sh->k, sh->ta ? 'T' : 'N',
               sh->tb ? 'T' : 'N');
        fflush(stdout);
#define GEMM()                                                                                    \
    if (rc_sgemm(&ctx, sh->ta, sh->tb, sh->m, sh->n, sh->k, 1.0f, A, B, 0.0f, C, "sweep", &e))   \
    die(&e)
        int reps[MAX_IMPL];
        double best[MAX_IMPL], maxdiff = 0;
        for (int i = 0; i < nimpl; i++) {
            select_impl(&ctx, impl[i]);
            GEMM();
            if (rc_ctx_finish(&ctx, &e)) die(&e);
            double t0 = now();
            GEMM();
            if (rc_ctx_finish(&ctx, &e)) die(&e);
            double t1 = now() - t0;
            reps[i] = (int)(target / (t1 > 1e-6 ? t1 : 1e-6));
            reps[i] = reps[i] < 3 ? 3 : reps[i] > 10 ? 10 : reps[i];
            best[i] = INFINITY;
            if (rc_buffer_read(&ctx, dc, 0, nc * 4, i ? got : ref, "C", &e)) die(&e);
            if (i)
                for (size_t j = 0; j < nc; j++)
                    maxdiff = fmax(maxdiff, fabs(got[j] - ref[j]) / fmax(1.0, fabs(ref[j])));
        }
        for (int round = 0; round < rounds; round++)
            for (int i = 0; i < nimpl; i++) {
                if (nimpl > 1) {
                    select_impl(&ctx, impl[i]);
                    GEMM(); /* untimed: rebuilds the state and its scratch */
                    if (rc_ctx_finish(&ctx, &e)) die(&e);
                }
                double t0 = now();
                for (int r = 0; r < reps[i]; r++) GEMM();
                if (rc_ctx_finish(&ctx, &e)) die(&e);
                best[i] = fmin(best[i], (now() - t0) / reps[i]);
            }
        for (int i = 0; i < nimpl; i++)
            printf("  %9.1f %8.2f", 2.0 * sh->m * sh->n * sh->k / best[i] * 1e-9, best[i] * 1e3);
        printf(" %9.2g\n", maxdiff);
        fflush(stdout);
        clReleaseMemObject(da);
        clReleaseMemObject(db);
        clReleaseMemObject(dc);
        free(ha);
        free(hb);
        free(ref);
        free(got);
    }
    loadavg(load);
    printf("# load average at end %.2f %.2f %.2f\n", load[0], load[1], load[2]);
    rc_ctx_close(&ctx);
    return 0;
}
