#include "ramp/attack_ops.h"
#include "ramp/buffers.h"
#include "ramp/launch.h"

#include <string.h>

#define FILE_STEP "attack_step.cl" /* l_inf / l_2 steps, momentum, l_0 */
#define FILE_L1   "l1.cl"          /* top-k threshold, sparse l_1 step and projection */
#define CHUNK     256              /* ATK_CHUNK in cl/common.cl */

int rc_attack_chunks(const rc_ctx *ctx, int d) {
    return ctx->cls == RC_CLASS_GPU ? (d < CHUNK ? d : CHUNK) : (d + CHUNK - 1) / CHUNK;
}

#define SCRATCH_BUFFERS 7
#define KEY_BUFFERS     2 /* the last two of the table: the CPU class's sort and select scratch */

/* s's device buffers for capacity B x d: one table to create and release. */
static void scratch_buffers(rc_attack_scratch *s, int B, int d, rc_buffer_spec t[SCRATCH_BUFFERS]) {
    const size_t bd = (size_t)B * (size_t)d, bc = (size_t)B * (size_t)s->chunks;
    const rc_buffer_spec all[] = {
        {&s->tmp, bd * sizeof(float), "attack scratch (perturbation)"},
        {&s->part, bc * sizeof(float), "attack scratch (partial sums)"},
        {&s->cnt, bc * sizeof(cl_uint), "attack scratch (partial counts)"},
        {&s->nrm, (size_t)B * sizeof(float), "attack scratch (norms)"},
        {&s->nrm2, (size_t)B * sizeof(float), "attack scratch (norms)"},
        {&s->keys, 2 * bd * sizeof(cl_uint), "attack scratch (l1 keys)"},
        {&s->keys2, 2 * bd * sizeof(cl_uint), "attack scratch (l1 keys)"},
    };
    _Static_assert(sizeof all / sizeof *all == SCRATCH_BUFFERS, "SCRATCH_BUFFERS is its size");
    memcpy(t, all, sizeof all);
}

int rc_attack_scratch_alloc(rc_ctx *ctx, rc_attack_scratch *s, int B, int d, rc_err *e) {
    memset(s, 0, sizeof *s);
    if (B < 1 || d < 1) return rc_err_set(e, "attack scratch: bad shape B=%d d=%d", B, d);
    rc_buffer_spec t[SCRATCH_BUFFERS];
    s->chunks = rc_attack_chunks(ctx, d);
    scratch_buffers(s, B, d, t);
    const size_t n = SCRATCH_BUFFERS - (ctx->cls == RC_CLASS_GPU ? KEY_BUFFERS : 0);
    if (rc_buffers_create(ctx, t, n, e)) {
        s->chunks = 0; /* s is left zeroed */
        return -1;
    }
    s->B = B;
    s->d = d;
    return 0;
}

void rc_attack_scratch_free(rc_attack_scratch *s) {
    rc_buffer_spec t[SCRATCH_BUFFERS];
    scratch_buffers(s, s->B, s->d, t);
    rc_buffers_release(t, SCRATCH_BUFFERS);
    memset(s, 0, sizeof *s);
}

static int check_scratch(const rc_attack_scratch *s, int B, int d, const char *op, rc_err *e) {
    if (!s || !s->tmp) return rc_err_set(e, "%s: attack scratch not allocated", op);
    if (B > s->B || d > s->d)
        return rc_err_set(e, "%s: batch %d x %d exceeds the attack scratch (%d x %d)", op, B, d,
                          s->B, s->d);
    return 0;
}

static int check_shape(int B, int d, const char *op, rc_err *e) {
    if (B < 0 || d < 1) return rc_err_set(e, "%s: bad shape B=%d d=%d", op, B, d);
    return 0;
}

int rc_attack_linf_step(rc_ctx *ctx, int B, int d, cl_mem x, cl_mem x_adv, cl_mem g, cl_mem eta,
                        float eps, cl_mem z, rc_err *e) {
    if (check_shape(B, d, "l_inf step", e)) return -1;
    int C = rc_attack_chunks(ctx, d);
    size_t n = (size_t)B * C;
    return RC_LAUNCH(ctx, FILE_STEP, "atk_linf_step", 1, &n, e, RC_ARG(x), RC_ARG(x_adv), RC_ARG(g),
                     RC_ARG(eta), RC_ARG(eps), RC_ARG(z), RC_ARG(B), RC_ARG(d), RC_ARG(C));
}

