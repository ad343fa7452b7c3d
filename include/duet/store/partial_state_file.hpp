#pragma once
// A partial upload's state file: its text and its durable replacement (partial_state_file.cpp).
// Pure apart from replace_file, read_small and new_id, which touch the file system or the kernel's
// random source.
#include <cstdint>
#include <string>
#include <string_view>

#include "duet/store/partial_store.hpp"

namespace duet::partial_detail {

// The state file's text for `p`, and `p` read back from one (false: not a valid state file, or
// a hash state that does not describe exactly the bytes its offset announces).
std::string serialize(const Partial& p);
bool parse_state(std::string_view text, Partial& p);
// Replaces `name` in `dirfd` with `content` atomically and durably (temporary, fsync, rename,
// fsync of the directory). 0 or -errno.
int replace_file(int dirfd, const std::string& name, const std::string& content);
// A state file's bytes (at most 16 KiB, else -EFBIG). 0 or -errno.
int read_small(int dirfd, const std::string& name, std::string& out);
// A fresh partial id: 32 lower-case hex digits from the kernel's random source ("" on failure).
std::string new_id();
bool valid_id(std::string_view id);
// Wall-clock seconds, for created/touched times and expiry.
std::int64_t wall_now();

}  // namespace duet::partial_detail
