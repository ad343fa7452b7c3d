#include "duet/http/http_fields.hpp"

#include "duet/core/base64.hpp"
#include "duet/core/text.hpp"
#include "duet/http/http_parser.hpp"

namespace duet {
namespace {

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

std::string_view query_value(std::string_view target, std::string_view key) {
    std::size_t q = target.find('?');
    if (q == std::string_view::npos) return {};
    std::string_view rest = target.substr(q + 1);
    std::size_t hash = rest.find('#');
    if (hash != std::string_view::npos) rest = rest.substr(0, hash);
    while (!rest.empty()) {
        std::size_t amp = rest.find('&');
        std::string_view part = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        std::size_t eq = part.find('=');
        if (part.substr(0, eq) != key) continue;
        return eq == std::string_view::npos ? std::string_view("1") : part.substr(eq + 1);
    }
    return {};
}

bool query_flag(std::string_view target, std::string_view key) {
    std::string_view v = query_value(target, key);
    return v == "1" || iequals(v, "true") || iequals(v, "yes");
}

bool has_dot_segment(std::string_view p) {
    for (std::size_t i = 0; i < p.size(); ++i) {
        if (p[i] != '.' || (i > 0 && p[i - 1] != '/')) continue;
        std::size_t j = i + 1;
        if (j < p.size() && p[j] == '.') ++j;
        if (j == p.size() || p[j] == '/') return true;
    }
    return false;
}

std::string remove_dot_segments(std::string_view in) {
    // The loop of RFC 3986 §5.2.4, step by step on an input buffer and an output buffer.
    std::string out;
    out.reserve(in.size());
    auto pop_last = [&out] {
        std::size_t slash = out.rfind('/');
        out.erase(slash == std::string::npos ? 0 : slash);
    };
    while (!in.empty()) {
        if (in.substr(0, 3) == "../") {
            in.remove_prefix(3);
        } else if (in.substr(0, 2) == "./") {
            in.remove_prefix(2);
        } else if (in.substr(0, 3) == "/./") {
            in.remove_prefix(2);
        } else if (in == "/.") {
            in = "/";
        } else if (in.substr(0, 4) == "/../") {
            in.remove_prefix(3);
            pop_last();
        } else if (in == "/..") {
            in = "/";
            pop_last();
        } else if (in == "." || in == "..") {
            in = {};
        } else {
            std::size_t next = in.find('/', in[0] == '/' ? 1 : 0);
            std::string_view seg = in.substr(0, next);
            out.append(seg);
            in.remove_prefix(seg.size());
        }
    }
    return out;
}

bool ExpectedDigest::add(std::string_view combined_value) {
    Digest got{};
    DigestField r = parse_digest_field(combined_value, got);
    if (r == DigestField::Malformed) return false;
    if (r == DigestField::Found) {
        if (any && got != d) conflict = true;
        d = got;
        any = true;
    }
    return true;
}

bool trailer_value(std::string_view trailers, std::string_view name, std::string& combined,
                   bool& present) {
    present = false;
    combined.clear();
    while (!trailers.empty()) {
        std::size_t nl = trailers.find('\n');
        std::string_view line = trailers.substr(0, nl);
        trailers.remove_prefix(nl == std::string_view::npos ? trailers.size() : nl + 1);
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return false;
        std::string_view fname = line.substr(0, colon);
        for (char c : fname) {
            bool tchar = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
                         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
            if (!tchar) return false;
        }
        if (!iequals(fname, name)) continue;
        if (present) combined += ", ";
        combined.append(trim_ows(line.substr(colon + 1)));
        present = true;
    }
    return true;
}

RangeResult parse_range(std::string_view value, std::uint64_t size, std::uint64_t& start,
                        std::uint64_t& length) {
    value = trim_ows(value);
    if (value.size() < 6 || !iequals(value.substr(0, 6), "bytes=")) return RangeResult::Ignore;
    std::string_view spec = trim_ows(value.substr(6));
    if (spec.find(',') != std::string_view::npos) return RangeResult::Ignore;
    std::size_t dash = spec.find('-');
    if (dash == std::string_view::npos) return RangeResult::Ignore;
    std::string_view first = trim_ows(spec.substr(0, dash)), last = trim_ows(spec.substr(dash + 1));
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

namespace {

// RFC 8941 structured-field parsing, only as far as a dictionary needs: keys, bare items (byte
// sequences, strings, tokens, numbers, booleans), inner lists and parameters. Each function
// advances `s` past what it read and returns false on a syntax error.
bool is_lcalpha(char c) {
    return c >= 'a' && c <= 'z';
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
    return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
}
bool is_sf_tchar(char c) {
    return is_alpha(c) || is_digit(c) ||
           (c != 0 && std::string_view("!#$%&'*+-.^_`|~:/").find(c) != std::string_view::npos);
}
bool is_b64(char c) {
    return is_alpha(c) || is_digit(c) || c == '+' || c == '/' || c == '=';
}

void skip_sp(std::string_view& s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
}
void skip_ows(std::string_view& s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
}

bool sf_key(std::string_view& s, std::string_view& key) {
    if (s.empty() || !(is_lcalpha(s[0]) || s[0] == '*')) return false;
    std::size_t i = 1;
    while (i < s.size() && (is_lcalpha(s[i]) || is_digit(s[i]) ||
                            std::string_view("_-.*").find(s[i]) != std::string_view::npos))
        ++i;
    key = s.substr(0, i);
    s.remove_prefix(i);
    return true;
}

// A bare item; `bytes` gets the content of a byte sequence (between the colons), if it is one.
bool sf_bare_item(std::string_view& s, std::string_view& bytes, bool& is_bytes) {
    is_bytes = false;
    if (s.empty()) return false;
    char c = s[0];
    if (c == ':') {
        std::size_t end = s.find(':', 1);
        if (end == std::string_view::npos) return false;
        bytes = s.substr(1, end - 1);
        for (char b : bytes)
            if (!is_b64(b)) return false;
        is_bytes = true;
        s.remove_prefix(end + 1);
        return true;
    }
    if (c == '"') {
        for (std::size_t i = 1; i < s.size(); ++i) {
            char x = s[i];
            if (x == '\\') {
                if (i + 1 >= s.size() || (s[i + 1] != '"' && s[i + 1] != '\\')) return false;
                ++i;
            } else if (x == '"') {
                s.remove_prefix(i + 1);
                return true;
            } else if (x < 0x20 || x == 0x7f) {
                return false;
            }
        }
        return false;
    }
    if (c == '?') {
        if (s.size() < 2 || (s[1] != '0' && s[1] != '1')) return false;
        s.remove_prefix(2);
        return true;
    }
    if (c == '-' || is_digit(c)) {
        std::size_t i = c == '-' ? 1 : 0;
        std::size_t start = i;
        while (i < s.size() && (is_digit(s[i]) || s[i] == '.')) ++i;
        if (i == start || i - start > 20) return false;
        s.remove_prefix(i);
        return true;
    }
    if (is_alpha(c) || c == '*') {
        std::size_t i = 1;
        while (i < s.size() && is_sf_tchar(s[i])) ++i;
        s.remove_prefix(i);
        return true;
    }
    return false;
}

bool sf_parameters(std::string_view& s) {
    while (!s.empty() && s.front() == ';') {
        s.remove_prefix(1);
        skip_sp(s);
        std::string_view key;
        if (!sf_key(s, key)) return false;
        if (!s.empty() && s.front() == '=') {
            s.remove_prefix(1);
            std::string_view b;
            bool is_bytes;
            if (!sf_bare_item(s, b, is_bytes)) return false;
        }
    }
    return true;
}

bool sf_item_or_inner_list(std::string_view& s, std::string_view& bytes, bool& is_bytes) {
    is_bytes = false;
    if (!s.empty() && s.front() == '(') {
        s.remove_prefix(1);
        for (;;) {
            skip_sp(s);
            if (s.empty()) return false;
            if (s.front() == ')') {
                s.remove_prefix(1);
                break;
            }
            std::string_view b;
            bool ib;
            if (!sf_bare_item(s, b, ib) || !sf_parameters(s)) return false;
            if (!s.empty() && s.front() != ' ' && s.front() != ')') return false;
        }
        return sf_parameters(s);
    }
    return sf_bare_item(s, bytes, is_bytes) && sf_parameters(s);
}

}  // namespace

DigestField parse_digest_field(std::string_view value, Digest& out) {
    // RFC 8941 §4.2.2 dictionary. The last sha-256 member wins (§3.2: a repeated key replaces
    // the earlier value); members with other keys are ignored (RFC 9530 §2), but the whole field
    // must parse.
    std::string_view s = value;
    skip_sp(s);
    DigestField result = DigestField::Absent;
    Digest found{};
    while (!s.empty()) {
        std::string_view key, bytes;
        bool is_bytes = false;
        if (!sf_key(s, key)) return DigestField::Malformed;
        if (!s.empty() && s.front() == '=') {
            s.remove_prefix(1);
            if (!sf_item_or_inner_list(s, bytes, is_bytes)) return DigestField::Malformed;
        } else if (!sf_parameters(s)) {  // a bare key is the boolean true
            return DigestField::Malformed;
        }
        if (key == "sha-256") {
            std::string raw;
            if (!is_bytes || !base64_decode(bytes, raw) || raw.size() != found.size())
                return DigestField::Malformed;
            for (std::size_t i = 0; i < found.size(); ++i) found[i] = std::uint8_t(raw[i]);
            result = DigestField::Found;
        }
        skip_ows(s);
        if (s.empty()) break;
        if (s.front() != ',') return DigestField::Malformed;
        s.remove_prefix(1);
        skip_ows(s);
        if (s.empty()) return DigestField::Malformed;  // trailing comma
    }
    if (result == DigestField::Found) out = found;
    return result;
}

bool etag_list_matches(std::string_view list, std::string_view etag) {
    if (trim_ows(list) == "*") return true;
    while (!list.empty()) {
        std::size_t comma = list.find(',');
        std::string_view tag = trim_ows(list.substr(0, comma));
        if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
        if (tag == etag) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

bool bearer_matches(std::string_view authorization, std::string_view token) {
    authorization = trim_ows(authorization);
    if (authorization.size() < 7 || !iequals(authorization.substr(0, 7), "bearer ")) return false;
    return token_matches(trim_ows(authorization.substr(7)), token);
}

}  // namespace duet
