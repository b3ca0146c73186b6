#include "ramp/context.h"
#include "ramp/gemm.h"
#include "ramp/launch.h"
#include "ramp/program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rc_ctx_open(rc_ctx *ctx, int index, rc_err *e) {
    if (rc_device_open(ctx, index, e)) return -1;
    rc_program_cache_init(ctx);
    const char *prof = getenv("RAMP_CL_PROFILE");
    ctx->profile = prof && *prof && strcmp(prof, "0") != 0;
    rc_faults_from_env(&ctx->testing);
    return 0;
}

void rc_ctx_close(rc_ctx *ctx) {
    if (ctx->queue) clFinish(ctx->queue);
    rc_profile_print(ctx, stderr);
    rc_gemm_release(ctx);
    rc_kernels_release(ctx);
    rc_programs_release(ctx);
    rc_device_close(ctx);
}
