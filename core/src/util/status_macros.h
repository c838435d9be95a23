// Early-return helpers for absl::Status, used inside the core only.
#ifndef SPOOR_UTIL_STATUS_MACROS_H_
#define SPOOR_UTIL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SPOOR_CONCAT_INNER_(a, b) a##b
#define SPOOR_CONCAT_(a, b) SPOOR_CONCAT_INNER_(a, b)

#define SPOOR_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::absl::Status spoor_status_ = (expr);         \
    if (!spoor_status_.ok()) return spoor_status_; \
  } while (0)

#define SPOOR_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(*tmp)

#define SPOOR_ASSIGN_OR_RETURN(lhs, expr) \
  SPOOR_ASSIGN_OR_RETURN_IMPL_(SPOOR_CONCAT_(spoor_or_, __LINE__), lhs, expr)

#endif  // SPOOR_UTIL_STATUS_MACROS_H_
