/* Robust evaluation: clean accuracy, robust accuracy per norm and union accuracy (a point counts
 * only if it is correct clean and survives every norm), spec section 9.
 *   fast: one APGD-CE of 100 iterations per norm, no random start (l_1 sparsity 0.2).
 *   full: the E-AT protocol: APGD-CE then APGD-T (targets: the 2nd.. largest clean logits), each
 *         only on points still robust; l_inf and l_2 one run with a random start and 9 targets;
 *         l_1 5 restarts and 5 targets with the 3eps/2eps/eps schedule (30/30/40 iterations). */
#ifndef RAMP_EVAL_H
#define RAMP_EVAL_H

#include "ramp/config.h"
#include "ramp/dataset.h"
#include "ramp/model.h"
#include "ramp/progress.h"

#include <stdio.h>

typedef enum rc_protocol { RC_PROTOCOL_FAST, RC_PROTOCOL_FULL } rc_protocol;

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
    uint64_t seed;
} rc_eval_report;

/* Evaluate model m on the first n points of `test` against the threat models (their eval_eps),
 * in batches of at most `batch`, showing progress on stdout as `progress` says. */
int rc_eval_robust(rc_ctx *ctx, rc_model *m, const rc_dataset *test, int n,
                   const rc_threat *threats, int n_threats, rc_protocol protocol, uint64_t seed,
                   int batch, rc_progress_mode progress, rc_eval_report *r, rc_err *e);
void rc_eval_report_free(rc_eval_report *r);

/* The paper's table: Clean, one column per norm, Union (percent). */
void rc_eval_print_table(FILE *f, const rc_eval_report *r);
/* Settings, summary and per-point outcomes as JSON, written atomically. */
int rc_eval_write_json(const rc_eval_report *r, const char *checkpoint, const char *path,
                       rc_err *e);

#endif
