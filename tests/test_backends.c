/* Every op on every backend against the CPU backend, from one table of
 * cases (the model is ggml's test-backend-ops). Each case builds the same
 * inputs (odd sizes, views with transposed, sliced, reversed and broadcast
 * strides, special values where an op defines them) on the CPU and on the
 * backend under test, runs the op on both, and compares:
 *   - floats by normalized squared error sum((got - cpu)^2) / sum(cpu^2)
 *     against the case's tolerance, with NaN and infinities required at the
 *     same places (same sign), integers and 16-bit floats exactly;
 *   - the bytes around each output: outputs are views into larger buffers
 *     filled with a pattern, which must be intact afterwards (writes past
 *     either end of the output);
 *   - host transfers during the op: a case the backend runs natively moves
 *     nothing, one it lacks falls back to the CPU (inputs down, results up)
 *     and is reported, not failed. The OpenCL backend must run every f32
 *     case natively.
 * Every op of the op table must have a case. Also: failures a device
 * reports late (an index out of range, an integer division by zero)
 * surface at the next read with the CPU's message; work is split to fit
 * the device's largest buffer; OpenCL's program cache is written, read,
 * and rebuilt when corrupt. Backends other than the CPU that cannot start
 * here are skipped with a message; with none, the test is skipped. */
#define _POSIX_C_SOURCE 200809L /* setenv, mkdtemp, dirent */
#include <dirent.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "backends/cpu/cpu_matmul.h"
#include "tests/test_util.h"

enum { GUARD_BYTES = 64, MAX_IN = 5 };

typedef enum fill {
  FILL_UNIFORM,  /* floats uniform in [lo, hi); integers uniform in [lo, hi]; bool 0/1 */
  FILL_INTEGRAL, /* float-typed whole numbers in [lo, hi] (ties for argmax, top-k) */
  FILL_SPECIAL,  /* floats with NaN, infinities, zeros, huge and tiny values mixed in */
} fill;

typedef enum view {
  VIEW_NONE,
  VIEW_TRANSPOSE, /* stored with the last two dimensions swapped */
  VIEW_SLICE,     /* every other element of a last dimension twice as long, from 1 */
  VIEW_REVERSE,   /* dimension 0 walked backwards (negative stride) */
  VIEW_EXPAND,    /* stored with dimension 0 of size 1, broadcast (stride 0) */
} view;

typedef struct input_spec {
  bool present;
  vz_dtype dtype;
  int ndim;
  int64_t shape[VZ_MAX_DIMS];
  float lo, hi;
  fill fill;
  view view;
} input_spec;

typedef struct op_case {
  const char *name;
  vz_op_kind op;
  int n_inputs;
  input_spec in[MAX_IN];
  vz_op_attrs attrs;
  double tol; /* normalized squared error allowed for float outputs; 0 means 1e-10 */
  /* 1e-5 allowed instead where the CPU reference takes f16 products */
  bool half_products;
} op_case;

#define F32(...)                                                                                   \
  { true, VZ_F32, VZ_NARGS(__VA_ARGS__), {__VA_ARGS__}, -2, 2, FILL_UNIFORM, VIEW_NONE }
#define T(dtype, lo, hi, fill, view, ...)                                                          \
  { true, dtype, VZ_NARGS(__VA_ARGS__), {__VA_ARGS__}, lo, hi, fill, view }
#define ABSENT                                                                                     \
  { false, VZ_F32, 0, {0}, 0, 0, FILL_UNIFORM, VIEW_NONE }
#define VZ_NARGS(...) VZ_NARGS_(__VA_ARGS__, 4, 3, 2, 1, 0)
#define VZ_NARGS_(a, b, c, d, n, ...) n
#define CASE(NAME, OP, N, ...) .name = NAME, .op = OP, .n_inputs = N, .in = {__VA_ARGS__}
#define U FILL_UNIFORM
#define I FILL_INTEGRAL
#define S FILL_SPECIAL

