/* Image classification datasets on the host: loading MNIST-family IDX files and CIFAR-10 binary
 * batches, and assembling deterministic (optionally shuffled and augmented) float batches.
 *
 * Pixels stay uint8 in memory (a quarter of the float size); batches are converted to float32 in
 * [0, 1] as they are assembled. */
#ifndef RAMP_DATASET_H
#define RAMP_DATASET_H

#include "ramp/config.h"
#include "ramp/error.h"
#include "ramp/rng.h"

#include <stdint.h>

typedef struct rc_dataset {
    uint32_t n, c, h, w;
    uint8_t *pixels; /* n*c*h*w, NCHW */
    uint8_t *labels; /* n, each < num_classes */
    uint32_t num_classes;
    char name[64]; /* where the data came from, for logs */
} rc_dataset;

/* The loaders leave *out zeroed on failure, so rc_dataset_free is always safe to call. */
void rc_dataset_free(rc_dataset *d);

/* An IDX image file (magic 0x00000803: n, rows, cols, unsigned bytes) and its IDX label file
 * (magic 0x00000801), each gzip-compressed or raw. first_k = 0 keeps every point, otherwise the
 * first first_k (an error if the files hold fewer). Sizes are checked exactly: a truncated file,
 * trailing data, a count mismatch or a label >= 10 is an error naming the file. */
int rc_dataset_load_idx(rc_dataset *out, const char *images_path, const char *labels_path,
                        uint32_t first_k, rc_err *e);

/* {train,t10k}-{images-idx3,labels-idx1}-ubyte, raw or with .gz, in dir (MNIST, Fashion-MNIST). */
int rc_dataset_load_mnist_dir(rc_dataset *out, const char *dir, int train, uint32_t first_k,
                              rc_err *e);

/* CIFAR-10 binary version in dir: data_batch_1.bin..data_batch_5.bin for train, test_batch.bin
 * otherwise. Each record is 1 label byte and 3072 pixel bytes (32x32 R, G, B planes: CHW). A
 * file's size must be a positive multiple of 3073; it need not hold exactly 10000 records. */
int rc_dataset_load_cifar10(rc_dataset *out, const char *dir, int train, uint32_t first_k,
                            rc_err *e);

/* Points [start, start+count) in file order as float32 pixel/255 (NCHW) and int32 labels: for
 * evaluation. Returns 0, or -1 if the range does not lie inside the dataset. */
int rc_dataset_slice(const rc_dataset *d, uint32_t start, uint32_t count, float *x_out,
                     int32_t *y_out);

/* Training batches. The order and augmentation of epoch k derive from (seed, k) alone, so a run
 * resumed at epoch k sees exactly the batches it would have seen without the interruption. The
 * batcher seeds its rc_rng streams with stream numbers whose upper 32 bits are 0x62617463 ("batc")
 * and 0x61756720 ("aug "), which other users of the same seed should avoid. */
typedef struct rc_batcher {
    const rc_dataset *d;
    uint32_t batch_size;
    uint32_t *order; /* this epoch's permutation of 0..n-1 */
    uint32_t pos;    /* next position in order */
    rc_rng rng;      /* this epoch's augmentation stream */
    int augment_crop_flip;
    uint32_t pad; /* zero padding of the random crop */
    uint64_t seed;
    int shuffle;
} rc_batcher;

/* Ready for epoch 0. augment: random crop of the image's own size from the image zero-padded by 4
 * on every side, then a horizontal flip with probability 1/2 (torchvision's RandomCrop(32,
 * padding=4) + RandomHorizontalFlip for CIFAR). The dataset must outlive the batcher. */
int rc_batcher_init(rc_batcher *b, const rc_dataset *d, uint32_t batch_size, uint64_t seed,
                    int shuffle, int augment, rc_err *e);
/* Rewind to the start of `epoch`: identity order without shuffle, else a permutation seeded
 * from (seed, epoch) that does not depend on earlier epochs. */
void rc_batcher_start_epoch(rc_batcher *b, uint32_t epoch);
/* Fill up to batch_size points (x_out: batch_size*c*h*w floats, y_out: batch_size labels).
 * Returns how many were filled: the last batch of an epoch may be short, and 0 means the epoch is
 * over. */
uint32_t rc_batcher_next(rc_batcher *b, float *x_out, int32_t *y_out);
uint32_t rc_batcher_num_batches(const rc_batcher *b);
void rc_batcher_free(rc_batcher *b);

/* The config's training (train = 1) or test split: its first first_k points (0: all). */
int rc_load_split(const rc_config *cfg, int train, uint32_t first_k, rc_dataset *d, rc_err *e);

#endif
