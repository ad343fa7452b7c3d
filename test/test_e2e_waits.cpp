// A connection that waits for duet's own work is not idle: a STAT or a HEAD waiting for the
// digest of a big file dropped into the store by hand gets its answer even when the hash takes
// longer than --idle-timeout (it used to be closed without a word when the timeout passed).
#include <criterion/criterion.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

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

namespace {

// The nice values of the server's threads, from /proc/PID/task/TID/stat (field 19).
std::vector<int> thread_nices(pid_t pid) {
    std::vector<int> out;
    std::string tasks = t::sh("ls /proc/" + std::to_string(pid) + "/task");
    std::size_t at = 0;
    while (at < tasks.size()) {
        std::size_t end = tasks.find('\n', at);
        if (end == std::string::npos) end = tasks.size();
        std::string tid = tasks.substr(at, end - at);
        at = end + 1;
        if (tid.empty()) continue;
        std::string stat = t::read_file("/proc/" + std::to_string(pid) + "/task/" + tid + "/stat");
        std::size_t close = stat.rfind(')');
        if (close == std::string::npos) continue;
        // After ") ": state is field 3, so nice (field 19) is the 17th word.
        std::size_t p = close + 2;
        for (int field = 3; field < 19 && p < stat.size(); ++field) p = stat.find(' ', p) + 1;
        out.push_back(std::atoi(stat.c_str() + p));
    }
    return out;
}

bool has_nice(pid_t pid, int nice) {
    for (int n : thread_nices(pid))
        if (n == nice) return true;
    return false;
}

}  // namespace

// Hashing a file nobody asked about runs on a background helper at nice 19, started only when
// there is such work; the digest it gives is the file's.
Test(e2e_waits, a_file_dropped_in_is_hashed_by_a_background_helper_at_nice_19) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    t::sh("mkdir -p '" + dir + "/data'");
    cr_assert(t::start(t::served, {}, dir + "/data"));
    pid_t pid = t::served.pid;
    std::vector<int> idle = thread_nices(pid);
    cr_assert_geq(idle.size(), 2u);
    cr_expect(!has_nice(pid, 19), "a background helper before there was anything to hash");
    t::sh("truncate -s 8M '" + dir + "/data/dropped.img'");
    std::int64_t deadline = t::now_ms() + 10000;
    while (!has_nice(pid, 19) && t::now_ms() < deadline) usleep(10000);
    cr_assert(has_nice(pid, 19), "no helper at nice 19 after a file was dropped in");
    int fd = t::connect_port(t::served.files_port);
    cr_assert(fd >= 0);
    t::send_all(fd, "STAT dropped.img\n");
    std::string line = t::read_line(fd, 20000);
    close(fd);
    std::string want = "OK " + std::to_string(8 << 20) + " ";
    cr_assert(line.rfind(want, 0) == 0, "%s", line.c_str());
    cr_expect(line.find(t::sha256_hex(std::string(8 << 20, '\0'))) != std::string::npos, "%s",
              line.c_str());
}
