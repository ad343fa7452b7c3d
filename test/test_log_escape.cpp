// log_escape: client bytes cannot put control bytes, quotes or line breaks into a log line.
#include <criterion/criterion.h>

#include <string>

#include "duet/core/log_escape.hpp"

Test(log_escape, plain_text_is_unchanged) {
    cr_expect(duet::log_escape("GET /files/a.txt HTTP/1.1") == "GET /files/a.txt HTTP/1.1");
    cr_expect(duet::log_escape("caf\xc3\xa9 \xe2\x82\xac") == "caf\xc3\xa9 \xe2\x82\xac");
}

Test(log_escape, controls_quotes_and_backslashes_are_hex) {
    std::string got = duet::log_escape(std::string("a\r\nb\x1b[31m\"q\"\\\x7f\0", 15));
    cr_expect(got == "a\\x0D\\x0Ab\\x1B[31m\\x22q\\x22\\x5C\\x7F\\x00", "%s", got.c_str());
}

Test(log_escape, malformed_utf8_and_c1_controls_are_hex) {
    cr_expect(duet::log_escape("\xff") == "\\xFF");
    cr_expect(duet::log_escape("\xc0\xaf") == "\\xC0\\xAF");                    // overlong '/'
    cr_expect(duet::log_escape("\xed\xa0\x80") == "\\xED\\xA0\\x80");           // surrogate
    cr_expect(duet::log_escape("\xf4\x90\x80\x80") == "\\xF4\\x90\\x80\\x80");  // > U+10FFFF
    cr_expect(duet::log_escape("\xc2\x9b") == "\\xC2\\x9B");                    // C1 CSI
    cr_expect(duet::log_escape("\xe2\x82") == "\\xE2\\x82");                    // cut short
}
