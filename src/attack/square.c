#include "ramp/square.h"
#include "ramp/buffers.h"
#include "ramp/launch.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FILE_SQ        "square.cl"
#define SQUARE_BUFFERS 10

static void square_buffers(rc_square *sq, rc_buffer_spec t[SQUARE_BUFFERS]) {
    const size_t big = (size_t)sq->B * sq->d * sizeof(float), small = (size_t)sq->B * 4;
    const rc_buffer_spec all[] = {
        {&sq->x, big, "square clean batch"},
        {&sq->labels, small, "square labels"},
        {&sq->ids, small, "square point ids"},
        {&sq->x_best, big, "square best points"},
        {&sq->margin, small, "square margins"},
        {&sq->correct, small, "square correctness"},
        {&sq->delta, big, "square perturbation"},
        {&sq->coef, small * 2 * (size_t)sq->c, "square window scales"},
        {&sq->eta, 2 * (size_t)sq->h * sq->h * sizeof(float), "square window pattern"},
        {&sq->idx, small, "square gather indices"},
    };
    _Static_assert(sizeof all / sizeof *all == SQUARE_BUFFERS, "SQUARE_BUFFERS is its size");
    memcpy(t, all, sizeof all);
}

int rc_square_alloc(rc_ctx *ctx, rc_square *sq, int B, int c, int h, int w, rc_err *e) {
    memset(sq, 0, sizeof *sq);
    if (B < 1 || c < 1 || c > 255 || h < 1 || w != h)
        return rc_err_set(e,
                          "Square attack: unsupported shape %d x %d x %d x %d (square images "
                          "of at most 255 channels)",
                          B, c, h, w);
    sq->B = B, sq->c = c, sq->h = h, sq->w = w, sq->d = c * h * w;
    rc_buffer_spec t[SQUARE_BUFFERS];
    square_buffers(sq, t);
    if (rc_buffers_create(ctx, t, SQUARE_BUFFERS, e) ||
        rc_attack_scratch_alloc(ctx, &sq->scratch, B, sq->d, e)) {
        rc_square_free(sq);
        return -1;
    }
    return 0;
}

void rc_square_free(rc_square *sq) {
    rc_buffer_spec t[SQUARE_BUFFERS];
    square_buffers(sq, t);
    rc_buffers_release(t, SQUARE_BUFFERS);
    rc_attack_scratch_free(&sq->scratch);
}

int rc_square_window(const rc_square_opts *o, int it, int h) {
    /* the reference's p_selection with resc_schedule=False, as AutoAttack builds it */
    static const int until[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
    double p = o->p_init;
    for (size_t k = 0; k < sizeof until / sizeof *until && it > until[k]; k++) p /= 2;
    int s = (int)rint(sqrt(p * h * h)); /* Python's round: half to even, as rint by default */
    if (o->norm == RC_NORM_LINF) {
        if (s < 1) s = 1;
    } else {
        if (s < 3) s = 3;
        if (s % 2 == 0) s++;
    }
    return s < h ? s : h;
}

/* Concentric rectangles of weight 1/(k+1)^q around the centre of an rows x cols block (the
 * reference's eta_rectangles: q = 2 for l_2, 4 for l_1), normalised to unit l_2 (l_1) norm. */
static void eta_rectangles(double *p, int stride, int rows, int cols, int l1) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) p[r * stride + c] = 0;
    int r0 = rows / 2, c0 = cols / 2, n = (r0 > c0 ? r0 : c0) + 1;
    for (int k = 0; k < n; k++, r0--, c0--) {
        double v = 1.0 / pow(k + 1, l1 ? 4 : 2);
        for (int r = r0 > 0 ? r0 : 0; r < r0 + 2 * k + 1 && r < rows; r++)
            for (int c = c0 > 0 ? c0 : 0; c < c0 + 2 * k + 1 && c < cols; c++)
                p[r * stride + c] += v;
    }
    double t = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            t += l1 ? fabs(p[r * stride + c]) : p[r * stride + c] * p[r * stride + c];
    t = l1 ? t : sqrt(t);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) p[r * stride + c] /= t;
}

