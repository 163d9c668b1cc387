// The pattern attribute: a store key, looked up once at instantiation, read in O(1) after.
#include "ffi/pattern_attrs.h"

namespace darnax {

ffi::TypeId CheckedPattern::id = {};

static const XLA_FFI_TypeInfo kCheckedPatternInfo = ffi::MakeTypeInfo<CheckedPattern>();

void* checked_pattern_type_id() { return &CheckedPattern::id; }
void* checked_pattern_type_info() { return const_cast<XLA_FFI_TypeInfo*>(&kCheckedPatternInfo); }

static CheckedState found(int64_t key, bool need_square) {
  PatternRef pattern = find_pattern(static_cast<uint64_t>(key));
  if (!pattern)
    return ffi::Unexpected(invalid(
        "pattern " + std::to_string(key) +
        " is not in this process's pattern store (its SparsityPattern was freed, or the program "
        "was built in another process): build the SparsityPattern here before running it"));
  if (need_square && !pattern->square())
    return ffi::Unexpected(invalid("pattern: expected a square pattern, got (" +
                                   std::to_string(pattern->n_rows()) + ", " +
                                   std::to_string(pattern->n_cols()) + ")"));
  auto st = std::make_unique<CheckedPattern>();
  st->pattern = std::move(pattern);
  return st;
}

CheckedState find_by_col(int64_t key) { return found(key, false); }

CheckedState find_square(int64_t key) { return found(key, true); }

const StoredPattern* pattern_of(const CheckedPattern* checked, int64_t key, std::string& err) {
  if (checked == nullptr || !checked->pattern ||
      checked->pattern->key() != static_cast<uint64_t>(key)) {
    err = "pattern " + std::to_string(key) + " differs from the one found at instantiation";
    return nullptr;
  }
  return checked->pattern.get();
}

const StoredPattern* pattern_for_rows(const CheckedPattern* checked, int64_t key,
                                      ffi::Span<const int64_t> x_dims, std::string& err) {
  const StoredPattern* pattern = pattern_of(checked, key, err);
  if (pattern != nullptr && (x_dims.size() != 2 || x_dims[1] != pattern->n_rows())) {
    err = "x: expected shape (B, " + std::to_string(pattern->n_rows()) + "), got " + shape_str(x_dims);
    return nullptr;
  }
  return pattern;
}

}  // namespace darnax
