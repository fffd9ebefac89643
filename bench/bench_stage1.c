/* bench_stage1: one image to BLIP-2's 32 query features with the stage-1
 * model at full ViT-g size (zoo name blip2_stage1_vit_g), timed per stage:
 *   preprocess  vz_image_load + vz_image_to_tensor (decode, Pillow bicubic
 *               resize, CLIP normalization)
 *   vit         vz_blip2_image_embeds (patch embedding, 39 blocks, ln_vision)
 *   qformer     vz_blip2_query_output + vz_blip2_image_features (query pass,
 *               vision_proj, L2 normalization)
 * and, interleaved with those rounds in the same process, vz_matmul on the
 * ViT-g layer shapes, so that the ViT's achieved GFLOP/s can be set against
 * vlzoo's own GEMM rate under the same machine state. Also reports the peak
 * resident memory against the bytes of the loaded weights. Prints one JSON
 * line (a second one with --profile: one ViT block op by op). */
#define _GNU_SOURCE /* mkstemps */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "backends/cpu/cpu_matmul.h"
#include "bench/bench_util.h"
#include "vlzoo/vlzoo.h"

#ifndef VLZOO_SOURCE_DIR
#define VLZOO_SOURCE_DIR "."
#endif
#define DEFAULT_IMAGE "../shared/assets/images/merlion.png"
#define ZOO_NAME "blip2_stage1_vit_g"

enum { MAX_SETS = 32, N_SHAPES = 4, MAX_SPECS = 1024 };

static void usage(FILE *to) {
  fprintf(
      to,
      "usage: bench_stage1 [--weights FILE] [--dtype f32|bf16|f16] [--threads T] [--image PATH]\n"
      "                    [--repeat R] [--gemm-calls G] [--set KEY=VALUE]... [--save FILE]\n"
      "                    [--reference FILE] [--profile] [--tmpdir DIR]\n\n"
      "Loads BLIP-2 stage 1 at the size of the zoo config " ZOO_NAME " (ViT-g/14 at 224 px,\n"
      "Q-Former with 32 queries) and times, after one warm-up pass, R rounds (default 5) of\n"
      "  preprocess  decode + bicubic resize + normalize (vz_image_load, vz_image_to_tensor)\n"
      "  vit         vz_blip2_image_embeds: patch embedding, 39 blocks, ln_vision\n"
      "  qformer     vz_blip2_query_output + vz_blip2_image_features\n"
      "each round followed by G calls (default 3) of vz_matmul on the ViT-g shapes\n"
      "257x1408x1408, 257x6144x1408, 257x1408x6144 (and the fused qkv 257x4224x1408), f32\n"
      "activations times a [N, K] weight in the run's dtype, as bench gemm does.\n\n"
      "  --weights FILE  safetensors / .ckpt / torch file with vlzoo (Hugging Face) names;\n"
      "                  without it, random weights of the real shapes are written with\n"
      "                  vz_weights_writer to a temporary safetensors file in --tmpdir\n"
      "                  (default $TMPDIR or /tmp), opened, and deleted at once\n"
      "  --make-weights F  only write those random weights to F (kept), then exit\n"
      "  --dtype         matmul weights' dtype: f32 (default), bf16 or f16\n"
      "  --threads T     CPU threads (default: VLZOO_THREADS, else every processor)\n"
      "  --image PATH    default " DEFAULT_IMAGE " (also looked up from the source tree)\n"
      "  --set KEY=VAL   config override, as 'vlzoo show --set' (e.g. ln_vision_eps=1e-6)\n"
      "  --save FILE     write pixel_values, image_embeds, query_output, image_features of\n"
      "                  the last round to a safetensors file\n"
      "  --reference F   a file written by --save (or by bench_stage1_torch.py --save): adds\n"
      "                  the cosines of this run's outputs against it\n"
      "  --profile       also time one ViT block op by op on random weights of the run's\n"
      "                  dtype (R rounds), as the model runs it (fused linear layers) and\n"
      "                  as separate ops (unfused_*), and print it as a second JSON line\n\n"
      "JSON: median ms per stage and end to end, the ViT's GFLOP/s (patch conv + per layer\n"
      "qkv, QK^T, PV, proj, fc1, fc2 at 257 tokens; norms, GELU, softmax not counted), the\n"
      "GEMM GFLOP/s per shape and their mix over one ViT layer (qkv as three 1408x1408),\n"
      "vit_vs_gemm = ViT GFLOP/s / that mix, and memory: weights_bytes (the loaded tensors:\n"
      "matmul weights in the dtype, the rest f32), peak_rss_bytes (getrusage ru_maxrss read\n"
      "before and after the reset below: the whole run's peak, loading included, when the\n"
      "mapped file's pages count too), vm_hwm_bytes (/proc/self/status VmHWM, the same\n"
      "peak), inference_peak_rss_bytes (VmHWM after a reset through /proc/self/clear_refs\n"
      "once the model is loaded and the file closed) and their ratios to weights_bytes; the\n"
      "GEMM operands (gemm_operand_bytes) are resident then too, and one ratio leaves them out.\n");
}

static int bad_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench_stage1: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n(see 'bench_stage1 --help')\n");
  va_end(ap);
  return 2;
}

static double cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* ---- /proc/self/status ---- */

/* A "Name:   N kB" line of /proc/self/status in bytes; -1 when absent. */
static int64_t status_bytes(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  char line[256];
  size_t n = strlen(key);
  int64_t v = -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, key, n) == 0 && line[n] == ':') {
      v = strtoll(line + n + 1, NULL, 10) * 1024;
      break;
    }
  }
  fclose(f);
  return v;
}

static int64_t ru_maxrss_bytes(void) {
  struct rusage ru;
  return getrusage(RUSAGE_SELF, &ru) == 0 ? (int64_t)ru.ru_maxrss * 1024 : -1;
}

/* Resets VmHWM to the current RSS (Linux >= 4.0); false when refused. */
static bool reset_hwm(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f)
    return false;
  bool ok = fputs("5", f) >= 0;
  return fclose(f) == 0 && ok;
}

typedef struct mem_snap {
  int64_t rss, anon, file;
} mem_snap;

static mem_snap mem_now(void) {
  return (mem_snap){status_bytes("VmRSS"), status_bytes("RssAnon"), status_bytes("RssFile")};
}

static json_object *mem_json(mem_snap m) {
  json_object *o = json_object_new_object();
  json_object_object_add(o, "rss", json_object_new_int64(m.rss));
  json_object_object_add(o, "anon", json_object_new_int64(m.anon));
  json_object_object_add(o, "file", json_object_new_int64(m.file));
  return o;
}

/* ---- The tensors of a stage-1 model ---- */

typedef enum { K_VEC, K_MAT, K_F32, K_LN } spec_kind; /* K_LN: a LayerNorm weight */

