#include "ramp/faults.h"

#include <stdlib.h>

void rc_faults_from_env(rc_faults *f) {
    const char *fail = getenv("RAMP_CL_FAIL_LAUNCH");
    f->fail_launch_at = fail ? strtol(fail, NULL, 10) : 0;
    f->launches = 0;
    const char *g = getenv("RAMP_CL_GROUP_SIZE");
    f->group_size = g ? (unsigned)strtoul(g, NULL, 10) : 0;
}

int rc_fault_launch_should_fail(rc_faults *f) {
    return f->fail_launch_at > 0 && ++f->launches == f->fail_launch_at;
}
