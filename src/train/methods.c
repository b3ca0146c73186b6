#include "ramp/methods.h"
#include "ramp/dist.h"
#include "ramp/launch.h"
#include "ramp/loss.h"

#include <stdlib.h>
#include <string.h>

int rc_adv_trainer_init(rc_ctx *ctx, rc_adv_trainer *t, const rc_config *cfg, rc_model *m, int B,
                        int d, rc_err *e) {
    memset(t, 0, sizeof *t);
    t->method = cfg->method;
    /* attack order linf, l1, l2: the reference's order, which decides MAX's ties */
    static const rc_norm order[3] = {RC_NORM_LINF, RC_NORM_L1, RC_NORM_L2};
    int max_steps = 1;
    for (int i = 0; i < 3; i++) {
        int k = rc_config_find_threat(cfg, order[i]);
        if (k < 0) continue;
        if (cfg->method == RC_METHOD_AT && order[i] == cfg->attack_norm) t->at_index = t->n_threats;
        t->threats[t->n_threats++] = cfg->threats[k];
        if (cfg->threats[k].steps > max_steps) max_steps = cfg->threats[k].steps;
    }
    if (t->n_threats == 0)
        return rc_err_set(e, "method %s needs threat_models", rc_method_name(cfg->method));
    if (cfg->method == RC_METHOD_SAT || cfg->method == RC_METHOD_EAT) {
        for (int i = 0; i < t->n_threats; i++)
            for (int k = 0; k < cfg->n_train_norms; k++)
                if (t->threats[i].norm == cfg->train_norms[k]) t->draw[t->n_draw++] = i;
        if (t->n_draw == 0) /* rc_config_finalize resolves train_norms */
            return rc_err_set(e, "method %s: train_norms names no threat model",
                              rc_method_name(cfg->method));
    }
    if (cfg->method == RC_METHOD_RAMP) {
        rc_norm q = cfg->ramp.pair[0], r = cfg->ramp.pair[1];
        if (q == RC_NORM_NONE || r == RC_NORM_NONE) /* rc_pair_resolve runs first */
            return rc_err_set(e, "method ramp: ramp.pair: auto was not resolved to a pair");
        t->q = t->r = -1;
        for (int i = 0; i < t->n_threats; i++) {
            if (t->threats[i].norm == q) t->q = i;
            if (t->threats[i].norm == r) t->r = i;
        }
        if (t->q < 0 || t->r < 0 || t->q == t->r)
            return rc_err_set(e, "method ramp: the pair (%s, %s) needs both in threat_models",
                              rc_norm_name(q), rc_norm_name(r));
        t->lambda = (float)cfg->ramp.lambda;
        t->trades = cfg->ramp.outer == RC_OUTER_TRADES;
        t->trades_beta = (float)cfg->ramp.trades_beta;
        if (rc_model_create_view(ctx, &t->view_q, m, e) ||
            rc_model_create_view(ctx, &t->view_r, m, e) ||
            (t->trades && rc_model_create_view(ctx, &t->view_c, m, e)))
            return -1;
    }
    if (cfg->method == RC_METHOD_MSD) {
        int k[3] = {rc_config_find_threat(cfg, RC_NORM_LINF),
                    rc_config_find_threat(cfg, RC_NORM_L2), rc_config_find_threat(cfg, RC_NORM_L1)};
        if (k[0] < 0 || k[1] < 0 || k[2] < 0)
            return rc_err_set(e, "method msd needs linf, l2 and l1 in threat_models");
        t->msd_opts = (rc_msd_opts){.eps_linf = (float)cfg->threats[k[0]].eps,
                                    .eps_l2 = (float)cfg->threats[k[1]].eps,
                                    .eps_l1 = (float)cfg->threats[k[2]].eps,
                                    .alpha_linf = (float)cfg->msd.alpha_linf,
                                    .alpha_l2 = (float)cfg->msd.alpha_l2,
                                    .alpha_l1 = (float)cfg->msd.alpha_l1,
                                    .n_iter = cfg->msd.steps};
        if (rc_msd_alloc(ctx, &t->msd, B, d, e)) return -1;
    }
    rc_rng_seed(&t->rng, cfg->seed, 0x6d657468 /* "meth" */);
    if (!(t->acc = malloc((size_t)B * sizeof(float))))
        return rc_err_set(e, "out of host memory for the attack flags");
    if (rc_apgd_alloc(ctx, &t->apgd, B, d, max_steps, e)) return -1;
    for (int i = 0; i < t->n_threats && t->method != RC_METHOD_MSD; i++)
        if (rc_buffer_create(ctx, (size_t)B * d * 4, "adversarial batch", &t->adv[i], e) ||
            rc_buffer_create(ctx, (size_t)B * 4, "adversarial loss", &t->loss[i], e))
            return -1;
    return 0;
}