static const op_case cases[] = {
    /* ---- matmul: layouts, batches, dtypes, edges of the kernels' tiles ---- */
    {CASE("matmul nn", VZ_OP_MATMUL, 2, F32(37, 29), F32(29, 41))},
    {CASE("matmul nt (weight [N, K])", VZ_OP_MATMUL, 2, F32(37, 70), F32(41, 70)),
     .attrs.matmul = {false, true}},
    {CASE("matmul tn", VZ_OP_MATMUL, 2, F32(29, 37), F32(29, 41)), .attrs.matmul = {true, false}},
    {CASE("matmul tt", VZ_OP_MATMUL, 2, F32(29, 13), F32(11, 29)), .attrs.matmul = {true, true}},
    {CASE("matmul row vector", VZ_OP_MATMUL, 2, F32(1, 33), F32(17, 33)),
     .attrs.matmul = {false, true}},
    {CASE("matmul column", VZ_OP_MATMUL, 2, F32(19, 33), F32(1, 33)),
     .attrs.matmul = {false, true}},
    {CASE("matmul k=1", VZ_OP_MATMUL, 2, F32(9, 1), F32(1, 10))},
    {CASE("matmul k=0", VZ_OP_MATMUL, 2, F32(5, 0), F32(0, 3))},
    {CASE("matmul batched a, shared b", VZ_OP_MATMUL, 2, F32(3, 17, 13), F32(19, 13)),
     .attrs.matmul = {false, true}},
    {CASE("matmul broadcast batches", VZ_OP_MATMUL, 2, F32(2, 1, 5, 7), F32(3, 7, 4))},
    {CASE("matmul 4-d", VZ_OP_MATMUL, 2, F32(2, 3, 9, 8), F32(2, 3, 8, 6))},
    {CASE("matmul transposed view a", VZ_OP_MATMUL, 2, T(VZ_F32, -1, 1, U, VIEW_TRANSPOSE, 23, 18),
          F32(18, 21))},
    {CASE("matmul sliced b", VZ_OP_MATMUL, 2, F32(12, 15), T(VZ_F32, -1, 1, U, VIEW_SLICE, 11, 15)),
     .attrs.matmul = {false, true}},
    /* the CPU's avx512fp16 path rounds a to f16 and sums f16 products for
     * f16 and bf16 weights (normwise error about 1e-3, op_matmul checks its
     * bound), where other backends widen f16 exactly and take a at bf16
     * precision for bf16 */
    {CASE("matmul bf16 weight", VZ_OP_MATMUL, 2, F32(33, 40),
          T(VZ_BF16, -1, 1, U, VIEW_NONE, 27, 40)),
     .attrs.matmul = {false, true}, .half_products = true},
    {CASE("matmul f16 weight", VZ_OP_MATMUL, 2, F32(33, 40),
          T(VZ_F16, -1, 1, U, VIEW_NONE, 27, 40)),
     .attrs.matmul = {false, true}, .half_products = true},
    {CASE("matmul bf16 a", VZ_OP_MATMUL, 2, T(VZ_BF16, -1, 1, U, VIEW_NONE, 6, 9), F32(9, 5))},
    {CASE("matmul batched a, bf16 weight", VZ_OP_MATMUL, 2, F32(2, 26, 32),
          T(VZ_BF16, -1, 1, U, VIEW_NONE, 96, 32)),
     .attrs.matmul = {false, true}, .half_products = true},
    {CASE("matmul big tiles", VZ_OP_MATMUL, 2, F32(65, 131), F32(97, 131)),
     .attrs.matmul = {false, true}},
    {CASE("matmul big nn", VZ_OP_MATMUL, 2, F32(61, 77), F32(77, 83))},

    {CASE("linear gelu", VZ_OP_LINEAR, 3, F32(2, 9, 33), F32(40, 33), F32(40)),
     .attrs.linear = {VZ_OP_GELU_ERF}, .tol = 1e-9},
    {CASE("linear bf16, residual", VZ_OP_LINEAR, 4, F32(17, 20),
          T(VZ_BF16, -1, 1, U, VIEW_NONE, 30, 20), F32(30), F32(17, 30)),
     .attrs.linear = {VZ_OP_COUNT}, .half_products = true},
    {CASE("linear vector silu", VZ_OP_LINEAR, 2, F32(25), F32(7, 25)), .attrs.linear = {VZ_OP_SILU},
     .tol = 1e-9},
    {CASE("linear of views", VZ_OP_LINEAR, 4, T(VZ_F32, -1, 1, U, VIEW_TRANSPOSE, 6, 11),
          T(VZ_F32, -1, 1, U, VIEW_SLICE, 5, 11), ABSENT, T(VZ_F32, -1, 1, U, VIEW_EXPAND, 6, 5)),
     .attrs.linear = {VZ_OP_SIGMOID}, .tol = 1e-9},

    /* ---- element-wise ---- */
    {CASE("add broadcast", VZ_OP_ADD, 2, F32(4, 1, 6), F32(5, 1))},
    {CASE("sub transposed", VZ_OP_SUB, 2, T(VZ_F32, -2, 2, U, VIEW_TRANSPOSE, 7, 9), F32(9))},
    {CASE("mul expanded", VZ_OP_MUL, 2, T(VZ_F32, -2, 2, U, VIEW_EXPAND, 3, 8), F32(3, 8))},
    {CASE("div", VZ_OP_DIV, 2, F32(5, 130), T(VZ_F32, 0.5f, 2, U, VIEW_NONE, 5, 130))},
    {CASE("add special", VZ_OP_ADD, 2, T(VZ_F32, -3, 3, S, VIEW_NONE, 40),
          T(VZ_F32, -3, 3, S, VIEW_NONE, 40))},
    {CASE("add i32", VZ_OP_ADD, 2, T(VZ_I32, -1000, 1000, U, VIEW_NONE, 3, 7),
          T(VZ_I32, -9, 9, U, VIEW_NONE, 7))},
    {CASE("div i32", VZ_OP_DIV, 2, T(VZ_I32, -1000, 1000, U, VIEW_NONE, 30),
          T(VZ_I32, 1, 9, U, VIEW_REVERSE, 30))},
    {CASE("mul i64", VZ_OP_MUL, 2, T(VZ_I64, -100000, 100000, U, VIEW_NONE, 4, 5),
          T(VZ_I64, -100000, 100000, U, VIEW_NONE, 4, 1))},
    {CASE("sub i64", VZ_OP_SUB, 2, T(VZ_I64, -50, 50, U, VIEW_SLICE, 6, 5),
          T(VZ_I64, -50, 50, U, VIEW_NONE, 5))},
    {CASE("scale", VZ_OP_SCALE, 1, F32(3, 257)), .attrs.scale = {-0.37f}},
    {CASE("gelu_erf", VZ_OP_GELU_ERF, 1, T(VZ_F32, -8, 8, U, VIEW_NONE, 3, 257)), .tol = 1e-9},
    {CASE("gelu_tanh", VZ_OP_GELU_TANH, 1, T(VZ_F32, -8, 8, U, VIEW_NONE, 3, 257)), .tol = 1e-9},
    {CASE("quick_gelu", VZ_OP_QUICK_GELU, 1, T(VZ_F32, -8, 8, U, VIEW_NONE, 3, 257)), .tol = 1e-9},
    {CASE("silu", VZ_OP_SILU, 1, T(VZ_F32, -8, 8, U, VIEW_NONE, 5, 61)), .tol = 1e-9},
    {CASE("relu special", VZ_OP_RELU, 1, T(VZ_F32, -4, 4, S, VIEW_NONE, 67))},
    {CASE("sigmoid", VZ_OP_SIGMOID, 1, T(VZ_F32, -12, 12, U, VIEW_NONE, 2, 99)), .tol = 1e-9},
    {CASE("sigmoid far tails", VZ_OP_SIGMOID, 1, T(VZ_F32, -110, 110, S, VIEW_NONE, 97)),
     .tol = 1e-9},
    {CASE("silu special", VZ_OP_SILU, 1, T(VZ_F32, -110, 110, S, VIEW_NONE, 97)), .tol = 1e-9},
    {CASE("gelu of a view", VZ_OP_GELU_ERF, 1, T(VZ_F32, -3, 3, U, VIEW_TRANSPOSE, 6, 11)),
     .tol = 1e-9},
    {CASE("where f32", VZ_OP_WHERE, 3, T(VZ_BOOL, 0, 1, U, VIEW_NONE, 4, 1), F32(4, 7),
          T(VZ_F32, -1, 1, U, VIEW_TRANSPOSE, 4, 7))},
    {CASE("where i64 u8 cond", VZ_OP_WHERE, 3, T(VZ_U8, 0, 1, U, VIEW_NONE, 2, 3, 5),
          T(VZ_I64, -9, 9, U, VIEW_NONE, 5), T(VZ_I64, -9, 9, U, VIEW_EXPAND, 2, 3, 5))},
    {CASE("where u8 values", VZ_OP_WHERE, 3, T(VZ_BOOL, 0, 1, U, VIEW_NONE, 9),
          T(VZ_U8, 0, 255, U, VIEW_NONE, 9), T(VZ_U8, 0, 255, U, VIEW_NONE, 1))},

    /* ---- reductions and scans ---- */
    {CASE("sum axis 0", VZ_OP_SUM, 1, F32(7, 5, 3)), .attrs.reduce = {0, false}},
    {CASE("mean axis 1 keepdim", VZ_OP_MEAN, 1, F32(7, 5, 3)), .attrs.reduce = {1, true}},
    {CASE("max last axis", VZ_OP_MAX, 1, F32(6, 300)), .attrs.reduce = {-1, false}},
    {CASE("max with NaN", VZ_OP_MAX, 1, T(VZ_F32, -3, 3, S, VIEW_NONE, 4, 10)),
     .attrs.reduce = {1, false}},
    {CASE("sum of a view", VZ_OP_SUM, 1, T(VZ_F32, -1, 1, U, VIEW_TRANSPOSE, 9, 4)),
     .attrs.reduce = {1, false}},
    {CASE("softmax masked", VZ_OP_SOFTMAX, 2, F32(2, 3, 5, 7), F32(3, 1, 7)),
     .attrs.softmax = {0.5f, false}, .tol = 1e-9},
    {CASE("softmax causal", VZ_OP_SOFTMAX, 1, T(VZ_F32, -5, 5, U, VIEW_NONE, 2, 4, 9)),
     .attrs.softmax = {1.25f, true}, .tol = 1e-9},
    {CASE("softmax mask along rows", VZ_OP_SOFTMAX, 2, F32(2, 3, 4, 21), F32(3, 1, 21)),
     .attrs.softmax = {0.7f, false}, .tol = 1e-9},
    {CASE("softmax mask per row, causal", VZ_OP_SOFTMAX, 2, F32(2, 3, 19, 37), F32(2, 1, 19, 1)),
     .attrs.softmax = {1.1f, true}, .tol = 1e-9},
    {CASE("softmax special", VZ_OP_SOFTMAX, 1, T(VZ_F32, -3, 3, S, VIEW_NONE, 6, 29)),
     .attrs.softmax = {1.0f, false}, .tol = 1e-9},
    {CASE("softmax long rows", VZ_OP_SOFTMAX, 1, T(VZ_F32, -20, 20, U, VIEW_NONE, 3, 1000)),
     .attrs.softmax = {1.0f, false}, .tol = 1e-9},
    {CASE("softmax hidden rows", VZ_OP_SOFTMAX, 2, F32(2, 6),
          T(VZ_F32, -1e30f, -1e30f, U, VIEW_NONE, 2, 6)),
     .attrs.softmax = {1.0f, false}},
    {CASE("argmax ties", VZ_OP_ARGMAX, 1, T(VZ_F32, 0, 3, I, VIEW_NONE, 5, 8)), .attrs.axis = {1}},
    {CASE("argmax axis 0", VZ_OP_ARGMAX, 1, F32(11, 4)), .attrs.axis = {0}},
    {CASE("topk ties", VZ_OP_TOPK, 1, T(VZ_F32, 0, 4, I, VIEW_NONE, 4, 10)), .attrs.topk = {3}},
    {CASE("topk all", VZ_OP_TOPK, 1, F32(3, 17)), .attrs.topk = {17}},
    {CASE("cumsum f32", VZ_OP_CUMSUM, 1, F32(4, 9)), .attrs.axis = {1}},
    {CASE("cumsum i32 axis 0", VZ_OP_CUMSUM, 1, T(VZ_I32, -99, 99, U, VIEW_NONE, 6, 3)),
     .attrs.axis = {0}},
    {CASE("cumsum i64", VZ_OP_CUMSUM, 1, T(VZ_I64, 0, 5, U, VIEW_NONE, 2, 3, 4)),
     .attrs.axis = {-1}},

    /* ---- normalization ---- */
    {CASE("layer_norm", VZ_OP_LAYER_NORM, 3, F32(5, 77), F32(77), F32(77)), .attrs.norm = {1e-5f}},
    {CASE("layer_norm plain", VZ_OP_LAYER_NORM, 1, T(VZ_F32, 3, 5, U, VIEW_NONE, 2, 3, 16)),
     .attrs.norm = {1e-6f}},
    {CASE("layer_norm of a view", VZ_OP_LAYER_NORM, 3, T(VZ_F32, -2, 2, U, VIEW_TRANSPOSE, 9, 12),
          F32(12), ABSENT),
     .attrs.norm = {1e-12f}},
    {CASE("rms_norm", VZ_OP_RMS_NORM, 2, F32(6, 45), F32(45)), .attrs.norm = {1e-6f}},
    {CASE("l2_normalize last", VZ_OP_L2_NORMALIZE, 1, F32(4, 33)), .attrs.l2 = {-1, 1e-12f}},
    {CASE("l2_normalize axis 1", VZ_OP_L2_NORMALIZE, 1, F32(3, 5, 7)), .attrs.l2 = {1, 1e-12f}},

    /* ---- indexing ---- */
    {CASE("embedding f32 i64", VZ_OP_EMBEDDING, 2, F32(13, 10),
          T(VZ_I64, 0, 12, U, VIEW_NONE, 2, 5))},
    {CASE("embedding bf16 i32", VZ_OP_EMBEDDING, 2, T(VZ_BF16, -1, 1, U, VIEW_NONE, 13, 9),
          T(VZ_I32, 0, 12, U, VIEW_NONE, 7))},
    {CASE("embedding f16", VZ_OP_EMBEDDING, 2, T(VZ_F16, -1, 1, U, VIEW_NONE, 4, 70),
          T(VZ_I64, 0, 3, U, VIEW_NONE, 3, 2))},
    {CASE("index_select f32 axis 1", VZ_OP_INDEX_SELECT, 2, F32(3, 8, 5),
          T(VZ_I32, 0, 7, U, VIEW_NONE, 6)),
     .attrs.axis = {1}},
    {CASE("index_select i64 axis 0", VZ_OP_INDEX_SELECT, 2, T(VZ_I64, -99, 99, U, VIEW_NONE, 5, 3),
          T(VZ_I64, 0, 4, U, VIEW_NONE, 9)),
     .attrs.axis = {0}},
    {CASE("index_select u8 of a view", VZ_OP_INDEX_SELECT, 2,
          T(VZ_U8, 0, 255, U, VIEW_TRANSPOSE, 6, 4), T(VZ_I64, 0, 3, U, VIEW_NONE, 5)),
     .attrs.axis = {-1}},
    {CASE("gather axis 1", VZ_OP_GATHER, 2, F32(4, 6), T(VZ_I64, 0, 5, U, VIEW_NONE, 4, 3)),
     .attrs.axis = {1}},
    {CASE("gather axis 0 f16", VZ_OP_GATHER, 2, T(VZ_F16, -1, 1, U, VIEW_NONE, 5, 3, 2),
          T(VZ_I32, 0, 4, U, VIEW_NONE, 2, 3, 2)),
     .attrs.axis = {0}},
    {CASE("concat f32 axis 1", VZ_OP_CONCAT, 3, F32(2, 3, 4), F32(2, 1, 4), F32(2, 5, 4)),
     .attrs.axis = {1}},
    {CASE("concat of views", VZ_OP_CONCAT, 2, T(VZ_F32, -1, 1, U, VIEW_EXPAND, 3, 5),
          T(VZ_F32, -1, 1, U, VIEW_TRANSPOSE, 4, 5)),
     .attrs.axis = {0}},
    {CASE("concat u8 last axis", VZ_OP_CONCAT, 2, T(VZ_U8, 0, 255, U, VIEW_NONE, 3, 7),
          T(VZ_U8, 0, 255, U, VIEW_NONE, 3, 2)),
     .attrs.axis = {-1}},
    {CASE("copy transposed", VZ_OP_COPY, 1, T(VZ_F32, -1, 1, U, VIEW_TRANSPOSE, 70, 33))},
    {CASE("copy reversed i16", VZ_OP_COPY, 1, T(VZ_I16, -999, 999, U, VIEW_REVERSE, 5, 6))},
    {CASE("copy expanded i64", VZ_OP_COPY, 1, T(VZ_I64, -9, 9, U, VIEW_EXPAND, 4, 3, 2))},
    {CASE("cast f32 to bf16", VZ_OP_CAST, 1, T(VZ_F32, -3, 3, S, VIEW_NONE, 50)),
     .attrs.cast = {VZ_BF16}},
    {CASE("cast f32 to f16", VZ_OP_CAST, 1, T(VZ_F32, -70000, 70000, S, VIEW_NONE, 50)),
     .attrs.cast = {VZ_F16}},
    {CASE("cast f32 to i32", VZ_OP_CAST, 1, T(VZ_F32, -3e9f, 3e9f, S, VIEW_NONE, 60)),
     .attrs.cast = {VZ_I32}},
    {CASE("cast f32 to u8", VZ_OP_CAST, 1, T(VZ_F32, -300, 300, S, VIEW_NONE, 60)),
     .attrs.cast = {VZ_U8}},
    {CASE("cast f32 to i64 of a view", VZ_OP_CAST, 1,
          T(VZ_F32, -1e19f, 1e19f, S, VIEW_TRANSPOSE, 5, 8)),
     .attrs.cast = {VZ_I64}},
    {CASE("cast i64 to f32", VZ_OP_CAST, 1,
          T(VZ_I64, -2147483647.0f, 2147483647.0f, U, VIEW_NONE, 40)),
     .attrs.cast = {VZ_F32}},
    {CASE("cast i64 to bf16", VZ_OP_CAST, 1, T(VZ_I64, -1e9f, 1e9f, U, VIEW_NONE, 40)),
     .attrs.cast = {VZ_BF16}},
    {CASE("cast i32 to i8", VZ_OP_CAST, 1, T(VZ_I32, -1000, 1000, U, VIEW_NONE, 40)),
     .attrs.cast = {VZ_I8}},
    {CASE("cast bool to i64", VZ_OP_CAST, 1, T(VZ_BOOL, 0, 1, U, VIEW_NONE, 3, 4)),
     .attrs.cast = {VZ_I64}},
    {CASE("cast f16 to f64", VZ_OP_CAST, 1, T(VZ_F16, -9, 9, U, VIEW_NONE, 30)),
     .attrs.cast = {VZ_F64}},
    {CASE("cast f64 to bf16", VZ_OP_CAST, 1, T(VZ_F64, -9, 9, S, VIEW_NONE, 30)),
     .attrs.cast = {VZ_BF16}},
    {CASE("cast u8 to f32", VZ_OP_CAST, 1, T(VZ_U8, 0, 255, U, VIEW_NONE, 30)),
     .attrs.cast = {VZ_F32}},

    /* ---- images ---- */
    {CASE("conv2d padded", VZ_OP_CONV2D, 3, F32(2, 3, 9, 10), F32(5, 3, 3, 2), F32(5)),
     .attrs.conv2d = {2, 1, 1, 0}},
    {CASE("conv2d patches", VZ_OP_CONV2D, 3, F32(1, 3, 14, 14), F32(8, 3, 7, 7), F32(8)),
     .attrs.conv2d = {7, 7, 0, 0}},
    {CASE("conv2d 1x1 no bias", VZ_OP_CONV2D, 2, F32(2, 4, 5, 3), F32(6, 4, 1, 1)),
     .attrs.conv2d = {1, 1, 0, 0}},
    {CASE("bicubic up", VZ_OP_BICUBIC, 1, F32(1, 2, 5, 6)), .attrs.bicubic = {8, 9, false}},
    {CASE("bicubic align corners", VZ_OP_BICUBIC, 1, F32(2, 1, 7, 4)),
     .attrs.bicubic = {3, 10, true}},
    {CASE("bicubic of a view", VZ_OP_BICUBIC, 1, T(VZ_F32, -1, 1, U, VIEW_TRANSPOSE, 1, 3, 6, 5)),
     .attrs.bicubic = {4, 4, false}},

    /* ---- positions and attention ---- */
    {CASE("rope", VZ_OP_ROPE, 2, F32(2, 3, 6, 8), T(VZ_I64, 0, 2000, U, VIEW_NONE, 6)),
     .attrs.rope = {10000.0f, 6}, .tol = 1e-8},
    {CASE("rope i32 full", VZ_OP_ROPE, 2, F32(4, 16), T(VZ_I32, 0, 50, U, VIEW_NONE, 4)),
     .attrs.rope = {500.0f, 16}, .tol = 1e-8},
    {CASE("alibi i64", VZ_OP_ALIBI, 1, T(VZ_I64, 0, 30, U, VIEW_NONE, 2, 7)), .attrs.alibi = {6}},
    {CASE("alibi f32", VZ_OP_ALIBI, 1, F32(1, 5)), .attrs.alibi = {8}},
    {CASE("t5_bias bidirectional", VZ_OP_T5_BIAS, 1, F32(32, 4)),
     .attrs.t5_bias = {5, 9, 3, 32, 128, true}},
    {CASE("t5_bias causal", VZ_OP_T5_BIAS, 1, F32(32, 3)),
     .attrs.t5_bias = {7, 40, 0, 32, 20, false}},
    {CASE("attention grouped, bias, mask, causal", VZ_OP_ATTENTION, 5, F32(2, 4, 7, 8),
          F32(2, 2, 9, 8), F32(2, 2, 9, 5), F32(1, 4, 7, 9), F32(2, 1, 1, 9)),
     .attrs.attention = {0.35f, true}, .tol = 1e-9},
    {CASE("attention plain", VZ_OP_ATTENTION, 3, F32(1, 3, 17, 16), F32(1, 3, 17, 16),
          F32(1, 3, 17, 16)),
     .attrs.attention = {0.25f, false}, .tol = 1e-9},
    {CASE("attention one query", VZ_OP_ATTENTION, 5, F32(2, 2, 1, 12), F32(2, 2, 5, 12),
          F32(2, 2, 5, 12), ABSENT, F32(2, 1, 1, 5)),
     .attrs.attention = {0.3f, false}, .tol = 1e-9},
    /* views: batches walked backwards (read in place on the CPU), elements
     * apart (given contiguous copies), and a transposed bias */
    {CASE("attention of views", VZ_OP_ATTENTION, 4, T(VZ_F32, -1, 1, U, VIEW_REVERSE, 2, 3, 6, 8),
          T(VZ_F32, -1, 1, U, VIEW_SLICE, 2, 3, 7, 8),
          T(VZ_F32, -1, 1, U, VIEW_REVERSE, 2, 3, 7, 5),
          T(VZ_F32, -1, 1, U, VIEW_TRANSPOSE, 1, 3, 6, 7)),
     .attrs.attention = {0.4f, true}, .tol = 1e-9},
};

