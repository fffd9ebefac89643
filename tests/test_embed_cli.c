/* `vlzoo embed` end to end against Hugging Face: the built program runs on
 * the Hugging Face folder tests/fixtures/embed_tiny (a small
 * Blip2ForImageTextRetrieval with 224-px input and the real 30,523-row
 * vocabulary; tests/fixtures/make_embed_reference.py) with a real photo and a
 * real sentence from ../shared/assets; every value of its --json output must
 * match expected.json, which transformers computed from the same folder and
 * inputs. Also the failure exits: 1 with a message for a missing image and an
 * unknown model, 2 for nothing to embed.
 *
 * The program is argv[1]; without it $VLZOO_CLI, then `vlzoo` in this test's
 * folder's parent (the build tree's layout). Skips (77) without
 * VLZOO_FIXTURES_DIR or the shared assets. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fileno */

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_util.h"

#define TEXT "a large fountain spewing water into the air"

/* Per output: max |got - want| <= ABS_TOL * max(1, max |want|), and for
 * vectors cos(got, want) >= MIN_COSINE. */
#define ABS_TOL 1e-4
#define MIN_COSINE 0.99999

static char cli[PATH_MAX];

typedef struct run_result {
  int exit_code; /* -1 when it did not exit normally */
  char *out, *err;
} run_result;

