// XLA FFI handlers: asynchronous sweeps and synchronous steps of a square +-1 layer whose
// pattern is named by its store key.
#include "ffi/guard.h"
#include "ffi/layer_checks.h"
#include "ffi/pattern_attrs.h"
#include "kernels/table.h"

namespace darnax {

static ffi::Error AsyncSignSweepsImpl(LayerInputs in, IndexBuffer order, int64_t n_sweeps,
                                      ffi::Result<ffi::AnyBuffer> s_out,
                                      ffi::Result<IndexBuffer> flips,
                                      ffi::Result<ffi::AnyBuffer> fields) {
  Pattern pat{};
  int64_t batch = 0, n = 0;
  std::string err = check_layer(in, n_sweeps, *s_out, *flips, *fields, pat, batch, n);
  if (!err.empty()) return invalid(err);
  const auto od = order.dimensions();
  int64_t order_sweeps = 0;
  err = check_order_shape(od, batch, n, n_sweeps, order_sweeps);
  if (!err.empty()) return invalid(err);
  const bool shared = od[0] == 1;
  std::vector<char> seen;
  for (int64_t r = 0; r < od[0] * order_sweeps; ++r) {
    err = check_permutation(order.typed_data() + r * n, n, seen);
    if (!err.empty()) return invalid(err);
  }
  return dispatch_float(in.h_ext.element_type(), "h_ext", [&](auto zero) {
    using T = decltype(zero);
    kernels<T>().async_sign_sweeps(in.h_ext.typed_data<T>(), in.values.typed_data<T>(), pat,
                               in.diag.typed_data<T>(), in.s0.typed_data<T>(),
                               order.typed_data(), shared, order_sweeps, batch, n_sweeps,
                               s_out->typed_data<T>(),
                               flips->typed_data(), fields->typed_data<T>());
    return ffi::Error::Success();
  });
}

static ffi::Error SyncSignStepsImpl(LayerInputs in, int64_t n_steps,
                                    ffi::Result<ffi::AnyBuffer> s_out,
                                    ffi::Result<IndexBuffer> flips,
                                    ffi::Result<ffi::AnyBuffer> fields) {
  Pattern pat{};
  int64_t batch = 0, n = 0;
  std::string err = check_layer(in, n_steps, *s_out, *flips, *fields, pat, batch, n);
  if (!err.empty()) return invalid(err);
  return dispatch_float(in.h_ext.element_type(), "h_ext", [&](auto zero) {
    using T = decltype(zero);
    kernels<T>().sync_sign_steps(in.h_ext.typed_data<T>(), in.values.typed_data<T>(), pat,
                             in.diag.typed_data<T>(), in.s0.typed_data<T>(), batch, n_steps,
                             s_out->typed_data<T>(), flips->typed_data(),
                             fields->typed_data<T>());
    return ffi::Error::Success();
  });
}

// The parameters both handlers share, in binding order.
#define DARNAX_LAYER_PARAMS                                                                  \
  ffi::AnyBuffer h_ext, ffi::AnyBuffer values, ffi::AnyBuffer diag, ffi::AnyBuffer s0
#define DARNAX_LAYER_ARGS LayerInputs{h_ext, values, diag, s0, key, checked}

static ffi::Error AsyncSignSweepsBound(DARNAX_LAYER_PARAMS, IndexBuffer order,
                                       int64_t key, int64_t n_sweeps,
                                       CheckedPattern* checked,
                                       ffi::Result<ffi::AnyBuffer> s_out,
                                       ffi::Result<IndexBuffer> flips,
                                       ffi::Result<ffi::AnyBuffer> fields) {
  return AsyncSignSweepsImpl(DARNAX_LAYER_ARGS, order, n_sweeps, s_out, flips, fields);
}

static ffi::Error SyncSignStepsBound(DARNAX_LAYER_PARAMS, int64_t key, int64_t n_steps,
                                     CheckedPattern* checked,
                                     ffi::Result<ffi::AnyBuffer> s_out,
                                     ffi::Result<IndexBuffer> flips,
                                     ffi::Result<ffi::AnyBuffer> fields) {
  return SyncSignStepsImpl(DARNAX_LAYER_ARGS, n_steps, s_out, flips, fields);
}

// The instantiate stage of both: the square pattern is found once per compiled call.
static CheckedState CheckLayerPattern(int64_t key, int64_t n_iter) { return find_layer_pattern(key, n_iter); }

static auto BindLayer() { return bind_layer_inputs(ffi::Ffi::Bind()); }

// Target names, for the errors of the exception barrier (ffi/guard.h).
static constexpr char kAsyncSignSweeps[] = "darnax_async_sign_sweeps";
static constexpr char kSyncSignSteps[] = "darnax_sync_sign_steps";
static constexpr char kAsyncSignSweepsInstantiate[] = "darnax_async_sign_sweeps (instantiation)";
static constexpr char kSyncSignStepsInstantiate[] = "darnax_sync_sign_steps (instantiation)";

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    AsyncSignSweepsInstantiate, (guarded<kAsyncSignSweepsInstantiate, CheckLayerPattern>),
    bind_pattern(ffi::Ffi::BindInstantiate()).Attr<int64_t>("n_sweeps"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    SyncSignStepsInstantiate, (guarded<kSyncSignStepsInstantiate, CheckLayerPattern>),
    bind_pattern(ffi::Ffi::BindInstantiate()).Attr<int64_t>("n_steps"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    AsyncSignSweeps, (guarded<kAsyncSignSweeps, AsyncSignSweepsBound>),
    bind_layer_outputs<CheckedPattern>(bind_pattern(BindLayer().Arg<IndexBuffer>())  // order (1 or B, [n_sweeps,] N)
                    .Attr<int64_t>("n_sweeps")));

XLA_FFI_DEFINE_HANDLER_SYMBOL(
    SyncSignSteps, (guarded<kSyncSignSteps, SyncSignStepsBound>),
    bind_layer_outputs<CheckedPattern>(bind_pattern(BindLayer()).Attr<int64_t>("n_steps")));

}  // namespace darnax
