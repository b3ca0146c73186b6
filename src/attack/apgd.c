#include "ramp/apgd.h"
#include "ramp/buffers.h"
#include "ramp/launch.h"

#include <string.h>

#define APGD_BUFFERS 23

/* a's device buffers, sized from a->B, a->d and a->max_iter: one table to create and release. */
static void apgd_buffers(rc_apgd *a, rc_buffer_spec t[APGD_BUFFERS]) {
    const size_t big = (size_t)a->B * a->d * sizeof(float), small = (size_t)a->B * sizeof(float);
    const rc_buffer_spec all[] = {
        {&a->x, big, "attack clean batch"},      {&a->x_start, big, "attack start point"},
        {&a->labels, small, "attack labels"},    {&a->targets, small, "attack targets"},
        {&a->x_adv, big, "attack iterate"},      {&a->x_adv_old, big, "attack previous iterate"},
        {&a->z, big, "attack step"},             {&a->v, big, "attack momentum step"},
        {&a->g, big, "attack gradient"},
        {&a->x_best, big, "attack best point"},  {&a->grad_best, big, "attack best gradient"},
        {&a->x_best_adv, big, "attack adversarial point"},
        {&a->loss, small, "attack loss"},        {&a->correct, small, "attack correctness"},
        {&a->loss_best, small, "attack best loss"}, {&a->acc, small, "attack robust flags"},
        {&a->loss_steps, small * (size_t)(a->max_iter + 1), "attack loss history"},
        {&a->eta, small, "attack step size"},    {&a->reduced, small, "attack halving flags"},
        {&a->loss_best_last, small, "attack checkpoint loss"},
        {&a->topk, small, "attack l1 sparsity"}, {&a->sp_old, small, "attack l1 previous sparsity"},
        {&a->tau, small, "attack l1 threshold"},
    };
    _Static_assert(sizeof all / sizeof *all == APGD_BUFFERS, "APGD_BUFFERS is the table's size");
    memcpy(t, all, sizeof all);
}

int rc_apgd_alloc(rc_ctx *ctx, rc_apgd *a, int B, int d, int max_iter, rc_err *e) {
    memset(a, 0, sizeof *a);
    a->B = B, a->d = d, a->max_iter = max_iter;
    rc_buffer_spec t[APGD_BUFFERS];
    apgd_buffers(a, t);
    if (rc_buffers_create(ctx, t, APGD_BUFFERS, e) ||
        rc_attack_scratch_alloc(ctx, &a->scratch, B, d, e)) {
        rc_apgd_free(a);
        return -1;
    }
    return 0;
}

void rc_apgd_free(rc_apgd *a) {
    rc_buffer_spec t[APGD_BUFFERS];
    apgd_buffers(a, t);
    rc_buffers_release(t, APGD_BUFFERS);
    rc_attack_scratch_free(&a->scratch);
}

/* Copy `floats` floats from src to dst. */
static int copy(rc_ctx *ctx, cl_mem src, cl_mem dst, size_t floats, const char *what, rc_err *e) {
    return rc_buffer_copy(ctx, src, dst, floats * sizeof(float), what, e);
}

int rc_attack_loss_grad(rc_ctx *ctx, rc_model *m, rc_attack_loss loss, cl_mem x, cl_mem labels,
                        cl_mem targets, int n, int d, cl_mem loss_out, cl_mem correct,
                        int want_grad, cl_mem g, rc_err *e) {
    size_t nd = (size_t)n * d, gn = (size_t)n;
    int kind = (int)loss, k = m->opts.num_classes;
    cl_mem logits = rc_model_logits(m), dz = rc_model_logits_grad(m);
    if (copy(ctx, x, rc_model_input(m), nd, "attack input", e) ||
        rc_model_forward(ctx, m, 0, n, e) ||
        RC_LAUNCH(ctx, "loss.cl", "attack_loss", 1, &gn, e, RC_ARG(logits), RC_ARG(labels),
                  RC_ARG(targets), RC_ARG(loss_out), RC_ARG(correct), RC_ARG(dz), RC_ARG(n),
                  RC_ARG(k), RC_ARG(kind)))
        return -1;
    if (!want_grad) return 0;
    return rc_model_backward(ctx, m, 0, n, 0, 1, e) ||
           copy(ctx, rc_model_input_grad(m), g, nd, "attack gradient", e);
}

