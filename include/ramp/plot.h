/* `ramp-cl plot RUN_DIR... [-o OUT.svg]`: the training curves of one or several runs and the
 * bars of their final evaluations, in one self-contained SVG (and a PNG beside it where
 * rsvg-convert is on PATH), so that runs can be compared by looking.
 *
 * Panels, one colour per run: training loss; train and clean test accuracy; the per-norm and
 * union accuracy of the in-training evaluations; learning rate; the mean gradient-projection
 * cosine; seconds per epoch; and grouped bars of clean, per-norm and union accuracy from
 * eval-full.json, or eval-fast.json where there is no full one, each bar with its value. */
#ifndef RAMP_PLOT_H
#define RAMP_PLOT_H

#include "ramp/error.h"

#include <stdio.h>

/* Read the n run directories and write the plot to `out`, atomically; out NULL: DIR/plot.svg for
 * one run, runs-plot.svg in the working directory for several. The paths written, and notes
 * (metrics.jsonl holding several appended trainings, no PNG converter), go to `msg`. */
int rc_plot_runs(const char *const *dirs, int n, const char *out, FILE *msg, rc_err *e);

#endif
