#include "duet/store/names.hpp"

#include <cstdint>
#include <cstdio>

namespace duet {
namespace {

// One UTF-8 sequence at `s[i]` (RFC 3629: no overlongs, no surrogates, at most U+10FFFF):
// its length and code point, or 0 when it is not well-formed.
std::size_t utf8_at(std::string_view s, std::size_t i, char32_t& cp) {
    auto byte = [&s](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    if (c < 0x80) {
        cp = c;
        return 1;
    }
    std::size_t len;
    char32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (i + len > s.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        unsigned char t = byte(i + k);
        if ((t & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (t & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

std::string code_point(char32_t cp) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04X", unsigned(cp));
    return buf;
}

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char* put_encoded(char* p, std::string_view name, bool (*keep)(unsigned char)) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (char ch : name) {
        auto c = static_cast<unsigned char>(ch);
        if (keep(c)) {
            *p++ = ch;
        } else {
            *p++ = '%';
            *p++ = kHex[c >> 4];
            *p++ = kHex[c & 15];
        }
    }
    return p;
}

std::size_t encoded_size(std::string_view name, bool (*keep)(unsigned char)) {
    std::size_t n = name.size();
    for (char c : name)
        if (!keep(static_cast<unsigned char>(c))) n += 2;
    return n;
}

std::string encode(std::string_view name, bool (*keep)(unsigned char)) {
    std::string out(encoded_size(name, keep), '\0');
    put_encoded(out.data(), name, keep);
    return out;
}

bool port_keeps(unsigned char c) {
    return c > 0x20 && c < 0x7F && c != '%';
}

}  // namespace

std::string name_error(std::string_view name) {
    const std::string head = "invalid file name: ";
    if (name.empty()) return head + "is empty";
    if (name.size() > kMaxSegmentBytes)
        return head + "is " + std::to_string(name.size()) + " bytes, the limit is 255";
    for (std::size_t i = 0; i < name.size();) {
        char32_t cp;
        std::size_t len = utf8_at(name, i, cp);
        std::string at = " at byte " + std::to_string(i + 1);
        if (len == 0) return head + "not valid UTF-8" + at;
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            return head + "a control character (" + code_point(cp) + ")" + at;
        if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
            return head + "a bidirectional control (" + code_point(cp) + ")" + at;
        if (cp == '/') return head + "a '/' inside a name (%2F)" + at;
        if (cp == '\\') return head + "a backslash" + at;
        i += len;
    }
    if (name[0] == '.') return head + "must not start with '.'";
    if (name.front() == ' ') return head + "must not start with a space";
    if (name.back() == ' ') return head + "must not end with a space";
    return {};
}

bool valid_name(std::string_view name) {
    return name_error(name).empty();
}

std::string path_error(std::string_view path) {
    if (path.size() > kMaxPathBytes)
        return "invalid file name: the path is " + std::to_string(path.size()) +
               " bytes, the limit is 1024";
    std::size_t segments = 0;
    for (std::size_t at = 0;;) {
        std::size_t slash = path.find('/', at);
        std::string_view seg =
            path.substr(at, slash == std::string_view::npos ? path.npos : slash - at);
        if (++segments > kMaxSegments) return "invalid file name: more than 32 folder levels";
        // Byte positions count within the segment that breaks a rule.
        if (std::string why = name_error(seg); !why.empty()) return why;
        if (slash == std::string_view::npos) return {};
        at = slash + 1;
    }
}

bool valid_path(std::string_view path) {
    return path_error(path).empty();
}

std::string_view parent_of(std::string_view path) {
    std::size_t slash = path.rfind('/');
    return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

std::string_view leaf_of(std::string_view path) {
    std::size_t slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string port_encode(std::string_view name) {
    return encode(name, port_keeps);
}

std::size_t port_encoded_size(std::string_view name) {
    return encoded_size(name, port_keeps);
}

char* put_port_encoded(char* p, std::string_view name) {
    return put_encoded(p, name, port_keeps);
}

std::string url_encode(std::string_view name) {
    return encode(name, [](unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '_' || c == '~' || c == '!' || c == '$' || c == '&' ||
               c == '\'' || c == '(' || c == ')' || c == '*' || c == '+' || c == ',' || c == ';' ||
               c == '=' || c == ':' || c == '@' || c == '/';
    });
}

bool percent_decode(std::string_view in, std::string& out, std::size_t* bad_at) {
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        int hi = i + 2 < in.size() ? hex(in[i + 1]) : -1,
            lo = i + 2 < in.size() ? hex(in[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            if (bad_at) *bad_at = i + 1;
            return false;
        }
        out += char(hi * 16 + lo);
        i += 2;
    }
    return true;
}

std::string decode_path(std::string_view raw, std::string& out, bool& folder) {
    out.clear();
    folder = raw.empty() || raw.back() == '/';
    if (folder && !raw.empty()) raw.remove_suffix(1);
    if (raw.empty()) return folder ? std::string() : "invalid file name: is empty";
    std::string seg;
    std::size_t segments = 0;
    for (std::size_t at = 0;;) {
        std::size_t slash = raw.find('/', at);
        std::size_t len = slash == std::string_view::npos ? raw.size() - at : slash - at;
        std::size_t bad_at = 0;
        if (!percent_decode(raw.substr(at, len), seg, &bad_at))
            return "invalid file name: bad percent escape at byte " + std::to_string(at + bad_at);
        // Each segment is checked as decoded, so an encoded '/' is refused inside its segment.
        if (std::string why = name_error(seg); !why.empty()) return why;
        if (++segments > kMaxSegments) return "invalid file name: more than 32 folder levels";
        if (!out.empty()) out += '/';
        out += seg;
        if (out.size() > kMaxPathBytes) break;
        if (slash == std::string_view::npos) break;
        at = slash + 1;
    }
    return path_error(out);
}

}  // namespace duet
