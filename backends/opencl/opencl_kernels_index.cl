/* Ops that pick elements by index: embedding, index_select and gather.
 * Indices are i32 or i64 (ids64 says which); one outside its range is
 * reported through the deferred error word and its output left as zeros
 * (embedding) or as the element at index 0 (index_select, gather), so that
 * nothing is read out of bounds. */

/* table [V, D] (f32, f16 or bf16: table_dt 0, 1, 2) -> out [n, D] f32 */
__kernel void embedding(__global float *out, long out_off, __global const uchar *table,
                        long table_off, int table_dt, __global const int *ids, long ids_off,
                        int ids64, long n, long vocab, long dim, __global int *status) {
  long d = get_global_id(0), i = get_global_id(1);
  if (d >= dim || i >= n)
    return;
  long id = vz_read_id(ids, ids64, ids_off + i);
  float v = 0.0f;
  if (id < 0 || id >= vocab) {
    if (d == 0)
      vz_report(status, VZ_FAIL_EMBEDDING_ID, -1, i, id, vocab);
  } else {
    long at = table_off + id * dim + d;
    v = table_dt == 0   ? ((__global const float *)table)[at]
        : table_dt == 1 ? vz_f16_to_f32(((__global const ushort *)table)[at])
                        : vz_bf16_to_f32(((__global const ushort *)table)[at]);
  }
  out[out_off + i * dim + d] = v;
}

/* x seen as [outer, limit, inner] -> out [outer, n_ids, inner] with
 * out[o, i, e] = x[o, ids[i], e]. */
#define INDEX_SELECT(BYTES, T)                                                                     \
  __kernel void index_select_##BYTES(__global T *out, long out_off, __global const T *x,           \
                                     long x_off, __global const int *ids, long ids_off, int ids64, \
                                     long outer, long limit, long inner, long n_ids, int axis,     \
                                     __global int *status) {                                       \
    long e = get_global_id(0), u = get_global_id(1);                                               \
    if (e >= inner || u >= outer * n_ids)                                                          \
      return;                                                                                      \
    long o = u / n_ids, i = u % n_ids;                                                             \
    long id = vz_read_id(ids, ids64, ids_off + i);                                                 \
    if (id < 0 || id >= limit) {                                                                   \
      if (e == 0 && o == 0)                                                                        \
        vz_report(status, VZ_FAIL_INDEX_SELECT_ID, axis, i, id, limit);                            \
      id = 0;                                                                                      \
    }                                                                                              \
    out[out_off + u * inner + e] = x[x_off + (o * limit + id) * inner + e];                        \
  }
INDEX_SELECT(1, uchar)
INDEX_SELECT(2, ushort)
INDEX_SELECT(4, uint)
INDEX_SELECT(8, ulong)

/* out (the index's shape, 4-D right-aligned `shape`) takes x at the index's
 * coordinates with the one on axis `ax4` (of the 4) replaced by the index;
 * xs are x's contiguous strides in the same 4 dimensions. */
#define GATHER(BYTES, T)                                                                           \
  __kernel void gather_##BYTES(__global T *out, long out_off, __global const T *x, long x_off,     \
                               __global const int *index, long index_off, int ids64, long4 shape,  \
                               long4 xs, int ax4, int axis, long limit, __global int *status) {    \
    long j = get_global_id(0), r = get_global_id(1);                                               \
    if (j >= shape.s3 || r >= shape.s0 * shape.s1 * shape.s2)                                      \
      return;                                                                                      \
    long e = r * shape.s3 + j;                                                                     \
    long id = vz_read_id(index, ids64, index_off + e);                                             \
    if (id < 0 || id >= limit) {                                                                   \
      vz_report(status, VZ_FAIL_GATHER_INDEX, axis, e, id, limit);                                 \
      id = 0;                                                                                      \
    }                                                                                              \
    long c[4];                                                                                     \
    long rest = r;                                                                                 \
    c[3] = j;                                                                                      \
    c[2] = rest % shape.s2;                                                                        \
    rest /= shape.s2;                                                                              \
    c[1] = rest % shape.s1;                                                                        \
    c[0] = rest / shape.s1;                                                                        \
    c[ax4] = id;                                                                                   \
    out[out_off + e] = x[x_off + c[0] * xs.s0 + c[1] * xs.s1 + c[2] * xs.s2 + c[3] * xs.s3];       \
  }
GATHER(1, uchar)
GATHER(2, ushort)
GATHER(4, uint)
GATHER(8, ulong)