enum { N_CASES = sizeof cases / sizeof cases[0] };

/* ---- inputs ---- */

static const float specials[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e30f, -1e30f, 1e-40f};

static void fill_host(const input_spec *s, void *data, int64_t n) {
  size_t es = vz_dtype_size(s->dtype);
  for (int64_t i = 0; i < n; i++) {
    double v;
    if (s->fill == FILL_INTEGRAL)
      v = floor(test_uniform(s->lo, s->hi + 1.0f));
    else if (s->fill == FILL_SPECIAL && test_next() % 5 == 0)
      v = specials[test_next() % (sizeof specials / sizeof specials[0])];
    else
      v = test_uniform(s->lo, s->hi);
    char *p = (char *)data + (size_t)i * es;
    switch (s->dtype) {
    case VZ_F32: *(float *)p = (float)v; break;
    case VZ_F64: *(double *)p = v; break;
    case VZ_F16: *(uint16_t *)p = vz_f32_to_f16((float)v); break;
    case VZ_BF16: *(uint16_t *)p = vz_f32_to_bf16((float)v); break;
    case VZ_I64: *(int64_t *)p = (int64_t)floor(test_uniform(s->lo, s->hi + 1.0f)); break;
    case VZ_I32: *(int32_t *)p = (int32_t)floor(test_uniform(s->lo, s->hi + 1.0f)); break;
    case VZ_I16: *(int16_t *)p = (int16_t)floor(test_uniform(s->lo, s->hi + 1.0f)); break;
    case VZ_I8: *(int8_t *)p = (int8_t)floor(test_uniform(s->lo, s->hi + 1.0f)); break;
    case VZ_U8: *(uint8_t *)p = (uint8_t)floor(test_uniform(s->lo, s->hi + 1.0f)); break;
    default: *(uint8_t *)p = (uint8_t)(test_next() & 1); break;
    }
  }
}

