#include "ramp/pair.h"
#include "ramp/checkpoint.h"
#include "ramp/dataset.h"
#include "ramp/eval.h"
#include "ramp/files.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int rc_pair_choose(const double own_acc[3], rc_norm *q, rc_norm *r) {
    int first = -1, second = -1;
    for (int p = 0; p < 3; p++) {
        if (own_acc[p] < 0) continue;
        if (first < 0 || own_acc[p] < own_acc[first]) {
            second = first;
            first = p;
        } else if (second < 0 || own_acc[p] < own_acc[second]) {
            second = p;
        }
    }
    if (second < 0) return -1;
    *q = (rc_norm)first;
    *r = (rc_norm)second;
    return 0;
}

/* Each given checkpoint's robust accuracy against its own norm (fast protocol, first n test
 * points), one printed line per model; acc[p] < 0 where no checkpoint was given. */
static int measure(rc_ctx *ctx, const rc_config *cfg, const char *const checkpoints[3], int n,
                   double acc[3], rc_err *e) {
    rc_dataset test = {0};
    if (rc_load_split(cfg, 0, 0, &test, e)) return -1;
    int r = -1;
    for (rc_norm p = RC_NORM_LINF; p <= RC_NORM_L1; p++) {
        acc[p] = -1;
        if (!checkpoints[p] || !checkpoints[p][0]) continue;
        int k = rc_config_find_threat(cfg, p);
        if (k < 0) {
            rc_err_set(e, "a %s checkpoint was given but the config has no %s threat model",
                       rc_norm_name(p), rc_norm_name(p));
            goto out;
        }
        rc_model_opts o;
        rc_model m;
        memset(&m, 0, sizeof m);
        rc_eval_report rep;
        if (rc_checkpoint_read_opts(checkpoints[p], &o, e) ||
            rc_model_create(ctx, &m, &o, cfg->data.eval_batch_size, e) ||
            rc_checkpoint_load(ctx, &m, NULL, NULL, checkpoints[p], e) ||
            rc_eval_robust(ctx, &m, &test, n, &cfg->threats[k], 1, RC_PROTOCOL_FAST, cfg->seed,
                           cfg->data.eval_batch_size, rc_progress_mode_for(stdout, 0), &rep, e)) {
            rc_model_free(&m);
            rc_err_prefix(e, "%s-AT model %s: ", rc_norm_name(p), checkpoints[p]);
            goto out;
        }
        acc[p] = rep.acc[0];
        char label[16];
        snprintf(label, sizeof label, "%s-AT", rc_norm_name(p));
        printf("%-8s %-40s clean %6.2f%%  own-norm (%s %g) robust %6.2f%%\n", label,
               checkpoints[p], 100 * rep.clean_acc, rc_norm_name(p), cfg->threats[k].eval_eps,
               100 * rep.acc[0]);
        rc_eval_report_free(&rep);
        rc_model_free(&m);
    }
    r = 0;
out:
    rc_dataset_free(&test);
    return r;
}

/* Measure, choose and say which pair and why. */
static int choose(rc_ctx *ctx, const rc_config *cfg, const char *const checkpoints[3], int n,
                  rc_norm *q, rc_norm *r, rc_err *e) {
    double acc[3];
    if (measure(ctx, cfg, checkpoints, n, acc, e)) return -1;
    if (rc_pair_choose(acc, q, r))
        return rc_err_set(e, "pair: give checkpoints for at least two norms");
    printf("key tradeoff pair: q = %s (lowest own-norm robustness: fine-tune its model), r = %s\n",
           rc_norm_name(*q), rc_norm_name(*r));
    fflush(stdout);
    return 0;
}

/* The fine-tuning run's own directory, never the l_q-AT run's (whose model it starts from):
 * runs/NAME for the written config NAME.yaml, or runs/NAME-2, -3, ... where that exists. */
static int fresh_dir(const char *write_path, char *out, size_t cap, rc_err *e) {
    const char *slash = strrchr(write_path, '/'), *base = slash ? slash + 1 : write_path;
    const char *dot = strrchr(base, '.');
    int len = dot && dot > base && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml"))
                  ? (int)(dot - base)
                  : (int)strlen(base);
    for (int k = 1; k <= 100; k++) {
        if (k == 1)
            snprintf(out, cap, "runs/%.*s", len, base);
        else
            snprintf(out, cap, "runs/%.*s-%d", len, base, k);
        struct stat st;
        if (stat(out, &st) != 0 && errno == ENOENT) return 0;
    }
    return rc_err_set(e, "pair --write %s: runs/%.*s and 99 numbered variants exist; choose "
                         "another name", write_path, len, base);
}

int rc_pair_run(rc_ctx *ctx, const rc_config *cfg, const char *const checkpoints[3], int n,
                const char *write_path, rc_err *e) {
    rc_norm q, rr;
    if (choose(ctx, cfg, checkpoints, n, &q, &rr, e)) return -1;
    if (!write_path) return 0;
    rc_config out = *cfg;
    out.method = RC_METHOD_RAMP;
    out.ramp.pair[0] = q, out.ramp.pair[1] = rr;
    memset(out.ramp.at_checkpoints, 0, sizeof out.ramp.at_checkpoints);
    snprintf(out.init, sizeof out.init, "%s", checkpoints[q]);
    if (fresh_dir(write_path, out.output.dir, sizeof out.output.dir, e)) return -1;
    rc_atomic_file a;
    if (rc_atomic_begin(&a, write_path, e)) return -1;
    rc_config_print(a.f, &out);
    if (rc_atomic_commit(&a, e)) return -1;
    printf("fine-tuning config written to %s (its run goes to %s)\n", write_path, out.output.dir);
    return 0;
}

int rc_pair_resolve(rc_ctx *ctx, rc_config *cfg, rc_err *e) {
    if (cfg->method != RC_METHOD_RAMP || cfg->ramp.pair[0] >= 0) return 0;
    const char *ck[3];
    for (int p = 0; p < 3; p++) ck[p] = cfg->ramp.at_checkpoints[p];
    printf("ramp-cl: ramp.pair: auto: measuring the l_p-AT models on the first %d test points\n",
           cfg->eval.n);
    rc_norm q, r;
    if (choose(ctx, cfg, ck, cfg->eval.n, &q, &r, e)) return rc_err_prefix(e, "ramp.pair: auto: ");
    snprintf(cfg->init, sizeof cfg->init, "%s", ck[q]);
    cfg->ramp.pair[0] = q, cfg->ramp.pair[1] = r; /* the run's config.yaml records the decision */
    memset(cfg->ramp.at_checkpoints, 0, sizeof cfg->ramp.at_checkpoints);
    return 0;
}
