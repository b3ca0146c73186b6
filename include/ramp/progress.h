/* Progress of a long phase (an epoch, an evaluation): on a terminal one bar redrawn in place with
 * rate, ETA and the caller's running figures; otherwise (a pipe, a CI log) one plain line every
 * 10 seconds and at the end; nothing with --quiet. */
#ifndef RAMP_PROGRESS_H
#define RAMP_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef enum { RC_PROGRESS_QUIET, RC_PROGRESS_LINES, RC_PROGRESS_BAR } rc_progress_mode;

typedef struct rc_progress {
    rc_progress_mode mode;
    FILE *out;
    char what[64];       /* e.g. "epoch 2/80" */
    const char *unit;    /* what the rate counts, e.g. "images" */
    uint64_t total;      /* items in the phase */
    uint64_t first;      /* items already done when the phase (re)started: not in the rate */
    double t0, last;     /* start and last drawing (rc_now_s) */
    int drawn;           /* a bar is on the screen */
} rc_progress;

/* The mode for stdout: quiet, else a bar on a terminal and lines elsewhere. */
rc_progress_mode rc_progress_mode_for(FILE *out, int quiet);

void rc_progress_begin(rc_progress *p, rc_progress_mode mode, FILE *out, const char *what,
                       const char *unit, uint64_t first, uint64_t total);
/* Whether an update now would be shown (callers read device figures only then). */
int rc_progress_due(const rc_progress *p);
/* Show `done` of total with `figures` (e.g. "loss 1.2345, accuracy 54.21%") if due. */
void rc_progress_update(rc_progress *p, uint64_t done, const char *figures);
/* Clear the bar (the caller prints the phase's summary line next). */
void rc_progress_end(rc_progress *p);

#endif