void rc_adv_trainer_free(rc_adv_trainer *t) {
    rc_apgd_free(&t->apgd);
    rc_model_free(&t->view_q);
    rc_model_free(&t->view_r);
    rc_model_free(&t->view_c);
    rc_msd_free(&t->msd);
    for (int i = 0; i < RC_MAX_THREATS; i++) {
        if (t->adv[i]) clReleaseMemObject(t->adv[i]);
        if (t->loss[i]) clReleaseMemObject(t->loss[i]);
    }
    free(t->acc);
    memset(t, 0, sizeof *t);
}


/* APGD in training mode against threat i; x_best and loss_best are kept in adv[i], loss[i]. */
static int attack(rc_ctx *ctx, rc_adv_trainer *t, rc_model *m, int i, int n, rc_err *e) {
    const rc_threat *th = &t->threats[i];
    rc_apgd_opts o = {.norm = th->norm, .eps = (float)th->eps, .n_iter = th->steps,
                      .loss = RC_LOSS_CE, .train = 1};
    size_t d = (size_t)t->apgd.d;
    if (rc_apgd_run(ctx, &t->apgd, m, &o, n, 0, e) ||
        rc_buffer_copy(ctx, t->apgd.x_best, t->adv[i], (size_t)n * d * 4, "adversarial batch",
                       e) ||
        rc_buffer_copy(ctx, t->apgd.loss_best, t->loss[i], (size_t)n * 4, "adversarial loss", e))
        return rc_err_prefix(e, "%s attack: ", rc_norm_name(th->norm));
    if (t->method != RC_METHOD_EAT) return 0;
    /* E-AT's counters: points still correct through the whole attack */
    if (rc_buffer_read(ctx, t->apgd.acc, 0, (size_t)n * 4, t->acc, "attack flags", e)) return -1;
    double count[2] = {0, n}; /* summed over the processes that share the batch */
    for (int k = 0; k < n; k++) count[0] += t->acc[k];
    if (rc_dist_sum_f64(ctx->dist, count, 2, e)) return rc_err_prefix(e, "E-AT's counters: ");
    t->robust[i] += count[0];
    t->attacked[i] += count[1];
    return 0;
}

/* E-AT: over the drawn threat models, weights 1 - robust accuracy so far; uniform until each
 * has been used (and when every weight is 0). */
void rc_eat_weights(const rc_adv_trainer *t, double *w) {
    double sum = 0;
    int all_used = 1;
    for (int i = 0; i < t->n_threats; i++) w[i] = 0;
    for (int k = 0; k < t->n_draw; k++) all_used &= t->attacked[t->draw[k]] > 0;
    for (int k = 0; k < t->n_draw; k++) {
        int i = t->draw[k];
        w[i] = all_used ? 1.0 - t->robust[i] / t->attacked[i] : 1.0;
        sum += w[i];
    }
    for (int k = 0; k < t->n_draw; k++)
        w[t->draw[k]] = sum > 0 ? w[t->draw[k]] / sum : 1.0 / t->n_draw;
}

static int eat_choice(rc_adv_trainer *t) {
    double w[RC_MAX_THREATS];
    rc_eat_weights(t, w);
    double u = rc_rng_uniform(&t->rng);
    for (int k = 0; k < t->n_draw - 1; k++) {
        if (u < w[t->draw[k]]) return t->draw[k];
        u -= w[t->draw[k]];
    }
    return t->draw[t->n_draw - 1];
}

int rc_select_max(rc_ctx *ctx, const cl_mem *adv, const cl_mem *loss, int n_threats, cl_mem out,
                  int n, int d, rc_err *e) {
    /* CPU class: a work-item per sample; GPU class: a work-item per float, d x n */
    const int gpu = ctx->cls == RC_CLASS_GPU;
    size_t g[2] = {gpu ? (size_t)d : (size_t)n, (size_t)n};
    cl_mem a1 = adv[n_threats > 1], a2 = adv[n_threats > 2 ? 2 : 0];
    cl_mem l1 = loss[n_threats > 1], l2 = loss[n_threats > 2 ? 2 : 0];
    return RC_LAUNCH(ctx, "methods.cl", "method_select_max", gpu ? 2 : 1, g, e, RC_ARG(adv[0]),
                     RC_ARG(a1), RC_ARG(a2), RC_ARG(loss[0]), RC_ARG(l1), RC_ARG(l2),
                     RC_ARG(n_threats), RC_ARG(out), RC_ARG(n), RC_ARG(d));
}

