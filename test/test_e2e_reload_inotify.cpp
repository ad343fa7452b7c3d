// A reload hands its inotify instances to the next image instead of letting execve close them
// (closing one that holds watches makes the process wait for the kernel to retire them: most of a
// reload's time before this). Checked from outside through /proc/PID/fdinfo: the watch numbers an
// inotify instance hands out only ever grow, so a fresh instance would start again at 1.
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "helper.hpp"

namespace {

void fini() {
    t::teardown();
}

// The fdinfo text of every inotify fd the process holds.
std::vector<std::string> inotify_fdinfos(pid_t pid) {
    std::vector<std::string> out;
    std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = opendir(fd_dir.c_str());
    cr_assert(d, "cannot list %s", fd_dir.c_str());
    while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        char link[128];
        ssize_t n = readlink((fd_dir + "/" + e->d_name).c_str(), link, sizeof link - 1);
        if (n < 0) continue;
        link[n] = 0;
        if (std::string(link) != "anon_inode:inotify") continue;
        out.push_back(
            t::read_file("/proc/" + std::to_string(pid) + "/fdinfo/" + std::string(e->d_name)));
    }
    closedir(d);
    return out;
}

void reload(t::Duet& d, int generation) {
    std::size_t from = d.err_log.size();
    cr_assert_eq(kill(d.pid, SIGHUP), 0);
    std::string want = "generation=" + std::to_string(generation);
    cr_assert(t::wait_log(d, want), "no %s; stderr:\n%s", want.c_str(), d.err_log.c_str());
    cr_assert(t::parse_ready(d, from));
}

}  // namespace

TestSuite(reload_inotify, .fini = fini, .timeout = 60);

Test(reload_inotify, the_store_watch_crosses_a_reload_with_its_watch_numbers) {
    std::string dir = t::boot();
    t::Duet& d = t::served;
    // Store watch 1, parent watch 2. Replacing the store makes duet watch the new directory: 3.
    cr_assert_eq(rename((dir + "/data").c_str(), (dir + "/data_old").c_str()), 0);
    cr_assert(t::wait_log(d, "store unavailable"), "stderr:\n%s", d.err_log.c_str());
    cr_assert_eq(mkdir((dir + "/data").c_str(), 0755), 0);
    cr_assert(t::wait_log(d, "is back"), "stderr:\n%s", d.err_log.c_str());
    for (int g = 1; g <= 3; ++g) reload(d, g);
    std::vector<std::string> infos = inotify_fdinfos(d.pid);
    cr_assert_eq(infos.size(), 1u, "inotify fds after 3 reloads: %zu", infos.size());
    // The same instance: it still numbers the store's watch 3 (a new one would say 1).
    cr_assert(infos[0].find("inotify wd:3 ") != std::string::npos, "%s", infos[0].c_str());
    cr_assert(infos[0].find("inotify wd:1 ") == std::string::npos, "%s", infos[0].c_str());
    // And it still feeds the index: a file dropped in by hand is listed with its digest.
    cr_assert(t::write_file(dir + "/data/dropped.txt", "hello\n"));
    std::string want = t::sha256_hex("hello\n");
    std::string body;
    for (int i = 0; i < 500 && body.find(want) == std::string::npos; ++i) {
        body = t::body_of(t::http(d.http_port, "GET /files HTTP/1.1\r\nHost: x\r\n\r\n"));
        if (body.find(want) == std::string::npos) usleep(10000);
    }
    cr_assert(body.find("\"dropped.txt\"") != std::string::npos, "%s", body.c_str());
    cr_assert(body.find(want) != std::string::npos, "%s", body.c_str());
    cr_assert_eq(t::stop(d), 0);
}

Test(reload_inotify, with_reload_on_both_inotify_instances_cross_and_none_leaks) {
    t::boot({"--reload"});
    t::Duet& d = t::served;
    std::vector<std::string> before = inotify_fdinfos(d.pid);
    cr_assert_eq(before.size(), 2u);
    for (int g = 1; g <= 5; ++g) reload(d, g);
    std::vector<std::string> after = inotify_fdinfos(d.pid);
    cr_assert_eq(after.size(), 2u, "inotify fds after 5 reloads: %zu", after.size());
    cr_assert_eq(t::stop(d), 0);
}
