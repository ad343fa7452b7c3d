#pragma once
// Small pure text helpers shared by the field parsers.
#include <cstdint>
#include <string_view>

namespace duet {

// Optional whitespace (RFC 9110 §5.6.3: spaces and tabs) removed from both ends.
inline std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// ASCII lower case (RFC 9110 field names, tokens and methods-insensitive words are ASCII).
constexpr char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? char(c | 0x20) : c;
}

// RFC 9110 §5.6.2 tchar: a byte of a token (a method, a field name, a parameter name).
constexpr bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')) return true;
    for (char t : std::string_view("!#$%&'*+-.^_`|~"))
        if (c == static_cast<unsigned char>(t)) return true;
    return false;
}

// Case-insensitive ASCII comparison.
inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

// A decimal number of digits only, at most `max`: false on anything else, overflow included.
inline bool parse_decimal(std::string_view s, std::uint64_t max, std::uint64_t& out) {
    if (s.empty()) return false;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        std::uint64_t d = std::uint64_t(c - '0');
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    out = v;
    return true;
}

// A token given by a client against the expected one (both ports), in time independent of where
// they differ: every byte of the expected token is compared.
inline bool token_matches(std::string_view given, std::string_view token) {
    unsigned diff = given.size() != token.size();
    for (std::size_t i = 0; i < token.size(); ++i) {
        unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
        diff |= g ^ static_cast<unsigned char>(token[i]);
    }
    return diff == 0;
}

}  // namespace duet
