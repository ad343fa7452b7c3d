#pragma once
// Streaming SHA-256 (FIPS 180-4). A portable implementation and one using the x86 SHA extensions;
// the fast one is chosen once at run time from cpuid.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace duet {

using Digest = std::array<std::uint8_t, 32>;

class Sha256 {
public:
    Sha256() { reset(); }
    void reset();
    void update(const void* data, std::size_t len);
    Digest finish();  // the object must be reset() before reuse

    static Digest of(std::string_view data);

private:
    std::uint32_t h_[8];
    std::uint64_t total_ = 0;  // bytes hashed so far
    std::uint8_t block_[64];
    std::size_t used_ = 0;  // bytes waiting in block_
};

namespace sha256_impl {
// Compress `blocks` 64-byte blocks into state. Exposed so tests can compare the two paths.
void compress_portable(std::uint32_t state[8], const std::uint8_t* data, std::size_t blocks);
void compress_shani(std::uint32_t state[8], const std::uint8_t* data, std::size_t blocks);
bool cpu_has_shani();
// Forces the portable path (tests) or restores the automatic choice.
void force_portable(bool on);
}  // namespace sha256_impl

std::string to_hex(const Digest& d);
// Accepts exactly 64 hex digits, either case.
bool parse_hex_digest(std::string_view hex, Digest& out);

}  // namespace duet
