// The standard headers most of duet includes, compiled once per build flavour into a precompiled
// header (see the Makefile): parsing them is about half of each file's compile time. Every file
// still includes what it uses; this list only decides what is parsed ahead.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>
