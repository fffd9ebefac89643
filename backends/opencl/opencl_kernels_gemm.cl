/* f32 GEMM kernels for CPU-like OpenCL devices: each work-item computes a
 * register-resident tile of C with float8 vectors (the width of AVX2, and
 * what PoCL targets on these machines), reading A and B straight from
 * global memory, which the caches serve: no local-memory staging and no
 * barriers, which on a CPU device only cost copies and work-group splits.
 *
 * C[b] (M x N, contiguous, batch b at c + c_off + b M N) = A[b] B[b], b over
 * batch0 x batch1 (NDRange dimension 2), b = (b0, b1) moving A by
 * b0 bs.s0 + b1 bs.s1 and B by b0 bs.s2 + (b1 / b1_div) bs.s3.
 *
 *   gemm_nt  A row-major (lda), B stored [N, K] (ldb): C = A B^T, the layout
 *            of a Linear layer's weight. Dot-product form: MR x NR
 *            accumulators of 8 lanes along K, summed across lanes at the end.
 *   gemm_nn  A row-major (lda), B stored [K, N] (ldb). Outer-product form:
 *            MR rows x NV vectors of 8 columns, one A element broadcast per
 *            row and step of K.
 *   gemm_strided  any strides, one C element per work-item (layouts the
 *            two above do not take: transposed A).
 *
 * Tile sizes come from the build options (opencl_gemm.c), defaults below.
 * Rows and columns past the edges are read clamped to the last valid one
 * and not stored, so full tiles need no tests in their inner loop. */

#ifndef NT_MR
#define NT_MR 3
#endif
#ifndef NT_NR
#define NT_NR 4
#endif
#ifndef NN_MR
#define NN_MR 6
#endif
#ifndef NN_NV
#define NN_NV 2
#endif

/* Which NDRange dimension walks rows of C: 0 (GEMM_ROWS_FIRST) puts tiles
 * of the same columns of C in consecutive work-groups, so that the part of
 * B they read stays in cache while the groups sweep down A (small next to
 * a weight): B is read from memory about once. */
#if GEMM_ROWS_FIRST
#define ROW_TILE get_global_id(0)
#define COL_TILE get_global_id(1)
#else
#define ROW_TILE get_global_id(1)
#define COL_TILE get_global_id(0)
#endif

#define GEMM_ARGS                                                                                  \
  __global float *c, long c_off, __global const float *a, long a_off, long lda,                    \
      __global const float *b, long b_off, long ldb, long M, long N, long K, long batch1,          \
      long b1_div, long4 bs

/* Moves a, b, c to batch get_global_id(2)'s matrices. */
#define GEMM_BATCH                                                                                 \
  long ob = get_global_id(2);                                                                      \
  long b0 = ob / batch1, b1 = ob % batch1;                                                         \
  a += a_off + b0 * bs.s0 + b1 * bs.s1;                                                            \
  b += b_off + b0 * bs.s2 + (b1 / b1_div) * bs.s3;                                                 \
  c += c_off + ob * M * N;

float hsum8(float8 v) {
  float4 s = v.lo + v.hi;
  return (s.s0 + s.s1) + (s.s2 + s.s3);
}

__kernel void gemm_nt(GEMM_ARGS) {
  long i0 = ROW_TILE * NT_MR, j0 = COL_TILE * NT_NR;
  if (i0 >= M || j0 >= N)
    return;
  GEMM_BATCH
  __global const float *ar[NT_MR];
  __global const float *br[NT_NR];
#pragma unroll
  for (int r = 0; r < NT_MR; r++)
    ar[r] = a + min(i0 + r, M - 1) * lda;
#pragma unroll
  for (int q = 0; q < NT_NR; q++)
    br[q] = b + min(j0 + q, N - 1) * ldb;
  float8 acc[NT_MR][NT_NR];
#pragma unroll
  for (int r = 0; r < NT_MR; r++)
#pragma unroll
    for (int q = 0; q < NT_NR; q++)
      acc[r][q] = 0.0f;
  long k = 0;
  for (; k + 8 <= K; k += 8) {
    float8 av[NT_MR];
#pragma unroll
    for (int r = 0; r < NT_MR; r++)
      av[r] = vload8(0, ar[r] + k);
#pragma unroll
    for (int q = 0; q < NT_NR; q++) {
      float8 bv = vload8(0, br[q] + k);
#pragma unroll
      for (int r = 0; r < NT_MR; r++)
        acc[r][q] = fma(av[r], bv, acc[r][q]);
    }
  }
#pragma unroll
  for (int r = 0; r < NT_MR; r++) {
#pragma unroll
    for (int q = 0; q < NT_NR; q++) {
      float s = hsum8(acc[r][q]);
      for (long t = k; t < K; t++)
        s = fma(ar[r][t], br[q][t], s);
      if (i0 + r < M && j0 + q < N)
        c[(i0 + r) * N + j0 + q] = s;
    }
  }
}