/* RAMP (paper Sec. 4.2; RAMP's RAMP.py --kl --max): attacks in q and r, per-sample MAX selection
 * (the r example wins ties), then the train-mode forwards in the reference's order and the loss:
 *   outer max:    x_r, x_q, x_best;              L = CE(z_best) + lambda KL-pairing
 *   outer trades: x_r, x_q, x, x_best, x again;  L = CE(z_x) + beta KL(p_x || p_best) + lambda
 *                 KL-pairing (RAMP_wide_resnet.py evaluates f(x) twice; both forwards see the same
 *                 batch, so their activations are identical and one backward from the sum of the
 *                 two logit gradients is exact; the second forward is kept for the BN running
 *                 statistics, which it updates a second time as the reference does). */
/* The pairing set M of a batch split across processes (ramp/dist.h) is the union of their
 * slices' sets: *m_other gets how many of the others' samples it holds (0 for one process). The
 * hits of z_q are counted with CE's kernel (its first maximum is the pairing's), loss and correct
 * are its scratch until RAMP's loss writes them. */
static int pairing_others(rc_ctx *ctx, rc_adv_trainer *t, rc_model *m, int n, cl_mem labels,
                          cl_mem loss, cl_mem correct, int *m_other, rc_err *e) {
    *m_other = 0;
    if (rc_dist_size(ctx->dist) == 1) return 0;
    if (rc_ce_forward_backward(ctx, n, m->opts.num_classes, rc_model_logits(&t->view_q), labels,
                               loss, correct, NULL, e) ||
        rc_buffer_read(ctx, correct, 0, (size_t)n * 4, t->acc, "RAMP's pairing set", e))
        return -1;
    double mine = 0, all;
    for (int i = 0; i < n; i++) mine += t->acc[i];
    all = mine;
    if (rc_dist_sum_f64(ctx->dist, &all, 1, e)) return rc_err_prefix(e, "RAMP's pairing set: ");
    *m_other = (int)(all - mine);
    return 0;
}

static int ramp_step(rc_ctx *ctx, rc_adv_trainer *t, rc_model *m, int n, int n_batch,
                     cl_mem labels, cl_mem loss, cl_mem correct, rc_err *e) {
    size_t bytes = (size_t)n * t->apgd.d * 4;
    int q = t->q, r = t->r, k = m->opts.num_classes, m_other;
    rc_model *vc = &t->view_c;
    /* per sample the higher attack loss; the r example first so that it wins ties */
    cl_mem adv[2] = {t->adv[r], t->adv[q]}, losses[2] = {t->loss[r], t->loss[q]};
    if (attack(ctx, t, m, q, n, e) || attack(ctx, t, m, r, n, e) ||
        rc_select_max(ctx, adv, losses, 2, rc_model_input(m), n, t->apgd.d, e) ||
        rc_buffer_copy(ctx, t->adv[r], rc_model_input(&t->view_r), bytes, "x_r", e) ||
        rc_buffer_copy(ctx, t->adv[q], rc_model_input(&t->view_q), bytes, "x_q", e) ||
        (t->trades && rc_buffer_copy(ctx, t->apgd.x, rc_model_input(vc), bytes, "x", e)) ||
        rc_model_forward(ctx, &t->view_r, 1, n, e) || rc_model_forward(ctx, &t->view_q, 1, n, e) ||
        (t->trades && rc_model_forward(ctx, vc, 1, n, e)) || rc_model_forward(ctx, m, 1, n, e) ||
        (t->trades && rc_model_forward(ctx, vc, 1, n, e)) ||
        pairing_others(ctx, t, m, n, labels, loss, correct, &m_other, e))
        return -1;
    cl_mem zq = rc_model_logits(&t->view_q), zr = rc_model_logits(&t->view_r);
    cl_mem zb = rc_model_logits(m), dzq = rc_model_logits_grad(&t->view_q);
    cl_mem dzr = rc_model_logits_grad(&t->view_r), dzb = rc_model_logits_grad(m);
    int r_loss;
    if (t->trades) {
        cl_mem zc = rc_model_logits(vc), dzc = rc_model_logits_grad(vc);
        r_loss =
            RC_LAUNCH_EACH(ctx, "methods.cl", "ramp_trades_loss", 1, (size_t[]){(size_t)n}, e,
                           RC_ARG(zq), RC_ARG(zr), RC_ARG(zb), RC_ARG(zc), RC_ARG(labels),
                           RC_ARG(t->lambda), RC_ARG(t->trades_beta), RC_ARG(n), RC_ARG(n_batch),
                           RC_ARG(m_other), RC_ARG(k), RC_ARG(dzq), RC_ARG(dzr), RC_ARG(dzb),
                           RC_ARG(dzc), RC_ARG(loss), RC_ARG(correct));
    } else {
        r_loss =
            RC_LAUNCH_EACH(ctx, "methods.cl", "ramp_loss", 1, (size_t[]){(size_t)n}, e,
                           RC_ARG(zq), RC_ARG(zr), RC_ARG(zb), RC_ARG(labels), RC_ARG(t->lambda),
                           RC_ARG(n), RC_ARG(n_batch), RC_ARG(m_other), RC_ARG(k), RC_ARG(dzq),
                           RC_ARG(dzr), RC_ARG(dzb), RC_ARG(loss), RC_ARG(correct));
    }
    return r_loss || rc_model_backward(ctx, m, 1, n, RC_GRAD_WRITE, 0, e) ||
           (t->trades && rc_model_backward(ctx, vc, 1, n, RC_GRAD_ADD, 0, e)) ||
           rc_model_backward(ctx, &t->view_q, 1, n, RC_GRAD_ADD, 0, e) ||
           rc_model_backward(ctx, &t->view_r, 1, n, RC_GRAD_ADD, 0, e);
}

