#include "duet/core/log_escape.hpp"

#include <cstdint>

namespace duet {
namespace {

void put_hex(std::string& out, unsigned char c) {
    static const char digits[] = "0123456789ABCDEF";
    out += '\\';
    out += 'x';
    out += digits[c >> 4];
    out += digits[c & 15];
}

// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF), or 0.
std::size_t utf8_length(std::string_view s, std::uint32_t& cp) {
    auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    unsigned char c = b(0);
    std::size_t n;
    std::uint32_t min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (s.size() < n) return 0;
    for (std::size_t i = 1; i < n; ++i) {
        if ((b(i) & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (b(i) & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

}  // namespace

void append_log_escaped(std::string& out, std::string_view in) {
    out.reserve(out.size() + in.size());
    while (!in.empty()) {
        unsigned char c = static_cast<unsigned char>(in[0]);
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7F || c == '"' || c == '\\')
                put_hex(out, c);
            else
                out += char(c);
            in.remove_prefix(1);
            continue;
        }
        std::uint32_t cp = 0;
        std::size_t n = utf8_length(in, cp);
        // C1 controls (U+0080..U+009F) are still controls to a terminal: escaped byte by byte.
        if (n == 0 || cp <= 0x9F) {
            std::size_t k = n ? n : 1;
            for (std::size_t i = 0; i < k; ++i) put_hex(out, static_cast<unsigned char>(in[i]));
            in.remove_prefix(k);
            continue;
        }
        out.append(in.substr(0, n));
        in.remove_prefix(n);
    }
}

}  // namespace duet