/* The s x s window pattern of l_2 / l_1 (the reference's eta): the upper s/2 rows rectangles,
 * the lower ones their negative, normalised as a whole; uploaded as [2][s][s], the second the
 * transpose (the reference picks one orientation with probability 1/2). */
static int upload_eta(rc_ctx *ctx, rc_square *sq, rc_norm norm, int s, rc_err *e) {
    if (sq->eta_s == s && sq->eta_norm == norm) return 0;
    const int l1 = norm == RC_NORM_L1, h2 = s / 2;
    double *p = malloc(sizeof(double) * s * s);
    float *f = malloc(sizeof(float) * 2 * s * s);
    if (!p || !f) {
        free(p), free(f);
        return rc_err_set(e, "Square attack: out of host memory");
    }
    eta_rectangles(p, s, h2, s, l1);
    eta_rectangles(p + h2 * s, s, s - h2, s, l1);
    double t = 0;
    for (int k = 0; k < s * s; k++) {
        if (k >= h2 * s) p[k] = -p[k];
        t += l1 ? fabs(p[k]) : p[k] * p[k];
    }
    t = l1 ? t : sqrt(t);
    for (int r = 0; r < s; r++)
        for (int c = 0; c < s; c++) {
            f[r * s + c] = (float)(p[r * s + c] / t);
            f[s * s + c * s + r] = f[r * s + c];
        }
    int ret =
        rc_buffer_write(ctx, sq->eta, 0, sizeof(float) * 2 * s * s, f, "square window pattern", e);
    free(p), free(f);
    if (!ret) sq->eta_s = s, sq->eta_norm = norm;
    return ret;
}

/* Forward at the candidates in the model's input, then the acceptance of each slot. */
static int query(rc_ctx *ctx, rc_square *sq, rc_model *m, int n, rc_err *e) {
    cl_mem in = rc_model_input(m), logits = rc_model_logits(m);
    int K = m->opts.num_classes;
    return rc_model_forward(ctx, m, 0, n, e) ||
           RC_LAUNCH_EACH(ctx, FILE_SQ, "square_accept", 1, (size_t[]){(size_t)n}, e,
                          RC_ARG(logits), RC_ARG(sq->labels), RC_ARG(in), RC_ARG(sq->x_best),
                          RC_ARG(sq->margin), RC_ARG(sq->correct), RC_ARG(n), RC_ARG(sq->d),
                          RC_ARG(K));
}

static int check_n(const rc_square *sq, const rc_model *m, const rc_square_opts *o, int n,
                   rc_err *e) {
    if (n < 1 || n > sq->B || n > m->max_batch)
        return rc_err_set(e, "Square attack: %d points, but buffers hold %d (model batch %d)", n,
                          sq->B, m->max_batch);
    if (m->opts.in_channels * m->opts.input_size * m->opts.input_size != sq->d)
        return rc_err_set(e, "Square attack: the model's input is not %d x %d x %d", sq->c, sq->h,
                          sq->w);
    if (o->norm != RC_NORM_LINF && sq->h < 5)
        return rc_err_set(e,
                          "Square attack: l_2 and l_1 need images of at least 5 x 5 (the "
                          "initial grid has h/5-pixel cells), not %d x %d",
                          sq->h, sq->w);
    return 0;
}

/* l_1's radius for the projections: the reference's eps * (1 - 1e-6), inside the ball. */
static float l1_radius(const rc_square_opts *o) { return o->eps * (1.0f - 1e-6f); }

