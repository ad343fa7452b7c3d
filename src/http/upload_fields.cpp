// Upload-* field parsing for the IETF resumable-upload draft and tus 1.0.0.
#include "duet/http/upload_fields.hpp"

#include <cstring>

#include "duet/core/base64.hpp"
#include "duet/core/text.hpp"

namespace duet {
namespace {

// RFC 8941 §3.1.2: parameters follow the bare item after ';'. We read no parameter, but a
// well-formed item with parameters is still that item.
std::string_view bare_item(std::string_view s) {
    s = trim_ows(s);
    std::size_t semi = s.find(';');
    return semi == std::string_view::npos ? s : s.substr(0, semi);
}

}  // namespace

int supported_interop_version(std::string_view value) {
    std::uint64_t v = 0;
    if (!parse_sf_uint(value, v)) return 0;
    return v >= std::uint64_t(kInteropMin) && v <= std::uint64_t(kInteropMax) ? int(v) : 0;
}

bool parse_sf_boolean(std::string_view value, bool& out) {
    std::string_view s = bare_item(value);
    if (s == "?1") {
        out = true;
        return true;
    }
    if (s == "?0") {
        out = false;
        return true;
    }
    return false;
}

bool parse_sf_uint(std::string_view value, std::uint64_t& out) {
    std::string_view s = bare_item(value);
    if (s.empty() || s.size() > 15) return false;  // RFC 8941 §3.3.1: at most 15 digits
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + std::uint64_t(c - '0');
    }
    out = v;
    return true;
}

FieldResult parse_tus_metadata(std::string_view value, std::string& filename) {
    FieldResult result = FieldResult::Absent;
    bool have_filename = false;
    while (!value.empty()) {
        std::size_t comma = value.find(',');
        std::string_view pair = trim_ows(value.substr(0, comma));
        value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
        if (pair.empty()) continue;
        std::size_t sp = pair.find(' ');
        std::string_view key = pair.substr(0, sp);
        std::string_view encoded =
            sp == std::string_view::npos ? std::string_view() : trim_ows(pair.substr(sp + 1));
        if (key.empty() || encoded.find(' ') != std::string_view::npos)
            return FieldResult::Malformed;
        std::string decoded;
        if (!encoded.empty() && !base64_decode(encoded, decoded)) return FieldResult::Malformed;
        if (key == "filename" || (!have_filename && key == "name")) {
            filename = std::move(decoded);
            have_filename = key == "filename";
            result = FieldResult::Found;
        }
    }
    return result;
}

ChecksumResult parse_tus_checksum(std::string_view value, Digest& out) {
    std::string_view s = trim_ows(value);
    std::size_t sp = s.find(' ');
    if (sp == std::string_view::npos || sp == 0) return ChecksumResult::Malformed;
    std::string_view algo = s.substr(0, sp);
    std::string decoded;
    if (!base64_decode(trim_ows(s.substr(sp + 1)), decoded)) return ChecksumResult::Malformed;
    if (algo != "sha256") return ChecksumResult::Unsupported;
    if (decoded.size() != out.size()) return ChecksumResult::Malformed;
    std::memcpy(out.data(), decoded.data(), out.size());
    return ChecksumResult::Ok;
}

}  // namespace duet
