#pragma once
// Small pure text helpers shared by the field parsers.
#include <string_view>

namespace duet {

// Optional whitespace (RFC 9110 §5.6.3: spaces and tabs) removed from both ends.
inline std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace duet
