/* Kernel launches: kernels looked up by name once per context, arguments passed as a typed list,
 * every failure reported with the kernel name and sizes. Launches never wait for the device. */
#ifndef RAMP_LAUNCH_H
#define RAMP_LAUNCH_H

#include "ramp/device.h"

#include <stdio.h>

typedef struct rc_arg {
    size_t size;
    const void *ptr;
} rc_arg;

/* An argument from an lvalue: RC_ARG(n), RC_ARG(buffer). */
#define RC_ARG(x) ((rc_arg){sizeof(x), &(x)})

/* The kernel `name` from cl/<file>, created on first use and kept in the ctx. */
int rc_kernel(rc_ctx *ctx, const char *file, const char *name, cl_kernel *out, rc_err *e);

/* Set the arguments and enqueue over `global` work-items (`dims` dimensions); the driver chooses
 * the local size (PoCL is 10-100x slower with small fixed ones). Zero-sized launches are no-ops. */
int rc_launch(rc_ctx *ctx, const char *file, const char *name, int dims, const size_t *global,
              int nargs, const rc_arg *args, rc_err *e);

#define RC_LAUNCH(ctx, file, name, dims, global, e, ...)                                           \
    rc_launch(ctx, file, name, dims, global,                                                       \
              (int)(sizeof((rc_arg[]){__VA_ARGS__}) / sizeof(rc_arg)), (rc_arg[]){__VA_ARGS__}, e)

/* GPU-class reductions (wg_tree_sum in cl/common.cl): enqueue `groups` work-groups of the kernel
 * `name` in one dimension (get_group_id(0) says which). The work-group size is the largest power
 * of two not above 256 (RC_LANES) that the kernel and the device allow; the kernel's result must
 * not depend on it. A kernel that needs more local memory than the device has is refused. */
int rc_launch_groups(rc_ctx *ctx, const char *file, const char *name, size_t groups, int nargs,
                     const rc_arg *args, rc_err *e);

#define RC_LAUNCH_GROUPS(ctx, file, name, groups, e, ...)                                         \
    rc_launch_groups(ctx, file, name, groups,                                                      \
                     (int)(sizeof((rc_arg[]){__VA_ARGS__}) / sizeof(rc_arg)),                      \
                     (rc_arg[]){__VA_ARGS__}, e)

/* Kernels with a body per class (`#if RC_GPU` in cl/) over independent items (rows of logits,
 * planes, channels, chunks of a vector): on the CPU class one work-item per item over `global`
 * (`dims` dimensions, as rc_launch); on the GPU class one work-group per item (rc_launch_groups
 * over the product of `global`, the first dimension fastest). */
static inline int rc_launch_each(rc_ctx *ctx, const char *file, const char *name, int dims,
                                 const size_t *global, int nargs, const rc_arg *args, rc_err *e) {
    if (ctx->cls == RC_CLASS_CPU) return rc_launch(ctx, file, name, dims, global, nargs, args, e);
    size_t groups = 1;
    for (int d = 0; d < dims; d++) groups *= global[d];
    return rc_launch_groups(ctx, file, name, groups, nargs, args, e);
}

#define RC_LAUNCH_EACH(ctx, file, name, dims, global, e, ...)                                      \
    rc_launch_each(ctx, file, name, dims, global,                                                  \
                   (int)(sizeof((rc_arg[]){__VA_ARGS__}) / sizeof(rc_arg)),                        \
                   (rc_arg[]){__VA_ARGS__}, e)

/* Work-items of an element-wise kernel over `planes` planes of p floats (plane_elems in
 * cl/common.cl): one per plane on the CPU class, one per element on the GPU class. */
static inline size_t rc_plane_items(const rc_ctx *ctx, size_t planes, size_t p) {
    return ctx->cls == RC_CLASS_GPU ? planes * p : planes;
}

/* Set the arguments of an already created kernel (e.g. one built with -D options) and enqueue
 * it; `local` NULL lets the driver choose. rc_launch is this plus the lookup by name and
 * profiling. An argument {bytes, NULL} reserves local memory. */
int rc_enqueue(rc_ctx *ctx, cl_kernel kernel, const char *name, int dims, const size_t *global,
               const size_t *local, int nargs, const rc_arg *args, rc_err *e);

#define RC_ENQUEUE(ctx, kernel, name, dims, global, local, e, ...)                                \
    rc_enqueue(ctx, kernel, name, dims, global, local,                                             \
               (int)(sizeof((rc_arg[]){__VA_ARGS__}) / sizeof(rc_arg)), (rc_arg[]){__VA_ARGS__}, e)

/* Fill `n` floats of `buf` from float offset `off` with `value`. */
int rc_fill(rc_ctx *ctx, cl_mem buf, size_t off, size_t n, float value, rc_err *e);

/* Profiling (ctx->profile): add `seconds` of device time under `name`; print the table. */
void rc_profile_add(rc_ctx *ctx, const char *name, double seconds);
void rc_profile_print(rc_ctx *ctx, FILE *f);
/* Forget what was measured so far (e.g. the warm-up that compiled the kernels). */
void rc_profile_reset(rc_ctx *ctx);

void rc_kernels_release(rc_ctx *ctx);

#endif
