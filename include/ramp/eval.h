/* Robust evaluation: clean accuracy, robust accuracy per norm and union accuracy (a point counts
 * only if it is correct clean and survives every norm), as RAMP's and E-AT's eval.py.
 *   fast: one APGD-CE of 100 iterations per norm, no random start (l_1 sparsity 0.2): an upper
 *         bound on robust accuracy.
 *   full: the E-AT protocol: APGD-CE then APGD-T (targets: the 2nd.. largest clean logits), each
 *         only on points still robust; l_inf and l_2 one run with a random start and 9 targets;
 *         l_1 5 restarts and 5 targets with the 3eps/2eps/eps schedule (30/30/40 iterations).
 *   standard: AutoAttack's standard version (fra31/auto-attack, autoattack.py): full, then
 *         FAB-T (9 targets, 100 iterations, ramp/fab.h) and Square (5000 queries, ramp/square.h),
 *         each on the points still robust. */
#ifndef RAMP_EVAL_H
#define RAMP_EVAL_H

#include "ramp/config.h"
#include "ramp/dataset.h"
#include "ramp/model.h"
#include "ramp/progress.h"

#include <stdio.h>

typedef enum rc_protocol { RC_PROTOCOL_FAST, RC_PROTOCOL_FULL, RC_PROTOCOL_STANDARD } rc_protocol;

/* "fast", "full", "standard" (the names eval.final_protocol and --protocol take). */
const char *rc_protocol_name(rc_protocol p);
/* The protocol called `s`; -1 for an unknown name. */
int rc_protocol_from_name(const char *s, rc_protocol *out);

/* The attacks of the protocols, in the order they run on a norm's still-robust points. */
typedef enum rc_eval_attack {
    RC_ATTACK_APGD_CE,
    RC_ATTACK_APGD_T,
    RC_ATTACK_FAB_T,
    RC_ATTACK_SQUARE
} rc_eval_attack;
#define RC_EVAL_ATTACKS 4
/* "apgd-ce", "apgd-t", "fab-t", "square" (AutoAttack's names) */
const char *rc_eval_attack_name(rc_eval_attack a);
/* How many of the attacks a protocol runs: fast 1, full 2, standard 4. */
int rc_eval_attack_count(rc_protocol p);

typedef struct rc_eval_report {
    rc_protocol protocol;
    int n; /* points: the first n of the test set */
    int n_norms;
    rc_norm norms[RC_MAX_THREATS];
    double eps[RC_MAX_THREATS];
    unsigned char *clean;                   /* [n]: correct on the clean input */
    unsigned char *robust[RC_MAX_THREATS];  /* [n]: correct clean and after this norm's attacks */
    double clean_acc, acc[RC_MAX_THREATS], union_acc;
    double seconds, norm_seconds[RC_MAX_THREATS];
    /* per norm and attack: the points it broke (robust until it ran) and its seconds */
    int broken_by[RC_MAX_THREATS][RC_EVAL_ATTACKS];
    double attack_seconds[RC_MAX_THREATS][RC_EVAL_ATTACKS];
    uint64_t seed;
} rc_eval_report;

/* Evaluate model m on the first n points of `test` against the threat models (their eval_eps),
 * in batches of at most `batch`, showing progress on stdout as `progress` says. The batches are
 * dealt to the processes of ctx->dist in turn (every one must call it) and their outcomes merged:
 * the report is the one of one process. */
int rc_eval_robust(rc_ctx *ctx, rc_model *m, const rc_dataset *test, int n,
                   const rc_threat *threats, int n_threats, rc_protocol protocol, uint64_t seed,
                   int batch, rc_progress_mode progress, rc_eval_report *r, rc_err *e);
void rc_eval_report_free(rc_eval_report *r);

/* The paper's table: Clean, one column per norm, Union (percent), then what each attack broke
 * per norm; the fast protocol's table says that it is an upper bound. */
void rc_eval_print_table(FILE *f, const rc_eval_report *r);
/* Settings, summary and per-point outcomes as JSON, written atomically. */
int rc_eval_write_json(const rc_eval_report *r, const char *checkpoint, const char *path,
                       rc_err *e);

/* The config's threat models in the paper's column order: l_inf, l_2, l_1. Returns how many. */
int rc_eval_ordered_threats(const rc_config *cfg, rc_threat *out);

/* Robust evaluation of model m (loaded from `checkpoint`, named in the messages) with the
 * config's threat models and `protocol` on the first n points of `test` (all of them where
 * there are fewer): the table on stdout (after the fast protocol's, the command for the others),
 * the report in the run directory as rc_run_report_path names it (eval-<protocol>.json for the
 * run's own model). */
int rc_eval_and_report(rc_ctx *ctx, rc_model *m, const rc_config *cfg, const rc_dataset *test,
                       const char *checkpoint, rc_protocol protocol, int n, rc_progress_mode show,
                       rc_err *e);

/* `ramp-cl eval`: load `checkpoint` (default: the run directory's model.safetensors), evaluate it
 * with `protocol` on the first n test points (n <= 0: eval.final_n; more than the test set has is
 * an error), print the table and write the report into the run directory. */
int rc_eval_run(rc_ctx *ctx, const rc_config *cfg, const char *checkpoint, rc_protocol protocol,
                int n, rc_progress_mode show, rc_err *e);

/* ---- clean accuracy -------------------------------------------------------------------------- */

/* Device buffers of one batch: labels and per-sample loss/correctness, plus running sums. The
 * training loop measures its batches with them too. */
typedef struct rc_batch_io {
    cl_mem labels, loss, correct, stats; /* stats: loss sum, correct, count */
    float *x;
    int32_t *y;
} rc_batch_io;

/* For batches of up to m->max_batch. */
int rc_batch_io_alloc(rc_ctx *ctx, rc_batch_io *b, const rc_model *m, rc_err *e);
void rc_batch_io_free(rc_batch_io *b);
/* The first n images (b->x) into the model's input, their labels (b->y) into b->labels. */
int rc_batch_io_upload(rc_ctx *ctx, rc_model *m, rc_batch_io *b, uint32_t n, rc_err *e);
/* Add the batch's per-sample loss and correctness to the running sums. */
int rc_batch_io_accumulate(rc_ctx *ctx, rc_batch_io *b, int n, rc_err *e);
/* Mean loss and accuracy of the running sums (0 before any sample), summed over the processes
 * of `over` (every one must call it; NULL: this process's own). */
struct rc_dist;
int rc_batch_io_read_stats(rc_ctx *ctx, rc_batch_io *b, const struct rc_dist *over, double *loss,
                           double *acc, rc_err *e);

/* Clean accuracy (eval mode) on the first n points of d, in batches of at most m->max_batch,
 * the points split across the processes of ctx->dist. The device accumulates the counts; the
 * host reads them once. */
int rc_eval_clean(rc_ctx *ctx, rc_model *m, const rc_dataset *d, uint32_t n, double *acc,
                  double *loss, rc_err *e);

#endif
