/* Square Attack (Andriushchenko, Croce, Flammarion, Hein 2020), the black-box attack of
 * AutoAttack's standard version, on the device, as fra31/auto-attack's autoattack/square.py
 * (SquareAttack, the version with the l_1 variant of Croce & Hein 2021) runs it there: the
 * margin loss, p_init 0.8, 5000 queries without rescaling the p schedule, one restart, l_inf,
 * l_2 and l_1. Only forward passes: each query evaluates one candidate per point still to fool.
 *
 * Deviations from the reference, each where it is made (cl/square.cl, src/attack/square.c):
 * every point draws its own windows, orientations and signs (the reference shares one window
 * position per batch and iteration), from a counter-based stream keyed by the run's key and the
 * point's id; window corners range over all h - s + 1 positions (the reference's
 * random_int(0, h - s) never reaches the last one). */
#ifndef RAMP_SQUARE_H
#define RAMP_SQUARE_H

#include "ramp/attack_ops.h"
#include "ramp/model.h"

#include <stdint.h>

typedef struct rc_square_opts {
    rc_norm norm;
    float eps;
    int n_queries; /* AutoAttack: 5000 */
    float p_init;  /* AutoAttack: 0.8 */
    uint64_t key;  /* with each point's id, seeds all its draws */
} rc_square_opts;

/* Device state for up to B points of c x h x w (square images, h >= 5 for l_2 and l_1). The
 * caller writes the clean points into `x` and their labels (int32) into `labels`. Results per
 * slot: x_best, margin (z_y - max_{j != y} z_j at x_best; <= 0 once fooled) and correct
 * (argmax == label at x_best). */
typedef struct rc_square {
    int B, c, h, w, d;
    cl_mem x, labels, ids; /* ids: the point each slot holds, for its draws */
    cl_mem x_best, margin, correct;
    cl_mem delta, coef, eta, idx; /* new perturbation, window scales, window pattern, gather */
    int eta_s;                    /* window size the pattern in `eta` is for (0: none) */
    rc_norm eta_norm;
    rc_attack_scratch scratch;
} rc_square;

int rc_square_alloc(rc_ctx *ctx, rc_square *sq, int B, int c, int h, int w, rc_err *e);
void rc_square_free(rc_square *sq);

/* The window side at query `it` (0-based): the reference's p_selection without rescaling
 * (p_init halved at queries 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000), then
 * s = round(sqrt(p h w)) (half to even), at least 1 (l_inf) or 3 and odd (l_2, l_1), at most h. */
int rc_square_window(const rc_square_opts *o, int it, int h);

/* The initial point of the first n slots (ids 0..n-1) and its margin: l_inf vertical stripes
 * of +-eps; l_2 / l_1 a grid of window patterns scaled to the sphere (l_2) or projected onto the
 * ball and box (l_1). */
int rc_square_init(rc_ctx *ctx, rc_square *sq, rc_model *m, const rc_square_opts *o, int n,
                   rc_err *e);

/* Query `it`: one candidate per slot; a slot still to fool (margin > 0) keeps it if its margin
 * is lower. Slots already fooled are left as they are. */
int rc_square_step(rc_ctx *ctx, rc_square *sq, rc_model *m, const rc_square_opts *o, int n, int it,
                   rc_err *e);

/* The whole attack on the first n slots: init, then up to n_queries queries, stopping when every
 * point is fooled; fooled points leave the batch (which the device compacts) every few queries.
 * broken[i] = 1 when point i (slot i on entry) is misclassified at its best point. Slot order
 * and x_best are not kept. */
int rc_square_run(rc_ctx *ctx, rc_square *sq, rc_model *m, const rc_square_opts *o, int n,
                  unsigned char *broken, rc_err *e);

#endif
