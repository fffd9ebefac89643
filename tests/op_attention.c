/* attention against a naive double-precision reference: masks, biases,
 * causality with fewer queries than keys, grouped heads, fully hidden rows,
 * ViT-g's head size and odd sizes, q, k and v as views, and bad shapes. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <string.h>

#include "tests/test_util.h"

static vz_backend *be;

/* A broadcastable extra input (bias or mask): host values and shape. */
typedef struct extra {
  int ndim;
  int64_t shape[4];
  float *data;
} extra;

/* Value of an extra at scores index (b, h, i, j), numpy broadcasting. */
static double extra_at(const extra *e, const int64_t idx[4]) {
  int64_t off = 0;
  for (int d = 0; d < e->ndim; d++) {
    int64_t i = idx[4 - e->ndim + d];
    off = off * e->shape[d] + (e->shape[d] == 1 ? 0 : i);
  }
  return e->data[off];
}

typedef struct problem {
  int64_t b, h, hk, sq, sk, d, dv;
  float scale;
  bool causal;
  const extra *bias, *mask;
} problem;

static float *reference(const problem *p, const float *q, const float *k, const float *v) {
  float *out = malloc((size_t)(p->b * p->h * p->sq * p->dv) * sizeof *out);
  double *s = malloc((size_t)p->sk * sizeof *s);
  for (int64_t b = 0; b < p->b; b++)
    for (int64_t h = 0; h < p->h; h++) {
      int64_t kh = h / (p->h / p->hk);
      for (int64_t i = 0; i < p->sq; i++) {
        double max = -INFINITY;
        for (int64_t j = 0; j < p->sk; j++) {
          const float *qr = q + ((b * p->h + h) * p->sq + i) * p->d;
          const float *kr = k + ((b * p->hk + kh) * p->sk + j) * p->d;
          double dot = 0;
          for (int64_t c = 0; c < p->d; c++)
            dot += (double)qr[c] * kr[c];
          int64_t idx[4] = {b, h, i, j};
          s[j] = dot * p->scale;
          if (p->bias)
            s[j] += extra_at(p->bias, idx);
          if (p->mask)
            s[j] += extra_at(p->mask, idx);
          if (p->causal && j > i + (p->sk - p->sq))
            s[j] = -INFINITY;
          if (s[j] > max)
            max = s[j];
        }
        double sum = 0;
        for (int64_t j = 0; j < p->sk; j++) {
          s[j] = max == -INFINITY ? 0 : exp(s[j] - max);
          sum += s[j];
        }
        float *o = out + ((b * p->h + h) * p->sq + i) * p->dv;
        for (int64_t c = 0; c < p->dv; c++) {
          double acc = 0;
          for (int64_t j = 0; j < p->sk; j++)
            acc += s[j] * v[((b * p->hk + kh) * p->sk + j) * p->dv + c];
          o[c] = sum > 0 ? (float)(acc / sum) : 0.0f;
        }
      }
    }
  free(s);
  return out;
}

static vz_tensor *extra_tensor(const extra *e) {
  return e ? test_tensor(be, e->ndim, e->shape, e->data) : NULL;
}

/* Runs one problem on random q, k, v and compares; returns the result. */
static float *check(const char *what, const problem *p) {
  int64_t qs[4] = {p->b, p->h, p->sq, p->d}, ks[4] = {p->b, p->hk, p->sk, p->d};
  int64_t vs[4] = {p->b, p->hk, p->sk, p->dv};
  float *q = test_random_floats(test_numel(4, qs), -1, 1),
        *k = test_random_floats(test_numel(4, ks), -1, 1);
  float *v = test_random_floats(test_numel(4, vs), -1, 1);
  vz_tensor *tq = test_tensor(be, 4, qs, q), *tk = test_tensor(be, 4, ks, k);
  vz_tensor *tv = test_tensor(be, 4, vs, v);
  vz_tensor *tb = extra_tensor(p->bias), *tm = extra_tensor(p->mask), *out = NULL;
  CHECK_OK(vz_attention(tq, tk, tv, tb, tm, p->scale, p->causal, &out));
  float *got = out ? test_read_f32(out) : NULL, *want = reference(p, q, k, v);
  test_close(what, got, want, p->b * p->h * p->sq * p->dv, 2e-6f, 1e-4f);
  free(want);
  free(q);
  free(k);
  free(v);
  vz_tensor *t[] = {tq, tk, tv, tb, tm, out};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    vz_tensor_free(t[i]);
  return got;
}

static extra make_extra(int ndim, const int64_t *shape, float lo, float hi) {
  extra e = {.ndim = ndim};
  memcpy(e.shape, shape, (size_t)ndim * sizeof *shape);
  e.data = test_random_floats(test_numel(ndim, shape), lo, hi);
  return e;
}

