// SHA-256 compression with the x86 SHA extensions. Built with -msha -msse4.1; only called after
// sha256_impl::cpu_has_shani() said yes.
//
// sha256rnds2 works on the state split as ABEF and CDGH (A and C in the top lanes) and does two
// rounds using the low two lanes of its W+K operand. sha256msg1/msg2 compute the σ0 and σ1 parts
// of the message schedule four words at a time.
#include "duet/core/sha256.hpp"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

namespace duet::sha256_impl {

namespace {

// Loads four big-endian message words (unaligned) into lanes 0..3.
inline __m128i load_words(const std::uint8_t* p, __m128i bswap) {
    return _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), bswap);
}

// Four rounds using schedule words W[4i..4i+3]. After the first sha256rnds2 `cdgh` holds the new
// ABEF and `abef` the old one (the new CDGH); the second call swaps them back, so the names hold.
inline void four_rounds(__m128i& abef, __m128i& cdgh, __m128i w, int i) {
    __m128i wk = _mm_add_epi32(
        w, _mm_load_si128(reinterpret_cast<const __m128i*>(sha256_impl::kRound + 4 * i)));
    cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
    wk = _mm_shuffle_epi32(wk, 0x0e);  // lanes 2,3 down to 0,1
    abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);
}

// Next four schedule words W[t..t+3] from the previous sixteen, given as w0 = W[t-16..t-13],
// w1 = W[t-12..t-9], w2 = W[t-8..t-5], w3 = W[t-4..t-1].
inline __m128i next_words(__m128i w0, __m128i w1, __m128i w2, __m128i w3) {
    __m128i x = _mm_sha256msg1_epu32(w0, w1);          // W[t-16] + σ0(W[t-15])
    x = _mm_add_epi32(x, _mm_alignr_epi8(w3, w2, 4));  // + W[t-7]
    return _mm_sha256msg2_epu32(x, w3);                // + σ1(W[t-2])
}

}  // namespace

void compress_shani(std::uint32_t state[8], const std::uint8_t* data, std::size_t blocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);

    // state[] is A..H in lanes; rearrange into ABEF / CDGH (A and C in lane 3).
    __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));
    __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));
    __m128i cdab = _mm_shuffle_epi32(dcba, 0xb1);
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1b);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xf0);

    for (; blocks > 0; --blocks, data += 64) {
        const __m128i abef_in = abef, cdgh_in = cdgh;
        __m128i w0 = load_words(data, bswap);
        __m128i w1 = load_words(data + 16, bswap);
        __m128i w2 = load_words(data + 32, bswap);
        __m128i w3 = load_words(data + 48, bswap);

        // Rounds 0..47 also extend the schedule; wN is replaced once it is no longer needed.
        for (int i = 0; i < 12; i += 4) {
            four_rounds(abef, cdgh, w0, i);
            w0 = next_words(w0, w1, w2, w3);
            four_rounds(abef, cdgh, w1, i + 1);
            w1 = next_words(w1, w2, w3, w0);
            four_rounds(abef, cdgh, w2, i + 2);
            w2 = next_words(w2, w3, w0, w1);
            four_rounds(abef, cdgh, w3, i + 3);
            w3 = next_words(w3, w0, w1, w2);
        }
        four_rounds(abef, cdgh, w0, 12);
        four_rounds(abef, cdgh, w1, 13);
        four_rounds(abef, cdgh, w2, 14);
        four_rounds(abef, cdgh, w3, 15);

        abef = _mm_add_epi32(abef, abef_in);
        cdgh = _mm_add_epi32(cdgh, cdgh_in);
    }

    // Back to A..H order.
    __m128i feba = _mm_shuffle_epi32(abef, 0x1b);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xb1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(feba, dchg, 0xf0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(dchg, feba, 8));
}

}  // namespace duet::sha256_impl

#else  // not x86: never selected, since cpu_has_shani() is false

namespace duet::sha256_impl {
void compress_shani(std::uint32_t state[8], const std::uint8_t* data, std::size_t blocks) {
    compress_portable(state, data, blocks);
}
}  // namespace duet::sha256_impl

#endif
