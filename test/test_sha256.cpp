// SHA-256: NIST vectors on both paths, SHA-NI vs portable agreement, streaming splits, hex.
#include <criterion/criterion.h>

#include <cstdint>
#include <string>
#include <vector>

#include "duet/core/sha256.hpp"

using duet::Digest;
using duet::Sha256;
namespace impl = duet::sha256_impl;

namespace {

struct Vector {
    std::string input;
    const char* hex;
};

std::vector<Vector> nist_vectors() {
    return {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrl"
         "m"
         "nopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
        {std::string(1000000, 'a'),
         "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
}

// Deterministic pseudo-random bytes (xorshift64).
std::string random_bytes(std::size_t n, std::uint64_t seed = 0x9e3779b97f4a7c15ULL) {
    std::string s(n, '\0');
    for (auto& c : s) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        c = static_cast<char>(seed >> 56);
    }
    return s;
}

void check_nist() {
    for (const auto& v : nist_vectors()) {
        std::string got = duet::to_hex(Sha256::of(v.input));
        cr_expect_str_eq(got.c_str(), v.hex, "length %zu", v.input.size());
    }
}

Digest hash_in_pieces(const std::string& data, std::size_t piece) {
    Sha256 s;
    for (std::size_t i = 0; i < data.size(); i += piece) {
        std::size_t n = data.size() - i < piece ? data.size() - i : piece;
        s.update(data.data() + i, n);
    }
    return s.finish();
}

void skip_without_shani() {
    if (!impl::cpu_has_shani()) cr_skip_test("not applicable: CPU has no SHA extensions");
}

}  // namespace

Test(sha256, nist_vectors_auto) {
    check_nist();
}

Test(sha256, nist_vectors_portable) {
    impl::force_portable(true);
    check_nist();
    impl::force_portable(false);
    check_nist();
}

Test(sha256, shani_matches_portable_every_length) {
    skip_without_shani();
    const std::string data = random_bytes(1000);
    for (std::size_t len = 0; len <= 1000; ++len) {
        std::string_view part(data.data(), len);
        impl::force_portable(true);
        Digest slow = Sha256::of(part);
        impl::force_portable(false);
        Digest fast = Sha256::of(part);
        cr_assert(slow == fast, "length %zu", len);
    }
}

Test(sha256, shani_compress_unaligned_multiblock) {
    skip_without_shani();
    // Odd offsets exercise unaligned loads; several blocks per call exercise the state carry.
    const std::string data = random_bytes(64 * 20 + 7, 42);
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(data.data());
    for (std::size_t off = 0; off < 8; ++off) {
        for (std::size_t blocks = 0; blocks <= 20; ++blocks) {
            std::uint32_t a[8] = {1, 2, 3, 4, 5, 6, 7, 8};
            std::uint32_t b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
            impl::compress_portable(a, bytes + off, blocks);
            impl::compress_shani(b, bytes + off, blocks);
            for (int i = 0; i < 8; ++i) cr_assert_eq(a[i], b[i], "off %zu blocks %zu", off, blocks);
        }
    }
}

Test(sha256, split_at_every_index) {
    const std::string data = random_bytes(300, 7);
    const Digest want = Sha256::of(data);
    for (std::size_t cut = 0; cut <= data.size(); ++cut) {
        Sha256 s;
        s.update(data.data(), cut);
        s.update(data.data() + cut, data.size() - cut);
        cr_assert(s.finish() == want, "cut at %zu", cut);
    }
}

Test(sha256, odd_sized_pieces) {
    const std::string data = random_bytes(1000, 11);
    for (int pass = 0; pass < 2; ++pass) {
        impl::force_portable(pass == 0);
        const Digest want = Sha256::of(data);
        for (std::size_t piece : {1, 2, 3, 7, 55, 56, 57, 63, 64, 65, 127, 128, 129, 999, 1000}) {
            cr_assert(hash_in_pieces(data, piece) == want, "piece %zu", piece);
        }
    }
}

Test(sha256, empty_updates_and_reset) {
    Sha256 s;
    s.update(nullptr, 0);
    s.update("ab", 2);
    s.update(nullptr, 0);
    s.update("c", 1);
    // Criterion evaluates its arguments after temporaries die, so keep results in locals.
    const std::string abc = duet::to_hex(s.finish());
    cr_assert_str_eq(abc.c_str(),
                     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    s.reset();
    const std::string empty = duet::to_hex(s.finish());
    cr_assert_str_eq(empty.c_str(),
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

Test(hex, round_trip) {
    for (std::size_t n = 0; n < 50; ++n) {
        Digest d = Sha256::of(random_bytes(n, n + 1));
        std::string hex = duet::to_hex(d);
        cr_assert_eq(hex.size(), 64u);
        Digest back{};
        cr_assert(duet::parse_hex_digest(hex, back));
        cr_assert(back == d);
    }
}

Test(hex, accepts_either_case) {
    const std::string lower = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const std::string upper = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
    Digest a{}, b{};
    cr_assert(duet::parse_hex_digest(lower, a));
    cr_assert(duet::parse_hex_digest(upper, b));
    cr_assert(a == b);
    cr_assert(a == Sha256::of("abc"));
}

Test(hex, rejects_bad_input) {
    const std::string good = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const Digest before = Sha256::of("sentinel");
    Digest out = before;
    cr_assert_not(duet::parse_hex_digest("", out));
    cr_assert_not(duet::parse_hex_digest(good.substr(0, 63), out));
    cr_assert_not(duet::parse_hex_digest(good + "0", out));
    for (char bad : {'g', 'G', 'x', ' ', '-', '\0', ':', '@', '`'}) {
        for (std::size_t pos : {std::size_t{0}, std::size_t{31}, std::size_t{63}}) {
            std::string s = good;
            s[pos] = bad;
            cr_assert_not(duet::parse_hex_digest(s, out), "char %d at %zu", bad, pos);
        }
    }
    cr_assert(out == before, "output untouched on failure");
}
