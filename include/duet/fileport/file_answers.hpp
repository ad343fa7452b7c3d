#pragma once
// Small pieces of the file port's answers shared by its session files.
#include <cstdint>
#include <string>

#include "duet/session/store_errors.hpp"

namespace duet {

// The answer to a store error that is not about the file itself, or null.
inline const char* trouble_answer(int rc) {
    switch (classify_store_error(rc)) {
        case StoreTrouble::Gone:
            return "ERR 503 store unavailable";
        case StoreTrouble::Busy:
            return "ERR 503 busy, retry";
        default:
            return nullptr;
    }
}

inline std::string u64(std::uint64_t v) {
    return std::to_string(v);
}

}  // namespace duet
