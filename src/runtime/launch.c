#include "ramp/launch.h"
#include "ramp/clock.h"
#include "ramp/program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rc_profile_entry {
    char name[64];
    long calls;
    double seconds;
};

void rc_profile_add(rc_ctx *ctx, const char *name, double seconds) {
    size_t i = 0;
    while (i < ctx->n_prof && strcmp(ctx->prof[i].name, name)) i++;
    if (i == ctx->n_prof) {
        if (ctx->n_prof == ctx->cap_prof) {
            size_t cap = ctx->cap_prof ? 2 * ctx->cap_prof : 32;
            struct rc_profile_entry *g = realloc(ctx->prof, cap * sizeof *g);
            if (!g) return; /* profiling is best effort */
            ctx->prof = g;
            ctx->cap_prof = cap;
        }
        snprintf(ctx->prof[i].name, sizeof ctx->prof[i].name, "%s", name);
        ctx->prof[i].calls = 0;
        ctx->prof[i].seconds = 0;
        ctx->n_prof++;
    }
    ctx->prof[i].calls++;
    ctx->prof[i].seconds += seconds;
}

static int by_time(const void *a, const void *b) {
    double x = ((const struct rc_profile_entry *)a)->seconds;
    double y = ((const struct rc_profile_entry *)b)->seconds;
    return x < y ? 1 : x > y ? -1 : 0;
}

void rc_profile_print(rc_ctx *ctx, FILE *f) {
    if (!ctx->n_prof) return;
    qsort(ctx->prof, ctx->n_prof, sizeof *ctx->prof, by_time);
    double total = 0;
    for (size_t i = 0; i < ctx->n_prof; i++) total += ctx->prof[i].seconds;
    fprintf(f, "ramp-cl profile (each call waited for; %.3f s in all):\n", total);
    fprintf(f, "  %-28s %8s %10s %9s %6s\n", "kernel", "calls", "total s", "ms/call", "share");
    for (size_t i = 0; i < ctx->n_prof; i++)
        fprintf(f, "  %-28s %8ld %10.3f %9.3f %5.1f%%\n", ctx->prof[i].name, ctx->prof[i].calls,
                ctx->prof[i].seconds, 1e3 * ctx->prof[i].seconds / (double)ctx->prof[i].calls,
                100 * ctx->prof[i].seconds / total);
    free(ctx->prof);
    ctx->prof = NULL;
    ctx->n_prof = ctx->cap_prof = 0;
}

void rc_profile_reset(rc_ctx *ctx) { ctx->n_prof = 0; }

struct rc_kernel_entry {
    char name[64];
    cl_kernel kernel;
    size_t group_size; /* rc_launch_groups' work-group size; 0 until first asked */
};

int rc_kernel(rc_ctx *ctx, const char *file, const char *name, cl_kernel *out, rc_err *e) {
    for (size_t i = 0; i < ctx->n_kernels; i++)
        if (strcmp(ctx->kernels[i].name, name) == 0) {
            *out = ctx->kernels[i].kernel;
            return 0;
        }
    if (ctx->n_kernels == ctx->cap_kernels) {
        size_t cap = ctx->cap_kernels ? 2 * ctx->cap_kernels : 32;
        struct rc_kernel_entry *grown = realloc(ctx->kernels, cap * sizeof *grown);
        if (!grown) return rc_err_set(e, "out of host memory creating kernel %s", name);
        ctx->kernels = grown;
        ctx->cap_kernels = cap;
    }
    struct rc_kernel_entry *k = &ctx->kernels[ctx->n_kernels];
    snprintf(k->name, sizeof k->name, "%s", name);
    k->group_size = 0;
    if (rc_kernel_create(ctx, file, name, "", &k->kernel, e)) return -1;
    ctx->n_kernels++;
    *out = k->kernel;
    return 0;
}

int rc_enqueue(rc_ctx *ctx, cl_kernel kernel, const char *name, int dims, const size_t *global,
               const size_t *local, int nargs, const rc_arg *args, rc_err *e) {
    for (int d = 0; d < dims; d++)
        if (global[d] == 0) return 0; /* nothing to do */
    for (int i = 0; i < nargs; i++) {
        cl_int s = clSetKernelArg(kernel, (cl_uint)i, args[i].size, args[i].ptr);
        if (s != CL_SUCCESS)
            return rc_err_cl(e, "clSetKernelArg", s, "kernel %s, argument %d", name, i);
    }
    cl_int s = rc_fault_launch_should_fail(&ctx->testing)
                   ? CL_OUT_OF_RESOURCES /* injected by the tests (ramp/faults.h) */
                   : clEnqueueNDRangeKernel(ctx->queue, kernel, (cl_uint)dims, NULL, global,
                                            local, 0, NULL, NULL);
    if (s != CL_SUCCESS)
        return rc_err_cl(e, "clEnqueueNDRangeKernel", s, "kernel %s, global %zu x %zu x %zu", name,
                         global[0], dims > 1 ? global[1] : 1, dims > 2 ? global[2] : 1);
    return 0;
}