static void test_plain(void) {
  for (int causal = 0; causal < 2; causal++) {
    problem p = {2, 3, 3, 5, 7, 8, 6, 0.35f, causal, NULL, NULL};
    free(check(causal ? "small causal" : "small", &p));
    problem one = {1, 1, 1, 1, 1, 1, 1, 1.0f, causal, NULL, NULL};
    free(check("1x1", &one));
  }
}

static void test_bias_mask(void) {
  /* padding mask [B,1,1,Sk] with hidden keys, bias [1,H,Sq,Sk] */
  extra mask = make_extra(4, (int64_t[]){2, 1, 1, 9}, -1, 1);
  mask.data[7] = mask.data[8] = -INFINITY;
  mask.data[9 + 0] = -1e30f;
  extra bias = make_extra(4, (int64_t[]){1, 3, 4, 9}, -2, 2);
  problem p = {2, 3, 3, 4, 9, 16, 16, 0.25f, false, &bias, &mask};
  free(check("bias and mask", &p));
  problem pm = {2, 3, 3, 4, 9, 16, 16, 0.25f, false, NULL, &mask};
  free(check("mask only", &pm));
  problem pb = {2, 3, 3, 4, 9, 16, 16, 0.25f, true, &bias, NULL};
  free(check("bias only, causal", &pb));
  /* a bias constant along keys [B,H,Sq,1] and a 2-D mask [Sq,Sk] */
  extra col = make_extra(4, (int64_t[]){2, 3, 4, 1}, -3, 3);
  extra m2 = make_extra(2, (int64_t[]){4, 9}, -1, 1);
  problem pc = {2, 3, 3, 4, 9, 16, 16, 0.25f, false, &col, &m2};
  free(check("column bias, 2-D mask", &pc));
  /* the same in blocks large enough for the packed path (scale, then bias
   * and mask, then softmax) */
  extra bigmask = make_extra(4, (int64_t[]){2, 1, 1, 90}, -1, 1);
  bigmask.data[89] = -INFINITY;
  extra bigbias = make_extra(4, (int64_t[]){1, 3, 61, 90}, -2, 2);
  problem pbig = {2, 3, 3, 61, 90, 24, 20, 0.2f, true, &bigbias, &bigmask};
  free(check("bias and mask, 61 x 90 causal", &pbig));
  free(bigmask.data);
  free(bigbias.data);
  free(mask.data);
  free(bias.data);
  free(col.data);
  free(m2.data);
}

static void test_causal_offsets(void) {
  /* fewer queries than keys: a block at the end of the sequence */
  problem p = {1, 2, 2, 3, 11, 8, 8, 0.5f, true, NULL, NULL};
  free(check("causal Sq < Sk", &p));
  /* more queries than keys: the first rows see nothing and give zeros */
  problem q = {1, 2, 2, 6, 3, 8, 5, 0.5f, true, NULL, NULL};
  float *got = check("causal Sq > Sk", &q);
  for (int h = 0; got && h < 2; h++)
    for (int i = 0; i < 3 * 5; i++)
      CHECK(got[h * 6 * 5 + i] == 0.0f);
  free(got);
  /* the large-block path with causality and a long prefix */
  problem big = {1, 2, 2, 130, 300, 40, 24, 0.15f, true, NULL, NULL};
  free(check("causal 130 x 300", &big));
}

static void test_gqa(void) {
  extra mask = make_extra(4, (int64_t[]){1, 1, 5, 12}, -1, 0);
  problem p = {2, 8, 2, 5, 12, 16, 8, 0.25f, true, NULL, &mask};
  free(check("grouped heads 8/2", &p));
  problem mq = {1, 6, 1, 70, 70, 32, 32, 0.18f, false, NULL, NULL};
  free(check("one kv head, 70 rows", &mq));
  free(mask.data);
}

static void test_fully_masked(void) {
  /* rows 1 and 3 of every head hidden entirely by the mask */
  int64_t ms[4] = {1, 1, 4, 6};
  extra mask = make_extra(4, ms, -1, 1);
  for (int j = 0; j < 6; j++)
    mask.data[1 * 6 + j] = mask.data[3 * 6 + j] = -INFINITY;
  problem p = {2, 2, 2, 4, 6, 8, 8, 0.3f, false, NULL, &mask};
  float *got = check("fully masked rows", &p);
  for (int bh = 0; got && bh < 4; bh++)
    for (int c = 0; c < 8; c++) {
      CHECK(got[(bh * 4 + 1) * 8 + c] == 0.0f);
      CHECK(got[(bh * 4 + 3) * 8 + c] == 0.0f);
    }
  free(got);
  /* and in the large-block path */
  extra big = make_extra(4, (int64_t[]){1, 1, 100, 90}, -1, 1);
  for (int j = 0; j < 90; j++)
    big.data[70 * 90 + j] = -INFINITY;
  problem pb = {1, 2, 2, 100, 90, 40, 40, 0.2f, false, NULL, &big};
  got = check("fully masked row, large", &pb);
  for (int h = 0; got && h < 2; h++)
    for (int c = 0; c < 40; c++)
      CHECK(got[(h * 100 + 70) * 40 + c] == 0.0f);
  free(got);
  free(mask.data);
  free(big.data);
}

