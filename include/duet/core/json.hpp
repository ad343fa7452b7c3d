#pragma once
// JSON string contents (RFC 8259 §7): '"', '\' and control bytes escaped, every other byte as is
// (names are valid UTF-8 by then). Sized first, then written, so that listings can promise their
// length before rendering.
#include <cstddef>
#include <string>
#include <string_view>

namespace duet {

inline std::size_t json_escaped_size(std::string_view s) {
    std::size_t n = s.size();
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\')
            n += 1;
        else if (c < 0x20)
            n += 5;  // \u00XX
    }
    return n;
}

inline char* put_json_escaped(char* p, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = ch;
        } else if (c < 0x20) {
            for (char x : {'\\', 'u', '0', '0'}) *p++ = x;
            *p++ = kHex[c >> 4];
            *p++ = kHex[c & 15];
        } else {
            *p++ = ch;
        }
    }
    return p;
}

inline void append_json_escaped(std::string& out, std::string_view s) {
    std::size_t at = out.size();
    out.resize(at + json_escaped_size(s));
    put_json_escaped(out.data() + at, s);
}

inline std::string json_escape(std::string_view s) {
    std::string out;
    append_json_escaped(out, s);
    return out;
}

}  // namespace duet
