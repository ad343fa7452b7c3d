#include "duet/core/buffer.hpp"

#include <cstring>

namespace duet {

void Buffer::compact() {
    if (begin == 0) return;
    std::memmove(data, data + begin, end - begin);
    end -= begin;
    begin = 0;
}

bool Buffer::append(const char* p, std::size_t n) {
    if (room() < n) compact();
    if (room() < n) return false;
    std::memcpy(data + end, p, n);
    commit(n);
    return true;
}

}  // namespace duet