/* The stored shape of an input before its view is applied. */
static void stored_shape(const input_spec *s, int64_t *shape) {
  memcpy(shape, s->shape, sizeof s->shape);
  int nd = s->ndim;
  if (s->view == VIEW_TRANSPOSE && nd >= 2) {
    shape[nd - 1] = s->shape[nd - 2];
    shape[nd - 2] = s->shape[nd - 1];
  } else if (s->view == VIEW_SLICE) {
    shape[nd - 1] = 2 * s->shape[nd - 1] + 1;
  } else if (s->view == VIEW_EXPAND) {
    shape[0] = 1;
  }
}

/* The input on `be` from the stored host data, as its view. */
static vz_tensor *make_input(vz_backend *be, const input_spec *s, const void *data) {
  int64_t shape[VZ_MAX_DIMS];
  stored_shape(s, shape);
  vz_tensor *stored = test_tensor_of(be, s->dtype, s->ndim, shape, data), *v = NULL;
  int nd = s->ndim;
  switch (s->view) {
  case VIEW_NONE: return stored;
  case VIEW_TRANSPOSE: CHECK_OK(vz_transpose(stored, -1, -2, &v)); break;
  case VIEW_SLICE: CHECK_OK(vz_slice(stored, nd - 1, 1, shape[nd - 1], 2, &v)); break;
  case VIEW_REVERSE: {
    int64_t stride[VZ_MAX_DIMS];
    memcpy(stride, stored->stride, sizeof stride);
    stride[0] = -stride[0];
    CHECK_OK(vz_tensor_view(stored, nd, s->shape, stride, (shape[0] - 1) * stored->stride[0], &v));
    break;
  }
  case VIEW_EXPAND: CHECK_OK(vz_expand(stored, nd, s->shape, &v)); break;
  }
  vz_tensor_free(stored);
  return v;
}

