/* Helpers of the attack tests (check_apgd, check_square, check_fab): the small-cnn fixture,
 * l_p distances and the ball-and-box check, and a dataset built from given points. */
#ifndef RAMP_ATTACKUTIL_H
#define RAMP_ATTACKUTIL_H

#include "ramp/dataset.h"
#include "ramp/model.h"
#include "ramp/safetensors.h"
#include "testutil.h"

/* small-cnn (width 8) with the PyTorch fixture's weights and its 4 inputs */
static inline void fixture_model(rc_ctx *ctx, rc_model *m, float *x, int32_t *y) {
    char path[1024];
    rc_st_file f;
    rc_err e;
    ck_assert_msg(rc_st_open(&f, fixture_path("small-cnn.safetensors", path, sizeof path), &e) == 0,
                  "%s", e.msg);
    rc_model_opts o;
    rc_model_opts_default(&o, RC_ARCH_SMALL_CNN, 1, 28);
    o.width = 8;
    ck_assert_msg(rc_model_create(ctx, m, &o, 4, &e) == 0, "%s", e.msg);
    for (int i = 0; i < m->n_params; i++) {
        rc_param *p = &m->params[i];
        if (p->kind == RC_P_NUM_BATCHES) continue;
        char key[160];
        snprintf(key, sizeof key, "after.%s", p->name);
        int64_t shape[4];
        for (int dd = 0; dd < p->ndim; dd++) shape[dd] = p->shape[dd];
        float *v = malloc(p->numel * 4);
        ck_assert_msg(rc_st_get_f32(&f, key, p->ndim, shape, v, &e) == 0, "%s", e.msg);
        ck_assert(rc_param_write(ctx, p, v, &e) == 0);
        free(v);
    }
    int64_t xs[4] = {4, 1, 28, 28}, ys[1] = {4}, y64[4];
    ck_assert(rc_st_get_f32(&f, "input.x", 4, xs, x, &e) == 0);
    ck_assert(rc_st_get_i64(&f, "input.y", 1, ys, y64, &e) == 0);
    for (int i = 0; i < 4; i++) y[i] = (int32_t)y64[i];
    rc_st_close(&f);
}

static inline double lp_dist(rc_norm norm, const float *a, const float *b, int d) {
    double s = 0;
    for (int j = 0; j < d; j++) {
        double t = fabs((double)a[j] - b[j]);
        s = norm == RC_NORM_LINF ? fmax(s, t) : norm == RC_NORM_L2 ? s + t * t : s + t;
    }
    return norm == RC_NORM_L2 ? sqrt(s) : s;
}

static inline void check_feasible(const char *what, rc_norm norm, float eps, const float *x,
                                  const float *adv, int n, int d) {
    for (int i = 0; i < n; i++) {
        double dist = lp_dist(norm, adv + (size_t)i * d, x + (size_t)i * d, d);
        ck_assert_msg(dist <= eps * (1 + 1e-5) + 1e-6, "%s %s sample %d: distance %.7g > eps %g",
                      what, rc_norm_name(norm), i, dist, eps);
        for (int j = 0; j < d; j++) {
            float v = adv[(size_t)i * d + j];
            ck_assert_msg(v >= 0.0f && v <= 1.0f,
                          "%s %s sample %d: coordinate %d = %g outside "
                          "[0,1]",
                          what, rc_norm_name(norm), i, j, v);
        }
    }
}

/* A dataset of n points of c x h x h in [0,1] (quantised to bytes, as the evaluation reads
 * them) with labels y among k classes. */
static inline void make_dataset(rc_dataset *d, int n, int c, int h, int k, const float *x,
                                const int32_t *y) {
    const int dim = c * h * h;
    memset(d, 0, sizeof *d);
    d->n = (uint32_t)n, d->c = (uint32_t)c, d->h = (uint32_t)h, d->w = (uint32_t)h;
    d->num_classes = (uint32_t)k;
    d->pixels = malloc((size_t)n * dim);
    d->labels = malloc((size_t)n);
    for (int i = 0; i < n * dim; i++) d->pixels[i] = (uint8_t)lrintf(x[i] * 255.0f);
    for (int i = 0; i < n; i++) d->labels[i] = (uint8_t)y[i];
    snprintf(d->name, sizeof d->name, "generated");
}