int rc_square_init(rc_ctx *ctx, rc_square *sq, rc_model *m, const rc_square_opts *o, int n,
                   rc_err *e) {
    if (check_n(sq, m, o, n, e)) return -1;
    int *ids = malloc(sizeof(int) * n);
    if (!ids) return rc_err_set(e, "Square attack: out of host memory");
    for (int i = 0; i < n; i++) ids[i] = i;
    int r = rc_buffer_write(ctx, sq->ids, 0, sizeof(int) * n, ids, "square point ids", e);
    free(ids);
    const int d = sq->d, C = rc_attack_chunks(ctx, d), s0 = sq->h / 5;
    size_t items = (size_t)n * C;
    if (r || rc_fill(ctx, sq->margin, 0, (size_t)n, FLT_MAX, e)) return -1;
    if (o->norm == RC_NORM_LINF) {
        r = RC_LAUNCH(ctx, FILE_SQ, "square_init_linf", 1, &items, e, RC_ARG(sq->x),
                      RC_ARG(sq->ids), RC_ARG(o->key), RC_ARG(o->eps), RC_ARG(sq->x_best),
                      RC_ARG(n), RC_ARG(d), RC_ARG(sq->h), RC_ARG(sq->w), RC_ARG(C));
    } else {
        float rad = l1_radius(o);
        r = upload_eta(ctx, sq, o->norm, s0, e) ||
            RC_LAUNCH(ctx, FILE_SQ, "square_init_lp", 1, &items, e, RC_ARG(sq->ids), RC_ARG(o->key),
                      RC_ARG(sq->eta), RC_ARG(s0), RC_ARG(sq->delta), RC_ARG(n), RC_ARG(d),
                      RC_ARG(sq->h), RC_ARG(sq->w), RC_ARG(C)) ||
            (o->norm == RC_NORM_L2
                 ? RC_LAUNCH_EACH(ctx, FILE_SQ, "square_l2_finish", 1, (size_t[]){(size_t)n}, e,
                                  RC_ARG(sq->x), RC_ARG(sq->delta), RC_ARG(o->eps),
                                  RC_ARG(sq->x_best), RC_ARG(n), RC_ARG(d))
                 : rc_attack_l1_project_point(ctx, n, d, sq->x, sq->delta, rad, &sq->scratch,
                                              sq->x_best, e));
    }
    return r ||
           rc_buffer_copy(ctx, sq->x_best, rc_model_input(m), (size_t)n * d * 4,
                          "square initial point", e) ||
           query(ctx, sq, m, n, e);
}

int rc_square_step(rc_ctx *ctx, rc_square *sq, rc_model *m, const rc_square_opts *o, int n, int it,
                   rc_err *e) {
    if (check_n(sq, m, o, n, e)) return -1;
    const int d = sq->d, C = rc_attack_chunks(ctx, d), s = rc_square_window(o, it, sq->h);
    const cl_uint iter = (cl_uint)it;
    const int l1 = o->norm == RC_NORM_L1;
    size_t items = (size_t)n * C;
    cl_mem in = rc_model_input(m);
    int r;
    if (o->norm == RC_NORM_LINF) {
        r = RC_LAUNCH(ctx, FILE_SQ, "square_linf_step", 1, &items, e, RC_ARG(sq->x),
                      RC_ARG(sq->x_best), RC_ARG(sq->ids), RC_ARG(o->key), RC_ARG(iter), RC_ARG(s),
                      RC_ARG(o->eps), RC_ARG(in), RC_ARG(n), RC_ARG(d), RC_ARG(sq->h),
                      RC_ARG(sq->w), RC_ARG(C));
    } else {
        float rad = l1_radius(o);
        r = upload_eta(ctx, sq, o->norm, s, e) ||
            RC_LAUNCH_EACH(ctx, FILE_SQ, "square_lp_coef", 1, (size_t[]){(size_t)n}, e,
                           RC_ARG(sq->x), RC_ARG(sq->x_best), RC_ARG(sq->ids), RC_ARG(o->key),
                           RC_ARG(iter), RC_ARG(sq->eta), RC_ARG(s), RC_ARG(o->eps), RC_ARG(l1),
                           RC_ARG(sq->coef), RC_ARG(n), RC_ARG(sq->c), RC_ARG(sq->h),
                           RC_ARG(sq->w)) ||
            RC_LAUNCH(ctx, FILE_SQ, "square_lp_step", 1, &items, e, RC_ARG(sq->x),
                      RC_ARG(sq->x_best), RC_ARG(sq->ids), RC_ARG(o->key), RC_ARG(iter),
                      RC_ARG(sq->eta), RC_ARG(s), RC_ARG(sq->coef), RC_ARG(sq->delta), RC_ARG(n),
                      RC_ARG(sq->c), RC_ARG(sq->h), RC_ARG(sq->w), RC_ARG(C)) ||
            (l1 ? rc_attack_l1_project_point(ctx, n, d, sq->x, sq->delta, rad, &sq->scratch, in, e)
                : RC_LAUNCH_EACH(ctx, FILE_SQ, "square_l2_finish", 1, (size_t[]){(size_t)n}, e,
                                 RC_ARG(sq->x), RC_ARG(sq->delta), RC_ARG(o->eps), RC_ARG(in),
                                 RC_ARG(n), RC_ARG(d)));
    }
    return r || query(ctx, sq, m, n, e);
}