static void test_sizes(void) {
  /* ViT-g: 16 heads of 88 over 257 patches */
  problem vit = {1, 16, 16, 257, 257, 88, 88, 1.0f / sqrtf(88.0f), false, NULL, NULL};
  float *a = check("ViT-g 16x257x257x88", &vit);
  /* deterministic, also across thread counts */
  test_seed(5);
  float *b = check("ViT-g again", &vit);
  test_seed(5);
  const char *env = getenv("VLZOO_THREADS");
  char *saved = env ? strdup(env) : NULL;
  setenv("VLZOO_THREADS", "1", 1);
  vz_backend *keep = be;
  be = test_backend();
  float *c = check("ViT-g, one thread", &vit);
  vz_backend_free(be);
  be = keep;
  if (saved)
    setenv("VLZOO_THREADS", saved, 1);
  else
    unsetenv("VLZOO_THREADS");
  free(saved);
  if (b && c)
    CHECK(memcmp(b, c, 16 * 257 * 88 * sizeof *b) == 0);
  free(a);
  free(b);
  free(c);
  /* odd sizes: a block of one row, head sizes 33 and 17 */
  problem odd = {2, 3, 1, 65, 130, 33, 17, 0.17f, false, NULL, NULL};
  free(check("odd 65x130, D 33, Dv 17", &odd));
  problem oddc = {1, 3, 3, 129, 129, 7, 3, 0.3f, true, NULL, NULL};
  free(check("odd causal 129", &oddc));
}

/* q, k and v as the heads of one fused projection [B, S, 3 H D] (the
 * model's layout: heads D apart, rows 3 H D apart), which the CPU reads in
 * place, and as views with strided elements (a transpose), which it takes
 * as contiguous copies; both against the reference on the same values. */
static void check_views(const char *what, int64_t b, int64_t h, int64_t s, int64_t d, bool causal) {
  const int64_t width = 3 * h * d;
  float *fused = test_random_floats(b * s * width, -1, 1);
  vz_tensor *ft = test_tensor(be, 3, (int64_t[]){b, s, width}, fused);
  vz_tensor *heads[3] = {NULL, NULL, NULL};
  float *host[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++) {
    vz_tensor *part = NULL, *split = NULL;
    CHECK_OK(vz_slice(ft, 2, i * h * d, (i + 1) * h * d, 1, &part));
    CHECK_OK(vz_reshape(part, 4, (int64_t[]){b, s, h, d}, &split));
    CHECK_OK(vz_permute(split, (const int[]){0, 2, 1, 3}, &heads[i])); /* [B, H, S, D] */
    CHECK(heads[i] && !vz_tensor_is_contiguous(heads[i]));
    host[i] = heads[i] ? test_read_f32(heads[i]) : NULL;
    vz_tensor_free(part);
    vz_tensor_free(split);
  }
  problem p = {b, h, h, s, s, d, d, 0.3f, causal, NULL, NULL};
  vz_tensor *out = NULL;
  CHECK_OK(vz_attention(heads[0], heads[1], heads[2], NULL, NULL, p.scale, causal, &out));
  if (host[0] && host[1] && host[2] && out) {
    float *got = test_read_f32(out), *want = reference(&p, host[0], host[1], host[2]);
    test_close(what, got, want, b * h * s * d, 2e-6f, 1e-4f);
    /* keys given transposed back: elements s apart, which the CPU takes as a
     * contiguous copy */
    vz_tensor *kt = NULL, *kd = NULL, *kview = NULL, *out2 = NULL;
    CHECK_OK(vz_transpose(heads[1], 2, 3, &kt)); /* [B, H, D, S] view */
    CHECK_OK(vz_copy(kt, &kd));                  /* stored as [B, H, D, S] */
    CHECK_OK(vz_transpose(kd, 2, 3, &kview));    /* [B, H, S, D], elements S apart */
    CHECK_OK(vz_attention(heads[0], kview, heads[2], NULL, NULL, p.scale, causal, &out2));
    float *got2 = out2 ? test_read_f32(out2) : NULL;
    test_close(what, got2, want, b * h * s * d, 2e-6f, 1e-4f);
    free(got);
    free(got2);
    free(want);
    vz_tensor *t[] = {kt, kd, kview, out2};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
      vz_tensor_free(t[i]);
  }
  vz_tensor *t[] = {heads[0], heads[1], heads[2], out, ft};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    vz_tensor_free(t[i]);
  for (int i = 0; i < 3; i++)
    free(host[i]);
  free(fused);
}

