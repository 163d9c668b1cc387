// The darnax._ext module: XLA FFI handler capsules plus direct kernel calls on NumPy arrays
// (no XLA in between), for microbenchmarks and debugging.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/string.h>

#include <string>
#include <tuple>
#include <vector>

#include "kernels/orders.h"
#include "kernels/parallel.h"
#include "kernels/shuffle.h"
#include "kernels/table.h"
#include "release_gil.h"
#include "store/pattern_store.h"
#include "xla/ffi/api/c_api.h"
#include "xla/ffi/api/ffi.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace darnax {
XLA_FFI_DECLARE_HANDLER_SYMBOL(SparseMatmul);
XLA_FFI_DECLARE_HANDLER_SYMBOL(SparseMatmulInstantiate);
XLA_FFI_DECLARE_HANDLER_SYMBOL(SparseOuter);
XLA_FFI_DECLARE_HANDLER_SYMBOL(SparseOuterInstantiate);
XLA_FFI_DECLARE_HANDLER_SYMBOL(AsyncSignSweeps);
XLA_FFI_DECLARE_HANDLER_SYMBOL(AsyncSignSweepsInstantiate);
XLA_FFI_DECLARE_HANDLER_SYMBOL(SyncSignSteps);
XLA_FFI_DECLARE_HANDLER_SYMBOL(SyncSignStepsInstantiate);
void* checked_pattern_type_id();
void* checked_pattern_type_info();
XLA_FFI_DECLARE_HANDLER_SYMBOL(RandomPermutations);
XLA_FFI_DECLARE_HANDLER_SYMBOL(DenseAsyncSignSweeps);
XLA_FFI_DECLARE_HANDLER_SYMBOL(AllFinite);
XLA_FFI_DECLARE_HANDLER_SYMBOL(DenseOuter);
void bind_diagnostics(nanobind::module_& m);  // diagnostics.cc
void bind_cuda(nanobind::module_& m);         // cuda_bindings.cc
}  // namespace darnax

