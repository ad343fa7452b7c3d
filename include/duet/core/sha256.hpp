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

    // The running state as bytes, to carry a hash across a reload (the portable and SHA-NI paths
    // share it): h[0..7] big-endian, bytes hashed (u64 big-endian), then the partial block with
    // a one-byte length. restore() checks that the parts agree; false leaves the object as is.
    static constexpr std::size_t kSavedMin = 32 + 8 + 1;
    std::string save() const;
    bool restore(std::string_view saved);
    std::uint64_t bytes() const { return total_; }  // hashed so far

  private:
    std::uint32_t h_[8];
    std::uint64_t total_ = 0;  // bytes hashed so far
    std::uint8_t block_[64];
    std::size_t used_ = 0;  // bytes waiting in block_
};

namespace sha256_impl {
// The 64 round constants (FIPS 180-4 §4.2.2), shared by both compress functions; aligned for
// the 16-byte loads of the SHA-NI path.
alignas(16) inline constexpr std::uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
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

// The hash state as the state file keeps it (hex: 8 state words, the byte count, then the
// buffered tail bytes), built on Sha256::save()/restore() so there is one state API.
std::string sha_state_text(const Sha256& sha);
bool sha_state_from_text(std::string_view text, Sha256& sha);

}  // namespace duet