/* ---- a model with a masked gradient ----------------------------------------------------------
 * small-cnn (width 8, 1 x 8 x 8 inputs, 10 classes) whose weights quantise four pixels x_i (rows
 * and columns 0 and 4): conv1 + BN + ReLU give u_l = ReLU(1e4 (x_i - a_l)) for the eight levels
 * a_l = 0.42 + 0.02 l, conv2 + BN + ReLU v_l = ReLU(1 - u_l) = [x_i <= a_l] (up to a ramp of
 * 1e-4), conv3 sums them: Q_i = #{l : x_i <= a_l}, a staircase. Logits: z_0 = sum_i Q_i / 8,
 * z_1 = 1.6, the rest -10. A point whose four pixels are 105/255 ~ 0.412 has Q_i = 8, is class 0
 * with margin 2.4, and becomes class 1 only when all four exceed 0.5 (Q_i = 3), e.g. at +0.1.
 * Away from the ramps every ReLU on the path is off or saturated: the input gradient of every
 * loss is exactly zero, the stand-in for a quantising (gradient-masking) defence. */
#define MASK_SIZE   8
#define MASK_D      (MASK_SIZE * MASK_SIZE)
#define MASK_LEVELS 8
#define MASK_PIXEL  (105.0f / 255.0f)

static inline void masked_model(rc_ctx *ctx, rc_model *m, int batch) {
    rc_model_opts o;
    rc_model_opts_default(&o, RC_ARCH_SMALL_CNN, 1, MASK_SIZE);
    o.width = MASK_LEVELS;
    rc_err e;
    ck_assert_msg(rc_model_create(ctx, m, &o, batch, &e) == 0, "%s", e.msg);
    for (int i = 0; i < m->n_params; i++) {
        rc_param *p = &m->params[i];
        if (p->kind == RC_P_NUM_BATCHES) continue;
        float *v = calloc(p->numel, sizeof(float));
        const char *n = p->name;
        for (size_t k = 0; k < p->numel; k++) {
            if (p->kind == RC_P_RUNNING_VAR) v[k] = 1.0f - 1e-5f; /* BN eps: unit scale */
            if (p->kind == RC_P_BN_WEIGHT) v[k] = 1.0f;
        }
        for (int l = 0; l < MASK_LEVELS; l++) {
            if (!strcmp(n, "conv1.weight")) v[l * 9 + 4] = 1e4f;
            if (!strcmp(n, "bn1.bias")) v[l] = -1e4f * (0.42f + 0.02f * l);
            if (!strcmp(n, "conv2.weight")) v[(l * MASK_LEVELS + l) * 9 + 4] = -1.0f;
            if (!strcmp(n, "bn2.bias")) v[l] = 1.0f;
            if (!strcmp(n, "conv3.weight")) v[l * 9 + 4] = 1.0f; /* channel 0 from channel l */
        }
        if (!strcmp(n, "linear.weight"))
            for (int k = 0; k < 4; k++) v[k] = 1.0f / MASK_LEVELS; /* conv3 channel 0, 2 x 2 */
        if (!strcmp(n, "linear.bias")) {
            v[1] = 1.6f;
            for (int k = 2; k < 10; k++) v[k] = -10.0f;
        }
        ck_assert_msg(rc_param_write(ctx, p, v, &e) == 0, "%s", e.msg);
        free(v);
    }
}

/* n points for masked_model: the four pixels at MASK_PIXEL, the others uniform bytes, label 0. */
static inline void masked_points(float *x, int32_t *y, int n, unsigned seed) {
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < MASK_D; j++) {
            const int r = j / MASK_SIZE, c = j % MASK_SIZE;
            x[i * MASK_D + j] =
                (r % 4 == 0 && c % 4 == 0) ? MASK_PIXEL : (float)(lcg(&seed) >> 24) / 255.0f;
        }
        y[i] = 0;
    }
}

#endif