/* ---- comparing ---- */

/* An element of a float-typed buffer as a double. */
static double float_at(vz_dtype dt, const void *p, int64_t i) {
  switch (dt) {
  case VZ_F32: return ((const float *)p)[i];
  case VZ_F64: return ((const double *)p)[i];
  case VZ_F16: return vz_f16_to_f32(((const uint16_t *)p)[i]);
  default: return vz_bf16_to_f32(((const uint16_t *)p)[i]);
  }
}

/* Compares one output; prints what differs. */
/* Whether the CPU runs the product of a matmul or linear call with f16
 * products (its avx512fp16 path). */
static bool takes_f16_products(const vz_op_call *ref) {
  const char *name = ref->op == VZ_OP_MATMUL
                         ? vz_cpu_matmul_kernel_name(ref)
                         : vz_cpu_linear_kernel_name(ref->inputs[0], ref->inputs[1]);
  return name && strstr(name, "f16_products") != NULL;
}

static bool outputs_match(const char *what, vz_dtype dt, const void *got, const void *want,
                          int64_t n, double tol) {
  if (dt != VZ_F32 && dt != VZ_F64) { /* integers and 16-bit floats: exactly */
    size_t es = vz_dtype_size(dt);
    for (int64_t i = 0; i < n; i++) {
      const char *g = (const char *)got + i * (int64_t)es,
                 *w = (const char *)want + i * (int64_t)es;
      bool same = memcmp(g, w, es) == 0;
      if (!same && (dt == VZ_F16 || dt == VZ_BF16))
        same = isnan(float_at(dt, got, i)) && isnan(float_at(dt, want, i));
      if (!same) {
        fprintf(stderr, "  %s: element %lld differs (%s)\n", what, (long long)i, vz_dtype_name(dt));
        return false;
      }
    }
    return true;
  }
  double err2 = 0, ref2 = 0;
  for (int64_t i = 0; i < n; i++) {
    double g = float_at(dt, got, i), w = float_at(dt, want, i);
    if (isnan(w) || isnan(g) || isinf(w) || isinf(g)) {
      bool same = (isnan(w) && isnan(g)) || (isinf(w) && g == w);
      if (!same) {
        fprintf(stderr, "  %s: element %lld is %g, the CPU gives %g\n", what, (long long)i, g, w);
        return false;
      }
      continue;
    }
    err2 += (g - w) * (g - w);
    ref2 += w * w;
  }
  double nmse = ref2 > 0 ? err2 / ref2 : err2;
  if (nmse > tol) {
    fprintf(stderr, "  %s: normalized squared error %.3e > %.1e\n", what, nmse, tol);
    return false;
  }
  return true;
}

