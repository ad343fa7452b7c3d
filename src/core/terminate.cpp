// Replaces libstdc++'s verbose terminate handler. duet never throws on purpose, and the verbose
// handler drags the whole C++ demangler (about 50 KiB) into a statically linked libstdc++.
#include <unistd.h>

#include <cstdlib>

namespace __gnu_cxx {
void __verbose_terminate_handler() {
    static const char msg[] = "duet: fatal: unexpected C++ exception, aborting\n";
    ssize_t ignored = ::write(2, msg, sizeof msg - 1);
    (void)ignored;
    std::abort();
}
}  // namespace __gnu_cxx
