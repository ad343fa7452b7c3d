#pragma once
// Where a part of duet that is not the server writes its log lines (the store index, a
// connection): the server implements it, so lower layers log without knowing who owns the sink.
#include <cstdarg>

namespace duet {

class Logger {
  public:
    virtual void vlog(const char* fmt, va_list ap) = 0;
    void log(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
        va_list ap;
        va_start(ap, fmt);
        vlog(fmt, ap);
        va_end(ap);
    }

  protected:
    ~Logger() = default;
};

}  // namespace duet
