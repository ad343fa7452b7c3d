// A connection that waits for duet's own work is not idle: a STAT or a HEAD waiting for the
// digest of a big file dropped into the store by hand gets its answer even when the hash takes
// longer than --idle-timeout (it used to be closed without a word when the timeout passed).
#include <criterion/criterion.h>
#include <unistd.h>

#include <string>

#include "helper.hpp"

namespace {

void fini() {
    t::teardown();
}

bool is_hex64(const std::string& s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

}  // namespace

TestSuite(e2e_waits, .fini = fini, .timeout = 60);

Test(e2e_waits, a_request_parked_on_a_digest_outlives_the_idle_timeout) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    // Two 1 GiB sparse files: hashed one after the other, each well over 0.2 s of work.
    t::sh("mkdir -p '" + dir + "/data' && truncate -s 1G '" + dir + "/data/a.img' '" + dir +
          "/data/b.img'");
    cr_assert(t::start(t::served, {"--idle-timeout", "0.2"}, dir + "/data"));
    int port = t::connect_port(t::served.files_port);
    int http = t::connect_port(t::served.http_port);
    cr_assert(port >= 0 && http >= 0);
    t::send_all(port, "STAT a.img\n");
    t::send_all(http, "HEAD /files/b.img HTTP/1.1\r\nHost: x\r\n\r\n");
    std::int64_t t0 = t::now_ms();
    std::string stat = t::read_line(port, 30000);
    std::string head = t::read_response(http, true, 30000);
    std::int64_t waited = t::now_ms() - t0;
    cr_assert(stat.rfind("OK 1073741824 ", 0) == 0, "STAT after %lld ms: '%s'", (long long)waited,
              stat.c_str());
    cr_assert(is_hex64(stat.substr(14, 64)), "%s", stat.c_str());
    cr_assert_eq(t::status_of(head), 200, "HEAD after %lld ms: '%s'", (long long)waited,
                 head.c_str());
    std::string etag = t::header_of(head, "ETag");
    cr_assert_eq(etag, "\"" + stat.substr(14, 64) + "\"", "both files are 1 GiB of zeros: %s",
                 etag.c_str());
    // The waits were longer than the idle timeout (else this test proves nothing).
    cr_assert(waited > 200, "the digests took only %lld ms", (long long)waited);
    // An idle connection is still closed at the timeout.
    int idle = t::connect_port(t::served.files_port);
    cr_assert(idle >= 0);
    cr_assert(t::peer_closed(idle, 5000), "an idle session outlived --idle-timeout 0.2");
    close(idle);
    close(port);
    close(http);
    cr_assert_eq(t::stop(t::served), 0);
}