typedef struct spec {
  char name[96];
  spec_kind kind; /* K_MAT: stored as the matmul dtype; others f32 */
  int ndim;
  int64_t shape[4];
} spec;

typedef struct spec_list {
  spec *v;
  int n;
} spec_list;

static void add_spec(spec_list *l, spec_kind kind, int ndim, const int64_t *shape, const char *fmt,
                     ...) {
  if (l->n >= MAX_SPECS)
    return;
  spec *s = &l->v[l->n++];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->name, sizeof s->name, fmt, ap);
  va_end(ap);
  s->kind = kind;
  s->ndim = ndim;
  memcpy(s->shape, shape, (size_t)ndim * sizeof *shape);
}

#define VEC(l, n, ...) add_spec(l, K_VEC, 1, (int64_t[]){n}, __VA_ARGS__)
#define LNW(l, n, ...) add_spec(l, K_LN, 1, (int64_t[]){n}, __VA_ARGS__)
#define MAT(l, r, c, ...) add_spec(l, K_MAT, 2, (int64_t[]){r, c}, __VA_ARGS__)

/* Every tensor vz_blip2_stage1_load reads (Hugging Face's
 * Blip2ForImageTextRetrieval names), without the optional LM head and temp. */
static void stage1_specs(const vz_blip2_stage1_params *p, spec_list *l) {
  const vz_vit_params *v = &p->vision;
  const vz_qformer_params *q = &p->qformer;
  const int64_t D = v->hidden_size, F = v->intermediate_size, P = v->patch_size;
  const int64_t G = v->pos_embed_grid, H = q->hidden_size, I = q->intermediate_size,
                K = q->encoder_hidden_size, E = q->embed_dim;
  add_spec(l, K_F32, 4, (int64_t[]){D, 3, P, P}, "vision_model.embeddings.patch_embedding.weight");
  VEC(l, D, "vision_model.embeddings.patch_embedding.bias");
  add_spec(l, K_F32, 3, (int64_t[]){1, 1, D}, "vision_model.embeddings.class_embedding");
  add_spec(l, K_F32, 3, (int64_t[]){1, G * G + 1, D}, "vision_model.embeddings.position_embedding");
  for (int i = 0; i < v->num_layers; i++) {
#define VL "vision_model.encoder.layers.%d."
    LNW(l, D, VL "layer_norm1.weight", i);
    VEC(l, D, VL "layer_norm1.bias", i);
    MAT(l, 3 * D, D, VL "self_attn.qkv.weight", i);
    VEC(l, 3 * D, VL "self_attn.qkv.bias", i);
    MAT(l, D, D, VL "self_attn.projection.weight", i);
    VEC(l, D, VL "self_attn.projection.bias", i);
    LNW(l, D, VL "layer_norm2.weight", i);
    VEC(l, D, VL "layer_norm2.bias", i);
    MAT(l, F, D, VL "mlp.fc1.weight", i);
    VEC(l, F, VL "mlp.fc1.bias", i);
    MAT(l, D, F, VL "mlp.fc2.weight", i);
    VEC(l, D, VL "mlp.fc2.bias", i);
#undef VL
  }
  LNW(l, D, "vision_model.post_layernorm.weight");
  VEC(l, D, "vision_model.post_layernorm.bias");
  add_spec(l, K_F32, 3, (int64_t[]){1, q->num_query_tokens, H}, "query_tokens");
  MAT(l, q->vocab_size, H, "embeddings.word_embeddings.weight");
  add_spec(l, K_F32, 2, (int64_t[]){q->max_position_embeddings, H},
           "embeddings.position_embeddings.weight");
  LNW(l, H, "qformer.layernorm.weight");
  VEC(l, H, "qformer.layernorm.bias");
  for (int i = 0; i < q->num_layers; i++) {
#define QL "qformer.encoder.layer.%d.%s."
    const char *att[2] = {"attention", "crossattention"};
    for (int a = 0; a < (i % q->cross_attention_freq == 0 ? 2 : 1); a++) {
      int64_t kin = a ? K : H;
      MAT(l, H, H, QL "attention.query.weight", i, att[a]);
      VEC(l, H, QL "attention.query.bias", i, att[a]);
      MAT(l, H, kin, QL "attention.key.weight", i, att[a]);
      VEC(l, H, QL "attention.key.bias", i, att[a]);
      MAT(l, H, kin, QL "attention.value.weight", i, att[a]);
      VEC(l, H, QL "attention.value.bias", i, att[a]);
      MAT(l, H, H, QL "output.dense.weight", i, att[a]);
      VEC(l, H, QL "output.dense.bias", i, att[a]);
      LNW(l, H, QL "output.LayerNorm.weight", i, att[a]);
      VEC(l, H, QL "output.LayerNorm.bias", i, att[a]);
    }
    const char *ffn[2][2] = {{"intermediate", "output"}, {"intermediate_query", "output_query"}};
    for (int f = 0; f < 2; f++) {
      MAT(l, I, H, QL "dense.weight", i, ffn[f][0]);
      VEC(l, I, QL "dense.bias", i, ffn[f][0]);
      MAT(l, H, I, QL "dense.weight", i, ffn[f][1]);
      VEC(l, H, QL "dense.bias", i, ffn[f][1]);
      LNW(l, H, QL "LayerNorm.weight", i, ffn[f][1]);
      VEC(l, H, QL "LayerNorm.bias", i, ffn[f][1]);
    }
#undef QL
  }
  MAT(l, E, H, "vision_projection.weight");
  VEC(l, E, "vision_projection.bias");
  MAT(l, E, H, "text_projection.weight");
  VEC(l, E, "text_projection.bias");
  MAT(l, 2, H, "itm_head.weight");
  VEC(l, 2, "itm_head.bias");
}

static int64_t spec_numel(const spec *s) {
  int64_t n = 1;
  for (int d = 0; d < s->ndim; d++)
    n *= s->shape[d];
  return n;
}

/* Bytes the model holds for the tensors it loads from `w`: matmul weights
 * in `dtype`, everything else f32; plus the optional LM head and temp when
 * the file has them (the decoder when it is not a tied copy is counted too). */
static int64_t loaded_bytes(const spec_list *l, vz_weights *w, const vz_blip2_stage1_params *p,
                            vz_dtype dtype, int64_t *file_bytes) {
  int64_t total = 0, in_file = 0;
  for (int i = 0; i < l->n; i++) {
    int64_t n = spec_numel(&l->v[i]);
    total += n * (int64_t)(l->v[i].kind == K_MAT ? vz_dtype_size(dtype) : 4);
  }
  const int64_t H = p->qformer.hidden_size, V = p->qformer.vocab_size;
  size_t idx;
  if (vz_weights_find(w, "qformer.cls.predictions.transform.dense.weight", &idx) == VZ_OK) {
    total += H * H * (int64_t)vz_dtype_size(dtype) + 3 * H * 4 + V * 4;
    if (vz_weights_find(w, "qformer.cls.predictions.decoder.weight", &idx) == VZ_OK)
      total += V * H * (int64_t)vz_dtype_size(dtype); /* upper bound: may be a tied copy */
  }
  if (vz_weights_find(w, "temp", &idx) == VZ_OK)
    total += 4;
  for (size_t i = 0; i < vz_weights_count(w); i++)
    in_file += (int64_t)vz_weights_info(w, i)->nbytes;
  *file_bytes = in_file;
  return total;
}

