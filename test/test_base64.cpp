// base64: RFC 4648 §10 vectors, round trips, strict rejection.
#include <criterion/criterion.h>

#include <cstdint>
#include <string>

#include "duet/core/base64.hpp"

namespace {

std::string encode(const std::string& s) {
    return duet::base64_encode(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

struct Vector {
    const char* plain;
    const char* encoded;
};

constexpr Vector kRfc4648[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

}  // namespace

Test(base64, rfc4648_encode) {
    for (const auto& v : kRfc4648) {
        const std::string got = encode(v.plain);  // a local: Criterion outlives temporaries
        cr_expect_str_eq(got.c_str(), v.encoded);
    }
}

Test(base64, rfc4648_decode) {
    for (const auto& v : kRfc4648) {
        std::string out = "junk";
        cr_assert(duet::base64_decode(v.encoded, out), "%s", v.encoded);
        cr_expect_str_eq(out.c_str(), v.plain);
    }
}

Test(base64, round_trip_all_lengths) {
    std::uint32_t seed = 12345;
    for (std::size_t len = 0; len <= 100; ++len) {
        std::string data(len, '\0');
        for (auto& c : data) {
            seed = seed * 1103515245u + 12345u;
            c = static_cast<char>(seed >> 24);
        }
        std::string text = encode(data);
        cr_assert_eq(text.size(), (len + 2) / 3 * 4);
        std::string back;
        cr_assert(duet::base64_decode(text, back), "len %zu", len);
        cr_assert(back == data, "len %zu", len);
    }
}

Test(base64, all_byte_values) {
    std::string data;
    for (int i = 0; i < 256; ++i) data += static_cast<char>(i);
    std::string back;
    cr_assert(duet::base64_decode(encode(data), back));
    cr_assert(back == data);
}

Test(base64, known_digest_value) {
    // A SHA-256 digest (32 bytes), as in Repr-Digest, encodes to 44 chars ending in one pad.
    std::string digest(32, '\xff');
    std::string text = encode(digest);
    cr_assert_eq(text.size(), 44u);
    cr_assert_eq(text.back(), '=');
}

Test(base64, rejects_bad_input) {
    const char* bad[] = {
        "Zg",        // bad length
        "Zg=",       // bad length
        "Zm9vY",     // bad length
        "Zg===",     // bad length
        "====",      // padding only
        "Z===",      // too much padding
        "Zg=a",      // data after padding
        "Zg==Zg==",  // padding in the middle
        "Zm8=Zm9v",  // padding in the middle
        "Zh==",      // non-canonical: low bits set in last sextet
        "Zm9=",      // non-canonical
        "Zm8 ",      // space
        "Zm 8",      // space
        "Zm9v\n",    // newline
        "Zm-v",      // URL alphabet
        "Zm_v",      // URL alphabet
        "Zm9v*A==",  // bad char
        "=Zm9",      // leading padding
    };
    for (const char* s : bad) {
        std::string out = "keep";
        cr_expect_not(duet::base64_decode(s, out), "accepted \"%s\"", s);
        cr_expect_str_eq(out.c_str(), "keep", "output changed for \"%s\"", s);
    }
    std::string out;
    cr_expect_not(duet::base64_decode(std::string("Zm\0v", 4), out), "NUL byte");
    cr_expect_not(duet::base64_decode("Zm\x80v", out), "high byte");
}
