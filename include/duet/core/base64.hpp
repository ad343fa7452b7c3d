#pragma once
// Standard base64 (RFC 4648 §4, with padding), used for Repr-Digest / Content-Digest values.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace duet {

std::string base64_encode(const std::uint8_t* data, std::size_t len);
// Strict: canonical padding, no whitespace, no URL alphabet. Returns false on any bad input.
bool base64_decode(std::string_view text, std::string& out);

}  // namespace duet
