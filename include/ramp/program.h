/* Kernel programs: the cl/NAME.cl sources embedded at build time, compiled for the device at run
 * time, with compiled binaries cached on disk per (source, options, device, driver). Every
 * program's source is the prelude cl/common.cl (shared device functions), a #line directive and
 * cl/NAME.cl; the cache key hashes all of it, so a changed prelude rebuilds every program.
 *
 * Environment:
 *   RAMP_CL_KERNEL_DIR  read cl/NAME.cl, and the prelude, from this directory instead of the
 *                       embedded copies
 *   RAMP_CL_CACHE_DIR   binary cache directory (default $XDG_CACHE_HOME/ramp-cl, ~/.cache/ramp-cl)
 *   RAMP_CL_NO_CACHE    set to 1 to disable the binary cache */
#ifndef RAMP_PROGRAM_H
#define RAMP_PROGRAM_H

#include "ramp/device.h"

/* The prelude's file name. */
#define RC_CL_PRELUDE "common.cl"

/* The embedded kernel sources, generated from cl/NAME.cl by tools/embed-cl.sh: each text is the
 * whole program source, prelude included. */
typedef struct rc_cl_source {
    const char *name; /* file name, e.g. "selftest.cl" */
    const char *text;
} rc_cl_source;
extern const rc_cl_source rc_cl_sources[];
extern const int rc_cl_source_count;

/* Look up an embedded source by file name; NULL if there is none. */
const char *rc_cl_source_find(const char *name);

/* The program for cl/<file> built with `options` (e.g. "-DTILE=16"). Built once per context
 * and kept there; the ctx owns the returned program. */
int rc_program_get(rc_ctx *ctx, const char *file, const char *options, cl_program *out, rc_err *e);

/* Build `source` (named `label` in messages) through the same cache. A compile error reports the
 * device's build log. The ctx owns the returned program. */
int rc_program_from_source(rc_ctx *ctx, const char *label, const char *source,
                           const char *options, cl_program *out, rc_err *e);

/* A new kernel object for `kernel` in cl/<file>; the caller releases it. */
int rc_kernel_create(rc_ctx *ctx, const char *file, const char *kernel, const char *options,
                     cl_kernel *out, rc_err *e);

/* Path of the cache file for (source, options) on this ctx's device; for tests and --verbose. */
int rc_program_cache_path(const rc_ctx *ctx, const char *source, const char *options, char *out,
                          size_t n);

/* Used by rc_ctx_open/rc_ctx_close. */
void rc_program_cache_init(rc_ctx *ctx);
void rc_programs_release(rc_ctx *ctx);

#endif
