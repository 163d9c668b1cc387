// Pattern attributes: checked once at instantiation, viewed in O(1) at each execution.
#include "ffi/pattern_attrs.h"

namespace darnax {

ffi::TypeId CheckedPattern::id = {};

static const XLA_FFI_TypeInfo kCheckedPatternInfo = ffi::MakeTypeInfo<CheckedPattern>();

void* checked_pattern_type_id() { return &CheckedPattern::id; }
void* checked_pattern_type_info() { return const_cast<XLA_FFI_TypeInfo*>(&kCheckedPatternInfo); }

static int64_t size_of(IndexSpan s) { return static_cast<int64_t>(s.size()); }

static Compressed view(IndexSpan ptr, IndexSpan idx, int64_t n_inner) {
  return Compressed{ptr.begin(), idx.begin(), size_of(ptr) - 1, n_inner, size_of(idx)};
}

static CheckedState failed(const std::string& message) { return ffi::Unexpected(invalid(message)); }

CheckedState check_by_col_attrs(IndexSpan col_ptr, IndexSpan row_idx, int64_t n_rows) {
  if (col_ptr.size() < 1) return failed("col_ptr: pointer array must be non-empty");
  if (n_rows < 0 || n_rows > INT32_MAX)
    return failed("n_rows: expected 0 <= n_rows < 2^31, got " + std::to_string(n_rows));
  const Compressed w = view(col_ptr, row_idx, n_rows);
  const std::string err = check_compressed(w, "col_ptr/row_idx");
  if (!err.empty()) return failed(err);
  auto st = std::make_unique<CheckedPattern>();
  *st = CheckedPattern{n_rows, w.n_outer, w.nnz, false};
  return st;
}

CheckedState check_square_attrs(IndexSpan col_ptr, IndexSpan row_idx, IndexSpan row_ptr,
                                IndexSpan col_idx, IndexSpan csr_pos) {
  if (col_ptr.size() < 1 || row_ptr.size() < 1)
    return failed("col_ptr/row_ptr: pointer arrays must be non-empty");
  const int64_t n = size_of(col_ptr) - 1;
  if (size_of(row_ptr) != n + 1)
    return failed("row_ptr: expected length " + std::to_string(n + 1) + " (a square pattern), got " +
                  std::to_string(size_of(row_ptr)));
  if (size_of(csr_pos) != size_of(col_idx))
    return failed("csr_pos: expected one entry per stored coupling (" +
                  std::to_string(size_of(col_idx)) + "), got " + std::to_string(size_of(csr_pos)));
  const Pattern pat{view(col_ptr, row_idx, n), view(row_ptr, col_idx, n), csr_pos.begin()};
  const std::string err = check_pattern(pat);
  if (!err.empty()) return failed(err);
  auto st = std::make_unique<CheckedPattern>();
  *st = CheckedPattern{n, n, pat.by_col.nnz, true};
  return st;
}

std::string by_col_view(const CheckedPattern* st, IndexSpan col_ptr, IndexSpan row_idx,
                        int64_t n_rows, Compressed& out) {
  if (st == nullptr || st->square || size_of(col_ptr) != st->n_cols + 1 ||
      size_of(row_idx) != st->nnz || n_rows != st->n_rows)
    return "pattern attributes differ from the ones checked at instantiation";
  out = view(col_ptr, row_idx, n_rows);
  return "";
}

std::string square_view(const CheckedPattern* st, IndexSpan col_ptr, IndexSpan row_idx,
                        IndexSpan row_ptr, IndexSpan col_idx, IndexSpan csr_pos, int64_t n,
                        Pattern& out) {
  if (st == nullptr || !st->square || size_of(col_ptr) != st->n_cols + 1 ||
      size_of(row_ptr) != st->n_rows + 1 || size_of(row_idx) != st->nnz ||
      size_of(col_idx) != st->nnz || size_of(csr_pos) != st->nnz)
    return "pattern attributes differ from the ones checked at instantiation";
  if (n != st->n_cols)
    return "h_ext: expected " + std::to_string(st->n_cols) + " units (the pattern's width), got " +
           std::to_string(n);
  out = Pattern{view(col_ptr, row_idx, n), view(row_ptr, col_idx, n), csr_pos.begin()};
  return "";
}

}  // namespace darnax
