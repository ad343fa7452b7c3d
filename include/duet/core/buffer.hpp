#pragma once
// Fixed-size I/O buffers shared through a free list: a connection takes one when bytes arrive and
// gives it back when it has nothing pending, so an idle connection holds no buffer at all.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace duet {

inline constexpr std::size_t kBufferSize = 64 * 1024;

class BufferPool {
  public:
    ~BufferPool() {
        for (char* b : free_) std::free(b);
    }
    char* take() {
        if (!free_.empty()) {
            char* b = free_.back();
            free_.pop_back();
            return b;
        }
        return static_cast<char*>(std::malloc(kBufferSize));
    }
    void give(char* b) {
        if (!b) return;
        if (free_.size() < kKeepFree) {
            free_.push_back(b);
        } else {
            std::free(b);
        }
    }

  private:
    static constexpr std::size_t kKeepFree = 64;
    std::vector<char*> free_;
};

// A byte window [begin, end) inside one pooled buffer.
struct Buffer {
    char* data = nullptr;
    std::uint32_t begin = 0, end = 0;  // 32 bits: buffers are 64 KiB, and idle connections are many

    std::size_t size() const { return end - begin; }
    bool empty() const { return begin == end; }
    std::size_t room() const { return data ? kBufferSize - end : 0; }
    void commit(std::size_t n) {
        end += static_cast<std::uint32_t>(n);
    }  // n bytes were written at tail()
    const char* head() const { return data + begin; }
    char* tail() { return data + end; }
    void consume(std::size_t n) {
        begin += static_cast<std::uint32_t>(n);
        if (begin == end) begin = end = 0;
    }
    // Moves pending bytes to the front so that more can be appended.
    void compact();
    void acquire(BufferPool& pool) {
        if (!data) data = pool.take();
    }
    void release(BufferPool& pool) {
        pool.give(data);
        data = nullptr;
        begin = end = 0;
    }
    bool append(const char* p, std::size_t n);
};

}  // namespace duet