/* Rows idx[0..n) of buf (row 32-bit words each) to its front, through the scratch. */
static int gather(rc_ctx *ctx, rc_square *sq, cl_mem buf, int row, int n, rc_err *e) {
    size_t gn = (size_t)n;
    return RC_LAUNCH(ctx, FILE_SQ, "square_gather", 1, &gn, e, RC_ARG(buf), RC_ARG(sq->idx),
                     RC_ARG(sq->scratch.tmp), RC_ARG(n), RC_ARG(row)) ||
           rc_buffer_copy(ctx, sq->scratch.tmp, buf, (size_t)n * row * 4, "square compaction", e);
}

/* Read the live slots' outcomes: fooled points are settled in broken[] and leave the batch.
 * Returns the points still to fool (the slots' order kept), -1 on failure. */
static int settle(rc_ctx *ctx, rc_square *sq, int live, int *slot_id, float *margin, float *correct,
                  int *keep, unsigned char *broken, rc_err *e) {
    if (rc_buffer_read(ctx, sq->margin, 0, (size_t)live * 4, margin, "square margins", e) ||
        rc_buffer_read(ctx, sq->correct, 0, (size_t)live * 4, correct, "square correctness", e))
        return -1;
    int n = 0;
    for (int i = 0; i < live; i++) {
        broken[slot_id[i]] = correct[i] == 0.0f;
        if (margin[i] > 0.0f) keep[n] = i, slot_id[n++] = slot_id[i];
    }
    if (n == live || n == 0) return n;
    const int rows[6] = {sq->d, sq->d, 1, 1, 1, 1};
    cl_mem bufs[6] = {sq->x, sq->x_best, sq->labels, sq->ids, sq->margin, sq->correct};
    if (rc_buffer_write(ctx, sq->idx, 0, (size_t)n * 4, keep, "square gather indices", e))
        return -1;
    for (int k = 0; k < 6; k++)
        if (gather(ctx, sq, bufs[k], rows[k], n, e)) return -1;
    return n;
}

/* Queries after which the fooled points leave the batch: often at first, when most go. */
static int settle_due(int it) { return (it & (it + 1)) == 0 || (it + 1) % 100 == 0; }

int rc_square_run(rc_ctx *ctx, rc_square *sq, rc_model *m, const rc_square_opts *o, int n,
                  unsigned char *broken, rc_err *e) {
    int *slot_id = malloc(sizeof(int) * n), *keep = malloc(sizeof(int) * n);
    float *margin = malloc(sizeof(float) * n), *correct = malloc(sizeof(float) * n);
    int ret = -1;
    if (!slot_id || !keep || !margin || !correct) {
        rc_err_set(e, "Square attack: out of host memory for %d points", n);
        goto out;
    }
    for (int i = 0; i < n; i++) slot_id[i] = i;
    if (rc_square_init(ctx, sq, m, o, n, e)) goto out;
    int live = settle(ctx, sq, n, slot_id, margin, correct, keep, broken, e);
    for (int it = 0; it < o->n_queries && live > 0; it++) {
        if (rc_square_step(ctx, sq, m, o, live, it, e)) {
            rc_err_prefix(e, "Square query %d: ", it);
            goto out;
        }
        if (settle_due(it) || it == o->n_queries - 1)
            live = settle(ctx, sq, live, slot_id, margin, correct, keep, broken, e);
    }
    ret = live < 0 ? -1 : 0;
out:
    free(slot_id), free(keep), free(margin), free(correct);
    return ret;
}
