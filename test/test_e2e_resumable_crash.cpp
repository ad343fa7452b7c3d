// Crash consistency of resumable uploads: 20 uploads (half tus, half the IETF draft) append in
// 256 KiB steps while duet is killed with SIGKILL at random moments; after each restart every
// offset the server ever announced is still there (never less), no upload is visible under its
// name before it completed, and in the end every file completes with the right digest.
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "duet/core/base64.hpp"
#include "duet/core/sha256.hpp"
#include "helper.hpp"

namespace {

t::Duet& g_srv = t::served;
std::string g_dir;
using t::teardown;

constexpr int kUploads = 20;
constexpr std::size_t kSize = 3 << 20;
constexpr std::size_t kStep = 256 << 10;

struct Upload {
    std::string name, data, loc;
    bool ietf = false;
    std::uint64_t announced = 0;  // the highest offset the server ever told us
    bool done = false;            // the server acknowledged the whole upload
};

std::string num(std::uint64_t v) {
    return std::to_string(v);
}

std::string exchange(const std::string& raw, bool head_only = false) {
    int fd = t::connect_port(g_srv.http_port);
    if (fd < 0) return "";
    std::string r;
    if (t::send_all(fd, raw)) {
        for (int i = 0; i < 100; ++i) {  // skip interim answers
            r = t::read_response(fd, head_only);
            int s = t::status_of(r);
            if (s < 100 || s >= 200) break;
        }
    }
    close(fd);
    return r;
}

std::uint64_t offset_of(const std::string& r) {
    return std::strtoull(t::header_of(r, "Upload-Offset").c_str(), nullptr, 10);
}

void create(Upload& u) {
    std::string r;
    if (u.ietf) {
        r = exchange("POST /files/" + u.name +
                     " HTTP/1.1\r\nHost: x\r\nUpload-Draft-Interop-Version: 7\r\n"
                     "Upload-Complete: ?0\r\nUpload-Length: " +
                     num(u.data.size()) + "\r\nContent-Length: 0\r\n\r\n");
    } else {
        r = exchange(
            "POST /uploads HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
            "Upload-Length: " +
            num(u.data.size()) + "\r\nUpload-Metadata: filename " +
            duet::base64_encode(reinterpret_cast<const std::uint8_t*>(u.name.data()),
                                u.name.size()) +
            "\r\nContent-Length: 0\r\n\r\n");
    }
    cr_assert_eq(t::status_of(r), 201, "%s", r.c_str());
    u.loc = t::header_of(r, "Location");
}

// Appends from the server's offset until done or the server is gone. Every offset the server
// announces is recorded (and counted in `progress`).
void run(Upload& u, std::atomic<std::uint64_t>& progress, std::condition_variable& cv) {
    while (!u.done) {
        std::string h = exchange(
            "HEAD " + u.loc + " HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n\r\n", true);
        int hs = t::status_of(h);
        if (hs != 200 && hs != 204) return;
        std::uint64_t off = offset_of(h);
        if (off > u.announced) u.announced = off;
        std::size_t n = std::min(kStep, u.data.size() - off);
        bool last = off + n == u.data.size();
        std::string fields = u.ietf ? std::string(
                                          "Content-Type: application/partial-upload\r\n"
                                          "Upload-Complete: ") +
                                          (last ? "?1" : "?0") + "\r\n"
                                    : "Tus-Resumable: 1.0.0\r\nContent-Type: "
                                      "application/offset+octet-stream\r\n";
        std::string r = exchange("PATCH " + u.loc + " HTTP/1.1\r\nHost: x\r\n" + fields +
                                 "Upload-Offset: " + num(off) + "\r\nContent-Length: " + num(n) +
                                 "\r\n\r\n" + u.data.substr(off, n));
        int s = t::status_of(r);
        if (s < 200 || s >= 300) return;
        std::uint64_t now = offset_of(r);
        if (now > u.announced) u.announced = now;
        progress += n;
        cv.notify_one();
        if (now == u.data.size()) u.done = true;
    }
}

void restart() {
    if (g_srv.err_fd >= 0) close(g_srv.err_fd);
    g_srv = t::Duet{};
    cr_assert(t::start(g_srv, {}, g_dir + "/data"), "%s", g_srv.err_log.c_str());
}

std::string hex(const std::string& d) {
    return duet::to_hex(duet::Sha256::of(d));
}

}  // namespace

TestSuite(resumable_crash, .fini = teardown, .timeout = 120);

Test(resumable_crash, kill_9_never_loses_an_announced_offset_and_all_complete) {
    g_dir = t::boot();
    std::vector<Upload> ups(kUploads);
    for (int i = 0; i < kUploads; ++i) {
        ups[i].name = "r" + num(std::uint64_t(i)) + ".bin";
        ups[i].data = t::random_bytes(kSize, unsigned(100 + i));
        ups[i].ietf = i % 2;
        create(ups[i]);
    }
    std::mt19937 rng(std::random_device{}());
    int kills = 0;
    for (int round = 0; round < 6; ++round) {
        bool kill_now = round < 5;
        std::atomic<std::uint64_t> progress{0};
        std::condition_variable cv;
        std::mutex mu;
        std::uint64_t left = 0;
        for (auto& u : ups)
            if (!u.done) left += u.data.size() - u.announced;
        // A random moment: after a random share of what is left has been acknowledged.
        std::uint64_t at = left / 10 + rng() % (left / 2 + 1);
        std::vector<std::thread> threads;
        for (auto& u : ups)
            if (!u.done) threads.emplace_back(run, std::ref(u), std::ref(progress), std::ref(cv));
        if (kill_now) {
            std::unique_lock<std::mutex> lock(mu);
            cv.wait_for(lock, std::chrono::seconds(30), [&] { return progress.load() >= at; });
            kill(g_srv.pid, SIGKILL);
            t::wait_exit(g_srv, 5000);
            ++kills;
        }
        for (auto& th : threads) th.join();
        if (!kill_now) break;
        // Dead: nothing unfinished is visible under its name.
        for (auto& u : ups) {
            std::string content = t::read_file(g_dir + "/data/" + u.name);
            if (!u.done)
                cr_expect(content.empty() || content == u.data,
                          "round %d: %s visible half-done (%zu bytes)", round, u.name.c_str(),
                          content.size());
        }
        restart();
        for (auto& u : ups) {
            if (u.done) continue;
            std::string h = exchange("HEAD " + u.loc + " HTTP/1.1\r\nHost: x\r\n\r\n", true);
            if (t::status_of(h) == 404) {  // completed just as the server died: published whole
                cr_expect(t::read_file(g_dir + "/data/" + u.name) == u.data,
                          "round %d: %s gone but not published", round, u.name.c_str());
                u.done = true;
                continue;
            }
            std::uint64_t off = offset_of(h);
            cr_expect_geq(off, u.announced, "round %d: %s announced %llu, now %llu", round,
                          u.name.c_str(), (unsigned long long)u.announced, (unsigned long long)off);
            cr_expect(t::read_file(g_dir + "/data/" + u.name).empty(),
                      "round %d: %s visible before it completed", round, u.name.c_str());
        }
    }
    cr_expect_geq(kills, 5);
    for (auto& u : ups) {
        cr_expect(u.done, "%s never completed", u.name.c_str());
        cr_expect_eq(hex(t::read_file(g_dir + "/data/" + u.name)), hex(u.data), "%s is wrong",
                     u.name.c_str());
    }
    std::string list = t::body_of(exchange("GET /uploads HTTP/1.1\r\nHost: x\r\n\r\n"));
    cr_expect_eq(list, "[]\n");
}