static void test_views(void) {
  check_views("views, small", 2, 3, 5, 8, false); /* dot products */
  check_views("views, causal", 1, 2, 9, 4, true);
  check_views("views, 70 rows", 1, 4, 70, 24, false); /* GEMMs or the packed tile */
  check_views("views, one row", 2, 2, 1, 6, false);
}

static void test_arity(void) {
  /* three inputs (no bias, no mask entries at all) and four */
  int64_t s[4] = {1, 2, 3, 4};
  float *x = test_random_floats(24, -1, 1);
  vz_tensor *t = test_tensor(be, 4, s, x), *out3 = NULL, *out5 = NULL;
  vz_op_call call = {.op = VZ_OP_ATTENTION, .n_inputs = 3, .inputs = {t, t, t}, .n_outputs = 1};
  call.attrs.attention.scale = 0.5f;
  CHECK_OK(vz_op_execute(&call));
  CHECK_OK(vz_attention(t, t, t, NULL, NULL, 0.5f, false, &out5));
  if (call.outputs[0] && out5) {
    float *g3 = test_read_f32(call.outputs[0]), *g5 = test_read_f32(out5);
    CHECK(memcmp(g3, g5, 24 * sizeof *g3) == 0);
    free(g3);
    free(g5);
  }
  out3 = call.outputs[0];
  vz_tensor_free(out3);
  vz_tensor_free(out5);
  vz_tensor_free(t);
  free(x);
}

static void test_errors(void) {
  float data[2 * 4 * 5 * 8] = {0};
  vz_tensor *q = test_tensor(be, 4, (int64_t[]){1, 4, 5, 8}, data);
  vz_tensor *k = test_tensor(be, 4, (int64_t[]){1, 2, 6, 8}, data);
  vz_tensor *v = test_tensor(be, 4, (int64_t[]){1, 2, 6, 3}, data);
  vz_tensor *out = NULL;
  vz_tensor *q3 = test_tensor(be, 3, (int64_t[]){4, 5, 8}, data);
  CHECK_FAILS(vz_attention(q3, k, v, NULL, NULL, 1, false, &out), VZ_ERR_SHAPE);
  vz_tensor *kd = test_tensor(be, 4, (int64_t[]){1, 2, 6, 7}, data);
  CHECK_FAILS(vz_attention(q, kd, v, NULL, NULL, 1, false, &out), VZ_ERR_SHAPE); /* D */
  vz_tensor *v5 = test_tensor(be, 4, (int64_t[]){1, 2, 5, 3}, data);
  CHECK_FAILS(vz_attention(q, k, v5, NULL, NULL, 1, false, &out), VZ_ERR_SHAPE); /* Sk */
  vz_tensor *k3 = test_tensor(be, 4, (int64_t[]){1, 3, 6, 8}, data);
  vz_tensor *v3 = test_tensor(be, 4, (int64_t[]){1, 3, 6, 3}, data);
  CHECK_FAILS(vz_attention(q, k3, v3, NULL, NULL, 1, false, &out), VZ_ERR_SHAPE); /* 4 % 3 */
  vz_tensor *kb = test_tensor(be, 4, (int64_t[]){2, 2, 6, 8}, data);
  CHECK_FAILS(vz_attention(q, kb, v, NULL, NULL, 1, false, &out), VZ_ERR_SHAPE); /* batch */
  vz_tensor *m = test_tensor(be, 2, (int64_t[]){5, 5}, data);
  CHECK_FAILS(vz_attention(q, k, v, NULL, m, 1, false, &out), VZ_ERR_SHAPE);
  CHECK_FAILS(vz_attention(q, k, v, m, NULL, 1, false, &out), VZ_ERR_SHAPE);
  uint16_t half[1 * 4 * 5 * 8] = {0};
  vz_tensor *qh = test_tensor_of(be, VZ_F16, 4, (int64_t[]){1, 4, 5, 8}, half);
  CHECK_FAILS(vz_attention(qh, k, v, NULL, NULL, 1, false, &out), VZ_ERR_DTYPE);
  CHECK(out == NULL);
  vz_tensor *t[] = {q, k, v, q3, kd, v5, k3, v3, kb, m, qh};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    vz_tensor_free(t[i]);
}

int main(void) {
  be = test_backend();
  test_seed(7);
  test_plain();
  test_bias_mask();
  test_causal_offsets();
  test_gqa();
  test_fully_masked();
  test_sizes();
  test_views();
  test_arity();
  test_errors();
  vz_backend_free(be);
  return test_finish("op_attention");
}
