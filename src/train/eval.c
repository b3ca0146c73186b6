/* Evaluation (see ramp/eval.h): robust, clean, and the eval command. In the robust one the host
 * keeps the batch's images and chooses which points each attack still has to run on (reading
 * back one flag per point after each attack run); the attacks themselves run on the device. */
#include "ramp/eval.h"
#include "ramp/dist.h"
#include "ramp/files.h"
#include "ramp/json.h"
#include "ramp/apgd.h"
#include "ramp/checkpoint.h"
#include "ramp/fab.h"
#include "ramp/square.h"
#include "ramp/clock.h"
#include "ramp/elementwise.h"
#include "ramp/launch.h"
#include "ramp/loss.h"
#include "ramp/rundir.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EVAL_ITERS 100
/* AutoAttack's standard version (autoattack.py, set_version): FAB-T with 9 target classes and
 * 100 iterations, Square with 5000 queries and p_init 0.8 */
#define FAB_TARGETS 9
#define SQUARE_QUERIES 5000
#define SQUARE_P_INIT 0.8f

static const char *const PROTOCOL_NAMES[] = {"fast", "full", "standard"};
static const char *const ATTACK_NAMES[RC_EVAL_ATTACKS] = {"apgd-ce", "apgd-t", "fab-t", "square"};

const char *rc_protocol_name(rc_protocol p) {
    return (unsigned)p < sizeof PROTOCOL_NAMES / sizeof *PROTOCOL_NAMES ? PROTOCOL_NAMES[p]
                                                                        : "invalid";
}

int rc_protocol_from_name(const char *s, rc_protocol *out) {
    for (size_t i = 0; i < sizeof PROTOCOL_NAMES / sizeof *PROTOCOL_NAMES; i++)
        if (!strcmp(s, PROTOCOL_NAMES[i])) {
            *out = (rc_protocol)i;
            return 0;
        }
    return -1;
}

const char *rc_eval_attack_name(rc_eval_attack a) {
    return (unsigned)a < RC_EVAL_ATTACKS ? ATTACK_NAMES[a] : "invalid";
}

int rc_eval_attack_count(rc_protocol p) {
    return p == RC_PROTOCOL_FAST ? 1 : p == RC_PROTOCOL_FULL ? 2 : RC_EVAL_ATTACKS;
}

typedef struct eval_batch {
    int n, d, k;
    float *x;      /* [n][d] clean images */
    int32_t *y;    /* [n] labels */
    float *logits; /* [n][k] clean logits, for the targets of APGD-T */
    /* the sub-batch an attack run works on */
    int m;
    int *idx;
    float *xs, *start;
    int32_t *ys, *ts;
    float *flags;
    unsigned char *broken; /* [m]: what an attack run broke */
} eval_batch;

/* The attacks' device state: APGD always, FAB-T and Square for the standard protocol. */
typedef struct eval_attacks {
    rc_apgd a;
    rc_fab fab;
    rc_square sq;
} eval_attacks;

