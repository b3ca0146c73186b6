/* Checkpoints in the safetensors format (https://github.com/huggingface/safetensors):
 *
 *   u64 little-endian N | N bytes of UTF-8 JSON header | raw little-endian tensor data
 *
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end)} (offsets
 * relative to the start of the data section) and may hold "__metadata__", an object of strings.
 * The reader trusts nothing: the whole file is validated (strict JSON, known dtypes, sizes that
 * match shapes, tensors that tile the data section exactly) before any tensor is handed out. */
#ifndef RAMP_SAFETENSORS_H
#define RAMP_SAFETENSORS_H

#include "ramp/error.h"

#include <stddef.h>
#include <stdint.h>

/* Every byte-sized dtype of the format; the writer accepts RC_ST_F32 and RC_ST_I64. */
enum {
    RC_ST_BOOL,
    RC_ST_U8,
    RC_ST_I8,
    RC_ST_F8_E5M2,
    RC_ST_F8_E4M3,
    RC_ST_I16,
    RC_ST_U16,
    RC_ST_F16,
    RC_ST_BF16,
    RC_ST_I32,
    RC_ST_U32,
    RC_ST_F32,
    RC_ST_F64,
    RC_ST_I64,
    RC_ST_U64,
    RC_ST_NUM_DTYPES
};

#define RC_ST_MAX_DIMS 8

/* The format's name of a dtype ("F32"), or "?" for a value out of range. */
const char *rc_st_dtype_name(int dtype);

/* ---- writing --------------------------------------------------------------------------------- */

typedef struct rc_st_tensor {
    const char *name;
    int dtype; /* RC_ST_F32 or RC_ST_I64 */
    int ndim;  /* 0 (a scalar) to RC_ST_MAX_DIMS */
    int64_t shape[RC_ST_MAX_DIMS];
    const void *data; /* product(shape) elements, host (little-endian) order */
} rc_st_tensor;

/* Write n tensors, in the order given, and n_meta metadata strings to `path`, atomically: the
 * file is written under a temporary name in the same directory, synced and renamed over `path`.
 * On failure nothing is left behind and an existing file at `path` is untouched. */
int rc_st_write(const char *path, const rc_st_tensor *t, size_t n, const char *const *meta_keys,
                const char *const *meta_values, size_t n_meta, rc_err *e);

/* ---- reading --------------------------------------------------------------------------------- */

typedef struct rc_st_entry {
    const char *name;
    int dtype;
    int ndim;
    int64_t shape[RC_ST_MAX_DIMS];
    const void *data; /* inside the file's buffer; may be unaligned: copy it with memcpy */
    size_t nbytes;
} rc_st_entry;

typedef struct rc_st_meta_pair {
    char *key, *value;
} rc_st_meta_pair;

/* An open file. Use the functions below; the fields are visible so that callers (and tests) can
 * keep it on the stack. */
typedef struct rc_st_file {
    char *path;
    unsigned char *buf; /* the whole file */
    size_t size;
    rc_st_entry *entries; /* in header order */
    size_t n;
    const rc_st_entry **by_name; /* sorted by name, for rc_st_find */
    rc_st_meta_pair *meta;       /* sorted by key */
    size_t n_meta;
} rc_st_file;

/* Read and validate the whole file. On failure the message names the file (and the tensor or the
 * header byte at fault) and *f is left empty; rc_st_close(f) is safe either way. */
int rc_st_open(rc_st_file *f, const char *path, rc_err *e);
/* rc_st_open on a file's bytes already in memory, which rc_st_open reads and hands to it. Takes
 * buf (from malloc, size bytes) whatever the outcome: rc_st_close frees it, as it does on
 * failure here. `name` stands for the file in messages. */
int rc_st_open_buffer(rc_st_file *f, const char *name, unsigned char *buf, size_t size,
                      rc_err *e);
void rc_st_close(rc_st_file *f);

size_t rc_st_count(const rc_st_file *f);
/* The i-th tensor in header order, i < rc_st_count(f). */
const rc_st_entry *rc_st_entry_at(const rc_st_file *f, size_t i);
/* The tensor called `name`, or NULL. */
const rc_st_entry *rc_st_find(const rc_st_file *f, const char *name);
/* The metadata value for `key`, or NULL. */
const char *rc_st_meta(const rc_st_file *f, const char *key);

/* Copy tensor `name` into dst after checking that it exists and has this dtype and shape; the
 * message names the file and the tensor, and shows both shapes on a mismatch. */
int rc_st_get_f32(const rc_st_file *f, const char *name, int ndim, const int64_t *shape,
                  float *dst, rc_err *e);
int rc_st_get_i64(const rc_st_file *f, const char *name, int ndim, const int64_t *shape,
                  int64_t *dst, rc_err *e);

#endif
