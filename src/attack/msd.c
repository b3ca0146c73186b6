#include "ramp/msd.h"
#include "ramp/buffers.h"
#include "ramp/launch.h"
#include "ramp/loss.h"

#include <string.h>

#define MSD_BUFFERS 14

/* a's device buffers, sized from a->B and a->d: one table to create and release. */
static void msd_buffers(rc_msd *a, rc_buffer_spec t[MSD_BUFFERS]) {
    const size_t big = (size_t)a->B * a->d * sizeof(float), small = (size_t)a->B * sizeof(float);
    const rc_buffer_spec all[] = {
        {&a->x_adv, big, "MSD iterate"},
        {&a->cand[RC_MSD_L1], big, "MSD l1 candidate"},
        {&a->cand[RC_MSD_L2], big, "MSD l2 candidate"},
        {&a->cand[RC_MSD_LINF], big, "MSD linf candidate"},
        {&a->x_best, big, "MSD best point"},
        {&a->gm, big, "MSD masked gradient"},
        {&a->loss, small, "MSD loss"},
        {&a->correct, small, "MSD correctness"},
        {&a->max_loss, small, "MSD iteration's best loss"},
        {&a->best_loss, small, "MSD best loss"},
        {&a->eta_linf, small, "MSD linf step"},
        {&a->eta_l2, small, "MSD l2 step"},
        {&a->topk, small, "MSD l1 sparsity"},
        {&a->tau, small, "MSD l1 threshold"},
    };
    _Static_assert(sizeof all / sizeof *all == MSD_BUFFERS, "MSD_BUFFERS is the table's size");
    memcpy(t, all, sizeof all);
}

int rc_msd_alloc(rc_ctx *ctx, rc_msd *a, int B, int d, rc_err *e) {
    memset(a, 0, sizeof *a);
    a->B = B, a->d = d;
    rc_buffer_spec t[MSD_BUFFERS];
    msd_buffers(a, t);
    if (rc_buffers_create(ctx, t, MSD_BUFFERS, e) ||
        rc_attack_scratch_alloc(ctx, &a->scratch, B, d, e)) {
        rc_msd_free(a);
        return -1;
    }
    return 0;
}

void rc_msd_free(rc_msd *a) {
    rc_buffer_spec t[MSD_BUFFERS];
    msd_buffers(a, t);
    rc_buffers_release(t, MSD_BUFFERS);
    rc_attack_scratch_free(&a->scratch);
    memset(a, 0, sizeof *a);
}

/* The l_1 step from the masked gradient and its threshold, and the projection (cl/msd.cl):
 * per-chunk norms and one work-item per sample (CPU class), or one work-group per sample for the
 * step and its norm (in s->nrm) and for theta, then the element-wise output (GPU class). */
static int l1_candidate(rc_ctx *ctx, rc_msd *a, cl_mem x, float eps, float alpha, int n,
                        rc_err *e) {
    const int d = a->d, C = a->scratch.chunks;
    rc_attack_scratch *s = &a->scratch;
    size_t gn = (size_t)n, gc = (size_t)n * C;
    if (ctx->cls == RC_CLASS_GPU) /* theta per sample in s->nrm2, then the candidate */
        return RC_LAUNCH_GROUPS(ctx, "msd.cl", "msd_l1_step", gn, e, RC_ARG(x), RC_ARG(a->x_adv),
                                RC_ARG(a->gm), RC_ARG(a->tau), RC_ARG(alpha), RC_ARG(s->tmp),
                                RC_ARG(s->nrm), RC_ARG(n), RC_ARG(d)) ||
               RC_LAUNCH_GROUPS(ctx, "msd.cl", "msd_l1_theta", gn, e, RC_ARG(s->tmp),
                                RC_ARG(s->nrm), RC_ARG(eps), RC_ARG(s->nrm2), RC_ARG(n),
                                RC_ARG(d)) ||
               RC_LAUNCH(ctx, "msd.cl", "msd_l1_apply", 1, &gc, e, RC_ARG(x), RC_ARG(s->tmp),
                         RC_ARG(s->nrm2), RC_ARG(a->cand[RC_MSD_L1]), RC_ARG(n), RC_ARG(d),
                         RC_ARG(C));
    return RC_LAUNCH(ctx, "msd.cl", "msd_l1_step", 1, &gc, e, RC_ARG(x), RC_ARG(a->x_adv),
                     RC_ARG(a->gm), RC_ARG(a->tau), RC_ARG(alpha), RC_ARG(s->tmp), RC_ARG(s->part),
                     RC_ARG(n), RC_ARG(d), RC_ARG(C)) ||
           RC_LAUNCH(ctx, "msd.cl", "msd_l1_project", 1, &gn, e, RC_ARG(x), RC_ARG(s->tmp),
                     RC_ARG(s->part), RC_ARG(eps), RC_ARG(s->keys), RC_ARG(s->keys2),
                     RC_ARG(a->cand[RC_MSD_L1]), RC_ARG(n), RC_ARG(d), RC_ARG(C));
}