static bool guards_intact(const unsigned char *bytes, size_t guard, size_t size) {
  for (size_t i = 0; i < guard; i++)
    if (bytes[i] != 0xa5 || bytes[guard + size + i] != 0xa5)
      return false;
  return true;
}

/* ---- running ---- */

typedef struct tally {
  int native, fell_back, failed;
  char fallback_names[2048];
} tally;

static void run_case(const op_case *c, vz_backend *cpu, vz_backend *dev, tally *t) {
  test_seed(0x5eed + (uint64_t)(c - cases));
  const int n_in = c->n_inputs;
  void *host[MAX_IN] = {NULL};
  vz_tensor *in_cpu[MAX_IN] = {NULL}, *in_dev[MAX_IN] = {NULL};
  for (int i = 0; i < n_in; i++) {
    const input_spec *s = &c->in[i];
    if (!s->present)
      continue;
    int64_t shape[VZ_MAX_DIMS];
    stored_shape(s, shape);
    int64_t n = test_numel(s->ndim, shape);
    host[i] = malloc((size_t)(n > 0 ? n : 1) * vz_dtype_size(s->dtype));
    fill_host(s, host[i], n);
    in_cpu[i] = make_input(cpu, s, host[i]);
    in_dev[i] = make_input(dev, s, host[i]);
  }
  int failures_before = test_failures;
  /* the reference */
  vz_op_call ref = {.op = c->op, .n_inputs = n_in, .attrs = c->attrs};
  ref.n_outputs = c->op == VZ_OP_TOPK ? 2 : 1;
  for (int i = 0; i < n_in; i++)
    ref.inputs[i] = in_cpu[i];
  vz_status st = vz_op_execute(&ref);
  if (st != VZ_OK) {
    fprintf(stderr, "%s: the CPU reference failed: %s\n", c->name, vz_last_error());
    test_failures++;
    goto done;
  }
  /* the device, writing into views inside guarded buffers */
  vz_op_call call = ref;
  vz_tensor *holders[VZ_OP_MAX_OUTPUTS] = {NULL}, *views[VZ_OP_MAX_OUTPUTS] = {NULL};
  for (int i = 0; i < n_in; i++)
    call.inputs[i] = in_dev[i];
  for (int o = 0; o < ref.n_outputs; o++) {
    const vz_tensor *r = ref.outputs[o];
    size_t es = vz_dtype_size(r->dtype), guard = GUARD_BYTES / es;
    int64_t total = vz_tensor_numel(r) + 2 * (int64_t)guard;
    size_t bytes = (size_t)total * es;
    unsigned char *pattern = malloc(bytes);
    memset(pattern, 0xa5, bytes);
    holders[o] = test_tensor_of(dev, r->dtype, 1, (int64_t[]){total}, pattern);
    free(pattern);
    CHECK_OK(vz_tensor_view(holders[o], r->ndim, r->shape, r->stride, (int64_t)guard, &views[o]));
    call.outputs[o] = views[o];
  }
  vz_backend_reset_transfers(dev);
  st = vz_op_execute(&call);
  vz_transfer_counts moved = vz_backend_transfers(dev);
  bool native = moved.uploads == 0 && moved.downloads == 0;
  if (st == VZ_OK) {
    for (int o = 0; o < ref.n_outputs; o++) {
      const vz_tensor *r = ref.outputs[o];
      size_t es = vz_dtype_size(r->dtype), nbytes = vz_tensor_nbytes(r);
      unsigned char *all = test_read_bytes(holders[o]);
      void *want = test_read_bytes(r);
      char what[160];
      snprintf(what, sizeof what, "%s (output %d)", c->name, o);
      if (!all || !want) {
        fprintf(stderr, "%s: cannot read the outputs back: %s\n", what, vz_last_error());
        test_failures++;
      } else {
        size_t guard = GUARD_BYTES / es * es;
        if (!guards_intact(all, guard, nbytes)) {
          fprintf(stderr, "%s: bytes beside the output were overwritten\n", what);
          test_failures++;
        }
        double tol = c->half_products && takes_f16_products(&ref) ? 1e-5
                     : c->tol > 0                                 ? c->tol
                                                                  : 1e-10;
        if (!outputs_match(what, r->dtype, all + guard, want, vz_tensor_numel(r), tol))
          test_failures++;
      }
      free(all);
      free(want);
    }
  } else {
    fprintf(stderr, "%s: failed on '%s': %s\n", c->name, vz_backend_name(dev), vz_last_error());
    test_failures++;
  }
  for (int o = 0; o < ref.n_outputs; o++) {
    vz_tensor_free(views[o]);
    vz_tensor_free(holders[o]);
    vz_tensor_free(ref.outputs[o]);
  }
  bool passed = test_failures == failures_before;
  printf("  %-40s %s%s\n", c->name, passed ? "ok" : "FAIL", native ? "" : " (ran on the CPU)");
  if (!passed)
    t->failed++;
  if (native) {
    t->native++;
  } else {
    t->fell_back++;
    size_t used = strlen(t->fallback_names);
    snprintf(t->fallback_names + used, sizeof t->fallback_names - used, "%s%s", used ? ", " : "",
             c->name);
    /* every f32 op runs natively on OpenCL (issue 6) */
    bool f32_case = true;
    for (int i = 0; i < n_in; i++)
      f32_case = f32_case && (!c->in[i].present || c->in[i].dtype == VZ_F32);
    if (f32_case && ref.outputs[0] && strcmp(vz_backend_name(dev), "opencl") == 0) {
      fprintf(stderr, "%s: an f32 op fell back to the CPU on OpenCL\n", c->name);
      test_failures++;
    }
  }
done:
  for (int i = 0; i < n_in; i++) {
    vz_tensor_free(in_cpu[i]);
    vz_tensor_free(in_dev[i]);
    free(host[i]);
  }
}

