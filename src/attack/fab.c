#include "ramp/fab.h"
#include "ramp/apgd.h"
#include "ramp/buffers.h"
#include "ramp/launch.h"

#include <stdlib.h>
#include <string.h>

#define FILE_FAB    "fab.cl"
#define FAB_BUFFERS 9

/* fab_pt.py's defaults, which AutoAttack keeps */
#define FAB_ALPHA_MAX 0.1f
#define FAB_ETA       1.05f
#define FAB_BETA      0.9f

static void fab_buffers(rc_fab *f, rc_buffer_spec t[FAB_BUFFERS]) {
    const size_t big = (size_t)f->B * f->d * sizeof(float), small = (size_t)f->B * 4;
    const rc_buffer_spec all[] = {
        {&f->x, big, "FAB clean batch"},
        {&f->labels, small, "FAB labels"},
        {&f->targets, small, "FAB targets"},
        {&f->x1, big, "FAB iterate"},
        {&f->g, big, "FAB gradient"},
        {&f->df, small, "FAB logit differences"},
        {&f->correct, small, "FAB correctness"},
        {&f->best, big, "FAB closest adversarial"},
        {&f->res, small, "FAB distances"},
    };
    _Static_assert(sizeof all / sizeof *all == FAB_BUFFERS, "FAB_BUFFERS is the table's size");
    memcpy(t, all, sizeof all);
}

int rc_fab_alloc(rc_ctx *ctx, rc_fab *f, int B, int d, rc_err *e) {
    memset(f, 0, sizeof *f);
    if (B < 1 || d < 1) return rc_err_set(e, "FAB: bad shape %d x %d", B, d);
    f->B = B, f->d = d;
    rc_buffer_spec t[FAB_BUFFERS];
    fab_buffers(f, t);
    return rc_buffers_create(ctx, t, FAB_BUFFERS, e);
}

void rc_fab_free(rc_fab *f) {
    rc_buffer_spec t[FAB_BUFFERS];
    fab_buffers(f, t);
    rc_buffers_release(t, FAB_BUFFERS);
}

static int check_n(const rc_fab *f, const rc_model *m, int n, rc_err *e) {
    if (n < 1 || n > f->B || n > m->max_batch)
        return rc_err_set(e, "FAB: %d samples, but buffers hold %d (model batch %d)", n, f->B,
                          m->max_batch);
    return 0;
}

int rc_fab_init(rc_ctx *ctx, rc_fab *f, int n, rc_err *e) {
    const size_t nd = (size_t)n * f->d;
    if (n < 1 || n > f->B) return rc_err_set(e, "FAB: %d samples, buffers hold %d", n, f->B);
    return rc_buffer_copy(ctx, f->x, f->x1, nd * 4, "FAB start", e) ||
           rc_buffer_copy(ctx, f->x, f->best, nd * 4, "FAB start", e) ||
           rc_fill(ctx, f->res, 0, (size_t)n, 1e10f, e);
}

int rc_fab_step(rc_ctx *ctx, rc_fab *f, rc_model *m, rc_norm norm, int n, rc_err *e) {
    if (check_n(f, m, n, e)) return -1;
    const int d = f->d, K = m->opts.num_classes;
    const int p = norm == RC_NORM_LINF ? 0 : norm == RC_NORM_L2 ? 1 : 2; /* FAB_LINF.. */
    const float eta = FAB_ETA, alpha_max = FAB_ALPHA_MAX, beta = FAB_BETA;
    const size_t each[1] = {(size_t)n};
    cl_mem in = rc_model_input(m), logits = rc_model_logits(m);
    return rc_attack_loss_grad(ctx, m, RC_LOSS_LOGIT_DIFF, f->x1, f->labels, f->targets, n, d,
                               f->df, f->correct, 1, f->g, e) ||
           RC_LAUNCH_EACH(ctx, FILE_FAB, "fab_step", 1, each, e, RC_ARG(f->x), RC_ARG(f->x1),
                          RC_ARG(f->g), RC_ARG(f->df), RC_ARG(p), RC_ARG(eta), RC_ARG(alpha_max),
                          RC_ARG(in), RC_ARG(n), RC_ARG(d)) ||
           rc_model_forward(ctx, m, 0, n, e) ||
           RC_LAUNCH_EACH(ctx, FILE_FAB, "fab_update", 1, each, e, RC_ARG(logits),
                          RC_ARG(f->labels), RC_ARG(f->x), RC_ARG(in), RC_ARG(f->x1),
                          RC_ARG(f->best), RC_ARG(f->res), RC_ARG(p), RC_ARG(beta), RC_ARG(n),
                          RC_ARG(d), RC_ARG(K));
}

int rc_fab_run(rc_ctx *ctx, rc_fab *f, rc_model *m, const rc_fab_opts *o, int n,
               unsigned char *broken, rc_err *e) {
    if (check_n(f, m, n, e) || rc_fab_init(ctx, f, n, e)) return -1;
    for (int i = 0; i < o->n_iter; i++)
        if (rc_fab_step(ctx, f, m, o->norm, n, e)) return rc_err_prefix(e, "FAB iteration %d: ", i);
    if (!broken) return 0;
    float *res = malloc(sizeof(float) * n);
    if (!res) return rc_err_set(e, "FAB: out of host memory for %d distances", n);
    int r = rc_buffer_read(ctx, f->res, 0, (size_t)n * 4, res, "FAB distances", e);
    for (int i = 0; !r && i < n; i++) broken[i] = res[i] <= o->eps;
    free(res);
    return r;
}