int rc_avg_loss(rc_ctx *ctx, rc_adv_trainer *t, rc_model *m, int n, int n_batch, cl_mem labels,
                cl_mem loss, cl_mem correct, rc_err *e) {
    size_t bytes = (size_t)n * t->apgd.d * 4;
    const int k = m->opts.num_classes;
    const float inv_t = 1.0f / (float)t->n_threats, scale = inv_t / (float)n_batch;
    cl_mem z = rc_model_logits(m), dz = rc_model_logits_grad(m);
    for (int i = 0; i < t->n_threats; i++) {
        int first = i == 0;
        if (rc_buffer_copy(ctx, t->adv[i], rc_model_input(m), bytes, "adversarial batch", e) ||
            rc_model_forward(ctx, m, 1, n, e) ||
            RC_LAUNCH_EACH(ctx, "methods.cl", "avg_loss", 1, (size_t[]){(size_t)n}, e,
                           RC_ARG(z), RC_ARG(labels),
                           RC_ARG(inv_t), RC_ARG(scale), RC_ARG(first), RC_ARG(n), RC_ARG(k),
                           RC_ARG(dz), RC_ARG(loss), RC_ARG(correct)) ||
            rc_model_backward(ctx, m, 1, n, first ? RC_GRAD_WRITE : RC_GRAD_ADD, 0, e))
            return rc_err_prefix(e, "AVG, %s pass: ", rc_norm_name(t->threats[i].norm));
    }
    return 0;
}

/* The methods whose loss is CE on one training input: write that input into the model. */
static int training_input(rc_ctx *ctx, rc_adv_trainer *t, rc_model *m, int n, int n_batch,
                          rc_err *e) {
    size_t bytes = (size_t)n * t->apgd.d * 4;
    if (t->method == RC_METHOD_MAX) {
        for (int i = 0; i < t->n_threats; i++)
            if (attack(ctx, t, m, i, n, e)) return -1;
        return rc_select_max(ctx, t->adv, t->loss, t->n_threats, rc_model_input(m), n,
                             t->apgd.d, e);
    }
    if (t->method == RC_METHOD_MSD)
        return rc_msd_run(ctx, &t->msd, m, t->apgd.x, t->apgd.labels, &t->msd_opts, &t->rng, n,
                          n_batch, e) ||
               rc_buffer_copy(ctx, t->msd.x_best, rc_model_input(m), bytes, "MSD batch", e);
    int i = t->method == RC_METHOD_AT    ? t->at_index
            : t->method == RC_METHOD_SAT ? t->draw[rc_rng_below(&t->rng, (uint32_t)t->n_draw)]
                                         : eat_choice(t);
    return attack(ctx, t, m, i, n, e) ||
           rc_buffer_copy(ctx, t->adv[i], rc_model_input(m), bytes, "adversarial batch", e);
}

int rc_adv_trainer_step(rc_ctx *ctx, rc_adv_trainer *t, rc_model *m, int n, int n_batch,
                        cl_mem labels, cl_mem loss, cl_mem correct, rc_err *e) {
    if (t->method == RC_METHOD_RAMP)
        return ramp_step(ctx, t, m, n, n_batch, labels, loss, correct, e);
    if (t->method == RC_METHOD_AVG) {
        for (int i = 0; i < t->n_threats; i++)
            if (attack(ctx, t, m, i, n, e)) return -1;
        return rc_avg_loss(ctx, t, m, n, n_batch, labels, loss, correct, e);
    }
    return training_input(ctx, t, m, n, n_batch, e) || rc_model_forward(ctx, m, 1, n, e) ||
           rc_ce_forward_backward_part(ctx, n, n_batch, m->opts.num_classes, rc_model_logits(m),
                                       labels, loss, correct, rc_model_logits_grad(m), e) ||
           rc_model_backward(ctx, m, 1, n, RC_GRAD_WRITE, 0, e);
}
