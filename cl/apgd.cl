/* APGD bookkeeping per sample (the reference: auto-attack, autopgd_base.py,
 * APGDAttack.attack_single_run): best points, the checkpoint test with step halving and restarts,
 * and the l1 sparsity adaptation. Per-sample kernels (SAMPLE_ID in cl/common.cl): one work-item
 * per sample looping over its d coordinates for the row copies (CPU class), or one work-group per
 * sample sharing them (GPU class). Rows of loss_steps are stored shifted by one so that row -1
 * (index 0) stays zero, which reproduces the reference's wrap-around at the first checkpoint. */

/* After the forward (and backward) at x_adv of iteration `row` (-1: the starting point). */
__kernel void apgd_track(__global const float *x_adv, __global const float *g,
                         __global const float *loss, __global const float *correct,
                         __global float *x_best, __global float *grad_best,
                         __global float *x_best_adv, __global float *loss_best,
                         __global float *acc, __global float *loss_steps, const int row,
                         const int B, const int d) {
    const int b = SAMPLE_ID;
    if (b >= B) return;
    const size_t off = (size_t)b * d;
    const float l = loss[b], ok = correct[b];
    const int start = row < 0; /* iteration-0 evaluation: everything starts at the starting point */
    const float acc_new = start ? ok : acc[b] != 0.0f && ok != 0.0f ? 1.0f : 0.0f;
    const int better = start || l > loss_best[b];
    if (sample_writer()) {
        acc[b] = acc_new;
        if (!start) loss_steps[(size_t)(row + 1) * B + b] = l;
        if (better) loss_best[b] = l;
    }
    if (start || ok == 0.0f) sample_copy(x_best_adv + off, x_adv + off, d);
    if (better) {
        sample_copy(x_best + off, x_adv + off, d);
        sample_copy(grad_best + off, g + off, d);
    }
}

/* The checkpoint at iteration i after an interval of k iterations (l_inf and l_2). */
__kernel void apgd_checkpoint(__global const float *loss_steps, __global const float *loss_best,
                              __global float *loss_best_last, __global float *reduced,
                              __global float *eta, __global float *x_adv,
                              __global const float *x_best, __global float *g,
                              __global const float *grad_best, const int i, const int k,
                              const float rho, const int B, const int d) {
    const int b = SAMPLE_ID;
    if (b >= B) return;
    int t = 0;
    for (int c = 0; c < k; c++) {
        const int j = i - c; /* compare step j with step j - 1; row r lives at index r + 1 */
        t += loss_steps[(size_t)(j + 1) * B + b] > loss_steps[(size_t)j * B + b];
    }
    const int osc = (float)t <= (float)k * rho;
    const int no_progress = reduced[b] == 0.0f && loss_best_last[b] >= loss_best[b];
    const int flag = osc || no_progress;
    const float lb = loss_best[b], e = eta[b];
    if (sample_writer()) {
        reduced[b] = flag ? 1.0f : 0.0f;
        loss_best_last[b] = lb;
        if (flag) eta[b] = e * 0.5f;
    }
    if (flag) {
        const size_t off = (size_t)b * d;
        sample_copy(x_adv + off, x_best + off, d);
        sample_copy(g + off, grad_best + off, d);
    }
}

/* l1: every k iterations, adapt the sparsity and step size from the best point's sparsity. */
__kernel void apgd_l1_adapt(__global const float *x, __global const float *x_best,
                            __global float *x_adv, __global float *g,
                            __global const float *grad_best, __global float *eta,
                            __global float *topk, __global float *sp_old, const float eps,
                            const int B, const int d) {
#if RC_GPU
    __local float lanes[RC_LANES];
#endif
    const int b = SAMPLE_ID;
    if (b >= B) return;
    const size_t off = (size_t)b * d;
#if RC_GPU
    const float sp = wg_count_ne(x_best + off, x + off, d, lanes);
#else
    int nz = 0;
    for (int j = 0; j < d; j++) nz += x_best[off + j] != x[off + j];
    const float sp = (float)nz;
#endif
    const float ratio =
        sp / sp_old[b]; /* 0/0 is NaN, and NaN < 0.95 is false, as in the reference */
    const int fl = ratio < 0.95f;
    const float e = clamp(fl ? eps : eta[b] / 1.5f, eps / 10.0f, eps);
    if (sample_writer()) {
        topk[b] = sp / (float)d / 1.5f;
        eta[b] = e;
        sp_old[b] = sp;
    }
    if (fl) {
        sample_copy(x_adv + off, x_best + off, d);
        sample_copy(g + off, grad_best + off, d);
    }
}

/* l1 with a given start point (AA's largereps stages): the initial sparsity follows the start's
 * l0 = ||x_start - x||_0: topk = l0 / d / 1.5, sp_old = l0 (as autopgd_base.py's
 * attack_single_run does when given x_init). */
__kernel void apgd_l1_start_sparsity(__global const float *l0, __global float *topk,
                                     __global float *sp_old, const int B, const int d) {
    const int b = get_global_id(0);
    if (b >= B) return;
    topk[b] = l0[b] / (float)d / 1.5f;
    sp_old[b] = l0[b];
}

/* delta = a - b, element-wise over `total` floats. */
__kernel void apgd_delta(__global const float *a, __global const float *b, __global float *delta,
                         const int total) {
    const int i = get_global_id(0);
    if (i < total) delta[i] = a[i] - b[i];
}