/* Random weights of the real shapes in a safetensors file: a new temporary
 * file in `dir`, or `fixed` when given. The tensors are windows at
 * pseudo-random offsets of one shared pool of uniform values (std 0.02),
 * LayerNorm weights 1 +- 0.1, so that the file is written without holding
 * its 4.7 GB in memory. */
static vz_status write_random_weights(const spec_list *l, const char *dir, const char *fixed,
                                      char **path_out) {
  const int64_t pool_n = 24 * 1024 * 1024, ones_n = 8192;
  int64_t need = 0;
  for (int i = 0; i < l->n; i++)
    need = spec_numel(&l->v[i]) > need ? spec_numel(&l->v[i]) : need;
  int64_t n_pool = need > pool_n ? need : pool_n;
  float *pool = malloc((size_t)n_pool * sizeof *pool), *ones = malloc(ones_n * sizeof *ones);
  size_t plen = strlen(dir) + 64;
  char *path = malloc(plen);
  vz_weights_writer *wr = NULL;
  vz_status st = VZ_OK;
  int fd = -1;
  if (!pool || !ones || !path) {
    st = VZ_ERR_OUT_OF_MEMORY;
    fprintf(stderr, "bench_stage1: out of memory for the random weights\n");
    goto done;
  }
  uint64_t x = 0x9e3779b97f4a7c15ull;
  const double a = 0.02 * sqrt(3.0);
  for (int64_t i = 0; i < n_pool; i++)
    pool[i] =
        (float)(((double)(bench_xorshift(&x) >> 11) * (1.0 / 9007199254740992.0) * 2 - 1) * a);
  for (int64_t i = 0; i < ones_n; i++)
    ones[i] =
        1.0f + (float)(((double)(bench_xorshift(&x) >> 11) * (1.0 / 9007199254740992.0) * 2 - 1) *
                       0.1 * sqrt(3.0));
  if (fixed) {
    free(path);
    if (!(path = strdup(fixed))) {
      st = VZ_ERR_OUT_OF_MEMORY;
      goto done;
    }
  } else {
    snprintf(path, plen, "%s/vlzoo_stage1_random_XXXXXX.safetensors", dir);
    fd = mkstemps(path, (int)strlen(".safetensors"));
    if (fd < 0) {
      st = VZ_ERR_IO;
      fprintf(stderr, "bench_stage1: cannot create a file in %s: %s\n", dir, strerror(errno));
      goto done;
    }
    close(fd);
  }
  if ((st = vz_weights_writer_open(path, VZ_FORMAT_SAFETENSORS, &wr)) != VZ_OK)
    goto fail;
  for (int i = 0; i < l->n && st == VZ_OK; i++) {
    const spec *s = &l->v[i];
    int64_t n = spec_numel(s);
    const float *data = s->kind == K_LN && n <= ones_n
                            ? ones
                            : pool + (int64_t)(bench_xorshift(&x) % (uint64_t)(n_pool - n + 1));
    st = vz_weights_writer_add(wr, s->name, VZ_F32, s->ndim, s->shape, data, (size_t)n * 4);
  }
  if (st != VZ_OK) {
    vz_weights_writer_abort(wr);
    goto fail;
  }
  if ((st = vz_weights_writer_commit(wr)) != VZ_OK)
    goto fail;
  *path_out = path;
  path = NULL;
  goto done;
fail:
  fprintf(stderr, "bench_stage1: writing random weights: %s\n", vz_last_error());
  if (!fixed)
    unlink(path);
done:
  free(pool);
  free(ones);
  free(path);
  return st;
}

/* ---- GEMM shapes ---- */

static const int64_t gemm_shapes[N_SHAPES][3] = {
    {257, 1408, 1408}, {257, 6144, 1408}, {257, 1408, 6144}, {257, 4224, 1408}};

typedef struct gemm_case {
  vz_tensor *a, *w, *out;
  double *ms;
  int n;
} gemm_case;

static vz_tensor *random_tensor(vz_backend *be, vz_dtype dtype, int64_t rows, int64_t cols,
                                uint64_t seed, double amp) {
  int64_t n = rows * cols;
  void *p = malloc((size_t)n * vz_dtype_size(dtype));
  vz_tensor *t = NULL;
  if (!p)
    return NULL;
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < n; i++) {
    float f = (float)(((double)(bench_xorshift(&x) >> 40) * (2.0 / 16777216.0) - 1.0) * amp);
    if (dtype == VZ_F32)
      ((float *)p)[i] = f;
    else
      ((uint16_t *)p)[i] = dtype == VZ_BF16 ? vz_f32_to_bf16(f) : vz_f32_to_f16(f);
  }
  if (vz_tensor_from_host(be, dtype, 2, (int64_t[]){rows, cols}, p,
                          (size_t)n * vz_dtype_size(dtype), &t) != VZ_OK)
    t = NULL;
  free(p);
  return t;
}

static const char *kernel_of(const vz_tensor *a, const vz_tensor *w) {
  const char *name = vz_cpu_linear_kernel_name(a, w);
  return name ? name : "?";
}

/* ---- One ViT block, op by op (--profile) ----
 *
 * Two sequences on the same weights and input, alternating round by round:
 * the model's (models/eva_vit.c: every Linear layer one fused linear op,
 * its bias, GELU and residual add applied to the GEMM's tiles) and the
 * same block as separate ops (matmul, bias add, GELU, residual add), so
 * that what the fusion saves is measured under the same machine state. */

enum {
  P_LN1,
  P_QKV_MM,
  P_QKV_BIAS,
  P_ATTENTION,
  P_MERGE_HEADS,
  P_PROJ_MM,
  P_PROJ_BIAS,
  P_RESID1,
  P_LN2,
  P_FC1_MM,
  P_FC1_BIAS,
  P_GELU,
  P_FC2_MM,
  P_FC2_BIAS,
  P_RESID2,
  P_STEPS
};
static const char *const step_names[P_STEPS] = {
    "ln1",         "qkv_matmul", "qkv_bias",   "attention", "merge_heads_copy",
    "proj_matmul", "proj_bias",  "residual1",  "ln2",       "fc1_matmul",
    "fc1_bias",    "gelu",       "fc2_matmul", "fc2_bias",  "residual2"};
/* The fused sequence reuses the slots of the steps it keeps; the linear
 * layers land in the *_MM slots, with nothing in the bias, GELU and
 * residual slots. */