int rc_apgd_loss_grad(rc_ctx *ctx, rc_apgd *a, rc_model *m, rc_attack_loss loss, cl_mem x, int n,
                      int want_grad, cl_mem g, rc_err *e) {
    return rc_attack_loss_grad(ctx, m, loss, x, a->labels, a->targets, n, a->d, a->loss,
                               a->correct, want_grad, g, e);
}

static int track(rc_ctx *ctx, rc_apgd *a, int row, int n, rc_err *e) {
    return RC_LAUNCH_EACH(ctx, "apgd.cl", "apgd_track", 1, (size_t[]){(size_t)n}, e,
                          RC_ARG(a->x_adv), RC_ARG(a->g),
                             RC_ARG(a->loss), RC_ARG(a->correct), RC_ARG(a->x_best),
                             RC_ARG(a->grad_best), RC_ARG(a->x_best_adv), RC_ARG(a->loss_best),
                             RC_ARG(a->acc), RC_ARG(a->loss_steps), RC_ARG(row), RC_ARG(n),
                             RC_ARG(a->d));
}

int rc_apgd_run(rc_ctx *ctx, rc_apgd *a, rc_model *m, const rc_apgd_opts *o, int n,
                int from_start, rc_err *e) {
    if (n < 1 || n > a->B || n > m->max_batch || o->n_iter < 1 || o->n_iter > a->max_iter)
        return rc_err_set(e, "APGD: %d samples and %d iterations, but buffers hold %d samples "
                             "and %d iterations (model batch %d)",
                          n, o->n_iter, a->B, a->max_iter, m->max_batch);
    const int N = o->n_iter, d = a->d, l1 = o->norm == RC_NORM_L1;
    const size_t nd = (size_t)n * d;
    const float eps = o->eps;
    /* step size eta0 = alpha * eps: alpha 2 for l_inf and l_2, 1 for l_1 */
    const float eta0 = o->pgd ? 2.5f * eps / (float)N : l1 ? eps : 2.0f * eps;
    const float topk0 = o->l1_topk > 0 ? o->l1_topk : o->train ? 0.05f : 0.2f;
    if (copy(ctx, from_start ? a->x_start : a->x, a->x_adv, nd, "attack start", e) ||
        rc_fill(ctx, a->loss_steps, 0, (size_t)(N + 1) * a->B, 0.0f, e) ||
        rc_fill(ctx, a->eta, 0, (size_t)n, eta0, e) ||
        rc_fill(ctx, a->reduced, 0, (size_t)n, 1.0f, e) ||
        rc_fill(ctx, a->loss_best_last, 0, (size_t)n, 0.0f, e) ||
        rc_fill(ctx, a->topk, 0, (size_t)n, topk0, e) ||
        rc_fill(ctx, a->sp_old, 0, (size_t)n, (float)d, e))
        return -1;
    if (l1 && from_start && o->l1_sparsity_from_start) {
        size_t gn = (size_t)n;
        if (rc_attack_l0(ctx, n, d, a->x_start, a->x, a->loss, e) ||
            RC_LAUNCH(ctx, "apgd.cl", "apgd_l1_start_sparsity", 1, &gn, e, RC_ARG(a->loss),
                      RC_ARG(a->topk), RC_ARG(a->sp_old), RC_ARG(n), RC_ARG(d)))
            return -1;
    }
    /* iteration-0 evaluation */
    if (rc_apgd_loss_grad(ctx, a, m, o->loss, a->x_adv, n, 1, a->g, e) || track(ctx, a, -1, n, e) ||
        copy(ctx, a->x_adv, a->x_adv_old, nd, "attack previous iterate", e))
        return -1;
    /* checkpoint schedule and the l1 adaptation interval, as autopgd_base.py's attack_single_run */
    int n_iter_2 = (int)(0.22 * N), n_iter_min = (int)(0.06 * N), size_decr = (int)(0.03 * N);
    if (n_iter_2 < 1) n_iter_2 = 1;
    if (n_iter_min < 1) n_iter_min = 1;
    if (size_decr < 1) size_decr = 1;
    int k = n_iter_2, counter = 0;
    int k_l1 = (int)(0.04 * N);
    if (k_l1 < 1) k_l1 = 1;
    const float rho = 0.75f;
    for (int i = 0; i < N; i++) {
        if (l1) {
            if (rc_attack_topk_threshold(ctx, n, d, a->g, a->topk, a->tau, &a->scratch, e) ||
                rc_attack_l1_step(ctx, n, d, a->x, a->x_adv, a->g, a->eta, a->tau, eps,
                                  &a->scratch, a->z, e))
                return -1;
            cl_mem t = a->x_adv;
            a->x_adv = a->z, a->z = t;
        } else if (o->pgd) {
            int r = o->norm == RC_NORM_LINF
                        ? rc_attack_linf_step(ctx, n, d, a->x, a->x_adv, a->g, a->eta, eps, a->z, e)
                        : rc_attack_l2_step(ctx, n, d, a->x, a->x_adv, a->g, a->eta, eps,
                                            &a->scratch, a->z, e);
            if (r) return -1;
            cl_mem t = a->x_adv;
            a->x_adv = a->z, a->z = t;
        } else {
            const float mom = i == 0 ? 1.0f : 0.75f;
            int r = o->norm == RC_NORM_LINF
                        ? rc_attack_linf_step(ctx, n, d, a->x, a->x_adv, a->g, a->eta, eps, a->z, e)
                        : rc_attack_l2_step(ctx, n, d, a->x, a->x_adv, a->g, a->eta, eps,
                                            &a->scratch, a->z, e);
            /* v = x_adv + a (z - x_adv) + (1 - a)(x_adv - x_adv_old), projected; then the
             * buffers rotate: x_adv_old <- x_adv, x_adv <- v */
            if (r || rc_attack_momentum(ctx, o->norm, n, d, a->x, a->x_adv, a->x_adv_old, a->z,
                                        mom, eps, &a->scratch, a->v, e))
                return -1;
            cl_mem old = a->x_adv_old;
            a->x_adv_old = a->x_adv, a->x_adv = a->v, a->v = old;
        }
        int want_grad = !(o->train && i == N - 1);
        if (rc_apgd_loss_grad(ctx, a, m, o->loss, a->x_adv, n, want_grad, a->g, e) ||
            track(ctx, a, i, n, e))
            return rc_err_prefix(e, "APGD iteration %d: ", i);
        if (o->pgd) continue;
        if (l1) {
            if (++counter == k_l1) {
                counter = 0;
                if (RC_LAUNCH_EACH(ctx, "apgd.cl", "apgd_l1_adapt", 1, (size_t[]){(size_t)n}, e,
                                   RC_ARG(a->x),
                                      RC_ARG(a->x_best), RC_ARG(a->x_adv), RC_ARG(a->g),
                                      RC_ARG(a->grad_best), RC_ARG(a->eta), RC_ARG(a->topk),
                                      RC_ARG(a->sp_old), RC_ARG(eps), RC_ARG(n), RC_ARG(d)))
                    return -1;
            }
        } else if (++counter == k) {
            if (RC_LAUNCH_EACH(ctx, "apgd.cl", "apgd_checkpoint", 1, (size_t[]){(size_t)n}, e,
                               RC_ARG(a->loss_steps),
                                  RC_ARG(a->loss_best), RC_ARG(a->loss_best_last),
                                  RC_ARG(a->reduced), RC_ARG(a->eta), RC_ARG(a->x_adv),
                                  RC_ARG(a->x_best), RC_ARG(a->g), RC_ARG(a->grad_best), RC_ARG(i),
                                  RC_ARG(k), RC_ARG(rho), RC_ARG(n), RC_ARG(d)))
                return -1;
            counter = 0;
            k = k - size_decr > n_iter_min ? k - size_decr : n_iter_min;
        }
    }
    return 0;
}