/* ||s->tmp row||_2 into s->nrm2 from the partials in s->part, then the radial rescale + clamp. */
static int l2_finish(rc_ctx *ctx, int B, int d, cl_mem x, float eps, rc_attack_scratch *s, cl_mem z,
                     rc_err *e) {
    int C = rc_attack_chunks(ctx, d);
    size_t n = (size_t)B * C;
    return RC_LAUNCH_EACH(ctx, FILE_STEP, "atk_norm_final", 1, (size_t[]){(size_t)B}, e,
                          RC_ARG(s->part),
                             RC_ARG(s->nrm2), RC_ARG(B), RC_ARG(C)) ||
           RC_LAUNCH(ctx, FILE_STEP, "atk_l2_project", 1, &n, e, RC_ARG(x), RC_ARG(s->tmp),
                     RC_ARG(s->nrm2), RC_ARG(eps), RC_ARG(z), RC_ARG(B), RC_ARG(d), RC_ARG(C));
}

int rc_attack_l2_step(rc_ctx *ctx, int B, int d, cl_mem x, cl_mem x_adv, cl_mem g, cl_mem eta,
                      float eps, rc_attack_scratch *s, cl_mem z, rc_err *e) {
    if (check_shape(B, d, "l_2 step", e) || check_scratch(s, B, d, "l_2 step", e)) return -1;
    int C = rc_attack_chunks(ctx, d);
    size_t n = (size_t)B * C;
    if (RC_LAUNCH(ctx, FILE_STEP, "atk_sqnorm_part", 1, &n, e, RC_ARG(g), RC_ARG(s->part),
                  RC_ARG(B), RC_ARG(d), RC_ARG(C)) ||
        RC_LAUNCH_EACH(ctx, FILE_STEP, "atk_norm_final", 1, (size_t[]){(size_t)B}, e,
                       RC_ARG(s->part), RC_ARG(s->nrm),
                          RC_ARG(B), RC_ARG(C)) ||
        RC_LAUNCH(ctx, FILE_STEP, "atk_l2_grad_step", 1, &n, e, RC_ARG(x), RC_ARG(x_adv), RC_ARG(g),
                  RC_ARG(eta), RC_ARG(s->nrm), RC_ARG(s->tmp), RC_ARG(s->part), RC_ARG(B),
                  RC_ARG(d), RC_ARG(C)))
        return -1;
    return l2_finish(ctx, B, d, x, eps, s, z, e);
}

int rc_attack_momentum(rc_ctx *ctx, rc_norm norm, int B, int d, cl_mem x, cl_mem x_adv,
                       cl_mem x_adv_old, cl_mem z, float a, float eps, rc_attack_scratch *s,
                       cl_mem out, rc_err *e) {
    if (check_shape(B, d, "momentum", e)) return -1;
    int C = rc_attack_chunks(ctx, d);
    size_t n = (size_t)B * C;
    if (norm == RC_NORM_LINF)
        return RC_LAUNCH(ctx, FILE_STEP, "atk_momentum_linf", 1, &n, e, RC_ARG(x), RC_ARG(x_adv),
                         RC_ARG(x_adv_old), RC_ARG(z), RC_ARG(a), RC_ARG(eps), RC_ARG(out),
                         RC_ARG(B), RC_ARG(d), RC_ARG(C));
    if (norm != RC_NORM_L2)
        return rc_err_set(e, "momentum: only the l_inf and l_2 attacks use momentum (norm %d)",
                          (int)norm);
    if (check_scratch(s, B, d, "l_2 momentum", e) ||
        RC_LAUNCH(ctx, FILE_STEP, "atk_momentum_l2", 1, &n, e, RC_ARG(x), RC_ARG(x_adv),
                  RC_ARG(x_adv_old), RC_ARG(z), RC_ARG(a), RC_ARG(s->tmp), RC_ARG(s->part),
                  RC_ARG(B), RC_ARG(d), RC_ARG(C)))
        return -1;
    return l2_finish(ctx, B, d, x, eps, s, out, e);
}

int rc_attack_topk_threshold(rc_ctx *ctx, int B, int d, cl_mem g, cl_mem topk, cl_mem tau,
                             rc_attack_scratch *s, rc_err *e) {
    if (check_shape(B, d, "top-k threshold", e) || check_scratch(s, B, d, "top-k threshold", e))
        return -1;
    if (ctx->cls == RC_CLASS_GPU)
        return RC_LAUNCH_GROUPS(ctx, FILE_L1, "atk_topk_threshold", (size_t)B, e, RC_ARG(g),
                                RC_ARG(topk), RC_ARG(tau), RC_ARG(B), RC_ARG(d));
    size_t nb = (size_t)B;
    return RC_LAUNCH(ctx, FILE_L1, "atk_topk_threshold", 1, &nb, e, RC_ARG(g), RC_ARG(topk),
                     RC_ARG(tau), RC_ARG(s->keys), RC_ARG(B), RC_ARG(d));
}

