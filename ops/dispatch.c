/* The dispatcher: validates a call against the op table, allocates its
 * outputs, and runs it on the backend holding the inputs, or on the CPU
 * when that backend lacks the op. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/internal.h"
#include "ops/log.h"

static vz_status find_backend(const vz_op_call *call, vz_backend **out) {
  vz_backend *be = NULL;
  for (int i = 0; i < call->n_inputs; i++) {
    if (!call->inputs[i])
      continue;
    vz_backend *b = call->inputs[i]->buffer->backend;
    if (be && b != be)
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "input %d lives on backend '%s', input 0 on '%s'", i,
                     vz_backend_name(b), vz_backend_name(be));
    be = b;
  }
  if (!be)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "no input tensor given");
  *out = be;
  return VZ_OK;
}

static bool desc_matches(const vz_tensor *t, const vz_tensor_desc *d) {
  if (t->dtype != d->dtype || t->ndim != d->ndim)
    return false;
  for (int i = 0; i < d->ndim; i++)
    if (t->shape[i] != d->shape[i])
      return false;
  return true;
}

/* Checks caller-given outputs and allocates the missing ones; `allocated`
 * marks which to free if the call fails later. */
static vz_status prepare_outputs(vz_op_call *call, vz_backend *be, const vz_tensor_desc *descs,
                                 bool *allocated) {
  for (int i = 0; i < call->n_outputs; i++) {
    vz_tensor *t = call->outputs[i];
    if (!t) {
      vz_status st =
          vz_tensor_new(be, descs[i].dtype, descs[i].ndim, descs[i].shape, &call->outputs[i]);
      if (st != VZ_OK)
        return st;
      allocated[i] = true;
      continue;
    }
    if (!desc_matches(t, &descs[i])) {
      char want[96], have[96];
      return vz_fail(VZ_ERR_SHAPE, "output %d is %s %s, the op gives %s %s", i,
                     vz_dtype_name(t->dtype), vz_shape_text(t->ndim, t->shape, have, sizeof have),
                     vz_dtype_name(descs[i].dtype),
                     vz_shape_text(descs[i].ndim, descs[i].shape, want, sizeof want));
    }
    if (!vz_tensor_is_contiguous(t))
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "output %d is a strided view", i);
    if (vz_tensor_is_read_only(t))
      return vz_fail(VZ_ERR_INVALID_ARGUMENT,
                     "output %d is read-only (lent host memory, e.g. weights used in place "
                     "from their file)",
                     i);
    if (t->buffer->backend != be)
      return vz_fail(VZ_ERR_INVALID_ARGUMENT, "output %d lives on backend '%s', the inputs on '%s'",
                     i, vz_backend_name(t->buffer->backend), vz_backend_name(be));
  }
  return VZ_OK;
}

static void free_tensors(vz_tensor **ts, int n) {
  for (int i = 0; i < n; i++) {
    vz_tensor_free(ts[i]);
    ts[i] = NULL;
  }
}

/* Copies one tensor to another backend, through host memory. */
static vz_status move_tensor(const vz_tensor *t, vz_backend *to, vz_tensor **out) {
  size_t bytes = vz_tensor_nbytes(t);
  void *host = malloc(bytes ? bytes : 1);
  if (!host)
    return vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory moving %zu bytes between backends", bytes);
  vz_status st = vz_tensor_to_host(t, host, bytes);
  if (st == VZ_OK)
    st = vz_tensor_from_host(to, t->dtype, t->ndim, t->shape, host, bytes, out);
  free(host);
  return st;
}

/* Runs a call on the CPU for a backend that lacks the op: inputs are
 * copied over, results copied back into the call's outputs. */
static vz_status run_on_fallback(vz_backend *be, const vz_op_call *call) {
  if (strcmp(be->iface->name, "cpu") == 0) {
    char types[128] = "";
    for (int i = 0; i < call->n_inputs; i++)
      if (call->inputs[i])
        snprintf(types + strlen(types), sizeof types - strlen(types), "%s%s", i ? ", " : "",
                 vz_dtype_name(call->inputs[i]->dtype));
    return vz_fail(VZ_ERR_UNSUPPORTED, "no CPU kernel for inputs of dtype %s", types);
  }
  if (!be->fallback) {
    vz_status st = vz_backend_create("cpu", &be->fallback);
    if (st != VZ_OK)
      return st;
  }
  /* Once per op and backend at info level (what `vlzoo --verbose` shows),
   * every time at debug level. */
  vz_log_level level = be->fell_back[call->op] ? VZ_LOG_DEBUG : VZ_LOG_INFO;
  be->fell_back[call->op] = true;
  if (vz_log_enabled(level)) {
    char types[128] = "";
    for (int i = 0; i < call->n_inputs; i++)
      if (call->inputs[i])
        snprintf(types + strlen(types), sizeof types - strlen(types), "%s%s", *types ? ", " : "",
                 vz_dtype_name(call->inputs[i]->dtype));
    vz_log(level,
           "op %s (%s) is not supported on '%s'; running it on the CPU (inputs copied over, "
           "results back)",
           vz_op_name(call->op), types, vz_backend_name(be));
  }
  vz_op_call moved = *call;
  vz_tensor *inputs[VZ_OP_MAX_INPUTS] = {NULL};
  vz_status st = VZ_OK;
  for (int i = 0; i < call->n_inputs && st == VZ_OK; i++) {
    if (call->inputs[i]) {
      st = move_tensor(call->inputs[i], be->fallback, &inputs[i]);
      moved.inputs[i] = inputs[i];
    }
  }
  for (int i = 0; i < call->n_outputs; i++)
    moved.outputs[i] = NULL;
  if (st == VZ_OK)
    st = vz_op_execute(&moved);
  for (int i = 0; i < call->n_outputs && st == VZ_OK; i++) {
    size_t bytes = vz_tensor_nbytes(moved.outputs[i]);
    void *host = malloc(bytes ? bytes : 1);
    st = host ? vz_tensor_to_host(moved.outputs[i], host, bytes)
              : vz_fail(VZ_ERR_OUT_OF_MEMORY, "out of memory copying a result back");
    if (st == VZ_OK)
      st = vz_tensor_write(call->outputs[i], host, bytes);
    free(host);
  }
  free_tensors(inputs, call->n_inputs);
  free_tensors(moved.outputs, call->n_outputs);
  return st;
}

