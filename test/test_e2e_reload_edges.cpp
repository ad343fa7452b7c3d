// Black-box reload edges (README "Stop and reload"): what a reload must never lose or leave
// behind. A sized file-port PUT keeps its SIZE across reloads; a fall-back drain answers every
// request that completes during it; a new image that cannot read the hand-over closes every
// connection it was given (clients see EOF, no fd stays open); /healthz stays 200 through
// reloads (a reload is not a stop).
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;
using t::teardown;

// Reads one answer line of the file port.
std::string line_of(int fd) {
    std::string l = t::read_line(fd);
    if (!l.empty() && l.back() == '\n') l.pop_back();
    return l;
}

// Sockets among the process's open fds.
int open_sockets(pid_t pid) {
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = opendir(dir.c_str());
    if (!d) return -1;
    int n = 0;
    while (dirent* e = readdir(d)) {
        char link[128];
        ssize_t len = readlink((dir + "/" + e->d_name).c_str(), link, sizeof link - 1);
        if (len > 0 && std::string(link, std::size_t(len)).rfind("socket:", 0) == 0) ++n;
    }
    closedir(d);
    return n;
}

}  // namespace

TestSuite(reload_edges, .fini = teardown, .timeout = 90);

// A sized PUT cut after crossing two reloads still knows its SIZE: the cut says "of 3000000", the
// partial keeps that length, and RESUME continues it to the right digest.
Test(reload_edges, a_cut_port_put_keeps_its_size_across_reloads) {
    t::boot();
    const std::string all = t::random_bytes(3000000, 21);
    int fd = t::connect_port(g_srv.files_port);
    cr_assert(t::send_all(fd, "PUT z.bin 3000000\n" + all.substr(0, 500000)));
    cr_assert(t::reload_and_wait(g_srv), "%s", g_srv.err_log.c_str());
    cr_assert(t::send_all(fd, all.substr(500000, 500000)));
    cr_assert(t::reload_and_wait(g_srv), "%s", g_srv.err_log.c_str());
    cr_assert_eq(g_srv.generation, 2);
    shutdown(fd, SHUT_WR);
    std::string cut = line_of(fd);
    cr_expect_eq(cut, "ERR 400 short upload: got 1000000 of 3000000 bytes, partial kept");
    close(fd);
    fd = t::connect_port(g_srv.files_port);
    cr_assert(t::send_all(fd, "PARTIAL z.bin\n"));
    cr_expect_eq(line_of(fd), "OK 1");
    std::string entry = line_of(fd);
    cr_expect(entry.rfind("z.bin 1000000 3000000 ", 0) == 0, "%s", entry.c_str());
    cr_assert(t::send_all(fd, "RESUME z.bin 3000000\n"));
    cr_assert_eq(line_of(fd), "OK 1000000");
    cr_assert(t::send_all(fd, all.substr(1000000)));
    cr_expect_eq(line_of(fd), "OK 3000000 " + t::sha256_hex(all));
    close(fd);
    cr_expect_eq(t::read_file(g_srv.data_dir + "/z.bin"), all);
}

