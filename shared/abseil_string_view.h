// Passing a std::string_view to Abseil.
//
// Debian 12's Abseil (20220623) is built with ABSL_OPTION_USE_STD_STRING_VIEW
// off, so absl::string_view is a type of its own, not std::string_view, and
// the two do not convert into each other. Abseil's functions (absl::StrCat,
// absl::SimpleAtoi, ...) take absl::string_view; our interfaces take
// std::string_view. Sv() is the one bridge, so that no file declares its own
// and none copies into a std::string only to change the type.
//
//   absl::StrCat("--listen=", Sv(listen), ": bad port");
#ifndef COUNTERSD_SHARED_ABSEIL_STRING_VIEW_H_
#define COUNTERSD_SHARED_ABSEIL_STRING_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace countersd {

// The same characters as an absl::string_view (no copy; `s` must outlive it).
inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace countersd

#endif  // COUNTERSD_SHARED_ABSEIL_STRING_VIEW_H_