static bool any_output_empty(const vz_op_call *call) {
  for (int i = 0; i < call->n_outputs; i++)
    if (vz_tensor_numel(call->outputs[i]) == 0)
      return true;
  return false;
}

/* Replaces each non-contiguous input by a contiguous copy (in dense[],
 * for the caller to free); *copied tells whether there was one. */
static vz_status densify_inputs(vz_op_call *call, vz_tensor **dense, bool *copied) {
  for (int i = 0; i < call->n_inputs; i++) {
    if (call->inputs[i] && !vz_tensor_is_contiguous(call->inputs[i])) {
      vz_status st = vz_copy(call->inputs[i], &dense[i]);
      if (st != VZ_OK)
        return st;
      call->inputs[i] = dense[i];
      *copied = true;
    }
  }
  return VZ_OK;
}

static vz_status execute(vz_op_call *call, const vz_op_def *def, vz_tensor **dense) {
  if (call->n_inputs < def->min_inputs || call->n_inputs > def->max_inputs)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "takes %d to %d inputs, not %d", def->min_inputs,
                   def->max_inputs, call->n_inputs);
  if (call->n_outputs != def->n_outputs)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "gives %d outputs, not %d", def->n_outputs,
                   call->n_outputs);
  vz_backend *be = NULL;
  vz_status st = find_backend(call, &be);
  if (st != VZ_OK)
    return st;
  vz_tensor_desc descs[VZ_OP_MAX_OUTPUTS];
  memset(descs, 0, sizeof descs);
  st = def->infer(call, descs);
  if (st != VZ_OK)
    return st;
  bool copied = false;
  if (!def->strided_inputs && (st = densify_inputs(call, dense, &copied)) != VZ_OK)
    return st;
  bool allocated[VZ_OP_MAX_OUTPUTS] = {false};
  st = prepare_outputs(call, be, descs, allocated);
  if (st == VZ_OK && !any_output_empty(call)) {
    bool supported = be->iface->supports(be->self, call);
    /* a backend that cannot take these strides gets contiguous copies */
    if (!supported && def->strided_inputs && (st = densify_inputs(call, dense, &copied)) == VZ_OK &&
        copied)
      supported = be->iface->supports(be->self, call);
    if (st == VZ_OK)
      st = supported ? be->iface->run(be->self, call) : run_on_fallback(be, call);
  }
  if (st != VZ_OK) {
    for (int i = 0; i < call->n_outputs; i++)
      if (allocated[i])
        free_tensors(&call->outputs[i], 1);
  }
  return st;
}

vz_status vz_op_execute(vz_op_call *call) {
  if (!call || (unsigned)call->op >= VZ_OP_COUNT)
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "op_execute: NULL call or unknown op");
  const vz_op_def *def = vz_op_definition(call->op);
  const vz_tensor *given[VZ_OP_MAX_INPUTS];
  memcpy(given, call->inputs, sizeof given);
  vz_tensor *dense[VZ_OP_MAX_INPUTS] = {NULL};
  vz_status st = execute(call, def, dense);
  memcpy(call->inputs, given, sizeof given);
  free_tensors(dense, VZ_OP_MAX_INPUTS);
  if (st != VZ_OK)
    return vz_fail_context(st, "%s: ", def->name);
  return VZ_OK;
}

vz_status vz_run_op(vz_op_kind op, int n_inputs, const vz_tensor *const *inputs,
                    const vz_op_attrs *attrs, vz_tensor **out0, vz_tensor **out1) {
  if (!out0 || (vz_op_definition(op)->n_outputs > 1 && !out1))
    return vz_fail(VZ_ERR_INVALID_ARGUMENT, "%s: NULL output pointer", vz_op_name(op));
  vz_op_call call = {.op = op, .n_inputs = n_inputs};
  for (int i = 0; i < n_inputs; i++)
    call.inputs[i] = inputs[i];
  if (attrs)
    call.attrs = *attrs;
  call.n_outputs = vz_op_definition(op)->n_outputs;
  call.outputs[0] = *out0;
  if (call.n_outputs > 1)
    call.outputs[1] = *out1;
  vz_status st = vz_op_execute(&call);
  if (st != VZ_OK)
    return st;
  *out0 = call.outputs[0];
  if (call.n_outputs > 1)
    *out1 = call.outputs[1];
  return VZ_OK;
}
