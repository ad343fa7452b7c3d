// Reload step trace. See trace.hpp.
#include "duet/core/trace.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace duet {

void trace_reload(const char* step) {
    static const bool on = std::getenv("DUET_TRACE_RELOAD") != nullptr;
    if (!on) return;
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char line[160];
    int n = std::snprintf(line, sizeof line, "duet: trace %lld.%06ld %s\n",
                          static_cast<long long>(ts.tv_sec), ts.tv_nsec / 1000, step);
    if (n > 0)
        (void)!::write(2, line, std::size_t(n) < sizeof line ? std::size_t(n) : sizeof line - 1);
}

}  // namespace duet
