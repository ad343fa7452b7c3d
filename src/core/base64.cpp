// Standard base64 (RFC 4648 §4) with padding; the decoder accepts only the canonical encoding.
#include "duet/core/base64.hpp"

#include <utility>

namespace duet {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Value of one alphabet character, or -1 ('=' included: padding is handled by the caller).
int sextet(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

}  // namespace

std::string base64_encode(const std::uint8_t* data, std::size_t len) {
    std::string out;
    out.reserve((len + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        std::uint32_t v =
            std::uint32_t{data[i]} << 16 | std::uint32_t{data[i + 1]} << 8 | data[i + 2];
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (len - i == 1) {
        std::uint32_t v = std::uint32_t{data[i]} << 16;
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += "==";
    } else if (len - i == 2) {
        std::uint32_t v = std::uint32_t{data[i]} << 16 | std::uint32_t{data[i + 1]} << 8;
        out += kAlphabet[v >> 18];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

bool base64_decode(std::string_view text, std::string& out) {
    if (text.size() % 4 != 0) return false;
    std::string res;
    res.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        // Padding may only end the final quantum: "xx==" (one byte) or "xxx=" (two bytes).
        std::size_t pad = 0;
        if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;

        std::uint32_t v = 0;
        for (std::size_t j = 0; j < 4 - pad; ++j) {
            int s = sextet(text[i + j]);
            if (s < 0) return false;
            v = v << 6 | static_cast<std::uint32_t>(s);
        }
        v <<= 6 * pad;

        // Canonical form: the bits below the last encoded byte must be zero.
        if (pad == 2 && (v & 0xffff) != 0) return false;
        if (pad == 1 && (v & 0xff) != 0) return false;

        res += static_cast<char>(v >> 16);
        if (pad < 2) res += static_cast<char>((v >> 8) & 0xff);
        if (pad < 1) res += static_cast<char>(v & 0xff);
    }
    out = std::move(res);
    return true;
}

}  // namespace duet