/* Failures a device can only report later: the next read gives the CPU's
 * error text; the backend is usable afterwards. */
static void test_late_failures(vz_backend *cpu, vz_backend *dev) {
  float table[6] = {1, 2, 3, 4, 5, 6};
  int64_t ids[3] = {0, 7, 1};
  vz_tensor *t_cpu = test_tensor(cpu, 2, (int64_t[]){3, 2}, table);
  vz_tensor *t_dev = test_tensor(dev, 2, (int64_t[]){3, 2}, table);
  vz_tensor *i_cpu = test_tensor_of(cpu, VZ_I64, 1, (int64_t[]){3}, ids);
  vz_tensor *i_dev = test_tensor_of(dev, VZ_I64, 1, (int64_t[]){3}, ids);
  vz_tensor *out = NULL;
  CHECK_FAILS(vz_embedding(t_cpu, i_cpu, &out), VZ_ERR_INVALID_ARGUMENT);
  char cpu_text[512];
  snprintf(cpu_text, sizeof cpu_text, "%s", vz_last_error());
  vz_status st = vz_embedding(t_dev, i_dev, &out);
  if (st == VZ_OK) { /* queued: the read reports it */
    float back[6];
    CHECK_FAILS(vz_tensor_to_host(out, back, sizeof back), VZ_ERR_INVALID_ARGUMENT);
  }
  const char *tail = strstr(cpu_text, "embedding id 7");
  CHECK(tail && strstr(vz_last_error(), tail) != NULL);
  vz_tensor_free(out);
  out = NULL;

  int32_t num[2] = {7, -8}, den[2] = {0, 2};
  vz_tensor *n_dev = test_tensor_of(dev, VZ_I32, 1, (int64_t[]){2}, num);
  vz_tensor *d_dev = test_tensor_of(dev, VZ_I32, 1, (int64_t[]){2}, den);
  st = vz_div(n_dev, d_dev, &out);
  if (st == VZ_OK) {
    int32_t back[2];
    CHECK_FAILS(vz_tensor_to_host(out, back, sizeof back), VZ_ERR_INVALID_ARGUMENT);
  }
  CHECK(strstr(vz_last_error(), "division by zero") != NULL);
  vz_tensor_free(out);
  out = NULL;
  /* and then all is well again */
  CHECK_OK(vz_add(t_dev, t_dev, &out));
  float back[6];
  CHECK_OK(vz_tensor_to_host(out, back, sizeof back));
  CHECK(back[5] == 12.0f);
  vz_tensor *all[] = {t_cpu, t_dev, i_cpu, i_dev, n_dev, d_dev, out};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
    vz_tensor_free(all[k]);
}

/* The fused Linear layer adding into its own residual (x = x + linear(h)),
 * as the ViT does, on both backends. */
static void test_linear_in_place(vz_backend *cpu, vz_backend *dev) {
  test_seed(42);
  const int64_t m = 13, k = 24, n = 18;
  float *x = test_random_floats(m * k, -1, 1), *w = test_random_floats(n * k, -1, 1);
  float *b = test_random_floats(n, -1, 1), *r = test_random_floats(m * n, -1, 1);
  float *results[2] = {NULL, NULL};
  vz_backend *bes[2] = {cpu, dev};
  for (int s = 0; s < 2; s++) {
    vz_tensor *tx = test_tensor(bes[s], 2, (int64_t[]){m, k}, x);
    vz_tensor *tw = test_tensor(bes[s], 2, (int64_t[]){n, k}, w);
    vz_tensor *tb = test_tensor(bes[s], 1, (int64_t[]){n}, b);
    vz_tensor *tr = test_tensor(bes[s], 2, (int64_t[]){m, n}, r), *given = tr;
    CHECK_OK(vz_fused_linear(tx, tw, tb, VZ_OP_GELU_TANH, tr, &tr));
    CHECK(tr == given);
    results[s] = test_read_f32(tr);
    vz_tensor *all[] = {tx, tw, tb, tr};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
      vz_tensor_free(all[i]);
  }
  if (!results[0] || !results[1] ||
      !outputs_match("linear into its residual", VZ_F32, results[1], results[0], m * n, 1e-9))
    test_failures++;
  free(results[0]);
  free(results[1]);
  free(x);
  free(w);
  free(b);
  free(r);
}