static int l1_project(rc_ctx *ctx, int B, int d, cl_mem x, cl_mem delta, float eps,
                      rc_attack_scratch *s, cl_mem out, int mode, rc_err *e) {
    if (ctx->cls == RC_CLASS_GPU) { /* lambda per sample (in s->nrm), then the output */
        int C = rc_attack_chunks(ctx, d);
        size_t n = (size_t)B * C;
        return RC_LAUNCH_GROUPS(ctx, FILE_L1, "atk_l1_lambda", (size_t)B, e, RC_ARG(x),
                                RC_ARG(delta), RC_ARG(eps), RC_ARG(s->nrm), RC_ARG(B), RC_ARG(d)) ||
               RC_LAUNCH(ctx, FILE_L1, "atk_l1_apply", 1, &n, e, RC_ARG(x), RC_ARG(delta),
                         RC_ARG(s->nrm), RC_ARG(out), RC_ARG(mode), RC_ARG(B), RC_ARG(d),
                         RC_ARG(C));
    }
    size_t nb = (size_t)B;
    return RC_LAUNCH(ctx, FILE_L1, "atk_l1_project", 1, &nb, e, RC_ARG(x), RC_ARG(delta),
                     RC_ARG(eps), RC_ARG(s->keys), RC_ARG(s->keys2), RC_ARG(out), RC_ARG(mode),
                     RC_ARG(B), RC_ARG(d));
}

int rc_attack_l1_step(rc_ctx *ctx, int B, int d, cl_mem x, cl_mem x_adv, cl_mem g, cl_mem eta,
                      cl_mem tau, float eps, rc_attack_scratch *s, cl_mem z, rc_err *e) {
    if (check_shape(B, d, "l_1 step", e) || check_scratch(s, B, d, "l_1 step", e)) return -1;
    int C = rc_attack_chunks(ctx, d);
    size_t n = (size_t)B * C;
    int r = ctx->cls == RC_CLASS_GPU /* the count per sample, or per chunk */
                ? RC_LAUNCH_GROUPS(ctx, FILE_L1, "atk_l1_count", (size_t)B, e, RC_ARG(g),
                                   RC_ARG(tau), RC_ARG(s->cnt), RC_ARG(B), RC_ARG(d))
                : RC_LAUNCH(ctx, FILE_L1, "atk_l1_count", 1, &n, e, RC_ARG(g), RC_ARG(tau),
                            RC_ARG(s->cnt), RC_ARG(B), RC_ARG(d), RC_ARG(C));
    if (r || RC_LAUNCH(ctx, FILE_L1, "atk_l1_grad_step", 1, &n, e, RC_ARG(x), RC_ARG(x_adv),
                       RC_ARG(g), RC_ARG(eta), RC_ARG(tau), RC_ARG(s->cnt), RC_ARG(s->tmp),
                       RC_ARG(B), RC_ARG(d), RC_ARG(C)))
        return -1;
    return l1_project(ctx, B, d, x, s->tmp, eps, s, z, 1, e);
}

int rc_attack_l1_project(rc_ctx *ctx, int B, int d, cl_mem x, cl_mem delta, float eps,
                         rc_attack_scratch *s, rc_err *e) {
    if (check_shape(B, d, "l_1 projection", e) || check_scratch(s, B, d, "l_1 projection", e))
        return -1;
    return l1_project(ctx, B, d, x, delta, eps, s, delta, 0, e);
}

int rc_attack_l1_project_point(rc_ctx *ctx, int B, int d, cl_mem x, cl_mem delta, float eps,
                               rc_attack_scratch *s, cl_mem z, rc_err *e) {
    if (check_shape(B, d, "l_1 projection", e) || check_scratch(s, B, d, "l_1 projection", e))
        return -1;
    return l1_project(ctx, B, d, x, delta, eps, s, z, 1, e);
}

int rc_attack_l0(rc_ctx *ctx, int B, int d, cl_mem a, cl_mem b, cl_mem out, rc_err *e) {
    if (check_shape(B, d, "l_0 count", e)) return -1;
    return RC_LAUNCH_EACH(ctx, FILE_STEP, "atk_l0", 1, (size_t[]){(size_t)B}, e,
                          RC_ARG(a), RC_ARG(b), RC_ARG(out),
                             RC_ARG(B), RC_ARG(d));
}