// The new image reads another hand-over format: the reload drains. Idle connections go over at
// once, but a head or command line that completes during the drain is still answered, also after
// handed-over connections have been written to.
Test(reload_edges, a_fallback_drain_answers_every_request_completed_during_it) {
    cr_assert(t::start(g_srv, {"--grace", "20"}, "", {"DUET_TEST_HANDOVER_VERSIONS=7"}), "%s",
              g_srv.err_log.c_str());
    int idle = t::connect_port(g_srv.http_port);
    cr_assert(t::send_all(idle, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    cr_assert_eq(t::status_of(t::read_response(idle)), 200);
    int session = t::connect_port(g_srv.files_port);
    cr_assert(t::send_all(session, "PING\n"));
    cr_assert_eq(line_of(session), "OK pong");
    int half = t::connect_port(g_srv.http_port);
    cr_assert(t::send_all(half, "GET / HTTP/1.1\r\nHo"));
    int half_line = t::connect_port(g_srv.files_port);
    cr_assert(t::send_all(half_line, "PI"));
    std::size_t from = g_srv.err_log.size();
    cr_assert_eq(kill(g_srv.pid, SIGHUP), 0);
    cr_assert(t::wait_log(g_srv, "reads hand-over format(s) 7", 10000), "%s",
              g_srv.err_log.c_str());
    // Handed-over connections are used while the drain goes on ...
    cr_assert(t::send_all(idle, "GET / HTTP/1.1\r\nHost: t\r\n\r\n"));
    cr_assert(t::send_all(session, "PING\n"));
    // ... and then the busy ones complete: each is answered by the image that holds it.
    cr_assert(t::send_all(half, "st: t\r\n\r\n"));
    std::string r = t::read_response(half, false, 5000);
    cr_expect_eq(t::status_of(r), 200, "half head: '%s'\n%s", r.c_str(), g_srv.err_log.c_str());
    cr_assert(t::send_all(half_line, "NG\n"));
    cr_expect_eq(line_of(half_line), "OK pong");
    cr_assert(t::wait_ready_after(g_srv, from), "%s", g_srv.err_log.c_str());
    cr_expect(t::read_response(idle).find("\"generation\":1") != std::string::npos);
    cr_expect_eq(line_of(session), "OK pong");
    for (int fd : {idle, session, half, half_line}) close(fd);
}

namespace {

// Starts duet through a wrapper that spoils the hand-over of every reload (`mode`: the fd is not a
// number, names /dev/zero, or is missing), reloads with `n` connections open and checks that each
// sees EOF at once, that the log and /metrics say so, and that no socket stays open.
void spoiled_hand_over_closes_everything(const std::string& mode) {
    std::string dir = t::make_tmpdir();
    t::remove_at_teardown(dir);
    std::string wrapper = dir + "/duet-wrapper";
    cr_assert(t::write_file(wrapper,
                            "#!/bin/bash\n"
                            "if [ -n \"$DUET_GENERATION\" ]; then\n"
                            "  case $EDGE_MODE in\n"
                            "    garbage) export DUET_HANDOVER_FD=x12 ;;\n"
                            "    zero) exec 200</dev/zero; export DUET_HANDOVER_FD=200 ;;\n"
                            "    missing) unset DUET_HANDOVER_FD ;;\n"
                            "  esac\n"
                            "fi\n"
                            "exec -a \"$0\" " +
                                t::duet_binary() + " \"$@\"\n"));
    cr_assert_eq(chmod(wrapper.c_str(), 0755), 0);
    cr_assert(t::start(g_srv, {}, dir + "/data", {"EDGE_MODE=" + mode}, wrapper), "%s",
              g_srv.err_log.c_str());
    constexpr int kConns = 12;
    std::vector<int> fds;
    for (int i = 0; i < kConns; ++i) {
        bool http = i % 2 == 0;
        int fd = t::connect_port(http ? g_srv.http_port : g_srv.files_port);
        cr_assert(fd >= 0);
        cr_assert(t::send_all(fd, http ? "GET / HTTP/1.1\r\nHost: t\r\n\r\n" : "PING\n"));
        if (http)
            cr_assert_eq(t::status_of(t::read_response(fd)), 200);
        else
            cr_assert_eq(line_of(fd), "OK pong");
        fds.push_back(fd);
    }
    cr_assert(t::reload_and_wait(g_srv), "%s", g_srv.err_log.c_str());
    for (int fd : fds) {
        cr_expect(t::peer_closed(fd, 2000), "a connection was left open");
        close(fd);
    }
    cr_expect(t::wait_log(g_srv, std::to_string(kConns) + " connection(s) it held closed", 2000),
              "%s", g_srv.err_log.c_str());
    cr_expect_eq(open_sockets(g_srv.pid), 2, "sockets besides the two listeners");
    std::string m =
        t::body_of(t::http(g_srv.http_port, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"));
    cr_expect_eq(t::metric_value(m, "duet_handover_lost_total"), double(kConns));
    cr_expect_eq(t::stop(g_srv), 0);
}

}  // namespace

Test(reload_edges, a_hand_over_fd_that_is_not_a_number_closes_every_connection) {
    spoiled_hand_over_closes_everything("garbage");
}

Test(reload_edges, a_hand_over_fd_that_is_not_a_record_closes_every_connection) {
    spoiled_hand_over_closes_everything("zero");
}

Test(reload_edges, a_missing_hand_over_closes_every_connection) {
    spoiled_hand_over_closes_everything("missing");
}

// A reload is not a stop: polled every 2 ms through 100 reloads, /healthz is always 200.
Test(reload_edges, healthz_stays_200_through_100_reloads) {
    cr_assert(t::start(g_srv, {}, "", {}, t::timing_binary()), "%s", g_srv.err_log.c_str());
    std::atomic<bool> stop{false};
    std::atomic<int> probes{0}, bad{0};
    std::string last_bad;
    int port = g_srv.http_port;
    std::thread poller([&] {
        while (!stop) {
            std::string r = t::http(port, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
            if (t::status_of(r) != 200) {
                if (bad++ == 0) last_bad = r;
            }
            ++probes;
            usleep(2000);
        }
    });
    int done = 0;
    for (; done < 100; ++done)
        if (!t::reload_and_wait(g_srv)) break;
    stop = true;
    poller.join();
    std::string tail = g_srv.err_log.substr(g_srv.err_log.size() -
                                            std::min<std::size_t>(2000, g_srv.err_log.size()));
    cr_expect_eq(done, 100, "%d reloads; the log ends:\n%s", done, tail.c_str());
    cr_expect_eq(bad.load(), 0, "%d of %d probes not 200, first: '%s'; the log ends:\n%s",
                 bad.load(), probes.load(), last_bad.c_str(), tail.c_str());
    cr_expect_eq(t::stop(g_srv), 0);
}