static const char *const fused_step_names[P_STEPS] = {"ln1",
                                                      "qkv_linear",
                                                      NULL,
                                                      "attention",
                                                      "merge_heads_copy",
                                                      "proj_linear_residual",
                                                      NULL,
                                                      NULL,
                                                      "ln2",
                                                      "fc1_linear_gelu",
                                                      NULL,
                                                      NULL,
                                                      "fc2_linear_residual",
                                                      NULL,
                                                      NULL};

#define STEP(idx, call)                                                                            \
  do {                                                                                             \
    double t0_ = bench_now_ms();                                                                   \
    if ((st = (call)) != VZ_OK)                                                                    \
      goto done;                                                                                   \
    ms[idx] += bench_now_ms() - t0_;                                                               \
  } while (0)

/* One block on x [1, T, D] as models/eva_vit.c block() runs it (`fused`)
 * or op by op, each step's output made fresh as the model makes it; ms[]
 * accumulates. */
static vz_status profile_block(vz_tensor *const *wt, vz_tensor **xp, int heads, float eps,
                               bool fused, double *ms) {
  vz_tensor *ln1_w = wt[0], *ln1_b = wt[1], *qkv_w = wt[2], *qkv_b = wt[3], *proj_w = wt[4],
            *proj_b = wt[5], *ln2_w = wt[6], *ln2_b = wt[7], *fc1_w = wt[8], *fc1_b = wt[9],
            *fc2_w = wt[10], *fc2_b = wt[11];
  vz_tensor *x = *xp;
  const int64_t B = x->shape[0], T = x->shape[1], D = x->shape[2], d = D / heads;
  vz_tensor *h = NULL, *qkv = NULL, *part = NULL, *r4 = NULL, *views[3] = {NULL, NULL, NULL},
            *ctx = NULL, *perm = NULL, *merged = NULL, *o = NULL;
  vz_status st = VZ_OK;
  STEP(P_LN1, vz_layer_norm(x, ln1_w, ln1_b, eps, &h));
  if (fused) {
    STEP(P_QKV_MM, vz_fused_linear(h, qkv_w, qkv_b, VZ_OP_COUNT, NULL, &qkv));
  } else {
    STEP(P_QKV_MM, vz_matmul(h, qkv_w, false, true, &qkv));
    STEP(P_QKV_BIAS, vz_add(qkv, qkv_b, &qkv));
  }
  vz_tensor_free(h);
  h = NULL;
  for (int i = 0; i < 3; i++) { /* views: slice, reshape, permute (no copy) */
    if ((st = vz_slice(qkv, 2, i * D, (i + 1) * D, 1, &part)) != VZ_OK ||
        (st = vz_reshape(part, 4, (int64_t[]){B, T, heads, d}, &r4)) != VZ_OK ||
        (st = vz_permute(r4, (const int[]){0, 2, 1, 3}, &views[i])) != VZ_OK)
      goto done;
    vz_tensor_free(part);
    vz_tensor_free(r4);
    part = r4 = NULL;
  }
  /* attention reads the views in place (a backend that cannot gets
   * contiguous copies from the dispatcher, timed with it) */
  STEP(P_ATTENTION,
       vz_attention(views[0], views[1], views[2], NULL, NULL, 1.0f / sqrtf((float)d), false, &ctx));
  vz_tensor_free(qkv);
  qkv = NULL;
  double t0 = bench_now_ms();
  if ((st = vz_permute(ctx, (const int[]){0, 2, 1, 3}, &perm)) != VZ_OK ||
      (st = vz_reshape(perm, 3, (int64_t[]){B, T, D}, &merged)) != VZ_OK)
    goto done;
  ms[P_MERGE_HEADS] += bench_now_ms() - t0;
  if (fused) {
    STEP(P_PROJ_MM, vz_fused_linear(merged, proj_w, proj_b, VZ_OP_COUNT, x, &x));
  } else {
    STEP(P_PROJ_MM, vz_matmul(merged, proj_w, false, true, &o));
    STEP(P_PROJ_BIAS, vz_add(o, proj_b, &o));
    STEP(P_RESID1, vz_add(x, o, &x));
  }
  vz_tensor_free(o);
  vz_tensor_free(merged);
  o = merged = NULL;
  STEP(P_LN2, vz_layer_norm(x, ln2_w, ln2_b, eps, &h));
  if (fused) {
    STEP(P_FC1_MM, vz_fused_linear(h, fc1_w, fc1_b, VZ_OP_GELU_ERF, NULL, &merged));
    STEP(P_FC2_MM, vz_fused_linear(merged, fc2_w, fc2_b, VZ_OP_COUNT, x, &x));
  } else {
    STEP(P_FC1_MM, vz_matmul(h, fc1_w, false, true, &merged));
    STEP(P_FC1_BIAS, vz_add(merged, fc1_b, &merged));
    STEP(P_GELU, vz_gelu_erf(merged, &merged));
    STEP(P_FC2_MM, vz_matmul(merged, fc2_w, false, true, &o));
    STEP(P_FC2_BIAS, vz_add(o, fc2_b, &o));
    STEP(P_RESID2, vz_add(x, o, &x));
  }
done:
  vz_tensor_free(h);
  vz_tensor_free(qkv);
  vz_tensor_free(part);
  vz_tensor_free(r4);
  for (int i = 0; i < 3; i++)
    vz_tensor_free(views[i]);
  vz_tensor_free(ctx);
  vz_tensor_free(perm);
  vz_tensor_free(merged);
  vz_tensor_free(o);
  *xp = x;
  return st;
}

/* Per-step medians over the rounds of acc (rounds x P_STEPS), as JSON
 * under "<prefix>step_median_ms", "<prefix>block_ms" and "<prefix>group_ms";
 * returns the block's total. */
static double add_step_medians(json_object *o, const char *prefix, const double *acc, int rounds,
                               const char *const *names) {
  double total = 0, groups[4] = {0}; /* matmul, attention, norm+gelu+bias+residual, merging */
  double *col = malloc((size_t)rounds * sizeof *col);
  json_object *steps = json_object_new_object();
  for (int s = 0; s < P_STEPS && col; s++) {
    if (!names[s])
      continue;
    for (int r = 0; r < rounds; r++)
      col[r] = acc[(size_t)r * P_STEPS + s];
    double med = bench_median(col, rounds);
    total += med;
    json_object_object_add(steps, names[s], json_object_new_double(med));
    int g = (s == P_QKV_MM || s == P_PROJ_MM || s == P_FC1_MM || s == P_FC2_MM) ? 0
            : s == P_ATTENTION                                                  ? 1
            : s == P_MERGE_HEADS                                                ? 3
                                                                                : 2;
    groups[g] += med;
  }
  free(col);
  char key[64];
  snprintf(key, sizeof key, "%sstep_median_ms", prefix);
  json_object_object_add(o, key, steps);
  snprintf(key, sizeof key, "%sblock_ms", prefix);
  json_object_object_add(o, key, json_object_new_double(total));
  json_object *gr = json_object_new_object();
  json_object_object_add(gr, "matmul", json_object_new_double(groups[0]));
  json_object_object_add(gr, "attention", json_object_new_double(groups[1]));
  json_object_object_add(gr, "norm_gelu_bias_residual", json_object_new_double(groups[2]));
  json_object_object_add(gr, "merging_heads", json_object_new_double(groups[3]));
  snprintf(key, sizeof key, "%sgroup_ms", prefix);
  json_object_object_add(o, key, gr);
  return total;
}

