/* Divergence guard (src/train/guard.c): flags non-finite values on the device, so the host learns
 * of a NaN or an infinity where it reads back anyway instead of once per step.
 *
 * flag[0] is the sequence number of the first check that found one (INT_MAX: none yet), flag[1]
 * the lowest index it found, flag[2] that check's tag. Checks run in order on one queue with
 * increasing seq, so a later check leaves the record alone, and inside the recording check every
 * item that found one takes part in the minimum: the record does not depend on the work-group
 * size. The test is on the bits, which no compiler option turns into "always finite". */
__kernel void guard_finite(__global const float *x, const int off, const int n, const int seq,
                           const int tag, __global int *flag) {
    const int j = get_global_id(0);
    if (j >= n || (as_uint(x[off + j]) & 0x7f800000u) != 0x7f800000u) return;
    if (flag[0] < seq) return; /* an earlier check already recorded */
    atomic_min(&flag[0], seq);
    atomic_min(&flag[1], j);
    atomic_xchg(&flag[2], tag); /* every writer writes the same */
}
