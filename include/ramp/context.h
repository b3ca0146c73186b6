/* Opening and closing the process context (rc_ctx, ramp/device.h). Closing releases what the
 * modules above the device keep in the ctx (GEMM scratch, kernels, programs) before the device
 * itself, so this module sits above device, program, launch and gemm. */
#ifndef RAMP_CONTEXT_H
#define RAMP_CONTEXT_H

#include "ramp/device.h"

/* Open device `index` (as listed by rc_devices_enumerate). An index out of range is an error
 * that lists the devices that exist. */
int rc_ctx_open(rc_ctx *ctx, int index, rc_err *e);
/* Saves freshly built program binaries to the cache, then releases everything. Safe on a
 * zeroed or partly opened ctx. */
void rc_ctx_close(rc_ctx *ctx);

#endif