int rc_launch(rc_ctx *ctx, const char *file, const char *name, int dims, const size_t *global,
              int nargs, const rc_arg *args, rc_err *e) {
    for (int d = 0; d < dims; d++)
        if (global[d] == 0) return 0;
    cl_kernel k;
    if (rc_kernel(ctx, file, name, &k, e)) return -1;
    double t0 = ctx->profile ? rc_now_s() : 0;
    if (rc_enqueue(ctx, k, name, dims, global, NULL, nargs, args, e)) return -1;
    if (ctx->profile) {
        if (rc_ctx_finish(ctx, e)) return rc_err_prefix(e, "kernel %s: ", name);
        rc_profile_add(ctx, name, rc_now_s() - t0);
    }
    return 0;
}

#define GROUP_LANES 256 /* RC_LANES in cl/common.cl */

/* The work-group size of a reducing kernel: what the device and the compiled kernel allow, as a
 * power of two not above GROUP_LANES; its local memory checked against the device's. */
static int group_size(rc_ctx *ctx, struct rc_kernel_entry *k, rc_err *e) {
    size_t wg = 0;
    cl_ulong local = 0;
    cl_int s = clGetKernelWorkGroupInfo(k->kernel, ctx->dev.device, CL_KERNEL_WORK_GROUP_SIZE,
                                        sizeof wg, &wg, NULL);
    if (s == CL_SUCCESS)
        s = clGetKernelWorkGroupInfo(k->kernel, ctx->dev.device, CL_KERNEL_LOCAL_MEM_SIZE,
                                     sizeof local, &local, NULL);
    if (s != CL_SUCCESS)
        return rc_err_cl(e, "clGetKernelWorkGroupInfo", s, "kernel %s", k->name);
    if (local > ctx->dev.local_mem)
        return rc_err_set(e, "kernel %s needs %llu bytes of local memory; device %s has %llu",
                          k->name, (unsigned long long)local, ctx->dev.name,
                          (unsigned long long)ctx->dev.local_mem);
    if (wg > ctx->dev.max_work_group) wg = ctx->dev.max_work_group;
    if (ctx->testing.group_size && ctx->testing.group_size < wg) wg = ctx->testing.group_size;
    size_t g = 1;
    while (g * 2 <= wg && g * 2 <= GROUP_LANES) g *= 2;
    k->group_size = g;
    return 0;
}

int rc_launch_groups(rc_ctx *ctx, const char *file, const char *name, size_t groups, int nargs,
                     const rc_arg *args, rc_err *e) {
    if (groups == 0) return 0;
    cl_kernel kernel;
    if (rc_kernel(ctx, file, name, &kernel, e)) return -1;
    struct rc_kernel_entry *k = ctx->kernels;
    while (k->kernel != kernel) k++; /* rc_kernel just found or added it */
    if (!k->group_size && group_size(ctx, k, e)) return -1;
    const size_t local = k->group_size, global = groups * local;
    double t0 = ctx->profile ? rc_now_s() : 0;
    if (rc_enqueue(ctx, kernel, name, 1, &global, &local, nargs, args, e)) return -1;
    if (ctx->profile) {
        if (rc_ctx_finish(ctx, e)) return rc_err_prefix(e, "kernel %s: ", name);
        rc_profile_add(ctx, name, rc_now_s() - t0);
    }
    return 0;
}

int rc_fill(rc_ctx *ctx, cl_mem buf, size_t off, size_t n, float value, rc_err *e) {
    if (n == 0) return 0;
    cl_int s = clEnqueueFillBuffer(ctx->queue, buf, &value, sizeof value, off * sizeof(float),
                                   n * sizeof(float), 0, NULL, NULL);
    if (s != CL_SUCCESS)
        return rc_err_cl(e, "clEnqueueFillBuffer", s, "%zu floats at offset %zu", n, off);
    return 0;
}

void rc_kernels_release(rc_ctx *ctx) {
    for (size_t i = 0; i < ctx->n_kernels; i++) clReleaseKernel(ctx->kernels[i].kernel);
    free(ctx->kernels);
    ctx->kernels = NULL;
    ctx->n_kernels = ctx->cap_kernels = 0;
}
