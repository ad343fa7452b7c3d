// SHA-256 (FIPS 180-4): streaming front end, portable compression function, run-time dispatch.
#include "duet/core/sha256.hpp"

#include <atomic>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace duet {

namespace {

constexpr std::uint32_t kInit[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

constexpr std::uint32_t rotr(std::uint32_t x, int n) {
    return (x >> n) | (x << (32 - n));
}

// Byte-wise loads and stores: no alignment or aliasing assumptions; compilers emit bswap/movbe.
std::uint32_t load_be32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 |
           std::uint32_t{p[3]};
}

void store_be32(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}

void compress_block(std::uint32_t state[8], const std::uint8_t* block) {
    // Rolling 16-word message schedule: w[t % 16] holds W[t].
    std::uint32_t w[16];
    for (int t = 0; t < 16; ++t) w[t] = load_be32(block + 4 * t);

    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    std::uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int t = 0; t < 64; ++t) {
        if (t >= 16) {
            std::uint32_t w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
            std::uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
            std::uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
            w[t & 15] += s0 + w[(t - 7) & 15] + s1;
        }
        std::uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
                           sha256_impl::kRound[t] + w[t & 15];
        std::uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

using CompressFn = void (*)(std::uint32_t*, const std::uint8_t*, std::size_t);

// Chosen on first use rather than by a static constructor; null means "not chosen yet".
// Constant-initialised, so it is valid before any other static initialiser runs.
std::atomic<CompressFn> g_compress{nullptr};

CompressFn compress_fn() {
    CompressFn fn = g_compress.load(std::memory_order_relaxed);
    if (fn == nullptr) {
        fn = sha256_impl::cpu_has_shani() ? sha256_impl::compress_shani
                                          : sha256_impl::compress_portable;
        g_compress.store(fn, std::memory_order_relaxed);
    }
    return fn;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

namespace sha256_impl {

void compress_portable(std::uint32_t state[8], const std::uint8_t* data, std::size_t blocks) {
    for (std::size_t i = 0; i < blocks; ++i) compress_block(state, data + 64 * i);
}

bool cpu_has_shani() {
#if defined(__x86_64__) || defined(__i386__)
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
    const bool ssse3 = (ecx & bit_SSSE3) != 0;
    const bool sse41 = (ecx & bit_SSE4_1) != 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool sha = (ebx & (1u << 29)) != 0;
    return ssse3 && sse41 && sha;
#else
    return false;
#endif
}

void force_portable(bool on) {
    g_compress.store(on ? compress_portable : nullptr, std::memory_order_relaxed);
}

}  // namespace sha256_impl

void Sha256::reset() {
    std::memcpy(h_, kInit, sizeof h_);
    total_ = 0;
    used_ = 0;
}

void Sha256::update(const void* data, std::size_t len) {
    if (len == 0) return;  // data may be null; memcpy(null, 0) is still undefined
    auto p = static_cast<const std::uint8_t*>(data);
    total_ += len;
    CompressFn compress = compress_fn();

    if (used_ > 0) {  // top up the partial block first
        std::size_t take = 64 - used_ < len ? 64 - used_ : len;
        std::memcpy(block_ + used_, p, take);
        used_ += take;
        p += take;
        len -= take;
        if (used_ < 64) return;
        compress(h_, block_, 1);
        used_ = 0;
    }
    if (len >= 64) {  // whole blocks straight from the caller's buffer, no copy
        std::size_t blocks = len / 64;
        compress(h_, p, blocks);
        p += blocks * 64;
        len -= blocks * 64;
    }
    if (len > 0) {
        std::memcpy(block_, p, len);
        used_ = len;
    }
}

Digest Sha256::finish() {
    CompressFn compress = compress_fn();
    const std::uint64_t bits = total_ * 8;

    // Padding: 0x80, zeros up to 56 mod 64, then the 64-bit big-endian message length in bits.
    block_[used_++] = 0x80;
    if (used_ > 56) {
        std::memset(block_ + used_, 0, 64 - used_);
        compress(h_, block_, 1);
        used_ = 0;
    }
    std::memset(block_ + used_, 0, 56 - used_);
    store_be32(block_ + 56, static_cast<std::uint32_t>(bits >> 32));
    store_be32(block_ + 60, static_cast<std::uint32_t>(bits));
    compress(h_, block_, 1);
    used_ = 0;

    Digest out;
    for (int i = 0; i < 8; ++i) store_be32(out.data() + 4 * i, h_[i]);
    return out;
}

std::string Sha256::save() const {
    std::uint8_t buf[kSavedMin + 64];
    for (int i = 0; i < 8; ++i) store_be32(buf + 4 * i, h_[i]);
    store_be32(buf + 32, static_cast<std::uint32_t>(total_ >> 32));
    store_be32(buf + 36, static_cast<std::uint32_t>(total_));
    buf[40] = static_cast<std::uint8_t>(used_);
    std::memcpy(buf + kSavedMin, block_, used_);
    return std::string(reinterpret_cast<const char*>(buf), kSavedMin + used_);
}

bool Sha256::restore(std::string_view saved) {
    if (saved.size() < kSavedMin) return false;
    auto p = reinterpret_cast<const std::uint8_t*>(saved.data());
    std::size_t used = p[40];
    std::uint64_t total = std::uint64_t(load_be32(p + 32)) << 32 | load_be32(p + 36);
    // A partial block is always the tail of what was hashed: used == total mod 64.
    if (used >= 64 || saved.size() != kSavedMin + used || total % 64 != used) return false;
    for (int i = 0; i < 8; ++i) h_[i] = load_be32(p + 4 * i);
    total_ = total;
    used_ = used;
    std::memcpy(block_, p + kSavedMin, used);
    return true;
}

Digest Sha256::of(std::string_view data) {
    Sha256 s;
    s.update(data.data(), data.size());
    return s.finish();
}

std::string to_hex(const Digest& d) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string s(2 * d.size(), '\0');
    for (std::size_t i = 0; i < d.size(); ++i) {
        s[2 * i] = kDigits[d[i] >> 4];
        s[2 * i + 1] = kDigits[d[i] & 15];
    }
    return s;
}

bool parse_hex_digest(std::string_view hex, Digest& out) {
    if (hex.size() != 2 * out.size()) return false;
    Digest d;
    for (std::size_t i = 0; i < d.size(); ++i) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return false;
        d[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    out = d;  // untouched on failure
    return true;
}

// The partial store's hash-state text (its state files): Sha256::save()'s
// bytes in hex, less the tail-length byte.
std::string sha_state_text(const Sha256& sha) {
    // save(): h (32 bytes), the count (8), the tail's length (1), the tail. The file leaves the
    // length out: it follows from the count.
    std::string bin = sha.save();
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * bin.size());
    for (std::size_t i = 0; i < bin.size(); ++i) {
        if (i == 40) continue;
        auto c = static_cast<unsigned char>(bin[i]);
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
    return out;
}

bool sha_state_from_text(std::string_view text, Sha256& sha) {
    if (text.size() % 2 != 0 || text.size() < 2 * 40) return false;
    std::string bin;
    bin.reserve(text.size() / 2 + 1);
    for (std::size_t i = 0; i < text.size(); i += 2) {
        int v = 0;
        for (char c : text.substr(i, 2)) {
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0) return false;
            v = v << 4 | d;
        }
        bin += static_cast<char>(v);
        if (bin.size() == 40) bin += static_cast<char>((text.size() / 2) - 40);  // tail length
    }
    return sha.restore(bin);  // checks that the tail length agrees with the count
}

}  // namespace duet