int rc_msd_candidates(rc_ctx *ctx, rc_msd *a, cl_mem x, cl_mem g, const rc_msd_opts *o, int k,
                      int n, rc_err *e) {
    if (n < 1 || n > a->B || k < 1)
        return rc_err_set(e, "MSD: %d samples with l1 sparsity %d, buffers hold %d", n, k, a->B);
    const int d = a->d, C = a->scratch.chunks; /* chunks of a row, as the primitives */
    size_t gn = (size_t)n, gc = (size_t)n * C;
    rc_attack_scratch *s = &a->scratch;
    /* the k-th largest |gm|: APGD's top-k threshold at sparsity (k - 1/2) / d selects index
     * d - k of the ascending order, clear of float rounding */
    const float topk = ((float)k - 0.5f) / (float)d;
    const float alpha1 = o->alpha_l1 / (float)k * 20.0f;
    if (rc_fill(ctx, a->eta_linf, 0, gn, o->alpha_linf, e) ||
        rc_fill(ctx, a->eta_l2, 0, gn, o->alpha_l2, e) || rc_fill(ctx, a->topk, 0, gn, topk, e) ||
        rc_attack_l2_step(ctx, n, d, x, a->x_adv, g, a->eta_l2, o->eps_l2, s, a->cand[RC_MSD_L2],
                          e) ||
        rc_attack_linf_step(ctx, n, d, x, a->x_adv, g, a->eta_linf, o->eps_linf,
                            a->cand[RC_MSD_LINF], e) ||
        RC_LAUNCH(ctx, "msd.cl", "msd_l1_mask", 1, &gc, e, RC_ARG(a->x_adv), RC_ARG(g),
                  RC_ARG(alpha1), RC_ARG(a->gm), RC_ARG(n), RC_ARG(d), RC_ARG(C)) ||
        rc_attack_topk_threshold(ctx, n, d, a->gm, a->topk, a->tau, s, e) ||
        l1_candidate(ctx, a, x, o->eps_l1, alpha1, n, e))
        return rc_err_prefix(e, "MSD candidates: ");
    return 0;
}

int rc_msd_select(rc_ctx *ctx, rc_msd *a, int c, int n, rc_err *e) {
    return RC_LAUNCH_EACH(ctx, "msd.cl", "msd_select", 1, (size_t[]){(size_t)n}, e,
                          RC_ARG(a->cand[c]), RC_ARG(a->loss),
                             RC_ARG(a->max_loss), RC_ARG(a->x_adv), RC_ARG(a->x_best),
                             RC_ARG(a->best_loss), RC_ARG(c), RC_ARG(n), RC_ARG(a->d));
}

int rc_msd_start(rc_ctx *ctx, rc_msd *a, cl_mem x, int n, rc_err *e) {
    size_t bytes = (size_t)n * a->d * sizeof(float);
    return rc_buffer_copy(ctx, x, a->x_adv, bytes, "MSD start", e) ||
           rc_buffer_copy(ctx, x, a->x_best, bytes, "MSD start", e) ||
           rc_fill(ctx, a->best_loss, 0, (size_t)n, 0.0f, e);
}

/* Train-mode forward at `point` and per-sample cross-entropy into a->loss; with `grad`, the
 * input gradient of the mean over the batch of n_batch (left in the model's input gradient). */
static int forward_ce(rc_ctx *ctx, rc_msd *a, rc_model *m, cl_mem point, cl_mem labels, int n,
                      int n_batch, int grad, rc_err *e) {
    size_t bytes = (size_t)n * a->d * sizeof(float);
    return rc_buffer_copy(ctx, point, rc_model_input(m), bytes, "MSD input", e) ||
           rc_model_forward(ctx, m, 1, n, e) ||
           rc_ce_forward_backward_part(ctx, n, n_batch, m->opts.num_classes, rc_model_logits(m),
                                       labels, a->loss, a->correct,
                                       grad ? rc_model_logits_grad(m) : NULL, e) ||
           (grad && rc_model_backward(ctx, m, 1, n, RC_GRAD_NONE, 1, e));
}

int rc_msd_run(rc_ctx *ctx, rc_msd *a, rc_model *m, cl_mem x, cl_mem labels,
               const rc_msd_opts *o, rc_rng *rng, int n, int n_batch, rc_err *e) {
    if (n > m->max_batch)
        return rc_err_set(e, "MSD: %d samples, model batch %d", n, m->max_batch);
    if (rc_msd_start(ctx, a, x, n, e)) return -1;
    for (int t = 0; t < o->n_iter; t++) {
        int k = 5 + (int)rc_rng_below(rng, 16); /* random.randint(5, 20) */
        if (forward_ce(ctx, a, m, a->x_adv, labels, n, n_batch, 1, e) ||
            rc_msd_candidates(ctx, a, x, rc_model_input_grad(m), o, k, n, e))
            return rc_err_prefix(e, "MSD iteration %d: ", t);
        for (int c = 0; c < 3; c++)
            if (forward_ce(ctx, a, m, a->cand[c], labels, n, n_batch, 0, e) ||
                rc_msd_select(ctx, a, c, n, e))
                return rc_err_prefix(e, "MSD iteration %d: ", t);
    }
    return 0;
}
