/* Divergence guard (src/train/guard.c): flags non-finite values on the device, so the host learns
 * of a NaN or an infinity where it reads back anyway instead of once per step.
 *
 * flag[0] is the sequence number of the first check that found one (INT_MAX: none yet), flag[1]
 * the lowest index it found, flag[2] that check's tag. Checks run in order on one queue with
 * increasing seq, so a later check leaves the record alone, and inside the recording check every
 * item that found one takes part in the minimum: the record does not depend on the work-group
 * size. The test is on the bits, which no compiler option turns into "always finite". */

static inline uint nonfinite(const float v) { return (as_uint(v) & 0x7f800000u) == 0x7f800000u; }

/* The n floats from x + off in chunks of `chunk` (plane_elems: a chunk per work-item on the CPU
 * class, an element on the GPU class). */
__kernel void guard_finite(__global const float *x, const int off, const int n, const int chunk,
                           const int seq, const int tag, __global int *flag) {
    int g, p0, p1;
    if (!plane_elems((n + chunk - 1) / chunk, chunk, &g, &p0, &p1)) return;
    const int j0 = g * chunk + p0, j1 = min(g * chunk + p1, n);
    uint any = 0;
    for (int j = j0; j < j1; j++) any |= nonfinite(x[off + j]);
    if (!any || flag[0] < seq) return; /* all finite, or an earlier check already recorded */
    int j = j0;
    while (!nonfinite(x[off + j])) j++;
    atomic_min(&flag[0], seq);
    atomic_min(&flag[1], j);
    atomic_xchg(&flag[2], tag); /* every writer writes the same */
}
