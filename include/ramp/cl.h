/* The one place that includes the OpenCL headers, pinned to the 1.2 API every device has. */
#ifndef RAMP_CL_H
#define RAMP_CL_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>

#endif
