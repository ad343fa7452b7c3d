#include "duet/http_fields.hpp"

#include "duet/base64.hpp"
#include "duet/http_parser.hpp"

namespace duet {
namespace {

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Plain decimal digits, saturating at UINT64_MAX: a range position too large to represent is
// still well-formed (RFC 9110 §14.1.1) and means "past any end"; false on empty or non-digit.
bool to_u64_saturating(std::string_view s, std::uint64_t& out) {
    if (s.empty()) return false;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        std::uint64_t d = std::uint64_t(c - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    out = v;
    return true;
}

}  // namespace

bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 2 >= in.size()) return false;
        int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
        if (hi < 0 || lo < 0) return false;
        out += char(hi * 16 + lo);
        i += 2;
    }
    return true;
}

RangeResult parse_range(std::string_view value, std::uint64_t size, std::uint64_t& start,
                        std::uint64_t& length) {
    value = trim(value);
    if (value.size() < 6 || !iequals(value.substr(0, 6), "bytes=")) return RangeResult::Ignore;
    std::string_view spec = trim(value.substr(6));
    if (spec.find(',') != std::string_view::npos) return RangeResult::Ignore;
    std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return RangeResult::Ignore;
    std::string_view first = trim(spec.substr(0, dash)), last = trim(spec.substr(dash + 1));
    std::uint64_t a = 0, b = 0;
    if (first.empty()) {  // suffix range: the last N bytes
        if (!to_u64_saturating(last, b)) return RangeResult::Ignore;
        if (b == 0 || size == 0) return RangeResult::Unsatisfiable;
        length = b < size ? b : size;
        start = size - length;
        return RangeResult::Satisfiable;
    }
    if (!to_u64_saturating(first, a)) return RangeResult::Ignore;
    if (!last.empty() && (!to_u64_saturating(last, b) || b < a)) return RangeResult::Ignore;
    if (a >= size) return RangeResult::Unsatisfiable;
    std::uint64_t end = last.empty() || b >= size ? size - 1 : b;
    start = a;
    length = end - a + 1;
    return RangeResult::Satisfiable;
}

DigestField parse_digest_field(std::string_view value, Digest& out) {
    // A structured-field dictionary: members separated by commas, key=:byte-sequence:.
    while (!value.empty()) {
        std::size_t comma = value.find(',');
        std::string_view member = trim(value.substr(0, comma));
        std::size_t eq = member.find('=');
        if (eq != std::string_view::npos && iequals(trim(member.substr(0, eq)), "sha-256")) {
            std::string_view v = trim(member.substr(eq + 1));
            if (v.size() < 2 || v.front() != ':' || v.back() != ':') return DigestField::Malformed;
            std::string raw;
            if (!base64_decode(v.substr(1, v.size() - 2), raw) || raw.size() != out.size())
                return DigestField::Malformed;
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = std::uint8_t(raw[i]);
            return DigestField::Found;
        }
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return DigestField::Absent;
}

bool etag_list_matches(std::string_view list, std::string_view etag) {
    if (trim(list) == "*") return true;
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::string_view tag = trim(list.substr(0, comma));
        if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
        if (tag == etag) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

bool bearer_matches(std::string_view authorization, std::string_view token) {
    authorization = trim(authorization);
    if (authorization.size() < 7 || !iequals(authorization.substr(0, 7), "bearer ")) return false;
    std::string_view given = trim(authorization.substr(7));
    // Constant time in the token's content: every byte of the expected token is compared.
    unsigned diff = given.size() != token.size();
    for (std::size_t i = 0; i < token.size(); ++i) {
        unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
        diff |= g ^ static_cast<unsigned char>(token[i]);
    }
    return diff == 0;
}

}  // namespace duet