namespace {

using darnax::ReleaseGil;

template <typename T, int Rank>
using In = nb::ndarray<const T, nb::ndim<Rank>, nb::c_contig, nb::device::cpu>;
using Index = In<int32_t, 1>;
template <typename T>
using Out = nb::ndarray<nb::numpy, T>;

template <typename T>
Out<T> new_array(std::vector<size_t> shape) {
  size_t n = 1;
  for (size_t s : shape) n *= s;
  T* data = new T[n > 0 ? n : 1];  // every kernel writes all of its outputs
  nb::capsule owner(data, [](void* p) noexcept { delete[] static_cast<T*>(p); });
  return Out<T>(data, shape.size(), shape.data(), owner);
}

void require(bool ok, const std::string& message) {
  if (!ok) throw nb::value_error(("darnax: " + message).c_str());
}

void require_valid(const std::string& err) { require(err.empty(), err); }

darnax::Compressed compressed(const Index& ptr, const Index& idx, int64_t n_inner) {
  require(ptr.shape(0) >= 1, "pointer array must be non-empty");
  return darnax::Compressed{ptr.data(), idx.data(), static_cast<int64_t>(ptr.shape(0)) - 1,
                            n_inner, static_cast<int64_t>(idx.shape(0))};
}

// "" when each outer slot of `c` lists strictly increasing indices (sorted, no duplicates).
std::string check_sorted(const darnax::Compressed& c, const char* name) {
  for (int64_t o = 0; o < c.n_outer; ++o) {
    uint32_t bad = 0;
    for (int64_t p = c.ptr[o] + 1; p < c.ptr[o + 1]; ++p) bad |= c.idx[p] <= c.idx[p - 1];
    if (bad != 0)
      return std::string(name) + ": indices must be strictly increasing in each slot (sorted, "
             "no duplicates); slot " + std::to_string(o) + " is not";
  }
  return "";
}

// Beyond check_pattern's bounds: both orientations sorted without duplicates, and csr_pos
// sends each row-order entry (i, k) to the column-order entry (i, k): the row orientation is
// exactly the transpose of the column one. (No two entries can map to one: an entry of the
// column order is one (i, k), and the sorted rows list each (i, k) once.) O(nnz).
std::string check_pattern_agrees(const darnax::Pattern& pat) {
  std::string err = check_sorted(pat.by_col, "row_idx");
  if (err.empty()) err = check_sorted(pat.by_row, "col_idx");
  if (!err.empty()) return err;
  const int32_t *col_ptr = pat.by_col.ptr, *row_idx = pat.by_col.idx;
  for (int64_t i = 0; i < pat.by_row.n_outer; ++i) {
    uint32_t bad = 0;
    for (int64_t q = pat.by_row.ptr[i]; q < pat.by_row.ptr[i + 1]; ++q) {
      const int32_t p = pat.csr_pos[q], k = pat.by_row.idx[q];
      bad |= (row_idx[p] != i) | (p < col_ptr[k]) | (p >= col_ptr[k + 1]);
    }
    if (bad == 0) continue;
    for (int64_t q = pat.by_row.ptr[i]; q < pat.by_row.ptr[i + 1]; ++q) {
      const int32_t p = pat.csr_pos[q], k = pat.by_row.idx[q];
      if (row_idx[p] != i || p < col_ptr[k] || p >= col_ptr[k + 1])
        return "csr_pos: entry " + std::to_string(q) + " (row " + std::to_string(i) + ", column " +
               std::to_string(k) + ") does not point at that entry of the column order (" +
               std::to_string(p) + "): the two orientations disagree";
    }
  }
  return "";
}

template <typename T>
Out<T> sparse_matmul(In<T, 2> x, In<T, 1> values, Index col_ptr, Index row_idx) {
  const darnax::Compressed w = compressed(col_ptr, row_idx, x.shape(1));
  require_valid(darnax::check_compressed(w, "col_ptr/row_idx"));
  require(static_cast<int64_t>(values.shape(0)) == w.nnz, "values must have length nnz");
  Out<T> out = new_array<T>({x.shape(0), static_cast<size_t>(w.n_outer)});
  ReleaseGil release;
  darnax::kernels<T>().sparse_matmul(x.data(), x.shape(0), values.data(), w, out.data());
  return out;
}

template <typename T>
Out<T> sparse_outer(In<T, 2> x, In<T, 2> e, Index col_ptr, Index row_idx) {
  const darnax::Compressed w = compressed(col_ptr, row_idx, x.shape(1));
  require_valid(darnax::check_compressed(w, "col_ptr/row_idx"));
  require(e.shape(0) == x.shape(0) && static_cast<int64_t>(e.shape(1)) == w.n_outer,
          "e must have shape (B, K)");
  Out<T> out = new_array<T>({static_cast<size_t>(w.nnz)});
  ReleaseGil release;
  darnax::kernels<T>().sparse_outer(x.data(), e.data(), x.shape(0), w, out.data());
  return out;
}

// Validates a square layer's buffers; returns its pattern.
template <typename T>
darnax::Pattern layer(const In<T, 2>& h_ext, const In<T, 1>& values, const Index& col_ptr,
                      const Index& row_idx, const Index& row_ptr, const Index& col_idx,
                      const Index& csr_pos, const In<T, 1>& diag, const In<T, 2>& s0,
                      int64_t n_iter) {
  const int64_t n = h_ext.shape(1);
  require(n_iter >= 0, "the number of sweeps/steps must be >= 0");
  require(static_cast<int64_t>(col_ptr.shape(0)) == n + 1 &&
              static_cast<int64_t>(row_ptr.shape(0)) == n + 1,
          "col_ptr and row_ptr must have length N + 1");
  darnax::Pattern pat{compressed(col_ptr, row_idx, n), compressed(row_ptr, col_idx, n),
                      csr_pos.data()};
  require(static_cast<int64_t>(csr_pos.shape(0)) == pat.by_row.nnz, "csr_pos must have length nnz");
  require(static_cast<int64_t>(values.shape(0)) == pat.by_col.nnz, "values must have length nnz");
  require(static_cast<int64_t>(diag.shape(0)) == n, "diag must have length N");
  require(s0.shape(0) == h_ext.shape(0) && s0.shape(1) == h_ext.shape(1),
          "s0 must have the shape of h_ext");
  require_valid(darnax::check_pattern(pat));
  require_valid(check_pattern_agrees(pat));
  return pat;
}

template <typename T>
std::tuple<Out<T>, Out<int32_t>, Out<T>> async_sign_sweeps(
    In<T, 2> h_ext, In<T, 1> values, Index col_ptr, Index row_idx, Index row_ptr, Index col_idx,
    Index csr_pos, In<T, 1> diag, In<T, 2> s0,
    nb::ndarray<const int32_t, nb::c_contig, nb::device::cpu> order, int64_t n_sweeps) {
  const darnax::Pattern pat =
      layer<T>(h_ext, values, col_ptr, row_idx, row_ptr, col_idx, csr_pos, diag, s0, n_sweeps);
  const size_t batch = h_ext.shape(0), n = h_ext.shape(1);
  const size_t sweeps = order.ndim() == 3 ? order.shape(1) : 1;
  require((order.ndim() == 2 || order.ndim() == 3) && (order.shape(0) == batch || order.shape(0) == 1) &&
              order.shape(order.ndim() - 1) == n &&
              (sweeps == 1 || static_cast<int64_t>(sweeps) == n_sweeps),
          "order must have shape (1 or B, N) or (1 or B, n_sweeps, N)");
  const bool shared = order.shape(0) == 1;
  std::vector<char> seen;
  for (size_t r = 0; r < order.shape(0) * sweeps; ++r)
    require_valid(darnax::check_permutation(order.data() + r * n, n, seen));
  Out<T> s = new_array<T>({batch, n});
  Out<int32_t> flips = new_array<int32_t>({batch, static_cast<size_t>(n_sweeps)});
  Out<T> fields = new_array<T>({batch, n});
  ReleaseGil release;
  darnax::kernels<T>().async_sign_sweeps(h_ext.data(), values.data(), pat, diag.data(), s0.data(),
                                         order.data(), shared, sweeps, batch, n_sweeps, s.data(),
                                         flips.data(), fields.data());
  return {s, flips, fields};
}

template <typename T>
std::tuple<Out<T>, Out<int32_t>, Out<T>> sync_sign_steps(In<T, 2> h_ext, In<T, 1> values, Index col_ptr,
                                                Index row_idx, Index row_ptr, Index col_idx,
                                                Index csr_pos, In<T, 1> diag, In<T, 2> s0,
                                                int64_t n_steps) {
  const darnax::Pattern pat =
      layer<T>(h_ext, values, col_ptr, row_idx, row_ptr, col_idx, csr_pos, diag, s0, n_steps);
  const size_t batch = h_ext.shape(0), n = h_ext.shape(1);
  Out<T> s = new_array<T>({batch, n});
  Out<int32_t> flips = new_array<int32_t>({batch, static_cast<size_t>(n_steps)});
  Out<T> fields = new_array<T>({batch, n});
  ReleaseGil release;
  darnax::kernels<T>().sync_sign_steps(h_ext.data(), values.data(), pat, diag.data(), s0.data(),
                                   batch, n_steps, s.data(), flips.data(),
                                      fields.data());
  return {s, flips, fields};
}

template <typename T>
std::tuple<Out<T>, Out<int32_t>, Out<T>> dense_async_sign_sweeps(
    In<T, 2> h_ext, In<T, 2> couplings, In<T, 2> s0,
    nb::ndarray<const int32_t, nb::c_contig, nb::device::cpu> order, int64_t n_sweeps) {
  const size_t batch = h_ext.shape(0), n = h_ext.shape(1);
  require(n_sweeps >= 0, "the number of sweeps must be >= 0");
  require(couplings.shape(0) == n && couplings.shape(1) == n, "couplings must have shape (N, N)");
  require(s0.shape(0) == batch && s0.shape(1) == n, "s0 must have the shape of h_ext");
  std::vector<int64_t> dims(order.ndim());
  for (size_t d = 0; d < dims.size(); ++d) dims[d] = static_cast<int64_t>(order.shape(d));
  darnax::OrderLayout layout;
  require_valid(darnax::check_orders(order.data(), dims, batch, n, n_sweeps, layout));
  Out<T> s = new_array<T>({batch, n});
  Out<int32_t> flips = new_array<int32_t>({batch, static_cast<size_t>(n_sweeps)});
  Out<T> fields = new_array<T>({batch, n});
  ReleaseGil release;
  darnax::kernels<T>().dense_async_sign_sweeps(h_ext.data(), couplings.data(), s0.data(),
                                               order.data(), layout.shared, layout.sweeps, batch,
                                               n, n_sweeps, s.data(), flips.data(), fields.data());
  return {s, flips, fields};
}

template <typename T>
void bind_direct(nb::module_& m) {
  m.def("sparse_matmul", &sparse_matmul<T>, "x"_a, "values"_a, "col_ptr"_a, "row_idx"_a);
  m.def("sparse_outer", &sparse_outer<T>, "x"_a, "e"_a, "col_ptr"_a, "row_idx"_a);
  m.def("async_sign_sweeps", &async_sign_sweeps<T>, "h_ext"_a, "values"_a, "col_ptr"_a,
        "row_idx"_a, "row_ptr"_a, "col_idx"_a, "csr_pos"_a, "diag"_a, "s0"_a, "order"_a,
        "n_sweeps"_a);
  m.def("sync_sign_steps", &sync_sign_steps<T>, "h_ext"_a, "values"_a, "col_ptr"_a, "row_idx"_a,
        "row_ptr"_a, "col_idx"_a, "csr_pos"_a, "diag"_a, "s0"_a, "n_steps"_a);
  m.def("dense_async_sign_sweeps", &dense_async_sign_sweeps<T>, "h_ext"_a, "couplings"_a, "s0"_a,
        "order"_a, "n_sweeps"_a);
}

Out<int32_t> random_permutations(nb::ndarray<const uint32_t, nb::ndim<2>, nb::c_contig, nb::device::cpu> bits) {
  require(bits.shape(1) <= static_cast<size_t>(INT32_MAX), "bits: n must fit int32");
  Out<int32_t> out = new_array<int32_t>({bits.shape(0), bits.shape(1)});
  darnax::random_permutations(bits.data(), bits.shape(0), bits.shape(1), out.data());
  return out;
}

// A stored pattern as Python sees it: its key, shape and read-only views of its index arrays
// (each view keeps this handle, hence the pattern, alive).
struct StoredPatternHandle {
  darnax::PatternRef pattern;
};

StoredPatternHandle store_pattern(int64_t n_rows, int64_t n_cols, Index col_ptr, Index row_idx) {
  require(static_cast<int64_t>(col_ptr.shape(0)) == n_cols + 1 && n_cols >= 0,
          "col_ptr: expected shape (" + std::to_string(n_cols + 1) + ",), got (" +
              std::to_string(col_ptr.shape(0)) + ",)");
  ReleaseGil release;
  return {darnax::store_pattern(n_rows, n_cols, col_ptr.data(), row_idx.data(),
                                static_cast<int64_t>(row_idx.shape(0)))};
}

using IndexView = nb::ndarray<nb::numpy, const int32_t, nb::ndim<1>>;

template <const std::vector<int32_t>& (darnax::StoredPattern::*Member)() const>
IndexView index_view(nb::handle self) {
  const std::vector<int32_t>& a = (nb::cast<const StoredPatternHandle&>(self).pattern.get()->*Member)();
  const size_t shape[1] = {a.size()};
  return IndexView(a.data(), 1, shape, self);
}

void bind_store(nb::module_& m) {
  using darnax::StoredPattern;
  nb::class_<StoredPatternHandle>(m, "StoredPattern",
                                  "A validated pattern in darnax's process-wide store.")
      .def_prop_ro("key", [](const StoredPatternHandle& h) {
        return static_cast<int64_t>(h.pattern->key());
      }, "The content key that compiled programs name the pattern by (int64).")
      .def_prop_ro("shape", [](const StoredPatternHandle& h) {
        return std::make_tuple(h.pattern->n_rows(), h.pattern->n_cols());
      })
      .def_prop_ro("col_ptr", &index_view<&StoredPattern::col_ptr>)
      .def_prop_ro("row_idx", &index_view<&StoredPattern::row_idx>)
      .def_prop_ro("row_ptr", &index_view<&StoredPattern::row_ptr>)
      .def_prop_ro("col_idx", &index_view<&StoredPattern::col_idx>)
      .def_prop_ro("csr_pos", &index_view<&StoredPattern::csr_pos>)
      .def("same", [](const StoredPatternHandle& a, const StoredPatternHandle& b) {
        return a.pattern == b.pattern;
      }, "other"_a, "Whether both handles hold one stored pattern (equal content).");
  m.def("store_pattern", &store_pattern, "n_rows"_a, "n_cols"_a, "col_ptr"_a, "row_idx"_a,
        "Validate a column-compressed pattern and store it (shared with equal stored content).");
  m.def("stored_pattern_count", &darnax::stored_pattern_count,
        "How many patterns are alive in the store.");
}

template <typename Fn>
nb::capsule capsule(Fn* fn) {
  return nb::capsule(reinterpret_cast<void*>(fn));
}

// A handler whose pattern attributes are checked once, at instantiation.
template <typename Fn>
nb::dict stages(Fn* instantiate, Fn* execute) {
  nb::dict d;
  d["instantiate"] = capsule(instantiate);
  d["execute"] = capsule(execute);
  return d;
}

}  // namespace

