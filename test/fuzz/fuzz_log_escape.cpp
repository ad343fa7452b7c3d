// libFuzzer target for the access-log escaper (README "Limits").
//
// Whatever bytes a client sends, the escaped text must hold no control byte (C0, DEL, or a C1
// control encoded in UTF-8), no '"' that could end a quoted field, no newline that could forge a
// second line, every '\' must start a \xHH escape, the result must be well-formed UTF-8, and
// undoing the escapes must give back the input exactly (nothing lost, nothing made up).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "duet/core/log_escape.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "fuzz_log_escape: property violated: %s\n", what);
    std::abort();
}

#define CHECK(cond)               \
    do {                          \
        if (!(cond)) fail(#cond); \
    } while (0)

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::string out = duet::log_escape(in);
    std::string back;
    for (std::size_t i = 0; i < out.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(out[i]);
        CHECK(c >= 0x20 && c != 0x7F);
        CHECK(c != '"');
        if (c == '\\') {
            CHECK(i + 3 < out.size());
            CHECK(out[i + 1] == 'x');
            int hi = hex(out[i + 2]), lo = hex(out[i + 3]);
            CHECK(hi >= 0 && lo >= 0);
            back += char(hi * 16 + lo);
            i += 3;
            continue;
        }
        if (c >= 0x80) {
            // A multi-byte sequence kept as is: well-formed, and not a C1 control.
            std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            CHECK(c >= 0xC2 && c <= 0xF4);
            CHECK(i + n <= out.size());
            std::uint32_t cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
            for (std::size_t k = 1; k < n; ++k) {
                unsigned char d = static_cast<unsigned char>(out[i + k]);
                CHECK((d & 0xC0) == 0x80);
                cp = (cp << 6) | (d & 0x3F);
            }
            CHECK(cp > 0x9F && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF));
            CHECK((n == 2 && cp >= 0x80) || (n == 3 && cp >= 0x800) || (n == 4 && cp >= 0x10000));
            back.append(out, i, n);
            i += n - 1;
            continue;
        }
        back += char(c);
    }
    CHECK(back == in);
    return 0;
}