static void run_result_free(run_result *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

static int temp_file(void) {
  char path[] = "/tmp/vlzoo-embed-cli-XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0)
    unlink(path);
  return fd;
}

static char *read_all(int fd) {
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (!buf || lseek(fd, 0, SEEK_SET) < 0) {
    free(buf);
    return NULL;
  }
  for (;;) {
    if (len + 1 == cap) {
      char *b = realloc(buf, cap *= 2);
      if (!b) {
        free(buf);
        return NULL;
      }
      buf = b;
    }
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  return buf;
}

/* Runs cli with args (NULL-terminated, args[0] the program name) through
 * fork + execv: no shell, so paths and text go through as they are. stdout
 * and stderr go to temporary files (no pipe to fill up). */
static bool run_cli(const char *const *args, run_result *r) {
  *r = (run_result){.exit_code = -1};
  int out = temp_file(), err = temp_file();
  if (out < 0 || err < 0) {
    fprintf(stderr, "cannot make temporary files: %s\n", strerror(errno));
    return false;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "fork: %s\n", strerror(errno));
    close(out);
    close(err);
    return false;
  }
  if (pid == 0) {
    if (dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
      _exit(126);
    execv(cli, (char *const *)args);
    fprintf(stderr, "cannot run %s: %s\n", cli, strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      fprintf(stderr, "waitpid: %s\n", strerror(errno));
      close(out);
      close(err);
      return false;
    }
  }
  r->out = read_all(out);
  r->err = read_all(err);
  close(out);
  close(err);
  if (WIFEXITED(status))
    r->exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    fprintf(stderr, "%s was killed by signal %d\n", cli, WTERMSIG(status));
  return r->out && r->err;
}

/* ---- Comparing the JSON values ---- */

/* The numbers of a nested JSON array (or of one number) in row-major order,
 * and its shape, read from the first element at each level; every row must
 * have that shape. */
typedef struct values {
  double *v;
  size_t n;
  int ndim;
  size_t shape[4];
} values;

static bool is_number(json_object *o) {
  return json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int);
}

static bool flatten(json_object *o, int depth, values *out) {
  if (depth == out->ndim) {
    if (!is_number(o))
      return false;
    out->v[out->n++] = json_object_get_double(o);
    return true;
  }
  if (!json_object_is_type(o, json_type_array) || json_object_array_length(o) != out->shape[depth])
    return false;
  for (size_t i = 0; i < out->shape[depth]; i++)
    if (!flatten(json_object_array_get_idx(o, i), depth + 1, out))
      return false;
  return true;
}

static bool values_of(json_object *o, values *out) {
  *out = (values){0};
  size_t count = 1;
  for (json_object *p = o; json_object_is_type(p, json_type_array);
       p = json_object_array_get_idx(p, 0)) {
    size_t len = json_object_array_length(p);
    if (out->ndim == 4 || len == 0)
      return false;
    out->shape[out->ndim++] = len;
    count *= len;
  }
  out->v = malloc(count * sizeof *out->v);
  return out->v && flatten(o, 0, out) && out->n == count;
}

static void shape_text(const values *v, char *buf, size_t size) {
  int used = snprintf(buf, size, "[");
  for (int d = 0; d < v->ndim && used < (int)size; d++)
    used += snprintf(buf + used, size - (size_t)used, d ? " x %zu" : "%zu", v->shape[d]);
  if (used < (int)size)
    snprintf(buf + used, size - (size_t)used, "]");
}

/* Compares one output; prints its figures. */
static void compare(const char *key, json_object *want_obj, json_object *got_obj) {
  values want, got;
  if (!values_of(want_obj, &want)) {
    fprintf(stderr, "expected.json: '%s' is not a regular array of numbers\n", key);
    test_failures++;
    free(want.v);
    return;
  }
  if (!got_obj) {
    fprintf(stderr, "vlzoo embed --json printed no '%s'\n", key);
    test_failures++;
    free(want.v);
    return;
  }
  char ws[64], gs[64];
  bool same_shape = values_of(got_obj, &got) && got.ndim == want.ndim &&
                    memcmp(got.shape, want.shape, sizeof want.shape[0] * (size_t)want.ndim) == 0;
  shape_text(&want, ws, sizeof ws);
  if (!same_shape) {
    shape_text(&got, gs, sizeof gs);
    fprintf(stderr, "%s: shape %s, expected %s (or not numbers)\n", key, gs, ws);
    test_failures++;
    free(want.v);
    free(got.v);
    return;
  }
  double max_ref = 0, max_err = 0, dot = 0, gg = 0, ww = 0;
  size_t worst = 0;
  bool finite = true;
  for (size_t i = 0; i < want.n; i++) {
    double g = got.v[i], w = want.v[i], e = fabs(g - w);
    finite = finite && isfinite(g);
    if (fabs(w) > max_ref)
      max_ref = fabs(w);
    if (!(e <= max_err)) { /* NaN counts as the worst */
      max_err = e;
      worst = i;
    }
    dot += g * w;
    gg += g * g;
    ww += w * w;
  }
  double tol = ABS_TOL * (max_ref > 1 ? max_ref : 1);
  bool vector = want.n > 1;
  double cosine = vector ? dot / sqrt(gg * ww) : 1;
  bool ok = finite && max_err <= tol && (!vector || cosine >= MIN_COSINE);
  if (vector)
    printf("%-13s %s: max abs err %.3g (tol %.3g), cosine %.9f %s\n", key, ws, max_err, tol, cosine,
           ok ? "ok" : "MISMATCH");
  else
    printf("%-13s scalar: %.9g vs %.9g, abs err %.3g (tol %.3g) %s\n", key, got.v[0], want.v[0],
           max_err, tol, ok ? "ok" : "MISMATCH");
  if (!ok) {
    fprintf(stderr, "%s: element %zu is %.9g, expected %.9g\n", key, worst, got.v[worst],
            want.v[worst]);
    test_failures++;
  }
  free(want.v);
  free(got.v);
}

/* ---- The cases ---- */

static void check_match(const char *model, const char *image, const char *vocab,
                        const char *expected_path) {
  const char *args[] = {"vlzoo",  "embed", "--model",     model, "--image", image,
                        "--text", TEXT,    "--tokenizer", vocab, "--json",  NULL};
  run_result r;
  if (!run_cli(args, &r) || r.exit_code != 0) {
    fprintf(stderr, "vlzoo embed exited %d; stderr:\n%s\n", r.exit_code, r.err ? r.err : "");
    test_failures++;
    run_result_free(&r);
    return;
  }
  json_object *got = json_tokener_parse(r.out);
  json_object *want = json_object_from_file(expected_path);
  if (!want) {
    fprintf(stderr, "cannot read %s\n", expected_path);
    test_failures++;
  } else if (!got || !json_object_is_type(got, json_type_object)) {
    fprintf(stderr, "vlzoo embed --json printed no JSON object:\n%.400s\n", r.out);
    test_failures++;
  } else {
    CHECK(json_object_object_length(got) == json_object_object_length(want));
    json_object_object_foreach(want, key, value) {
      json_object *g = NULL;
      json_object_object_get_ex(got, key, &g);
      compare(key, value, g);
    }
  }
  json_object_put(got);
  json_object_put(want);
  run_result_free(&r);
}

/* A run that must fail with `exit_code`, print nothing on stdout and say
 * something containing `message` on stderr. */
static void check_fails(const char *what, const char *const *args, int exit_code,
                        const char *message) {
  run_result r;
  bool ran = run_cli(args, &r);
  bool ok = ran && r.exit_code == exit_code && r.out[0] == '\0' && strstr(r.err, "vlzoo embed: ") &&
            strstr(r.err, message);
  printf("%-13s exit %d, stderr: %.*s\n", what, r.exit_code, r.err ? (int)strcspn(r.err, "\n") : 0,
         r.err ? r.err : "");
  if (!ok) {
    fprintf(stderr,
            "%s: expected exit %d, an empty stdout and '%s' on stderr; got exit %d\n"
            "stdout: %.300s\nstderr: %.300s\n",
            what, exit_code, message, r.exit_code, r.out ? r.out : "", r.err ? r.err : "");
    test_failures++;
  }
  run_result_free(&r);
}

static bool find_cli(int argc, char **argv) {
  const char *given = argc > 1 ? argv[1] : getenv("VLZOO_CLI");
  if (given && *given) {
    snprintf(cli, sizeof cli, "%s", given);
    return access(cli, X_OK) == 0;
  }
  /* the build tree: BUILD/tests/test_embed_cli beside BUILD/vlzoo */
  char self[PATH_MAX - 16]; /* room for the "/../vlzoo" added below */
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    return false;
  self[n] = '\0';
  char *slash = strrchr(self, '/');
  if (!slash)
    return false;
  *slash = '\0';
  snprintf(cli, sizeof cli, "%s/../vlzoo", self);
  if (access(cli, X_OK) == 0)
    return true;
  snprintf(cli, sizeof cli, "%s/vlzoo", self);
  return access(cli, X_OK) == 0;
}

int main(int argc, char **argv) {
  const char *fixtures = test_fixtures_dir();
  const char *assets = test_assets_dir();
  if (!fixtures) {
    printf("skip: VLZOO_FIXTURES_DIR is not set\n");
    return TEST_SKIP;
  }
  char model[PATH_MAX], expected[PATH_MAX], image[PATH_MAX], vocab[PATH_MAX];
  char missing[PATH_MAX];
  test_path_join(model, sizeof model, fixtures, "embed_tiny");
  test_path_join(expected, sizeof expected, model, "expected.json");
  test_path_join(missing, sizeof missing, model, "no such image.png");
  if (assets) {
    test_path_join(image, sizeof image, assets, "images/merlion.png");
    test_path_join(vocab, sizeof vocab, assets, "tokenizers/bert-base-uncased-vocab.txt");
  }
  if (!assets || access(image, R_OK) != 0 || access(vocab, R_OK) != 0) {
    printf("skip: the shared assets (images/merlion.png, "
           "tokenizers/bert-base-uncased-vocab.txt) are not in %s\n",
           assets ? assets : "(VLZOO_ASSETS_DIR unset)");
    return TEST_SKIP;
  }
  if (!find_cli(argc, argv)) {
    fprintf(stderr, "no vlzoo program to run (argv[1], $VLZOO_CLI or the build tree): %s\n", cli);
    return 1;
  }
  printf("running %s\n", cli);

  check_match(model, image, vocab, expected);

  const char *no_image[] = {"vlzoo", "embed", "--model", model, "--image", missing, "--json", NULL};
  check_fails("missing image", no_image, 1, "no such image.png");
  const char *unknown[] = {"vlzoo",   "embed", "--model", "blip2_stage1_vitg",
                           "--image", image,   "--json",  NULL};
  check_fails("unknown model", unknown, 1, "unknown model 'blip2_stage1_vitg'");
  const char *nothing[] = {"vlzoo",       "embed", "--model", model,
                           "--tokenizer", vocab,   "--json",  NULL};
  check_fails("no input", nothing, 2, "nothing to embed");
  return test_finish("test_embed_cli");
}
