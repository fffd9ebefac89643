/* MindSpore .ckpt files written by MindSpore itself (tests/fixtures/weights/,
 * see VERSIONS.txt there; one saved with crc_check=True), compared with
 * their sidecars, and hostile ones (tests/fixtures/hostile/ckpt_*), each of
 * which must fail with the expected status and message. Needs
 * VLZOO_FIXTURES_DIR.
 *
 * `test_ckpt_mindspore --write DIR` instead writes .ckpt files with vlzoo's
 * writer, with sidecars, for tests/check_ckpt_with_mindspore.py to load
 * with mindspore.load_checkpoint. */
#include "convert/source.h"
#include "tests/weights_fixtures.h"

static const expected_failure k_bad[] = {
    {"hostile", "ckpt_len_past_eof.ckpt", VZ_ERR_FORMAT,
     "length 1000000 runs past the end of the file"},
    {"hostile", "ckpt_truncated_content.ckpt", VZ_ERR_FORMAT,
     "tensor_content at byte 48: length 1000 runs past the end of the TensorProto"},
    {"hostile", "ckpt_dims_overflow.ckpt", VZ_ERR_FORMAT, "shape overflows the size of a tensor"},
    {"hostile", "ckpt_11_dims.ckpt", VZ_ERR_FORMAT, "11 dimensions"},
    {"hostile", "ckpt_bad_crc.ckpt", VZ_ERR_FORMAT, "CRC-32 mismatch"},
    {"hostile", "ckpt_maptensor.ckpt", VZ_ERR_UNSUPPORTED, "map tensors are not supported"},
    {"weights", "ms_u16.ckpt", VZ_ERR_UNSUPPORTED, "'counts': tensor_type UInt16 is not supported"},
};

/* ---- --write: files for check_ckpt_with_mindspore.py ---- */

typedef struct written {
  const char *name;
  vz_dtype dtype;
  int ndim;
  int64_t shape[VZ_WEIGHT_MAX_DIMS];
} written;

static const written k_written[] = {
    {"w.f32", VZ_F32, 2, {3, 4}},
    {"w.f16", VZ_F16, 1, {6}},
    {"w.bf16", VZ_BF16, 2, {2, 3}},
    {"w.f64", VZ_F64, 1, {2}},
    {"w.i64", VZ_I64, 1, {3}},
    {"w.i32", VZ_I32, 2, {2, 2}},
    {"w.i16", VZ_I16, 1, {3}},
    {"w.i8", VZ_I8, 1, {5}},
    {"w.u8", VZ_U8, 1, {4}},
    {"w.bool", VZ_BOOL, 1, {3}},
    {"w.scalar", VZ_F32, 0, {0}},
    {"w.int_scalar", VZ_I32, 0, {0}},
    {"w.eight_d", VZ_F32, 8, {1, 2, 1, 2, 1, 1, 2, 1}},
    {"w.empty", VZ_I16, 2, {0, 3}},
};

static int write_files(const char *dir) {
  enum { N = sizeof(k_written) / sizeof(k_written[0]) };
  uint8_t *data[N];
  size_t nbytes[N];
  test_seed(11);
  for (int i = 0; i < N; i++) {
    size_t numel = 1;
    for (int d = 0; d < k_written[i].ndim; d++) {
      numel *= (size_t)k_written[i].shape[d];
    }
    size_t es = vz_dtype_size(k_written[i].dtype);
    nbytes[i] = numel * es;
    data[i] = malloc(nbytes[i] ? nbytes[i] : 1);
    for (size_t k = 0; k < numel; k++) {
      /* Values any float type holds exactly; any bits for integers. */
      float v = (float)((int)(test_next() % 64) - 32) / 4.0f;
      uint64_t bits = test_next();
      switch (k_written[i].dtype) {
      case VZ_F32: memcpy(data[i] + k * es, &v, 4); break;
      case VZ_F64: {
        double dv = v;
        memcpy(data[i] + k * es, &dv, 8);
        break;
      }
      case VZ_F16: {
        uint16_t h = vz_f32_to_f16(v);
        memcpy(data[i] + k * es, &h, 2);
        break;
      }
      case VZ_BF16: {
        uint16_t h = vz_f32_to_bf16(v);
        memcpy(data[i] + k * es, &h, 2);
        break;
      }
      case VZ_BOOL: data[i][k] = (uint8_t)(bits & 1); break;
      default: memcpy(data[i] + k * es, &bits, es); break;
      }
    }
  }
  int rc = 0;
  static const struct {
    const char *file;
    size_t slice;
  } files[] = {{"vlzoo_dtypes.ckpt", 0}, {"vlzoo_sliced.ckpt", 8}};
  size_t saved = vz_ckpt_slice_bytes;
  for (int f = 0; f < 2 && rc == 0; f++) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, files[f].file);
    if (files[f].slice) {
      vz_ckpt_slice_bytes = files[f].slice;
    }
    vz_weights_writer *wr = NULL;
    vz_status st = vz_weights_writer_open(path, VZ_FORMAT_MINDSPORE_CKPT, &wr);
    for (int i = 0; i < N && st == VZ_OK; i++) {
      st = vz_weights_writer_add(wr, k_written[i].name, k_written[i].dtype, k_written[i].ndim,
                                 k_written[i].shape, data[i], nbytes[i]);
    }
    if (st == VZ_OK) {
      st = vz_weights_writer_commit(wr);
    } else {
      vz_weights_writer_abort(wr);
    }
    vz_ckpt_slice_bytes = saved;
    if (st != VZ_OK) {
      fprintf(stderr, "writing %s: %s\n", path, vz_last_error());
      rc = 1;
      break;
    }
    char side[1100];
    snprintf(side, sizeof(side), "%s.json", path);
    FILE *out = fopen(side, "w");
    if (!out) {
      rc = 1;
      break;
    }
    fprintf(out, "{\"file\": \"%s\", \"tensors\": [\n", files[f].file);
    for (int i = 0; i < N; i++) {
      char hex[65];
      vz_sha256_hex(data[i], nbytes[i], hex);
      fprintf(out, " {\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": [", k_written[i].name,
              vz_dtype_name(k_written[i].dtype));
      for (int d = 0; d < k_written[i].ndim; d++) {
        fprintf(out, "%s%lld", d ? ", " : "", (long long)k_written[i].shape[d]);
      }
      fprintf(out, "], \"sha256\": \"%s\"}%s\n", hex, i + 1 < N ? "," : "");
    }
    fprintf(out, "]}\n");
    if (fclose(out) != 0) {
      rc = 1;
    }
  }
  for (int i = 0; i < N; i++) {
    free(data[i]);
  }
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--write") == 0) {
    return write_files(argv[2]);
  }
  check_against_sidecar("weights", "ms_dtypes.ckpt", "mindspore-ckpt");
  check_against_sidecar("weights", "ms_crc.ckpt", "mindspore-ckpt");
  check_failures(k_bad, sizeof(k_bad) / sizeof(k_bad[0]));
  return test_finish("test_ckpt_mindspore");
}