/* Work split to fit the device's largest buffer (lowered through
 * VLZOO_OPENCL_MAX_ALLOC): attention over chunks of heads, conv2d over
 * groups of images; and a tensor larger than the limit is refused. */
static void test_small_buffers(vz_backend *cpu) {
  setenv("VLZOO_OPENCL_MAX_ALLOC", "300", 1);
  vz_backend *dev = NULL;
  vz_status st = vz_backend_create("opencl", &dev);
  unsetenv("VLZOO_OPENCL_MAX_ALLOC");
  if (st != VZ_OK)
    return;
  test_seed(99);
  tally t = {0};
  /* scores of one head: 4 x 16 floats = 256 bytes, of all four 1 KiB */
  static const op_case attention = {CASE("attention in chunks of heads", VZ_OP_ATTENTION, 3,
                                         F32(2, 2, 4, 1), F32(2, 2, 16, 1), F32(2, 2, 16, 1)),
                                    .attrs.attention = {0.5f, false}, .tol = 1e-9};
  /* one image's columns: 6 x 12 floats = 288 bytes */
  static const op_case conv = {
      CASE("conv2d in groups of images", VZ_OP_CONV2D, 3, F32(3, 2, 3, 3), F32(2, 2, 2, 3), F32(2)),
      .attrs.conv2d = {1, 1, 0, 1}};
  run_case(&attention, cpu, dev, &t);
  run_case(&conv, cpu, dev, &t);
  vz_tensor *big = NULL;
  CHECK_FAILS(vz_tensor_new(dev, VZ_F32, 1, (int64_t[]){76}, &big), VZ_ERR_OUT_OF_MEMORY);
  CHECK(strstr(vz_last_error(), "largest allocation") != NULL);
  vz_backend_free(dev);
}

/* The path of the file in `dir` whose name starts with `prefix`; false
 * when there is none. */
static bool find_file(const char *dir, const char *prefix, char *path, size_t size) {
  DIR *d = opendir(dir);
  struct dirent *e;
  bool found = false;
  while (d && !found && (e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
      snprintf(path, size, "%s/%s", dir, e->d_name);
      found = true;
    }
  }
  if (d)
    closedir(d);
  return found;
}

/* The OpenCL program cache: a first backend writes the binary of the
 * family it builds into VLZOO_OPENCL_CACHE; a later one loads it; a corrupt
 * file is rebuilt and replaced. */
static void test_program_cache(void) {
  char dir[] = "/tmp/vz_opencl_cache_XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    test_failures++;
    return;
  }
  setenv("VLZOO_OPENCL_CACHE", dir, 1);
  float x[3] = {1, -2, 3};
  char path[600] = "";
  for (int pass = 0; pass < 3; pass++) {
    vz_backend *dev = NULL;
    CHECK_OK(vz_backend_create("opencl", &dev));
    if (!dev)
      break;
    vz_tensor *t = test_tensor(dev, 1, (int64_t[]){3}, x), *y = NULL;
    CHECK_OK(vz_relu(t, &y));
    float *got = y ? test_read_f32(y) : NULL;
    CHECK(got && got[0] == 1 && got[1] == 0 && got[2] == 3);
    free(got);
    vz_tensor_free(t);
    vz_tensor_free(y);
    vz_backend_free(dev);
    /* the elementwise family's file */
    size_t size = 0;
    void *bytes =
        find_file(dir, "elementwise-", path, sizeof path) ? test_read_file(path, &size) : NULL;
    CHECK(bytes && size > 64);
    if (pass == 1 && bytes) { /* corrupt it for the third backend */
      FILE *f = fopen(path, "wb");
      fputs("not a program binary", f);
      fclose(f);
    }
    free(bytes);
  }
  unsetenv("VLZOO_OPENCL_CACHE");
  /* relu builds the elementwise family alone: its file is all there is */
  while (find_file(dir, "elementwise-", path, sizeof path) && remove(path) == 0) {
  }
  CHECK(rmdir(dir) == 0);
}

/* VLZOO_TEST_OPS="matmul,linear": only the cases of those ops (the CLBlast
 * run, where only ops with a GEMM inside change). */
static bool selected(const op_case *c) {
  const char *only = getenv("VLZOO_TEST_OPS");
  if (!only || !*only)
    return true;
  const char *name = vz_op_name(c->op);
  size_t n = strlen(name);
  for (const char *p = only; (p = strstr(p, name)) != NULL; p += n)
    if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
      return true;
  return false;
}

/* Every op of the op table has a case here: an op added without one fails
 * this test until it is covered (and, on OpenCL, implemented). */
static void test_coverage(void) {
  for (int op = 0; op < VZ_OP_COUNT; op++) {
    bool covered = false;
    for (int c = 0; c < N_CASES && !covered; c++)
      covered = cases[c].op == (vz_op_kind)op;
    if (!covered) {
      fprintf(stderr, "op %s has no case in tests/test_backends.c\n", vz_op_name((vz_op_kind)op));
      test_failures++;
    }
  }
}

int main(void) {
  test_coverage();
  vz_backend *cpu = NULL;
  CHECK_OK(vz_backend_create("cpu", &cpu));
  if (!cpu)
    return test_finish("test_backends");
  int tested = 0;
  for (const char *const *name = vz_backend_names(); *name; name++) {
    if (strcmp(*name, "cpu") == 0)
      continue;
    vz_backend *dev = NULL;
    if (vz_backend_create(*name, &dev) != VZ_OK) {
      printf("backend %s: not available here, skipped: %s\n", *name, vz_last_error());
      continue;
    }
    printf("backend %s (%s):\n", *name, vz_backend_description(dev));
    tally t = {0};
    for (int c = 0; c < N_CASES; c++)
      if (selected(&cases[c]))
        run_case(&cases[c], cpu, dev, &t);
    test_late_failures(cpu, dev);
    test_linear_in_place(cpu, dev);
    if (strcmp(*name, "opencl") == 0) {
      test_small_buffers(cpu);
      test_program_cache();
    }
    printf("backend %s: %d cases native, %d on the CPU%s%s, %d failed\n", *name, t.native,
           t.fell_back, t.fell_back ? ": " : "", t.fallback_names, t.failed);
    vz_backend_free(dev);
    tested++;
  }
  vz_backend_free(cpu);
  if (tested == 0) {
    printf("SKIP: no backend besides the CPU can run here\n");
    return TEST_SKIP;
  }
  return test_finish("test_backends");
}
