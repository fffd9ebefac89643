/* What every model file shares: loading weights by name with shape checks,
 * and the few composite steps (Linear, head split / merge) that the op API
 * leaves to the models. Internal to models/. */
#ifndef VLZOO_MODELS_MODEL_UTIL_H
#define VLZOO_MODELS_MODEL_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "vlzoo/ops.h"
#include "vlzoo/tensor.h"
#include "vlzoo/weights.h"

/* Error reporting (ops/status.c): the only library internals models use. */
#include "ops/internal.h"

/* Runs a vlzoo call; on failure jumps to the function's `done` label with
 * the status in `st`. */
#define TRY(call)                                                                                  \
  do {                                                                                             \
    if ((st = (call)) != VZ_OK)                                                                    \
      goto done;                                                                                   \
  } while (0)

/* Frees *t and sets it to NULL (a tensor is dropped as soon as it is dead). */
static inline void drop(vz_tensor **t) {
  vz_tensor_free(*t);
  *t = NULL;
}

/* ---- Loading ----
 *
 * A model's load function asks for each tensor by name with the shape the
 * params imply. It runs twice: first with check_only set, when every tensor
 * is looked up and its shape checked but nothing is copied (so that a bad
 * file fails before gigabytes are uploaded), then for real. The first
 * failure sticks in `st`; later requests return NULL and do nothing, so load
 * functions read as a plain list and test `st` once at the end. */
typedef struct vz_loader {
  vz_weights *w;
  vz_backend *be;
  vz_dtype matmul_dtype; /* for Linear weights and embedding tables */
  bool check_only;
  vz_status st;
} vz_loader;

/* Whether the source has a tensor called `name` (printf-style). */
bool vz_load_has(const vz_loader *ld, const char *fmt, ...) VZ_PRINTF(2, 3);

/* The tensor `name` (printf-style), checked to have exactly `shape` (a
 * scalar [] also accepts [1]) and uploaded as `as` (converted from the
 * file's float dtype when they differ). NULL when checking only or after a
 * failure. */
vz_tensor *vz_load(vz_loader *ld, vz_dtype as, int ndim, const int64_t *shape, const char *fmt, ...)
    VZ_PRINTF(5, 6);
/* f32 [n]: norms, biases */
vz_tensor *vz_load_vec(vz_loader *ld, int64_t n, const char *fmt, ...) VZ_PRINTF(3, 4);
/* [rows, cols] as ld->matmul_dtype: Linear weights ([out, in]) */
vz_tensor *vz_load_mat(vz_loader *ld, int64_t rows, int64_t cols, const char *fmt, ...)
    VZ_PRINTF(4, 5);

/* A host float array as a new f32 tensor on `be`. */
vz_status vz_tensor_from_floats(vz_backend *be, int ndim, const int64_t *shape, const float *data,
                                vz_tensor **out);

/* ---- Forward steps ---- */

/* x [..., in] -> x W^T + b [..., out] for W [out, in] (any matmul dtype), b
 * [out] or NULL: torch's nn.Linear. */
vz_status vz_linear(const vz_tensor *x, const vz_tensor *w, const vz_tensor *b, vz_tensor **out);

/* act(x W^T + b) + residual (act VZ_OP_COUNT: none; residual may be NULL,
 * or *out itself for x += ...): vz_fused_linear where the backend runs it
 * natively, else the same steps as separate ops. */
vz_status vz_linear_act(const vz_tensor *x, const vz_tensor *w, const vz_tensor *b, vz_op_kind act,
                        const vz_tensor *residual, vz_tensor **out);

/* x [B, S, heads * d] (a view is fine) -> a view [B, heads, S, d]. */
vz_status vz_split_heads(const vz_tensor *x, int heads, vz_tensor **out);
/* x [B, heads, S, d] -> a new contiguous [B, S, heads * d]. */
vz_status vz_merge_heads(const vz_tensor *x, vz_tensor **out);

/* A tensor of 0 / 1 entries (any integer dtype or f32) read back as host
 * floats; `n` must be its element count. */
vz_status vz_read_floats(const vz_tensor *t, float *dst, int64_t n);

#endif