static int run_profile(vz_backend *be, const vz_blip2_stage1_params *p, vz_dtype dtype, int rounds,
                       double vit_ms) {
  const int64_t D = p->vision.hidden_size, F = p->vision.intermediate_size;
  const int64_t T = (int64_t)(p->vision.image_size / p->vision.patch_size) *
                        (p->vision.image_size / p->vision.patch_size) +
                    1;
  vz_tensor *wt[12] = {NULL}, *x = NULL;
  double *acc = NULL;
  int rc = 1;
  /* ln weights ~1 are not needed for timing: uniform values do */
  int64_t dims[12][2] = {{1, D}, {1, D}, {3 * D, D}, {1, 3 * D}, {D, D}, {1, D},
                         {1, D}, {1, D}, {F, D},     {1, F},     {D, F}, {1, D}};
  for (int i = 0; i < 12; i++) {
    bool mat = i == 2 || i == 4 || i == 8 || i == 10;
    vz_tensor *t =
        random_tensor(be, mat ? dtype : VZ_F32, dims[i][0], dims[i][1], 100 + i, mat ? 0.035 : 1.0);
    if (!t)
      goto done;
    if (!mat) { /* vectors are 1-D */
      vz_tensor *v = NULL;
      if (vz_reshape(t, 1, (int64_t[]){dims[i][1]}, &v) != VZ_OK)
        goto done;
      vz_tensor_free(t);
      t = v;
    }
    wt[i] = t;
  }
  /* rows [0, rounds): the model's fused sequence; [rounds, 2 rounds): op by op */
  acc = calloc((size_t)(2 * rounds) * P_STEPS, sizeof *acc);
  if (!acc)
    goto done;
  for (int r = -1; r < rounds; r++) { /* round -1: warm-up */
    for (int fused = 1; fused >= 0; fused--) {
      vz_tensor *x2 = random_tensor(be, VZ_F32, T, D, 7, 1.0), *x3 = NULL;
      if (!x2 || vz_reshape(x2, 3, (int64_t[]){1, T, D}, &x3) != VZ_OK) {
        vz_tensor_free(x2);
        goto done;
      }
      vz_tensor_free(x2);
      x = x3;
      double ms[P_STEPS] = {0};
      if (profile_block(wt, &x, p->vision.num_heads, p->vision.layer_norm_eps, fused, ms) !=
          VZ_OK) {
        fprintf(stderr, "bench_stage1: profile: %s\n", vz_last_error());
        goto done;
      }
      vz_tensor_free(x);
      x = NULL;
      if (r >= 0)
        memcpy(acc + (size_t)(fused ? r : rounds + r) * P_STEPS, ms, sizeof ms);
    }
  }
  json_object *o = json_object_new_object();
  json_object_object_add(o, "bench", json_object_new_string("stage1_vit_block_profile"));
  json_object_object_add(o, "dtype", json_object_new_string(vz_dtype_name(dtype)));
  json_object_object_add(o, "rounds", json_object_new_int(rounds));
  double total = add_step_medians(o, "", acc, rounds, fused_step_names);
  double unfused =
      add_step_medians(o, "unfused_", acc + (size_t)rounds * P_STEPS, rounds, step_names);
  json_object_object_add(o, "x_layers_ms", json_object_new_double(total * p->vision.num_layers));
  json_object_object_add(o, "unfused_x_layers_ms",
                         json_object_new_double(unfused * p->vision.num_layers));
  json_object_object_add(o, "model_vit_ms", json_object_new_double(vit_ms));
  printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  fflush(stdout);
  json_object_put(o);
  rc = 0;
done:
  for (int i = 0; i < 12; i++)
    vz_tensor_free(wt[i]);
  vz_tensor_free(x);
  free(acc);
  return rc;
}

/* ---- Saving and comparing outputs ---- */

static float *host_floats(const vz_tensor *t) {
  int64_t n = vz_tensor_numel(t);
  float *p = malloc((size_t)n * sizeof *p);
  if (p && vz_tensor_to_host(t, p, (size_t)n * sizeof *p) != VZ_OK) {
    free(p);
    p = NULL;
  }
  return p;
}

static const char *const out_names[4] = {"pixel_values", "image_embeds", "query_output",
                                         "image_features"};

static int save_outputs(const char *path, vz_tensor *const *outs) {
  float *data[4] = {NULL};
  vz_weights_writer *wr = NULL;
  int rc = 1;
  if (vz_weights_writer_open(path, VZ_FORMAT_SAFETENSORS, &wr) != VZ_OK)
    goto fail;
  for (int i = 0; i < 4; i++) {
    if (!(data[i] = host_floats(outs[i])))
      goto fail;
    if (vz_weights_writer_add(wr, out_names[i], VZ_F32, outs[i]->ndim, outs[i]->shape, data[i],
                              vz_tensor_nbytes(outs[i])) != VZ_OK)
      goto fail;
  }
  vz_weights_writer *w2 = wr;
  wr = NULL;
  if (vz_weights_writer_commit(w2) != VZ_OK)
    goto fail;
  rc = 0;
  goto done;
fail:
  fprintf(stderr, "bench_stage1: saving %s: %s\n", path, vz_last_error());
  vz_weights_writer_abort(wr);
done:
  for (int i = 0; i < 4; i++)
    free(data[i]);
  return rc;
}

static double cosine(const float *a, const float *b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; i++) {
    ab += (double)a[i] * b[i];
    aa += (double)a[i] * a[i];
    bb += (double)b[i] * b[i];
  }
  return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
}

/* Cosines of this run's outputs against a saved file's: flattened, and for
 * image_features per query row (min, mean); max |diff| of the pixels. */
