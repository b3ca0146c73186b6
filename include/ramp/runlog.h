/* A run directory's records read back for `ramp-cl plot`: the per-epoch lines of metrics.jsonl
 * (src/train/train.c writes them) and the final evaluation, eval-full.json or else eval-fast.json
 * (src/train/eval.c writes them).
 *
 * Reading is strict about syntax (a malformed line fails with PATH:LINE:COLUMN) and lenient
 * about content: fields may be missing or null (an epoch without a clean evaluation), numbers
 * may be non-finite (a diverged run: train.c prints them as nan or inf), and unknown fields are
 * skipped, so that files from older and newer versions still plot. */
#ifndef RAMP_RUNLOG_H
#define RAMP_RUNLOG_H

#include "ramp/config.h"
#include "ramp/error.h"

#include <stddef.h>

/* The numbers of one metrics.jsonl line that the plot draws. The per-norm accuracies of the
 * in-training evaluation are RC_LOG_NORM_ACC + rc_norm (keys linf_acc, l2_acc, l1_acc). */
enum {
    RC_LOG_TRAIN_LOSS,
    RC_LOG_TRAIN_ACC,
    RC_LOG_CLEAN_ACC,
    RC_LOG_LR,
    RC_LOG_EPOCH_TIME,
    RC_LOG_EVAL_N,
    RC_LOG_NORM_ACC,
    RC_LOG_UNION_ACC = RC_LOG_NORM_ACC + RC_MAX_THREATS,
    RC_LOG_GP_COS_MEAN, /* the mean of the gp_cos array (one cosine per model tensor) */
    RC_LOG_FIELDS
};

/* The key of a field in metrics.jsonl ("train_loss"; "gp_cos" for RC_LOG_GP_COS_MEAN). */
const char *rc_log_field_key(int field);

typedef struct rc_log_epoch {
    int epoch;                         /* from 1 */
    double value[RC_LOG_FIELDS];       /* may be NaN or infinite */
    unsigned char has[RC_LOG_FIELDS];  /* 0 where the field was missing or null */
} rc_log_epoch;

typedef struct rc_log_norm {
    char name[16]; /* "linf" */
    double eps, acc;
} rc_log_norm;

/* The final evaluation's summary; present is 0 where the run has no eval file. Accuracies are
 * fractions; NaN where the file lacks them. */
typedef struct rc_log_eval {
    int present;
    char file[24]; /* "eval-standard.json", "eval-full.json" or "eval-fast.json" */
    char protocol[16];
    long n; /* test points; 0 if not given */
    double clean_acc, union_acc;
    int n_norms;
    rc_log_norm norms[RC_MAX_THREATS]; /* in the file's order */
} rc_log_eval;

typedef struct rc_run_log {
    char *dir;
    int has_metrics;          /* metrics.jsonl exists (it may hold no line yet) */
    rc_log_epoch *epochs;     /* in file order, of the last training run in the file */
    size_t n_epochs;
    /* A second training into the same directory appends to metrics.jsonl: the epochs start
     * again at 1 or lower. Only the last run is kept; these say what was dropped. */
    int n_runs_in_file;
    long first_line; /* the line the kept epochs start at */
    rc_log_eval eval;
} rc_run_log;

/* Read run directory `dir`: metrics.jsonl and the final evaluation. A directory holding neither
 * is an error, as is a file that is not valid JSON in the shape the writers give it. */
int rc_run_log_load(rc_run_log *r, const char *dir, rc_err *e);
void rc_run_log_free(rc_run_log *r);

#endif
