/* TESTING ONLY: faults injected on purpose so the tests can exercise error paths that real
 * devices reach rarely (a device that runs out of resources or is lost mid-run). Production
 * runs leave the environment variables unset and every hook here is a no-op.
 *
 * Environment:
 *   RAMP_CL_FAIL_LAUNCH=N  the Nth kernel launch of a context fails with CL_OUT_OF_RESOURCES
 *   RAMP_CL_GROUP_SIZE=N   reducing kernels (rc_launch_groups, ramp/launch.h) run work-groups of
 *                          N work-items, capped by what the kernel allows, instead of the largest:
 *                          their results must not change (the tests compare) */
#ifndef RAMP_FAULTS_H
#define RAMP_FAULTS_H

typedef struct rc_faults {
    long fail_launch_at; /* 0: no launch fails */
    long launches;       /* launches counted so far (only while fail_launch_at > 0) */
    unsigned group_size; /* 0: rc_launch_groups chooses */
} rc_faults;

/* Reads the RAMP_CL_FAIL_* variables; an unset one disables its fault. */
void rc_faults_from_env(rc_faults *f);

/* Counts one kernel launch; 1 when this is the one that must fail. */
int rc_fault_launch_should_fail(rc_faults *f);

#endif