static float normal(rc_rng *r) {
    float u1 = rc_rng_uniform(r), u2 = rc_rng_uniform(r);
    if (u1 < 1e-12f) u1 = 1e-12f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

/* AA's random starts: l_inf x + eps t/||t||_inf with t ~ U[-1,1]^d; l_2 x + eps t/||t||_2 with
 * t ~ N(0, I); clamped to [0,1]. l_1 (largereps) gets delta ~ N(0, I), projected on the device. */
static void random_start(rc_rng *rng, rc_norm norm, float eps, const float *x, float *out, int d) {
    double norm_t = 0;
    for (int j = 0; j < d; j++) {
        float t = norm == RC_NORM_LINF ? 2.0f * rc_rng_uniform(rng) - 1.0f : normal(rng);
        out[j] = t;
        norm_t = norm == RC_NORM_LINF ? fmax(norm_t, fabs(t)) : norm_t + (double)t * t;
    }
    if (norm == RC_NORM_L1) return; /* a raw delta */
    if (norm == RC_NORM_L2) norm_t = sqrt(norm_t);
    float s = (float)(eps / (norm_t + 1e-12));
    for (int j = 0; j < d; j++) {
        float v = x[j] + s * out[j];
        out[j] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
}

/* Gather the points still robust into the sub-batch and upload it. Returns how many. */
static int gather(rc_ctx *ctx, rc_apgd *a, eval_batch *b, const unsigned char *alive,
                  int target_rank, rc_err *e) {
    b->m = 0;
    for (int i = 0; i < b->n; i++) {
        if (!alive[i]) continue;
        int j = b->m++;
        b->idx[j] = i;
        memcpy(b->xs + (size_t)j * b->d, b->x + (size_t)i * b->d, (size_t)b->d * sizeof(float));
        b->ys[j] = b->y[i];
        if (target_rank > 0) {
            /* the class with the (target_rank+1)-th largest clean logit (ties: lower index) */
            const float *z = b->logits + (size_t)i * b->k;
            int order[64];
            for (int c = 0; c < b->k; c++) order[c] = c;
            for (int r = 0; r <= target_rank; r++)
                for (int c = r + 1; c < b->k; c++)
                    if (z[order[c]] > z[order[r]]) {
                        int t = order[r];
                        order[r] = order[c];
                        order[c] = t;
                    }
            b->ts[j] = order[target_rank];
        }
    }
    if (b->m == 0) return 0;
    size_t bytes = (size_t)b->m * b->d * sizeof(float);
    if (rc_buffer_write(ctx, a->x, 0, bytes, b->xs, "evaluation batch", e) ||
        rc_buffer_write(ctx, a->labels, 0, (size_t)b->m * 4, b->ys, "evaluation labels", e) ||
        (target_rank > 0 &&
         rc_buffer_write(ctx, a->targets, 0, (size_t)b->m * 4, b->ts, "evaluation targets", e)))
        return -1;
    return b->m;
}

/* The sub-batch's points in b->broken leave `alive`; returns how many. */
static int mark(eval_batch *b, unsigned char *alive) {
    int k = 0;
    for (int j = 0; j < b->m; j++)
        if (b->broken[j]) alive[b->idx[j]] = 0, k++;
    return k;
}

/* Points whose APGD run found a misclassified iterate are broken; returns how many. */
static int collect(rc_ctx *ctx, rc_apgd *a, eval_batch *b, unsigned char *alive, rc_err *e) {
    if (rc_buffer_read(ctx, a->acc, 0, (size_t)b->m * 4, b->flags, "robust flags", e)) return -1;
    for (int j = 0; j < b->m; j++) b->broken[j] = b->flags[j] == 0.0f;
    return mark(b, alive);
}

/* The gathered sub-batch (in a's buffers) into another attack's: points, labels, targets. */
static int hand_over(rc_ctx *ctx, const rc_apgd *a, const eval_batch *b, cl_mem x,
                     cl_mem labels, cl_mem targets, rc_err *e) {
    const size_t m = (size_t)b->m;
    return rc_buffer_copy(ctx, a->x, x, m * b->d * 4, "evaluation batch", e) ||
           rc_buffer_copy(ctx, a->labels, labels, m * 4, "evaluation labels", e) ||
           (targets && rc_buffer_copy(ctx, a->targets, targets, m * 4, "evaluation targets", e));
}

/* l_1 with AA's largereps: radii 3eps, 2eps, eps over 30/30/40 iterations, each stage starting
 * from the previous stage's best point re-projected onto the next ball. */
static int l1_largereps(rc_ctx *ctx, rc_apgd *a, rc_model *m, eval_batch *b, rc_rng *rng,
                        float eps, rc_attack_loss loss, rc_err *e) {
    int n = b->m, d = b->d;
    size_t total = (size_t)n * d;
    int tot = (int)total;
    for (int i = 0; i < n; i++) random_start(rng, RC_NORM_L1, 0, NULL, b->start + (size_t)i * d, d);
    if (rc_buffer_write(ctx, a->z, 0, total * 4, b->start, "l1 random start", e)) return -1;
    const float radii[3] = {3 * eps, 2 * eps, eps};
    const int iters[3] = {30, 30, EVAL_ITERS - 60};
    for (int s = 0; s < 3; s++) {
        /* delta (in a->z) onto the ball of this stage and the box, then x_start = x + delta */
        if (s > 0 && RC_LAUNCH(ctx, "apgd.cl", "apgd_delta", 1, &total, e, RC_ARG(a->x_best),
                               RC_ARG(a->x), RC_ARG(a->z), RC_ARG(tot)))
            return -1;
        if (rc_attack_l1_project(ctx, n, d, a->x, a->z, radii[s], &a->scratch, e) ||
            rc_add_forward(ctx, total, a->x, a->z, a->x_start, e))
            return -1;
        rc_apgd_opts o = {.norm = RC_NORM_L1, .eps = radii[s], .n_iter = iters[s], .loss = loss,
                          .l1_sparsity_from_start = 1};
        if (rc_apgd_run(ctx, a, m, &o, n, 1, e)) return -1;
    }
    return 0;
}

/* Standard protocol after APGD: FAB-T over the 2nd.. largest clean logits as targets, then
 * Square, each on the points still robust; broken_by and secs per attack as attack_norm. */
static int attack_standard(rc_ctx *ctx, eval_attacks *s, rc_model *m, eval_batch *b, rc_rng *rng,
                           rc_norm norm, float eps, unsigned char *alive, int *broken_by,
                           double *secs, rc_err *e) {
    double t0 = rc_now_s();
    int n_targets = FAB_TARGETS < b->k - 1 ? FAB_TARGETS : b->k - 1;
    rc_fab_opts fo = {.norm = norm, .eps = eps, .n_iter = EVAL_ITERS};
    for (int target_rank = 1; target_rank <= n_targets; target_rank++) {
        int r = gather(ctx, &s->a, b, alive, target_rank, e);
        if (r < 0) return -1;
        if (r == 0) break;
        if (hand_over(ctx, &s->a, b, s->fab.x, s->fab.labels, s->fab.targets, e) ||
            rc_fab_run(ctx, &s->fab, m, &fo, b->m, b->broken, e))
            return rc_err_prefix(e, "FAB-T (target %d): ", target_rank);
        broken_by[RC_ATTACK_FAB_T] += mark(b, alive);
    }
    double t1 = rc_now_s();
    secs[RC_ATTACK_FAB_T] += t1 - t0;
    int r = gather(ctx, &s->a, b, alive, 0, e);
    if (r <= 0) return r;
    rc_square_opts so = {.norm = norm, .eps = eps, .n_queries = SQUARE_QUERIES,
                         .p_init = SQUARE_P_INIT, .key = rc_rng_u64(rng)};
    if (hand_over(ctx, &s->a, b, s->sq.x, s->sq.labels, NULL, e) ||
        rc_square_run(ctx, &s->sq, m, &so, b->m, b->broken, e))
        return rc_err_prefix(e, "Square: ");
    broken_by[RC_ATTACK_SQUARE] += mark(b, alive);
    secs[RC_ATTACK_SQUARE] += rc_now_s() - t1;
    return 0;
}

/* One norm's attacks of the protocol (with their restarts or targets) on the still-robust
 * points; what each attack broke and its seconds are added to broken_by and secs. */
static int attack_norm(rc_ctx *ctx, eval_attacks *s, rc_model *m, eval_batch *b, rc_rng *rng,
                       rc_norm norm, float eps, rc_protocol protocol, unsigned char *alive,
                       int *broken_by, double *secs, rc_err *e) {
    rc_apgd *a = &s->a;
    if (protocol == RC_PROTOCOL_FAST) {
        double t0 = rc_now_s();
        rc_apgd_opts o = {.norm = norm, .eps = eps, .n_iter = EVAL_ITERS, .loss = RC_LOSS_CE};
        int r = gather(ctx, a, b, alive, 0, e);
        if (r <= 0) return r;
        if (rc_apgd_run(ctx, a, m, &o, b->m, 0, e) || (r = collect(ctx, a, b, alive, e)) < 0)
            return -1;
        broken_by[RC_ATTACK_APGD_CE] += r;
        secs[RC_ATTACK_APGD_CE] += rc_now_s() - t0;
        return 0;
    }
    /* full: APGD-CE (l_1: 5 restarts), then APGD-T over 9 (l_1: 5) target classes */
    int l1 = norm == RC_NORM_L1;
    int ce_runs = l1 ? 5 : 1, n_targets = l1 ? 5 : 9;
    if (n_targets > b->k - 1) n_targets = b->k - 1;
    for (int run = 0; run < ce_runs + n_targets; run++) {
        int target_rank = run < ce_runs ? 0 : run - ce_runs + 1;
        rc_eval_attack which = target_rank ? RC_ATTACK_APGD_T : RC_ATTACK_APGD_CE;
        rc_attack_loss loss = target_rank ? RC_LOSS_DLR_TARGETED : RC_LOSS_CE;
        double ts = rc_now_s();
        int r = gather(ctx, a, b, alive, target_rank, e);
        if (r < 0) return -1;
        if (r == 0) break;
        if (l1) {
            if (l1_largereps(ctx, a, m, b, rng, eps, loss, e)) return -1;
        } else {
            for (int i = 0; i < b->m; i++)
                random_start(rng, norm, eps, b->xs + (size_t)i * b->d,
                             b->start + (size_t)i * b->d, b->d);
            rc_apgd_opts o = {.norm = norm, .eps = eps, .n_iter = EVAL_ITERS, .loss = loss};
            if (rc_buffer_write(ctx, a->x_start, 0, (size_t)b->m * b->d * 4, b->start,
                                "random start", e) ||
                rc_apgd_run(ctx, a, m, &o, b->m, 1, e))
                return -1;
        }
        if ((r = collect(ctx, a, b, alive, e)) < 0) return -1;
        broken_by[which] += r;
        secs[which] += rc_now_s() - ts;
    }
    if (protocol != RC_PROTOCOL_STANDARD) return 0;
    return attack_standard(ctx, s, m, b, rng, norm, eps, alive, broken_by, secs, e);
}

int rc_eval_robust(rc_ctx *ctx, rc_model *m, const rc_dataset *test, int n,
                   const rc_threat *threats, int n_threats, rc_protocol protocol, uint64_t seed,
                   int batch, rc_progress_mode progress, rc_eval_report *r, rc_err *e) {
    memset(r, 0, sizeof *r);
    if (n <= 0 || n > (int)test->n) n = (int)test->n;
    if (batch > m->max_batch) batch = m->max_batch;
    r->protocol = protocol, r->n = n, r->n_norms = n_threats, r->seed = seed;
    int d = (int)(test->c * test->h * test->w), k = m->opts.num_classes, ret = -1;
    eval_batch b = {.d = d, .k = k};
    eval_attacks s;
    memset(&s, 0, sizeof s);
    rc_apgd *a = &s.a;
    size_t bd = (size_t)batch * d;
    b.x = malloc(bd * 4), b.xs = malloc(bd * 4), b.start = malloc(bd * 4);
    b.y = malloc((size_t)batch * 4), b.ys = malloc((size_t)batch * 4);
    b.ts = malloc((size_t)batch * 4), b.idx = malloc((size_t)batch * sizeof(int));
    b.flags = malloc((size_t)batch * 4), b.logits = malloc((size_t)batch * k * 4);
    b.broken = malloc((size_t)batch);
    r->clean = calloc((size_t)n, 1);
    for (int t = 0; t < n_threats; t++) {
        r->norms[t] = threats[t].norm;
        r->eps[t] = threats[t].eval_eps;
        r->robust[t] = calloc((size_t)n, 1);
        if (!r->robust[t]) goto oom;
    }
    if (!b.x || !b.xs || !b.start || !b.y || !b.ys || !b.ts || !b.idx || !b.flags || !b.logits ||
        !b.broken || !r->clean)
        goto oom;
    if (k > 64) {
        rc_err_set(e, "evaluation supports at most 64 classes, the model has %d", k);
        goto out;
    }
    if (rc_apgd_alloc(ctx, a, batch, d, EVAL_ITERS, e) ||
        (protocol == RC_PROTOCOL_STANDARD &&
         (rc_fab_alloc(ctx, &s.fab, batch, d, e) ||
          rc_square_alloc(ctx, &s.sq, batch, (int)test->c, (int)test->h, (int)test->w, e))))
        goto out;
    rc_rng rng;
    const rc_dist *dist = ctx->dist;
    int done = 0, done_union = 0; /* this process's points so far, for the progress line */
    double t0 = rc_now_s();
    rc_progress bar;
    char what[64];
    snprintf(what, sizeof what, "evaluation (%s)", rc_protocol_name(protocol));
    rc_progress_begin(&bar, progress, stdout, what, "points", 0, (uint64_t)n);
    for (int start = 0, bi = 0; start < n; start += batch, bi++) {
        /* batch bi is process bi mod size's, with a random stream of its own: the outcomes do
         * not depend on how many processes share the points (ramp/dist.h) */
        if (bi % rc_dist_size(dist) != rc_dist_rank(dist)) continue;
        rc_rng_seed(&rng, seed, 0x6576616c /* "eval" */ + (uint64_t)bi);
        int cnt = n - start < batch ? n - start : batch;
        b.n = cnt;
        if (rc_dataset_slice(test, (uint32_t)start, (uint32_t)cnt, b.x, b.y)) {
            rc_err_set(e, "evaluation: points %d..%d outside %s", start, start + cnt, test->name);
            goto out;
        }
        /* clean predictions and logits */
        unsigned char *clean = r->clean + start;
        for (int i = 0; i < cnt; i++) clean[i] = 1;
        if (gather(ctx, a, &b, clean, 0, e) < 0 ||
            rc_apgd_loss_grad(ctx, a, m, RC_LOSS_CE, a->x, cnt, 0, a->g, e) ||
            rc_buffer_read(ctx, a->correct, 0, (size_t)cnt * 4, b.flags, "clean predictions", e) ||
            rc_buffer_read(ctx, rc_model_logits(m), 0, (size_t)cnt * k * 4, b.logits,
                           "clean logits", e))
            goto out;
        for (int i = 0; i < cnt; i++) clean[i] = b.flags[i] != 0.0f;
        for (int t = 0; t < n_threats; t++) {
            double ts = rc_now_s();
            unsigned char *alive = r->robust[t] + start;
            memcpy(alive, clean, (size_t)cnt);
            if (attack_norm(ctx, &s, m, &b, &rng, threats[t].norm, (float)threats[t].eval_eps,
                            protocol, alive, r->broken_by[t], r->attack_seconds[t], e)) {
                rc_err_prefix(e, "evaluating %s at eps %g, points %d..%d: ",
                              rc_norm_name(threats[t].norm), threats[t].eval_eps, start,
                              start + cnt);
                goto out;
            }
            r->norm_seconds[t] += rc_now_s() - ts;
        }
        for (int i = start; i < start + cnt; i++) {
            int u = r->clean[i];
            for (int t = 0; t < n_threats; t++) u &= r->robust[t][i];
            done_union += u;
        }
        done += cnt;
        if (rc_progress_due(&bar)) {
            char fig[64];
            snprintf(fig, sizeof fig, "union %.2f%% so far", 100.0 * done_union / done);
            rc_progress_update(&bar, (uint64_t)(start + cnt), fig);
        }
    }
    rc_progress_end(&bar);
    /* every process's outcomes (the others' points are 0 here), what each attack broke (counts
     * summed as doubles: exact) and its seconds */
    double counts[RC_MAX_THREATS * RC_EVAL_ATTACKS];
    const size_t n_counts = (size_t)n_threats * RC_EVAL_ATTACKS;
    for (size_t i = 0; i < n_counts; i++)
        counts[i] = r->broken_by[i / RC_EVAL_ATTACKS][i % RC_EVAL_ATTACKS];
    if (rc_dist_max_u8(dist, r->clean, (size_t)n, e) ||
        rc_dist_sum_f64(dist, r->norm_seconds, (size_t)n_threats, e) ||
        rc_dist_sum_f64(dist, counts, n_counts, e) ||
        rc_dist_sum_f64(dist, &r->attack_seconds[0][0], n_counts, e))
        goto out;
    for (size_t i = 0; i < n_counts; i++)
        r->broken_by[i / RC_EVAL_ATTACKS][i % RC_EVAL_ATTACKS] = (int)counts[i];
    for (int t = 0; t < n_threats; t++)
        if (rc_dist_max_u8(dist, r->robust[t], (size_t)n, e)) goto out;
    int nc = 0, nu = 0, nr[RC_MAX_THREATS] = {0};
    for (int i = 0; i < n; i++) {
        int u = r->clean[i];
        nc += r->clean[i];
        for (int t = 0; t < n_threats; t++) {
            nr[t] += r->robust[t][i];
            u &= r->robust[t][i];
        }
        nu += u;
    }
    r->clean_acc = (double)nc / n;
    r->union_acc = (double)nu / n;
    for (int t = 0; t < n_threats; t++) r->acc[t] = (double)nr[t] / n;
    r->seconds = rc_now_s() - t0;
    ret = 0;
    goto out;
oom:
    rc_err_set(e, "out of host memory for evaluation batches of %d", batch);
out:
    rc_apgd_free(a);
    rc_fab_free(&s.fab);
    rc_square_free(&s.sq);
    free(b.x), free(b.xs), free(b.start), free(b.y), free(b.ys), free(b.ts), free(b.idx);
    free(b.flags), free(b.logits), free(b.broken);
    if (ret) rc_eval_report_free(r);
    return ret;
}

void rc_eval_report_free(rc_eval_report *r) {
    free(r->clean);
    for (int t = 0; t < RC_MAX_THREATS; t++) free(r->robust[t]);
    memset(r, 0, sizeof *r);
}

void rc_eval_print_table(FILE *f, const rc_eval_report *r) {
    fprintf(f, "%-8s", "Clean");
    for (int t = 0; t < r->n_norms; t++) {
        char h[32];
        snprintf(h, sizeof h, "%s %g", rc_norm_name(r->norms[t]), r->eps[t]);
        fprintf(f, " %12s", h);
    }
    fprintf(f, " %8s\n", "Union");
    fprintf(f, "%7.2f%%", 100 * r->clean_acc);
    for (int t = 0; t < r->n_norms; t++) fprintf(f, " %11.2f%%", 100 * r->acc[t]);
    fprintf(f, " %7.2f%%\n", 100 * r->union_acc);
    /* points broken by each attack, under its norm's column */
    for (int k = 0; k < rc_eval_attack_count(r->protocol); k++) {
        fprintf(f, "%-8s", rc_eval_attack_name((rc_eval_attack)k));
        for (int t = 0; t < r->n_norms; t++) fprintf(f, " %12d", r->broken_by[t][k]);
        fprintf(f, "\n");
    }
    if (r->protocol == RC_PROTOCOL_FAST)
        fprintf(f, "(fast protocol: APGD-CE only, an upper bound on robust accuracy; first %d "
                   "test points, %.1f s)\n", r->n, r->seconds);
    else
        fprintf(f, "(%s protocol, first %d test points, %.1f s; rows above: points each attack "
                   "broke)\n", rc_protocol_name(r->protocol), r->n, r->seconds);
}

/* The per-point outcomes of one column as a string of '0' and '1'. */
static void put_points(rc_json_buf *b, const unsigned char *ok, int n) {
    char *bits = malloc((size_t)n + 1);
    if (!bits) {
        b->oom = 1;
        return;
    }
    for (int i = 0; i < n; i++) bits[i] = ok[i] ? '1' : '0';
    bits[n] = '\0';
    rc_json_put_string(b, bits);
    free(bits);
}

int rc_eval_write_json(const rc_eval_report *r, const char *checkpoint, const char *path,
                       rc_err *e) {
    rc_json_buf b = {0};
    rc_json_put(&b, "{\n  \"protocol\": ");
    rc_json_put_string(&b, rc_protocol_name(r->protocol));
    rc_json_put(&b, ",\n  \"checkpoint\": ");
    rc_json_put_string(&b, checkpoint ? checkpoint : "");
    rc_json_putf(&b, ",\n  \"n\": %d,\n  \"seed\": %llu,\n  \"iterations\": %d,\n", r->n,
                 (unsigned long long)r->seed, EVAL_ITERS);
    rc_json_putf(&b, "  \"seconds\": %.3f,\n  \"clean_acc\": %.6f,\n  \"union_acc\": %.6f,\n",
                 r->seconds, r->clean_acc, r->union_acc);
    rc_json_put(&b, "  \"norms\": [");
    for (int t = 0; t < r->n_norms; t++) {
        rc_json_put(&b, t ? ",\n    {\"norm\": " : "\n    {\"norm\": ");
        rc_json_put_string(&b, rc_norm_name(r->norms[t]));
        rc_json_putf(&b, ", \"eps\": %.9g, \"robust_acc\": %.6f, \"seconds\": %.3f", r->eps[t],
                     r->acc[t], r->norm_seconds[t]);
        /* per attack: the points it broke (still robust when it ran) and its seconds */
        rc_json_put(&b, ",\n     \"attacks\": {");
        for (int k = 0; k < rc_eval_attack_count(r->protocol); k++) {
            rc_json_put(&b, k ? ", " : "");
            rc_json_put_string(&b, rc_eval_attack_name((rc_eval_attack)k));
            rc_json_putf(&b, ": {\"broken\": %d, \"seconds\": %.3f}", r->broken_by[t][k],
                         r->attack_seconds[t][k]);
        }
        rc_json_put(&b, "}}");
    }
    rc_json_put(&b, "\n  ],\n  \"points\": {\n    \"clean\": ");
    put_points(&b, r->clean, r->n);
    for (int t = 0; t < r->n_norms; t++) {
        rc_json_put(&b, ",\n    ");
        rc_json_put_string(&b, rc_norm_name(r->norms[t]));
        rc_json_put(&b, ": ");
        put_points(&b, r->robust[t], r->n);
    }
    rc_json_put(&b, "\n  }\n}\n");
    if (b.oom) {
        rc_json_buf_free(&b);
        return rc_err_set(e, "%s: out of host memory", path);
    }
    rc_atomic_file a;
    int ret = rc_atomic_begin(&a, path, e);
    if (!ret) {
        rc_atomic_write(&a, b.p, b.len);
        ret = rc_atomic_commit(&a, e);
    }
    rc_json_buf_free(&b);
    return ret;
}

/* ---- clean evaluation and the eval command --------------------------------------------------- */

int rc_batch_io_alloc(rc_ctx *ctx, rc_batch_io *b, const rc_model *m, rc_err *e) {
    size_t n = (size_t)m->max_batch;
    size_t img = (size_t)m->opts.in_channels * m->opts.input_size * m->opts.input_size;
    memset(b, 0, sizeof *b);
    b->x = malloc(n * img * sizeof(float));
    b->y = malloc(n * sizeof(int32_t));
    if (!b->x || !b->y) return rc_err_set(e, "out of host memory for a batch of %zu", n);
    return rc_buffer_create(ctx, n * 4, "labels", &b->labels, e) ||
           rc_buffer_create(ctx, n * 4, "per-sample loss", &b->loss, e) ||
           rc_buffer_create(ctx, n * 4, "per-sample correctness", &b->correct, e) ||
           rc_buffer_create(ctx, 3 * 4, "running statistics", &b->stats, e);
}

void rc_batch_io_free(rc_batch_io *b) {
    cl_mem all[] = {b->labels, b->loss, b->correct, b->stats};
    for (size_t i = 0; i < 4; i++)
        if (all[i]) clReleaseMemObject(all[i]);
    free(b->x);
    free(b->y);
}

int rc_batch_io_upload(rc_ctx *ctx, rc_model *m, rc_batch_io *b, uint32_t n, rc_err *e) {
    size_t img = (size_t)m->opts.in_channels * m->opts.input_size * m->opts.input_size;
    return rc_buffer_write(ctx, rc_model_input(m), 0, n * img * sizeof(float), b->x, "images", e) ||
           rc_buffer_write(ctx, b->labels, 0, n * sizeof(int32_t), b->y, "labels", e);
}

int rc_batch_io_accumulate(rc_ctx *ctx, rc_batch_io *b, int n, rc_err *e) {
    return RC_LAUNCH_EACH(ctx, "loss.cl", "ce_accumulate", 1, (size_t[]){1}, e, RC_ARG(b->loss),
                          RC_ARG(b->correct), RC_ARG(b->stats), RC_ARG(n));
}

int rc_batch_io_read_stats(rc_ctx *ctx, rc_batch_io *b, const rc_dist *over, double *loss,
                           double *acc, rc_err *e) {
    float f[3];
    if (rc_buffer_read(ctx, b->stats, 0, sizeof f, f, "running statistics", e)) return -1;
    double s[3] = {f[0], f[1], f[2]};
    if (rc_dist_sum_f64(over, s, 3, e)) return -1;
    *loss = s[2] > 0 ? s[0] / s[2] : 0;
    *acc = s[2] > 0 ? s[1] / s[2] : 0;
    return 0;
}

int rc_eval_clean(rc_ctx *ctx, rc_model *m, const rc_dataset *d, uint32_t n, double *acc,
                  double *loss, rc_err *e) {
    if (n == 0 || n > d->n) n = d->n;
    rc_batch_io b;
    int r = -1;
    if (rc_batch_io_alloc(ctx, &b, m, e) || rc_fill(ctx, b.stats, 0, 3, 0.0f, e)) goto out;
    uint32_t lo, mine; /* this process's share of the points (ramp/dist.h) */
    rc_dist_slice(ctx->dist, n, &lo, &mine);
    for (uint32_t start = lo; start < lo + mine;) {
        uint32_t left = lo + mine - start;
        uint32_t cnt = left < (uint32_t)m->max_batch ? left : (uint32_t)m->max_batch;
        if (rc_dataset_slice(d, start, cnt, b.x, b.y) != 0) {
            rc_err_set(e, "evaluation: points %u..%u outside %s", start, start + cnt, d->name);
            goto out;
        }
        if (rc_batch_io_upload(ctx, m, &b, cnt, e) || rc_model_forward(ctx, m, 0, (int)cnt, e) ||
            rc_ce_forward_backward(ctx, (int)cnt, m->opts.num_classes, rc_model_logits(m),
                                   b.labels, b.loss, b.correct, NULL, e) ||
            rc_batch_io_accumulate(ctx, &b, (int)cnt, e))
            goto out;
        start += cnt;
    }
    r = rc_batch_io_read_stats(ctx, &b, ctx->dist, loss, acc, e);
out:
    rc_batch_io_free(&b);
    return r;
}

int rc_eval_ordered_threats(const rc_config *cfg, rc_threat *out) {
    int n = 0;
    for (rc_norm p = RC_NORM_LINF; p <= RC_NORM_L1; p++) {
        int k = rc_config_find_threat(cfg, p);
        if (k >= 0) out[n++] = cfg->threats[k];
    }
    return n;
}

/* Robust evaluation of model m as the config says; table on stdout, JSON in the run directory. */
int rc_eval_and_report(rc_ctx *ctx, rc_model *m, const rc_config *cfg, const rc_dataset *test,
                       const char *checkpoint, rc_protocol protocol, int n, rc_progress_mode show,
                       rc_err *e) {
    if (cfg->n_threats == 0)
        return rc_err_set(e, "robust evaluation needs threat_models in the config");
    rc_eval_report r;
    if (n <= 0 || n > (int)test->n) n = (int)test->n; /* what rc_eval_robust evaluates */
    const char *name = rc_protocol_name(protocol);
    printf("ramp-cl: %s evaluation of %s on the first %d test points\n", name, checkpoint, n);
    fflush(stdout);
    rc_threat ordered[RC_MAX_THREATS];
    int n_ordered = rc_eval_ordered_threats(cfg, ordered);
    if (rc_eval_robust(ctx, m, test, n, ordered, n_ordered, protocol, cfg->seed,
                       cfg->data.eval_batch_size, show, &r, e))
        return -1;
    rc_eval_print_table(stdout, &r);
    char path[RC_CONFIG_PATH_MAX + 64];
    if (protocol == RC_PROTOCOL_FAST) { /* the command for the protocols that are not bounds */
        struct stat st;
        snprintf(path, sizeof path, "%s/config.yaml", cfg->output.dir);
        printf("ramp-cl: AutoAttack's standard version (or E-AT's full protocol, --protocol full):"
               "\n  ramp-cl eval %s --checkpoint %s --protocol standard --n %d\n",
               stat(path, &st) == 0 ? path : "CONFIG", checkpoint, n);
    }
    rc_run_report_path(path, sizeof path, cfg->output.dir, checkpoint, name);
    int ret = -1;
    if (rc_dist_rank(ctx->dist) > 0) /* rank 0 writes the report of all */
        ret = 0;
    else if (rc_mkdir_p(cfg->output.dir) != 0)
        rc_err_set(e, "cannot create run directory %s: %s", cfg->output.dir, strerror(errno));
    else
        ret = rc_eval_write_json(&r, checkpoint, path, e);
    if (!ret) printf("ramp-cl: per-point outcomes in %s\n", path);
    rc_eval_report_free(&r);
    return ret ? -1 : 0;
}

int rc_eval_run(rc_ctx *ctx, const rc_config *cfg, const char *checkpoint, rc_protocol protocol,
                int n, rc_progress_mode show, rc_err *e) {
    char path[RC_CONFIG_PATH_MAX + 64];
    if (!checkpoint) {
        snprintf(path, sizeof path, "%s/model.safetensors", cfg->output.dir);
        checkpoint = path;
    }
    rc_model_opts o;
    if (rc_checkpoint_read_opts(checkpoint, &o, e)) return -1;
    rc_dataset test = {0};
    rc_model m;
    memset(&m, 0, sizeof m);
    int r = -1;
    if (rc_load_split(cfg, 0, 0, &test, e)) goto out;
    if (n > (int)test.n) {
        rc_err_set(e, "--n %d: %s has %u points", n, test.name, test.n);
        goto out;
    }
    if ((int)test.c != o.in_channels || (int)test.h != o.input_size) {
        rc_err_set(e, "%s was trained on %dx%dx%d images, %s has %ux%ux%u", checkpoint,
                   o.in_channels, o.input_size, o.input_size, test.name, test.c, test.h, test.w);
        goto out;
    }
    if (show != RC_PROGRESS_QUIET)
        printf("ramp-cl: evaluating %s (%s) on %s, device %s (%s class)\n", checkpoint,
               rc_arch_name(o.arch), test.name, ctx->dev.name, rc_device_class_name(ctx->cls));
    if (rc_model_create(ctx, &m, &o, cfg->data.eval_batch_size, e) ||
        rc_checkpoint_load(ctx, &m, NULL, NULL, checkpoint, e) ||
        rc_eval_and_report(ctx, &m, cfg, &test, checkpoint, protocol,
                           n > 0 ? n : cfg->eval.final_n, show, e))
        goto out;
    r = 0;
out:
    rc_model_free(&m);
    rc_dataset_free(&test);
    return r;
}
