/* OpenCL platforms and devices, and the per-process device context every other module uses. */
#ifndef RAMP_DEVICE_H
#define RAMP_DEVICE_H

#include "ramp/cl.h"
#include "ramp/error.h"
#include "ramp/faults.h"

#include <stddef.h>
#include <stdio.h>

/* One device as listed by --list-devices. `index` is stable: platforms in the order the ICD
 * loader reports them, devices in each platform's order. */
typedef struct rc_device_desc {
    int index;
    cl_platform_id platform;
    cl_device_id device;
    char platform_name[256];
    char platform_version[256];
    char name[256];
    char vendor[256];
    char driver_version[128];
    char c_version[128];
    cl_device_type type;
    cl_uint compute_units;
    cl_ulong global_mem;
    cl_ulong max_alloc;
    size_t max_work_group;
    cl_uint base_addr_align; /* bytes; sub-buffer offsets must be multiples of it */
    int fp16;
    int fp64;
    cl_ulong local_mem;          /* bytes of local memory per work-group */
    int local_mem_dedicated;     /* CL_LOCAL: on-chip memory, not a slice of global memory */
    cl_uint vector_width_float;  /* preferred float vector width */
} rc_device_desc;

/* The execution path a device gets. The CPU class runs ramp-cl's own GEMM, the implicit-GEMM
 * convolutions and kernels that give one work-item a whole plane or row (what PoCL vectorises
 * and caches well); the GPU class runs CLBlast GEMMs on im2col, one element per work-item with
 * neighbouring work-items on neighbouring addresses, and work-group tree reductions in local
 * memory. Programs are built with -DRC_GPU=0 or 1 (cl/common.cl). */
typedef enum rc_device_class { RC_CLASS_CPU = 0, RC_CLASS_GPU = 1 } rc_device_class;

/* "cpu" or "gpu". */
const char *rc_device_class_name(rc_device_class c);
/* The class a device's properties call for: a device that reports itself a GPU, or any non-CPU
 * device with dedicated local memory and work-groups of at least 256, is GPU class; everything
 * else CPU class. Never the vendor. */
rc_device_class rc_device_class_natural(const rc_device_desc *d);
/* The class the device gets: RAMP_CL_PATH=cpu|gpu when set, else the natural one. A malformed
 * RAMP_CL_PATH is an error. *forced says whether the environment chose. */
int rc_device_class_choose(const rc_device_desc *d, rc_device_class *out, int *forced, rc_err *e);

/* All devices of all platforms. *out is malloc'ed (free it). Fails when there is no platform. */
int rc_devices_enumerate(rc_device_desc **out, int *count, rc_err *e);
void rc_device_print(FILE *f, const rc_device_desc *d);
const char *rc_device_type_name(cl_device_type t);

struct rc_program_entry;
struct rc_gemm_state;
struct rc_dist;

/* Counters that let tests and --verbose see what the program cache did. */
typedef struct rc_program_stats {
    int source_builds;  /* programs compiled from source */
    int cache_hits;     /* programs loaded from the on-disk binary cache */
    int cache_rejects;  /* cache entries found corrupt or stale and rebuilt */
    int cache_writes;   /* binaries written to the cache */
} rc_program_stats;

/* The process-wide OpenCL context: the device, its queue and the programs built for it. Opened
 * and closed by ramp/context.h; the modules named in the fields own their parts. */
typedef struct rc_ctx {
    rc_device_desc dev;
    rc_device_class cls; /* the execution path (rc_device_class_choose) */
    cl_context context;
    cl_command_queue queue;
    char cache_dir[1024]; /* empty: on-disk program cache disabled */
    struct rc_program_entry *programs;
    size_t n_programs, cap_programs;
    struct rc_kernel_entry *kernels; /* kernels by name, created once (see ramp/launch.h) */
    size_t n_kernels, cap_kernels;
    rc_program_stats stats;
    /* RAMP_CL_PROFILE=1: each launch waits for the device and its time is added up per kernel
     * (see ramp/launch.h); the table is printed when the ctx closes. */
    int profile;
    struct rc_profile_entry *prof;
    size_t n_prof, cap_prof;
    struct rc_gemm_state *gemm; /* GEMM implementation choice and scratch (see ramp/gemm.h) */
    size_t bytes_created;       /* device memory requested by rc_buffer_create so far */
    rc_faults testing; /* faults the tests inject (ramp/faults.h); inert in production */
    /* the processes this one trains and evaluates with (ramp/dist.h); NULL: it alone. Set by
     * the caller after opening; rc_device_open zeroes it. */
    const struct rc_dist *dist;
} rc_ctx;

/* Zero the ctx and create the OpenCL context and queue of device `index` (as listed by
 * rc_devices_enumerate); an index out of range is an error that lists the devices that exist.
 * Use rc_ctx_open (ramp/context.h), which also sets up the modules above. */
int rc_device_open(rc_ctx *ctx, int index, rc_err *e);
/* Release the queue and the context; safe on a zeroed or partly opened ctx. */
void rc_device_close(rc_ctx *ctx);

/* Wait for the queue to drain; reports a failed kernel as an error. */
int rc_ctx_finish(rc_ctx *ctx, rc_err *e);

/* Device buffers: thin checked wrappers. */
int rc_buffer_create(rc_ctx *ctx, size_t bytes, const char *what, cl_mem *out, rc_err *e);
int rc_buffer_write(rc_ctx *ctx, cl_mem buf, size_t offset, size_t bytes, const void *src,
                    const char *what, rc_err *e);
int rc_buffer_read(rc_ctx *ctx, cl_mem buf, size_t offset, size_t bytes, void *dst,
                   const char *what, rc_err *e);
/* Device-to-device copy of the first `bytes` of src into dst; does not wait. */
int rc_buffer_copy(rc_ctx *ctx, cl_mem src, cl_mem dst, size_t bytes, const char *what,
                   rc_err *e);

#endif