static json_object *compare_outputs(const char *path, vz_tensor *const *outs) {
  vz_weights *w = NULL;
  if (vz_weights_open(path, &w) != VZ_OK) {
    fprintf(stderr, "bench_stage1: reference %s: %s\n", path, vz_last_error());
    return NULL;
  }
  json_object *o = json_object_new_object();
  json_object_object_add(o, "file", json_object_new_string(path));
  for (int i = 0; i < 4; i++) {
    size_t idx;
    const void *ref;
    size_t nbytes;
    int64_t n = vz_tensor_numel(outs[i]);
    if (vz_weights_find(w, out_names[i], &idx) != VZ_OK ||
        vz_weights_info(w, idx)->dtype != VZ_F32 ||
        vz_weights_data(w, idx, &ref, &nbytes) != VZ_OK || nbytes != (size_t)n * 4)
      continue;
    float *mine = host_floats(outs[i]);
    if (!mine)
      continue;
    const float *r = ref;
    if (i == 0) {
      double md = 0;
      for (int64_t j = 0; j < n; j++)
        md = fmax(md, fabs((double)mine[j] - r[j]));
      json_object_object_add(o, "pixel_values_max_abs_diff", json_object_new_double(md));
    } else {
      char key[64];
      snprintf(key, sizeof key, "%s_cosine", out_names[i]);
      json_object_object_add(o, key, json_object_new_double(cosine(mine, r, n)));
    }
    if (i == 3) { /* per query */
      int64_t cols = outs[i]->shape[outs[i]->ndim - 1], rows = n / cols;
      double mn = 1, mean = 0;
      for (int64_t q = 0; q < rows; q++) {
        double c = cosine(mine + q * cols, r + q * cols, cols);
        mn = fmin(mn, c);
        mean += c / (double)rows;
      }
      json_object_object_add(o, "image_features_query_cosine_min", json_object_new_double(mn));
      json_object_object_add(o, "image_features_query_cosine_mean", json_object_new_double(mean));
    }
    free(mine);
  }
  vz_weights_close(w);
  return o;
}

/* ---- main ---- */

/* The median of v[0..n) without reordering v (the JSON keeps the order). */
static double median_of(const double *v, int n) {
  double *c = malloc((size_t)n * sizeof *c);
  if (!c)
    return NAN;
  memcpy(c, v, (size_t)n * sizeof *c);
  double m = bench_median(c, n);
  free(c);
  return m;
}

static json_object *ms_array(const double *v, int n) {
  json_object *a = json_object_new_array();
  for (int i = 0; i < n; i++)
    json_object_array_add(a, json_object_new_double(round(v[i] * 1000) / 1000));
  return a;
}

static const char *find_image(const char *given, char *buf, size_t size) {
  if (access(given, R_OK) == 0 || given[0] == '/')
    return given;
  snprintf(buf, size, "%s/%s", VLZOO_SOURCE_DIR, given);
  return access(buf, R_OK) == 0 ? buf : given;
}