NB_MODULE(_ext, m) {
  m.doc() = "darnax compiled core: XLA FFI handlers and direct kernel calls";
  m.def("registrations", []() {
    nb::dict d;
    d["darnax_sparse_matmul"] = stages(darnax::SparseMatmulInstantiate, darnax::SparseMatmul);
    d["darnax_sparse_outer"] = stages(darnax::SparseOuterInstantiate, darnax::SparseOuter);
    d["darnax_async_sign_sweeps"] =
        stages(darnax::AsyncSignSweepsInstantiate, darnax::AsyncSignSweeps);
    d["darnax_sync_sign_steps"] = stages(darnax::SyncSignStepsInstantiate, darnax::SyncSignSteps);
    d["darnax_random_permutations"] = capsule(darnax::RandomPermutations);
    d["darnax_dense_async_sign_sweeps"] = capsule(darnax::DenseAsyncSignSweeps);
    d["darnax_all_finite"] = capsule(darnax::AllFinite);
    d["darnax_dense_outer"] = capsule(darnax::DenseOuter);
    return d;
  }, "XLA FFI targets: name -> handler capsule, or {stage: capsule} for staged handlers.");
  m.def("ffi_types", []() {
    nb::dict t;
    t["type_id"] = nb::capsule(darnax::checked_pattern_type_id());
    t["type_info"] = nb::capsule(darnax::checked_pattern_type_info());
    nb::dict d;
    d["darnax_checked_pattern"] = t;
    return d;
  }, "XLA FFI state types: name -> {type_id, type_info} capsules (register before the targets).");
  m.attr("ffi_api_version") = nb::make_tuple(XLA_FFI_API_MAJOR, XLA_FFI_API_MINOR);
  m.attr("built_with_jaxlib") = DARNAX_JAXLIB_VERSION;
  m.def("kernel_isa", &darnax::kernel_isa, "The instruction set of the kernels in use.");
  darnax::bind_diagnostics(m);
  darnax::bind_cuda(m);
  bind_store(m);
  bind_direct<float>(m);
  bind_direct<double>(m);
  m.def("random_permutations", &random_permutations, "bits"_a);
}
