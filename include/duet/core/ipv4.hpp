#pragma once
// Dotted-quad IPv4 text, parsed and written without libc's inet_pton/inet_ntop: those share
// their pages with the resolver, which a process that never resolves a name need not map in.
// Same grammar as inet_pton(AF_INET): four decimal parts 0..255, no leading zeros, nothing else.
#include <cstdint>
#include <string>
#include <string_view>

namespace duet {

inline bool parse_ipv4(std::string_view s, unsigned char (&out)[4]) {
    int part = 0;
    std::size_t i = 0;
    while (true) {
        if (i >= s.size() || s[i] < '0' || s[i] > '9') return false;
        unsigned value = 0;
        std::size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
            value = value * 10 + unsigned(s[i] - '0');
            if (value > 255 || (i > start && s[start] == '0')) return false;
            ++i;
        }
        out[part++] = static_cast<unsigned char>(value);
        if (part == 4) return i == s.size();
        if (i >= s.size() || s[i] != '.') return false;
        ++i;
    }
}

inline std::string format_ipv4(const unsigned char (&a)[4]) {
    std::string s;
    s.reserve(15);
    for (int k = 0; k < 4; ++k) {
        if (k) s += '.';
        unsigned v = a[k];
        if (v >= 100) s += char('0' + v / 100);
        if (v >= 10) s += char('0' + v / 10 % 10);
        s += char('0' + v % 10);
    }
    return s;
}

}  // namespace duet
