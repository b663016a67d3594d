// Small helpers for absl::Status propagation. Abseil 20220623 (Debian 12) has
// no ABSL_RETURN_IF_ERROR, so the project keeps this one copy.
#ifndef COUNTERSD_SHARED_STATUS_MACROS_H_
#define COUNTERSD_SHARED_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define COUNTERSD_CONCAT_INNER_(a, b) a##b
#define COUNTERSD_CONCAT_(a, b) COUNTERSD_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing
// function if it is not OK.
#define RETURN_IF_ERROR(expr)                                    \
  do {                                                           \
    ::absl::Status status_macro_status_ = (expr);                \
    if (!status_macro_status_.ok()) return status_macro_status_; \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, StatusOrExpr())`: on error returns the status,
// otherwise moves the value into the declaration.
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ASSIGN_OR_RETURN_IMPL_(COUNTERSD_CONCAT_(status_or_value_, __LINE__), lhs, rexpr)
// `lhs` is a declaration, so it cannot be parenthesised.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr)  \
  auto tmp = (rexpr);                            \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // COUNTERSD_SHARED_STATUS_MACROS_H_