/* One step of K for the outer-product kernel: B's row k as NN_NV vectors
 * (LOAD_B), then every row's A element times them. */
#define NN_STEP(LOAD_B)                                                                            \
  {                                                                                                \
    float8 bv[NN_NV];                                                                              \
    __global const float *bk = b + kk * ldb + j0;                                                  \
    _Pragma("unroll") for (int v = 0; v < NN_NV; v++) bv[v] = LOAD_B;                              \
    _Pragma("unroll") for (int r = 0; r < NN_MR; r++) {                                            \
      float8 av = (float8)(ar[r][kk]);                                                             \
      _Pragma("unroll") for (int v = 0; v < NN_NV; v++) acc[r][v] = fma(av, bv[v], acc[r][v]);     \
    }                                                                                              \
  }

/* 8 entries of a row from column j of n, zeros past the end. */
float8 load8_guarded(__global const float *p, long j, long n) {
  float lanes[8];
  for (int e = 0; e < 8; e++)
    lanes[e] = j + e < n ? p[e] : 0.0f;
  return vload8(0, lanes);
}

__kernel void gemm_nn(GEMM_ARGS) {
  long i0 = ROW_TILE * NN_MR, j0 = COL_TILE * (NN_NV * 8);
  if (i0 >= M || j0 >= N)
    return;
  GEMM_BATCH
  __global const float *ar[NN_MR];
#pragma unroll
  for (int r = 0; r < NN_MR; r++)
    ar[r] = a + min(i0 + r, M - 1) * lda;
  float8 acc[NN_MR][NN_NV];
#pragma unroll
  for (int r = 0; r < NN_MR; r++)
#pragma unroll
    for (int v = 0; v < NN_NV; v++)
      acc[r][v] = 0.0f;
  bool full = j0 + NN_NV * 8 <= N;
  if (full) {
    for (long kk = 0; kk < K; kk++)
      NN_STEP(vload8(v, bk))
  } else {
    for (long kk = 0; kk < K; kk++)
      NN_STEP(load8_guarded(bk + 8 * v, j0 + 8 * v, N))
  }
#pragma unroll
  for (int r = 0; r < NN_MR; r++) {
    if (i0 + r >= M)
      break;
    __global float *cr = c + (i0 + r) * N + j0;
#pragma unroll
    for (int v = 0; v < NN_NV; v++) {
      if (full) {
        vstore8(acc[r][v], v, cr);
      } else {
        float lanes[8];
        vstore8(acc[r][v], 0, lanes);
        for (int e = 0; e < 8; e++)
          if (j0 + 8 * v + e < N)
            cr[8 * v + e] = lanes[e];
      }
    }
  }
}

/* Any layout: A (i, k) at a[i * a_rs + k * a_cs], B (k, j) at
 * b[k * b_rs + j * b_cs]; one C element per work-item. */
__kernel void gemm_strided(__global float *c, long c_off, __global const float *a, long a_off,
                           long a_rs, long a_cs, __global const float *b, long b_off, long b_rs,
                           long b_cs, long M, long N, long K, long batch1, long b1_div, long4 bs) {
  long j = get_global_id(0), i = get_global_id(1);
  if (i >= M || j >= N)
    return;
  GEMM_BATCH
  float s = 0.0f;
  for (long k = 0; k < K; k++)
    s = fma(a[i * a_rs + k * a_cs], b[k * b_rs + j * b_cs], s);
  c[i * N + j] = s;
}