int main(int argc, char **argv) {
  const char *weights_path = NULL, *image_arg = DEFAULT_IMAGE, *save = NULL, *reference = NULL,
             *make_weights = NULL;
  const char *sets[MAX_SETS], *tmpdir = getenv("TMPDIR");
  int n_sets = 0;
  long threads = 0, repeat = 5, gemm_calls = 3;
  bool profile = false;
  vz_dtype dtype = VZ_F32;
  for (int i = 1; i < argc; i++) {
    const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(opt, "--help") || !strcmp(opt, "-h")) {
      usage(stdout);
      return 0;
    }
    if (!strcmp(opt, "--profile")) {
      profile = true;
      continue;
    }
    static const char *const with_value[] = {
        "--weights", "--image", "--save",    "--make-weights", "--reference", "--tmpdir",
        "--set",     "--dtype", "--threads", "--repeat",       "--gemm-calls"};
    bool known = false;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
      known = known || !strcmp(opt, with_value[k]);
    if (!known)
      return bad_usage("unknown option '%s'", opt);
    if (!val)
      return bad_usage("%s needs a value", opt);
    i++;
    if (!strcmp(opt, "--weights"))
      weights_path = val;
    else if (!strcmp(opt, "--image"))
      image_arg = val;
    else if (!strcmp(opt, "--save"))
      save = val;
    else if (!strcmp(opt, "--make-weights"))
      make_weights = val;
    else if (!strcmp(opt, "--reference"))
      reference = val;
    else if (!strcmp(opt, "--tmpdir"))
      tmpdir = val;
    else if (!strcmp(opt, "--set")) {
      if (n_sets == MAX_SETS)
        return bad_usage("at most %d --set", MAX_SETS);
      sets[n_sets++] = val;
    } else if (!strcmp(opt, "--dtype")) {
      if (vz_dtype_from_name(val, &dtype) != VZ_OK ||
          (dtype != VZ_F32 && dtype != VZ_BF16 && dtype != VZ_F16))
        return bad_usage("--dtype is f32, bf16 or f16, not '%s'", val);
    } else if (!strcmp(opt, "--threads")) {
      if (!bench_parse_count(val, 1, 1024, &threads))
        return bad_usage("--threads needs a count from 1 to 1024");
    } else if (!strcmp(opt, "--repeat")) {
      if (!bench_parse_count(val, 1, 10000, &repeat))
        return bad_usage("--repeat needs a count from 1 to 10000");
    } else if (!strcmp(opt, "--gemm-calls")) {
      if (!bench_parse_count(val, 1, 10000, &gemm_calls))
        return bad_usage("--gemm-calls needs a count from 1 to 10000");
    } else {
      return bad_usage("unknown option '%s'", opt);
    }
  }
  if (threads > 0) {
    bench_export_threads(threads);
  } else {
    const char *env = getenv("VLZOO_THREADS");
    if (env && *env && !bench_parse_count(env, 1, 1024, &threads))
      return bad_usage("VLZOO_THREADS=%s is not a thread count", env);
    if (threads <= 0)
      threads = omp_get_num_procs();
  }
  if (!tmpdir || !*tmpdir)
    tmpdir = "/tmp";
  char image_buf[4096];
  const char *image_path = find_image(image_arg, image_buf, sizeof image_buf);

  const int R = (int)repeat, G = (int)gemm_calls;
  int rc = 1;
  vz_config *cfg = NULL;
  vz_backend *be = NULL;
  vz_weights *w = NULL;
  vz_blip2_stage1 *m = NULL;
  char *random_path = NULL;
  spec_list specs = {calloc(MAX_SPECS, sizeof(spec)), 0};
  double *t_pre = calloc((size_t)R, sizeof(double)), *t_vit = calloc((size_t)R, sizeof(double)),
         *t_qf = calloc((size_t)R, sizeof(double)), *t_e2e = calloc((size_t)R, sizeof(double)),
         *share_vit = calloc((size_t)R, sizeof(double));
  gemm_case gc[N_SHAPES] = {{0}};
  vz_tensor *outs[4] = {NULL}; /* pixels, embeds, query output, features of the last round */
  json_object *o = NULL;
  if (!specs.v || !t_pre || !t_vit || !t_qf || !t_e2e || !share_vit) {
    fprintf(stderr, "bench_stage1: out of memory\n");
    goto done;
  }
  mem_snap m_start = mem_now();

  /* config */
  vz_blip2_stage1_params params;
  if (vz_config_load(ZOO_NAME, &cfg) != VZ_OK)
    goto fail;
  for (int i = 0; i < n_sets; i++)
    if (vz_config_set_override(cfg, sets[i]) != VZ_OK)
      goto fail;
  if (vz_config_stage1_params(cfg, &params) != VZ_OK)
    goto fail;
  stage1_specs(&params, &specs);
  if (make_weights) { /* write the random weights to that file, keep it, stop */
    char *made = NULL;
    double m0 = bench_now_ms();
    if (write_random_weights(&specs, tmpdir, make_weights, &made) != VZ_OK)
      goto done;
    printf("{\"bench\":\"stage1_make_weights\",\"file\":\"%s\",\"tensors\":%d,\"ms\":%.1f}\n", made,
           specs.n, bench_now_ms() - m0);
    free(made);
    rc = 0;
    goto done;
  }
  if (vz_backend_create("cpu", &be) != VZ_OK)
    goto fail;

  /* weights */
  double t0 = bench_now_ms();
  const char *source;
  if (weights_path) {
    source = "file";
  } else {
    source = "random weights (std 0.02) written by vz_weights_writer to a temporary safetensors "
             "file, deleted after opening";
    if (write_random_weights(&specs, tmpdir, NULL, &random_path) != VZ_OK)
      goto done;
  }
  double write_ms = bench_now_ms() - t0;
  if (vz_weights_open(weights_path ? weights_path : random_path, &w) != VZ_OK)
    goto fail;
  if (random_path)
    unlink(random_path); /* the mapping keeps it until closed */
  int64_t file_bytes = 0;
  int64_t weights_bytes = loaded_bytes(&specs, w, &params, dtype, &file_bytes);
  mem_snap m_before = mem_now();
  t0 = bench_now_ms();
  if (vz_blip2_stage1_load(&params, w, be, dtype, &m) != VZ_OK)
    goto fail;
  double load_ms = bench_now_ms() - t0;
  mem_snap m_loaded = mem_now();
  vz_weights_close(w);
  w = NULL;
  mem_snap m_closed = mem_now();
  /* ru_maxrss follows VmHWM, which the reset below clears: read both now */
  int64_t load_hwm = status_bytes("VmHWM"), load_maxrss = ru_maxrss_bytes();
  bool hwm_reset = reset_hwm();

  /* GEMM operands: activations ~U(-1,1), weights ~U(-0.035, 0.035) */
  for (int s = 0; s < N_SHAPES; s++) {
    gc[s].a = random_tensor(be, VZ_F32, gemm_shapes[s][0], gemm_shapes[s][2], 11 + s, 1.0);
    gc[s].w = random_tensor(be, dtype, gemm_shapes[s][1], gemm_shapes[s][2], 21 + s, 0.035);
    gc[s].ms = calloc((size_t)(R * G), sizeof(double));
    if (!gc[s].a || !gc[s].w || !gc[s].ms) {
      fprintf(stderr, "bench_stage1: cannot make the GEMM operands\n");
      goto done;
    }
  }

  /* warm-up pass (round -1), then R timed rounds */
  int64_t gemm_bytes = 0;   /* the GEMM operands and outputs live beside the model */
  double first_pass_ms = 0; /* the warm-up pass: what a program's first image waits for */
  for (int r = -1; r < R; r++) {
    vz_image *img = NULL;
    vz_tensor *px = NULL, *emb = NULL, *qo = NULL, *feat = NULL;
    double a0 = bench_now_ms();
    if (vz_image_load(image_path, &img) != VZ_OK)
      goto fail;
    vz_status st =
        vz_image_to_tensor(img, params.vision.image_size, VZ_CLIP_MEAN, VZ_CLIP_STD, be, &px);
    vz_image_free(img);
    if (st != VZ_OK)
      goto fail;
    double a1 = bench_now_ms(), c1 = cpu_ms();
    if (vz_blip2_image_embeds(m, px, &emb) != VZ_OK) {
      vz_tensor_free(px);
      goto fail;
    }
    double a2 = bench_now_ms(), c2 = cpu_ms();
    st = vz_blip2_query_output(m, emb, &qo);
    if (st == VZ_OK)
      st = vz_blip2_image_features(m, qo, &feat);
    double a3 = bench_now_ms();
    vz_tensor *cur[4] = {px, emb, qo, feat};
    for (int i = 0; i < 4; i++) {
      vz_tensor_free(outs[i]);
      outs[i] = cur[i];
    }
    if (st != VZ_OK)
      goto fail;
    if (r < 0) {
      first_pass_ms = a3 - a0;
    } else {
      t_pre[r] = a1 - a0;
      t_vit[r] = a2 - a1;
      t_qf[r] = a3 - a2;
      t_e2e[r] = a3 - a0;
      share_vit[r] = (c2 - c1) / ((a2 - a1) * (double)threads);
    }
    for (int s = 0; s < N_SHAPES; s++) {
      if (r < 0)
        gemm_bytes += (int64_t)(vz_tensor_nbytes(gc[s].a) + vz_tensor_nbytes(gc[s].w) +
                                (size_t)(gemm_shapes[s][0] * gemm_shapes[s][1]) * 4);
      for (int g = 0; g < (r < 0 ? 1 : G); g++) {
        double g0 = bench_now_ms();
        if (vz_matmul(gc[s].a, gc[s].w, false, true, &gc[s].out) != VZ_OK)
          goto fail;
        if (r >= 0)
          gc[s].ms[r * G + g] = bench_now_ms() - g0;
      }
    }
    fprintf(stderr, "bench_stage1: %s round %d: preprocess %.1f ms, vit %.1f ms, qformer %.1f ms\n",
            vz_dtype_name(dtype), r, a1 - a0, a2 - a1, a3 - a2);
  }
  int64_t infer_hwm = status_bytes("VmHWM"), maxrss = ru_maxrss_bytes();
  if (load_maxrss > maxrss)
    maxrss = load_maxrss;

  /* FLOPs of the ViT */
  const double S = params.vision.image_size, P = params.vision.patch_size,
               D = params.vision.hidden_size, F = params.vision.intermediate_size,
               L = params.vision.num_layers;
  const double N = (S / P) * (S / P), T = N + 1;
  const double conv_flop = 2 * N * D * 3 * P * P;
  const double layer_flop = 2 * T * D * 3 * D /* qkv */ + 2 * T * T * D /* QK^T */ +
                            2 * T * T * D /* PV */ + 2 * T * D * D /* proj */ +
                            2 * T * D * F * 2 /* fc1, fc2 */;
  const double vit_flop = conv_flop + L * layer_flop;
  double pre_ms = median_of(t_pre, R), vit_ms = median_of(t_vit, R), qf_ms = median_of(t_qf, R),
         e2e_ms = median_of(t_e2e, R);
  double vit_gflops = vit_flop / (vit_ms * 1e6);
  double gms[N_SHAPES], ggf[N_SHAPES], gflop[N_SHAPES];
  json_object *gj = json_object_new_object();
  for (int s = 0; s < N_SHAPES; s++) {
    gms[s] = bench_median(gc[s].ms, R * G);
    gflop[s] = 2.0 * gemm_shapes[s][0] * gemm_shapes[s][1] * gemm_shapes[s][2];
    ggf[s] = gflop[s] / (gms[s] * 1e6);
    char key[64];
    snprintf(key, sizeof key, "%lldx%lldx%lld", (long long)gemm_shapes[s][0],
             (long long)gemm_shapes[s][1], (long long)gemm_shapes[s][2]);
    json_object_object_add(gj, key, json_object_new_double(ggf[s]));
  }
  /* one ViT layer's matmuls: qkv as 3 x 1408^2 (+ proj), fc1, fc2 */
  double mix = (4 * gflop[0] + gflop[1] + gflop[2]) / ((4 * gms[0] + gms[1] + gms[2]) * 1e6);
  double mix_qkv =
      (gflop[3] + gflop[0] + gflop[1] + gflop[2]) / ((gms[3] + gms[0] + gms[1] + gms[2]) * 1e6);

  o = json_object_new_object();
  json_object_object_add(o, "bench", json_object_new_string("stage1"));
  json_object_object_add(o, "model", json_object_new_string(ZOO_NAME));
  json_object_object_add(o, "vlzoo_version", json_object_new_string(vz_version()));
  json_object_object_add(o, "backend", json_object_new_string(vz_backend_description(be)));
  json_object_object_add(o, "dtype", json_object_new_string(vz_dtype_name(dtype)));
  json_object_object_add(o, "threads", json_object_new_int64(threads));
  json_object_object_add(o, "repeat", json_object_new_int(R));
  json_object_object_add(o, "image", json_object_new_string(image_path));
  json_object_object_add(o, "image_size", json_object_new_int(params.vision.image_size));
  json_object_object_add(o, "ln_vision_eps",
                         json_object_new_double(params.vision.post_layer_norm_eps));
  json_object_object_add(o, "weights", weights_path ? json_object_new_string(weights_path) : NULL);
  json_object_object_add(o, "weights_source", json_object_new_string(source));
  if (random_path)
    json_object_object_add(o, "random_write_ms", json_object_new_double(write_ms));
  json_object_object_add(o, "load_ms", json_object_new_double(load_ms));
  json_object_object_add(o, "preprocess_ms", json_object_new_double(pre_ms));
  json_object_object_add(o, "vit_ms", json_object_new_double(vit_ms));
  json_object_object_add(o, "qformer_ms", json_object_new_double(qf_ms));
  json_object_object_add(o, "end_to_end_ms", json_object_new_double(e2e_ms));
  json_object_object_add(o, "first_pass_ms", json_object_new_double(first_pass_ms));
  json_object_object_add(o, "preprocess_ms_all", ms_array(t_pre, R));
  json_object_object_add(o, "vit_ms_all", ms_array(t_vit, R));
  json_object_object_add(o, "qformer_ms_all", ms_array(t_qf, R));
  json_object_object_add(o, "end_to_end_ms_all", ms_array(t_e2e, R));
  json_object_object_add(o, "vit_cpu_share", json_object_new_double(bench_median(share_vit, R)));
  json_object_object_add(o, "vit_gflop", json_object_new_double(vit_flop / 1e9));
  json_object_object_add(o, "vit_gflops", json_object_new_double(vit_gflops));
  json_object_object_add(o, "gemm_kernel", json_object_new_string(kernel_of(gc[1].a, gc[1].w)));
  json_object_object_add(o, "gemm_gflops_by_shape", gj);
  json_object_object_add(o, "gemm_gflops", json_object_new_double(mix));
  json_object_object_add(o, "vit_vs_gemm", json_object_new_double(vit_gflops / mix));
  json_object_object_add(o, "gemm_gflops_fused_qkv", json_object_new_double(mix_qkv));
  json_object_object_add(o, "vit_vs_gemm_fused_qkv", json_object_new_double(vit_gflops / mix_qkv));
  json_object_object_add(o, "weights_bytes", json_object_new_int64(weights_bytes));
  json_object_object_add(o, "weights_file_bytes", json_object_new_int64(file_bytes));
  json_object_object_add(o, "peak_rss_bytes", json_object_new_int64(maxrss));
  json_object_object_add(o, "vm_hwm_bytes",
                         json_object_new_int64(load_hwm > infer_hwm ? load_hwm : infer_hwm));
  json_object_object_add(o, "peak_rss_over_weights",
                         json_object_new_double((double)maxrss / (double)weights_bytes));
  json_object_object_add(o, "inference_peak_rss_bytes",
                         hwm_reset ? json_object_new_int64(infer_hwm) : NULL);
  json_object_object_add(
      o, "inference_peak_over_weights",
      hwm_reset ? json_object_new_double((double)infer_hwm / (double)weights_bytes) : NULL);
  json_object_object_add(o, "gemm_operand_bytes", json_object_new_int64(gemm_bytes));
  json_object_object_add(
      o, "inference_peak_over_weights_without_gemm_operands",
      hwm_reset ? json_object_new_double((double)(infer_hwm - gemm_bytes) / (double)weights_bytes)
                : NULL);
  json_object_object_add(o, "model_anon_bytes",
                         json_object_new_int64(m_closed.anon - m_before.anon));
  json_object *mem = json_object_new_object();
  json_object_object_add(mem, "start", mem_json(m_start));
  json_object_object_add(mem, "before_load", mem_json(m_before));
  json_object_object_add(mem, "after_load_file_open", mem_json(m_loaded));
  json_object_object_add(mem, "after_file_close", mem_json(m_closed));
  json_object_object_add(mem, "end", mem_json(mem_now()));
  json_object_object_add(o, "rss", mem);
  if (reference) {
    json_object *c = compare_outputs(reference, outs);
    if (c)
      json_object_object_add(o, "vs_reference", c);
  }
  if (save && save_outputs(save, outs) != 0)
    goto done;
  printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  fflush(stdout);
  rc = profile ? run_profile(be, &params, dtype, R, vit_ms) : 0;
  goto done;
fail:
  fprintf(stderr, "bench_stage1: %s\n", vz_last_error());
done:
  json_object_put(o);
  for (int i = 0; i < 4; i++)
    vz_tensor_free(outs[i]);
  for (int s = 0; s < N_SHAPES; s++) {
    vz_tensor_free(gc[s].a);
    vz_tensor_free(gc[s].w);
    vz_tensor_free(gc[s].out);
    free(gc[s].ms);
  }
  vz_blip2_stage1_free(m);
  vz_weights_close(w);
  if (random_path)
    unlink(random_path);
  free(random_path);
  vz_backend_free(be);
  vz_config_free(cfg);
  free(specs.v);
  free(t_pre);
  free(t_vit);
  free(t_qf);
  free(t_e2e);
  free(share_vit);
  return rc;
}
