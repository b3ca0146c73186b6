#include "ramp/optim.h"
#include "ramp/launch.h"

#include <math.h>
#include <string.h>

void rc_sgd_init(rc_sgd *o, float momentum, float weight_decay, int nesterov, int split_groups,
                 int lr_all_groups) {
    memset(o, 0, sizeof *o);
    o->momentum = momentum;
    o->weight_decay = weight_decay;
    o->nesterov = nesterov;
    o->split_groups = split_groups;
    o->lr_all_groups = lr_all_groups;
    o->group1_lr = 1.0f;
}

static int sgd_range(rc_ctx *ctx, rc_model *m, const rc_sgd *o, size_t off, size_t n, float lr,
                     float wd, rc_err *e) {
    int ioff = (int)off, in = (int)n, first = o->steps == 0;
    return RC_LAUNCH(ctx, "optim.cl", "sgd_step", 1, &n, e, RC_ARG(m->arena), RC_ARG(m->grads),
                     RC_ARG(m->momentum), RC_ARG(ioff), RC_ARG(in), RC_ARG(lr),
                     RC_ARG(o->momentum), RC_ARG(wd), RC_ARG(o->nesterov), RC_ARG(first));
}

int rc_sgd_step(rc_ctx *ctx, rc_sgd *o, rc_model *m, float lr, rc_err *e) {
    int r;
    if (o->split_groups)
        r = sgd_range(ctx, m, o, 0, m->n_decay, lr, o->weight_decay, e) ||
            sgd_range(ctx, m, o, m->n_decay, m->n_train - m->n_decay,
                      o->lr_all_groups ? lr : o->group1_lr, 0.0f, e);
    else
        r = sgd_range(ctx, m, o, 0, m->n_train, lr, o->weight_decay, e);
    if (r) return rc_err_prefix(e, "SGD step %ld: ", o->steps);
    o->steps++;
    return 0;
}

float rc_schedule_lr(rc_schedule_kind s, float lr_max, int epochs, float t, int static_drop_epoch) {
    float frac = t / (float)epochs;
    switch (s) {
    case RC_SCHEDULE_PIECEWISE_FT:
        return frac < 1.0f / 3.0f ? lr_max : frac < 2.0f / 3.0f ? lr_max / 10 : lr_max / 100;
    case RC_SCHEDULE_STATIC: return t <= (float)static_drop_epoch ? lr_max : lr_max / 10;
    case RC_SCHEDULE_SUPERCONVERGE: {
        /* linear 0 -> lr_max at epoch floor(2E/5) -> 0 at E */
        float peak = floorf(2.0f * epochs / 5.0f);
        if (peak > 0 && t <= peak) return lr_max * t / peak;
        return fmaxf(0.0f, lr_max * ((float)epochs - t) / ((float)epochs - peak));
    }
    case RC_SCHEDULE_PIECEWISE:
        return frac < 0.5f ? lr_max : frac < 0.75f ? lr_max / 10 : lr_max / 100;
    case RC_SCHEDULE_CONSTANT:
    default: return lr_max;
    }
}
