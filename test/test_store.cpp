// Store: names, atomic uploads, planted symlinks/FIFOs, digest records, crash leftovers.
// Every test gets a fresh directory under /tmp (plus one "outside" directory for symlink targets).
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>

#include "duet/core/json.hpp"
#include "duet/store/store.hpp"

namespace duet {
// Declared a friend in store.hpp: flips the store onto its fallback paths.
struct StoreTestAccess {
    static void force_named_tmp(Store& s) { s.force_named_tmp_ = true; }
    static void force_sidecar(Store& s) { s.meta_.disable_xattr(); }
};
}  // namespace duet

using namespace duet;

namespace {

std::string g_dir, g_outside;

void make_dirs() {
    char a[] = "/tmp/duet-store-XXXXXX", b[] = "/tmp/duet-outside-XXXXXX";
    cr_assert(::mkdtemp(a) && ::mkdtemp(b));
    g_dir = a;
    g_outside = b;
}

void remove_dirs() {
    std::error_code ec;
    std::filesystem::remove_all(g_dir, ec);
    std::filesystem::remove_all(g_outside, ec);
}

std::string in_store(const std::string& name) {
    return g_dir + "/" + name;
}

void write_file(const std::string& path, const std::string& data, int flags = O_TRUNC) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
    cr_assert(fd >= 0, "open %s: %s", path.c_str(), std::strerror(errno));
    cr_assert_eq(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
}

std::string read_path(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "<missing>";
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

std::string read_fd(int fd) {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
}

// Every entry of the directory, dot files included (but not "." and "..").
std::set<std::string> entries(const std::string& dir = g_dir) {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        out.insert(e.path().filename().string());
    }
    return out;
}

void open_store(Store& s) {
    std::string err;
    cr_assert(s.open(g_dir, err), "open: %s", err.c_str());
}

int put(Store& s, const std::string& name, const std::string& data, FileInfo& info, bool& created,
        const Digest* expected = nullptr, bool no_replace = false) {
    Upload up;
    int rc = s.begin_upload(up);
    if (rc < 0) return rc;
    // Several writes, so the streaming digest is exercised.
    std::size_t half = data.size() / 2;
    if ((rc = up.write(data.data(), half)) < 0) return rc;
    if ((rc = up.write(data.data() + half, data.size() - half)) < 0) return rc;
    cr_assert_eq(up.size(), data.size());
    Precondition pre;
    if (no_replace) pre.kind = Precondition::Kind::MustNotExist;
    return up.commit(name, expected, pre, info, created);
}

int put(Store& s, const std::string& name, const std::string& data) {
    FileInfo info;
    bool created;
    return put(s, name, data, info, created);
}

bool has_xattr(const std::string& path) {
    char buf[256];
    return ::getxattr(path.c_str(), DigestMeta::kXattr, buf, sizeof buf) ==
           static_cast<ssize_t>(DigestMeta::kRecordSize);
}

}  // namespace

TestSuite(store, .init = make_dirs, .fini = remove_dirs, .timeout = 20);

Test(store, valid_name_table) {
    struct Case {
        std::string name;
        bool ok;
    } cases[] = {
        {"a", true},
        {"hello.txt", true},
        {"A-Z_a-z.0-9", true},
        {"a..b", true},
        {"trailing.", true},
        {"-dash", true},
        {"_under", true},
        {std::string(255, 'x'), true},
        {"", false},
        {std::string(256, 'x'), false},
        {".hidden", false},
        {".", false},
        {"..", false},
        {".duet-tmp-1-2", false},
        {"a/b", false},
        {"/abs", false},
        {"a\\b", false},
        {std::string("a\0b", 3), false},
        {"a b", true},
        {"My Report (final).pdf", true},
        {"a%2Fb", true},  // a name, already decoded: '%' is an ordinary byte
        {"caf\xc3\xa9", true},
        {"\xf0\x9f\x93\x84 doc", true},  // U+1F4C4
        {"a\"b'c", true},
        {"star*", true},
        {"colon:", true},
        {"a+b=c&d", true},
        {"\xe2\x80\xa9", true},  // U+2029 is not a control the rules name
        {" lead", false},
        {"trail ", false},
        {"\xff", false},
        {"\xc3", false},              // truncated
        {"\xc0\xaf", false},          // overlong '/'
        {"\xed\xa0\x80", false},      // a surrogate
        {"\xf4\x90\x80\x80", false},  // past U+10FFFF
        {"tab\t", false},
        {"new\nline", false},
        {"del\x7f", false},
        {"c1\xc2\x80", false},
        {"c1\xc2\x9f", false},
        {"bidi\xe2\x80\xaa", false},
        {"bidi\xe2\x80\xae", false},
        {"bidi\xe2\x81\xa6", false},
        {"bidi\xe2\x81\xa9", false},
    };
    for (const auto& c : cases) {
        cr_expect_eq(valid_name(c.name), c.ok, "valid_name(\"%s\") (%zu bytes)", c.name.c_str(),
                     c.name.size());
    }
}

Test(store, upload_then_stat_open_read_list) {
    Store s;
    open_store(s);
    std::string data = "hello world\n";
    FileInfo info;
    bool created = false;
    cr_assert_eq(put(s, "hello.txt", data, info, created), 0);
    Digest want = Sha256::of(data);
    cr_assert(created);
    cr_assert(info.name == "hello.txt");
    cr_assert_eq(info.size, data.size());
    cr_assert(info.sha256 == want);
    cr_assert(std::abs(info.mtime - static_cast<std::int64_t>(::time(nullptr))) < 60);

    FileInfo st;
    cr_assert_eq(s.stat("hello.txt", st), 0);
    cr_assert(st.name == "hello.txt" && st.size == data.size() && st.sha256 == want);
    cr_assert_eq(st.mtime, info.mtime);

    Fd fd;
    FileInfo ri;
    cr_assert_eq(s.open_read("hello.txt", fd, ri), 0);
    cr_assert(fd.valid());
    cr_assert(read_fd(fd.get()) == data);
    cr_assert(ri.sha256 == want);

    std::vector<FileInfo> list;
    cr_assert_eq(s.list(list), 0);
    cr_assert_eq(list.size(), 1u);
    cr_assert(list[0].name == "hello.txt" && list[0].sha256 == want && list[0].size == 12);
    cr_assert(s.exists("hello.txt"));
    cr_assert(has_xattr(in_store("hello.txt")));
    // Nothing but the file itself: no temporary name, no sidecar directory.
    cr_assert(entries() == std::set<std::string>{"hello.txt"});
}

Test(store, empty_upload) {
    Store s;
    open_store(s);
    FileInfo info;
    bool created;
    cr_assert_eq(put(s, "empty", "", info, created), 0);
    cr_assert_eq(info.size, 0u);
    cr_assert(info.sha256 == Sha256::of(""));
    cr_assert(read_path(in_store("empty")).empty());
}

Test(store, list_sorted_by_name) {
    Store s;
    open_store(s);
    for (const char* n : {"b", "a", "C", "a.txt", "_x"}) cr_assert_eq(put(s, n, n), 0);
    std::vector<FileInfo> list;
    cr_assert_eq(s.list(list), 0);
    std::vector<std::string> names;
    for (const auto& f : list) names.push_back(f.name);
    cr_assert((names == std::vector<std::string>{"C", "_x", "a", "a.txt", "b"}));
}

Test(store, created_then_replaced) {
    Store s;
    open_store(s);
    FileInfo info;
    bool created = false;
    cr_assert_eq(put(s, "f", "first", info, created), 0);
    cr_assert(created);
    cr_assert_eq(put(s, "f", "second version", info, created), 0);
    cr_assert(!created);
    cr_assert(read_path(in_store("f")) == "second version");
    cr_assert(info.sha256 == Sha256::of("second version"));
    cr_assert_eq(s.file_count(), 1u);
    cr_assert_eq(s.byte_count(), 14u);
    cr_assert(entries() == std::set<std::string>{"f"});
}

Test(store, no_replace_keeps_old_content) {
    Store s;
    open_store(s);
    cr_assert_eq(put(s, "f", "old"), 0);
    FileInfo info;
    bool created = true;
    cr_assert_eq(put(s, "f", "new", info, created, nullptr, true), -ECANCELED);
    cr_assert(!created);
    cr_assert(read_path(in_store("f")) == "old");
    FileInfo st;
    cr_assert_eq(s.stat("f", st), 0);
    cr_assert(st.sha256 == Sha256::of("old"));
    cr_assert(entries() == std::set<std::string>{"f"});
    cr_assert_eq(s.file_count(), 1u);
    cr_assert_eq(s.byte_count(), 3u);
    // A fresh name is fine with no_replace.
    cr_assert_eq(put(s, "g", "new", info, created, nullptr, true), 0);
    cr_assert(created);
}

Test(store, no_replace_with_named_temp_files) {
    Store s;
    open_store(s);
    StoreTestAccess::force_named_tmp(s);
    cr_assert_eq(put(s, "f", "old"), 0);
    FileInfo info;
    bool created;
    cr_assert_eq(put(s, "f", "new", info, created, nullptr, true), -ECANCELED);
    cr_assert(read_path(in_store("f")) == "old");
    cr_assert(entries() == std::set<std::string>{"f"});
}

Test(store, expected_digest) {
    Store s;
    open_store(s);
    Digest wrong = Sha256::of("something else");
    FileInfo info;
    bool created;
    cr_assert_eq(put(s, "f", "content", info, created, &wrong), -EBADMSG);
    cr_assert(!s.exists("f"));
    cr_assert(entries().empty());
    cr_assert_eq(s.file_count(), 0u);

    Digest right = Sha256::of("content");
    cr_assert_eq(put(s, "f", "content", info, created, &right), 0);
    cr_assert(read_path(in_store("f")) == "content");
}

Test(store, invalid_names_refused) {
    Store s;
    open_store(s);
    FileInfo info;
    Fd fd;
    bool created;
    cr_assert_eq(s.stat("../etc/passwd", info), -EINVAL);
    cr_assert_eq(s.open_read(".duet-meta", fd, info), -EINVAL);
    cr_assert_eq(s.remove("a/../b"), -EINVAL);
    cr_assert_eq(s.remove("a//b"), -EINVAL);
    cr_assert_eq(s.remove("a/b"), -ENOENT);  // a path, and missing
    cr_assert(!s.exists(""));
    cr_assert_eq(put(s, "..", "x", info, created), -EINVAL);
    cr_assert(entries().empty());
    cr_assert_eq(s.stat("missing", info), -ENOENT);
    cr_assert_eq(s.remove("missing"), -ENOENT);
}

static void check_abort_leaves_nothing(bool named) {
    Store s;
    open_store(s);
    if (named) StoreTestAccess::force_named_tmp(s);
    {
        Upload up;
        cr_assert_eq(s.begin_upload(up), 0);
        cr_assert(up.active());
        cr_assert_eq(up.write("partial", 7), 0);
        if (named) cr_assert_eq(entries().size(), 1u);  // the named temporary is there meanwhile
        up.abort();
        cr_assert(!up.active());
        cr_assert(entries().empty());
    }
    {
        Upload up;
        cr_assert_eq(s.begin_upload(up), 0);
        cr_assert_eq(up.write("partial", 7), 0);
        Upload moved(std::move(up));  // ownership moves; only one of them cleans up
        cr_assert(!up.active() && moved.active());
    }  // destroyed without commit
    cr_assert(entries().empty());
    cr_assert_eq(s.file_count(), 0u);
}

Test(store, abort_and_destroy_leave_nothing) {
    check_abort_leaves_nothing(false);
}

Test(store, abort_and_destroy_leave_nothing_named_temp) {
    check_abort_leaves_nothing(true);
}

Test(store, commit_with_named_temp_files) {
    Store s;
    open_store(s);
    StoreTestAccess::force_named_tmp(s);
    FileInfo info;
    bool created;
    cr_assert_eq(put(s, "f", "data", info, created), 0);
    cr_assert(created);
    cr_assert_eq(put(s, "f", "data2", info, created), 0);
    cr_assert(!created);
    cr_assert(read_path(in_store("f")) == "data2");
    cr_assert(entries() == std::set<std::string>{"f"});
}

Test(store, large_upload_digest) {
    Store s;
    open_store(s);
    Upload up;
    cr_assert_eq(s.begin_upload(up), 0);
    std::string chunk(1 << 20, '\0');
    Sha256 sha;
    std::uint64_t total = 0;
    for (int i = 0; i < 10; ++i) {  // 10 MiB: crosses the 8 MiB writeback step
        for (std::size_t j = 0; j < chunk.size(); j += 4096) chunk[j] = static_cast<char>(i + j);
        cr_assert_eq(up.write(chunk.data(), chunk.size()), 0);
        sha.update(chunk.data(), chunk.size());
        total += chunk.size();
    }
    cr_assert_eq(up.write("tail", 4), 0);
    sha.update("tail", 4);
    total += 4;
    FileInfo info;
    bool created;
    cr_assert_eq(up.commit("big.bin", nullptr, Precondition{}, info, created), 0);
    cr_assert(!up.active());
    cr_assert_eq(info.size, total);
    cr_assert(info.sha256 == sha.finish());
    struct stat st;
    cr_assert_eq(::stat(in_store("big.bin").c_str(), &st), 0);
    cr_assert_eq(static_cast<std::uint64_t>(st.st_size), total);
}

Test(store, planted_symlink_to_outside_file) {
    std::string secret = g_outside + "/secret";
    write_file(secret, "do not touch");
    cr_assert_eq(::symlink(secret.c_str(), in_store("evil").c_str()), 0);
    cr_assert_eq(::symlink(g_outside.c_str(), in_store("evildir").c_str()), 0);
    Store s;
    open_store(s);
    cr_assert_eq(s.file_count(), 0u);
    FileInfo info;
    Fd fd;
    cr_assert_eq(s.stat("evil", info), -ENOENT);
    cr_assert_eq(s.open_read("evil", fd, info), -ENOENT);
    cr_assert(!fd.valid());
    cr_assert(!s.exists("evil"));
    cr_assert_eq(s.remove("evil"), -ENOENT);
    cr_assert_eq(s.stat("evildir", info), -ENOENT);
    cr_assert_eq(s.remove("evildir"), -ENOENT);
    std::vector<FileInfo> list;
    cr_assert_eq(s.list(list), 0);
    cr_assert(list.empty());
    struct stat st;
    cr_assert_eq(::lstat(in_store("evil").c_str(), &st), 0);
    cr_assert(S_ISLNK(st.st_mode));
    cr_assert(read_path(secret) == "do not touch");
    // No xattr was written through the link either.
    cr_assert(!has_xattr(secret));

    // An upload under the link's name replaces the link, never writes through it.
    cr_assert_eq(put(s, "evil", "stored"), 0);
    cr_assert_eq(::lstat(in_store("evil").c_str(), &st), 0);
    cr_assert(S_ISREG(st.st_mode));
    cr_assert(read_path(secret) == "do not touch");
    cr_assert(std::filesystem::exists(secret));
}

Test(store, planted_fifo_and_directory) {
    cr_assert_eq(::mkfifo(in_store("pipe").c_str(), 0644), 0);
    cr_assert_eq(::mkdir(in_store("sub").c_str(), 0755), 0);
    Store s;
    open_store(s);  // the count must not open the FIFO either
    cr_assert_eq(s.file_count(), 0u);
    FileInfo info;
    Fd fd;
    cr_assert_eq(s.stat("pipe", info), -ENOENT);
    cr_assert_eq(s.open_read("pipe", fd, info), -ENOENT);
    cr_assert_eq(s.remove("pipe"), -ENOENT);
    cr_assert_eq(s.stat("sub", info), -ENOENT);
    cr_assert_eq(s.open_read("sub", fd, info), -ENOENT);
    cr_assert_eq(s.remove("sub"), -ENOENT);
    cr_assert(!s.exists("pipe") && !s.exists("sub"));
    std::vector<FileInfo> list;
    cr_assert_eq(s.list(list), 0);
    cr_assert(list.empty());
    cr_assert(entries() == (std::set<std::string>{"pipe", "sub"}));
}

Test(store, dropped_in_file_gets_digest_recorded) {
    write_file(in_store("manual.txt"), "dropped in by hand");
    Store s;
    open_store(s);
    cr_assert_eq(s.file_count(), 1u);
    cr_assert_eq(s.byte_count(), 18u);
    cr_assert(!has_xattr(in_store("manual.txt")));
    FileInfo info;
    cr_assert_eq(s.stat("manual.txt", info), 0);
    cr_assert(info.sha256 == Sha256::of("dropped in by hand"));
    cr_assert(has_xattr(in_store("manual.txt")));

    // Proof that the record is used and the bytes are not read again: change the bytes in place
    // keeping size and mtime, and the recorded digest is still reported.
    struct stat st;
    cr_assert_eq(::stat(in_store("manual.txt").c_str(), &st), 0);
    int fd = ::open(in_store("manual.txt").c_str(), O_WRONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(::pwrite(fd, "D", 1, 0), 1);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    cr_assert_eq(::futimens(fd, times), 0);
    ::close(fd);
    std::vector<FileInfo> list;
    cr_assert_eq(s.list(list), 0);
    cr_assert_eq(list.size(), 1u);
    cr_assert(list[0].sha256 == Sha256::of("dropped in by hand"));
}

Test(store, hand_edit_changes_digest) {
    Store s;
    open_store(s);
    cr_assert_eq(put(s, "f", "original"), 0);
    write_file(in_store("f"), " + appended", O_APPEND);
    FileInfo info;
    cr_assert_eq(s.stat("f", info), 0);
    cr_assert_eq(info.size, 19u);
    cr_assert(info.sha256 == Sha256::of("original + appended"));
    // Same answer from a new Store: the new record survived.
    Store s2;
    open_store(s2);
    std::vector<FileInfo> list;
    cr_assert_eq(s2.list(list), 0);
    cr_assert_eq(list.size(), 1u);
    cr_assert(list[0].sha256 == Sha256::of("original + appended"));
}

Test(store, open_removes_stale_temp_files) {
    write_file(in_store(".duet-tmp-123-4"), "leftover");
    write_file(in_store(".duet-tmp-x"), "leftover");
    write_file(in_store(".other"), "not ours");
    write_file(in_store("real.txt"), "real");
    Store s;
    open_store(s);
    cr_assert(entries() == (std::set<std::string>{".other", "real.txt"}));
    cr_assert_eq(s.file_count(), 1u);
    cr_assert_eq(s.byte_count(), 4u);
}

// A child process begins an upload and dies mid-way; `kill_it` SIGKILLs it while it writes.
static void check_crash_leaves_nothing(bool named, bool kill_it) {
    int pipefd[2];
    cr_assert_eq(::pipe2(pipefd, O_CLOEXEC), 0);
    pid_t pid = ::fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        ::close(pipefd[0]);
        Store s;
        std::string err;
        if (!s.open(g_dir, err)) ::_exit(10);
        if (named) StoreTestAccess::force_named_tmp(s);
        Upload up;
        if (s.begin_upload(up) != 0) ::_exit(11);
        std::string mib(1 << 20, 'x');
        if (up.write(mib.data(), mib.size()) != 0) ::_exit(12);
        if (!kill_it) ::_exit(0);
        (void)!::write(pipefd[1], "w", 1);
        for (int i = 0; i < 256; ++i) up.write(mib.data(), mib.size());  // until killed
        ::pause();
        ::_exit(13);
    }
    ::close(pipefd[1]);
    if (kill_it) {
        char c;
        cr_assert_eq(::read(pipefd[0], &c, 1), 1);
        ::kill(pid, SIGKILL);
    }
    ::close(pipefd[0]);
    int status = 0;
    cr_assert_eq(::waitpid(pid, &status, 0), pid);
    if (kill_it) {
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    } else {
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    }
    // Nothing visible under a client name; a named temporary at most, which open() removes.
    for (const auto& e : entries()) cr_assert(!valid_name(e), "visible: %s", e.c_str());
    if (!named) cr_assert(entries().empty());
    Store s;
    open_store(s);
    cr_assert(entries().empty());
    cr_assert_eq(s.file_count(), 0u);
}

Test(store, crash_exit_mid_upload) {
    check_crash_leaves_nothing(false, false);
}

Test(store, crash_sigkill_mid_upload) {
    check_crash_leaves_nothing(false, true);
}

Test(store, crash_exit_mid_upload_named_temp) {
    check_crash_leaves_nothing(true, false);
}

Test(store, crash_sigkill_mid_upload_named_temp) {
    check_crash_leaves_nothing(true, true);
}

Test(store, counters_follow_commit_and_remove) {
    write_file(in_store("a"), "12345");
    write_file(in_store("b"), "123");
    Store s;
    open_store(s);
    cr_assert_eq(s.file_count(), 2u);
    cr_assert_eq(s.byte_count(), 8u);
    cr_assert_eq(put(s, "c", "1234567890"), 0);
    cr_assert_eq(s.file_count(), 3u);
    cr_assert_eq(s.byte_count(), 18u);
    cr_assert_eq(put(s, "a", "1"), 0);  // replace: 5 bytes become 1
    cr_assert_eq(s.file_count(), 3u);
    cr_assert_eq(s.byte_count(), 14u);
    cr_assert_eq(s.remove("b"), 0);
    cr_assert_eq(s.file_count(), 2u);
    cr_assert_eq(s.byte_count(), 11u);
    cr_assert(!s.exists("b"));
    cr_assert_eq(s.remove("b"), -ENOENT);
    cr_assert_eq(s.file_count(), 2u);
    cr_assert(entries() == (std::set<std::string>{"a", "c"}));
}

Test(store, sidecar_fallback_without_xattrs) {
    write_file(in_store("manual"), "by hand");
    Store s;
    open_store(s);
    StoreTestAccess::force_sidecar(s);
    cr_assert_eq(put(s, "up", "uploaded"), 0);
    cr_assert(!has_xattr(in_store("up")));
    cr_assert(std::filesystem::is_regular_file(in_store(".duet-meta/up")));
    FileInfo info;
    cr_assert_eq(s.stat("manual", info), 0);
    cr_assert(info.sha256 == Sha256::of("by hand"));
    cr_assert(std::filesystem::is_regular_file(in_store(".duet-meta/manual")));
    std::vector<FileInfo> list;
    cr_assert_eq(s.list(list), 0);
    cr_assert_eq(list.size(), 2u);  // .duet-meta is not listed
    cr_assert(list[1].name == "up" && list[1].sha256 == Sha256::of("uploaded"));

    // The sidecar record is used after a restart: keep size and mtime, change a byte.
    struct stat st;
    cr_assert_eq(::stat(in_store("up").c_str(), &st), 0);
    int fd = ::open(in_store("up").c_str(), O_WRONLY | O_CLOEXEC);
    cr_assert_eq(::pwrite(fd, "U", 1, 0), 1);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    cr_assert_eq(::futimens(fd, times), 0);
    ::close(fd);
    Store s2;
    open_store(s2);
    StoreTestAccess::force_sidecar(s2);
    cr_assert_eq(s2.stat("up", info), 0);
    cr_assert(info.sha256 == Sha256::of("uploaded"));

    // A different file renamed into place, same size and mtime, does not inherit the record:
    // its inode differs.
    write_file(in_store(".other"), "Uploaded");
    cr_assert_eq(::utimensat(AT_FDCWD, in_store(".other").c_str(), times, 0), 0);
    cr_assert_eq(::rename(in_store(".other").c_str(), in_store("up").c_str()), 0);
    cr_assert_eq(s2.stat("up", info), 0);
    cr_assert(info.sha256 == Sha256::of("Uploaded"));

    // remove() drops the record; open() drops records whose file went away by hand.
    cr_assert_eq(s2.remove("up"), 0);
    cr_assert(!std::filesystem::exists(in_store(".duet-meta/up")));
    cr_assert_eq(::unlink(in_store("manual").c_str()), 0);
    write_file(in_store(".duet-meta/.duet-tmp-9-9"), "leftover");
    Store s3;
    open_store(s3);
    cr_assert(entries(in_store(".duet-meta")).empty());
}

Test(store, open_creates_and_check_validates) {
    std::string sub = g_dir + "/data";
    std::string err;
    cr_assert(Store::check(sub, err), "%s", err.c_str());
    cr_assert(!std::filesystem::exists(sub));  // check changes nothing
    Store s;
    cr_assert(s.open(sub, err), "%s", err.c_str());
    cr_assert(std::filesystem::is_directory(sub));
    cr_assert(Store::check(sub, err), "%s", err.c_str());
    cr_assert(Store::check(sub + "/", err), "%s", err.c_str());

    std::string missing_parent = g_dir + "/no/such/dir";
    cr_assert(!Store::check(missing_parent, err));
    cr_assert(err.find(missing_parent) != std::string::npos, "%s", err.c_str());
    // The message names the missing parent and the first missing folder above it.
    std::string says =
        "its parent " + g_dir + "/no/such does not exist (nor does " + g_dir + "/no)";
    cr_assert(err.find(says) != std::string::npos, "%s", err.c_str());
    Store s2;
    cr_assert(!s2.open(missing_parent, err));
    cr_assert(err.find(says) != std::string::npos, "%s", err.c_str());
    cr_assert(err.find("mkdir -p " + g_dir + "/no/such") != std::string::npos, "%s", err.c_str());
    cr_assert(!s2.open(g_dir + "/absent/dir", err));
    cr_assert(err.find("its parent " + g_dir + "/absent does not exist;") != std::string::npos,
              "%s", err.c_str());

    std::string file = g_dir + "/plainfile";
    write_file(file, "x");
    cr_assert(!Store::check(file, err));
    cr_assert(err.find("not a directory") != std::string::npos, "%s", err.c_str());
    Store s3;
    cr_assert(!s3.open(file, err));
    cr_assert(err.find("not a directory") != std::string::npos, "%s", err.c_str());
    cr_assert(!Store::check(file + "/sub", err));
}

// Root passes every access() test, so only really creating a file tells: /proc lets nobody make
// a directory, and /proc/self is a directory nobody can create files in.
Test(store, check_really_creates_and_removes_a_probe_file) {
    std::string err;
    cr_assert(!Store::check("/proc/nope", err));
    cr_assert(err.find("/proc/nope") != std::string::npos, "%s", err.c_str());
    cr_assert(!Store::check("/proc/self", err));
    cr_assert(err.find("cannot write in store directory /proc/self") != std::string::npos, "%s",
              err.c_str());
    Store s;
    cr_assert(!s.open("/proc/self", err), "a store nobody can write in opened");

    std::string sub = g_dir + "/fresh";
    cr_assert(Store::check(sub, err), "%s", err.c_str());
    cr_assert(!std::filesystem::exists(sub), "the check left the directory it made");
    std::string existing = g_dir + "/existing";
    cr_assert(std::filesystem::create_directory(existing));
    cr_assert(Store::check(existing, err), "%s", err.c_str());
    cr_assert(entries(existing).empty(), "the check left its probe file behind");
}

// ---- issue 9: name errors, preconditions at publish, unreadable files ----

Test(store, name_error_says_which_rule_failed) {
    cr_expect(duet::name_error("a.txt").empty());
    cr_expect(duet::name_error("") == "invalid file name: is empty");
    cr_expect(duet::name_error(".x") == "invalid file name: must not start with '.'");
    cr_expect(duet::name_error(std::string(256, 'a')) ==
              "invalid file name: is 256 bytes, the limit is 255");
    cr_expect(duet::name_error(std::string(255, 'a')).empty());
    cr_expect(duet::name_error("my file").empty());
    cr_expect(duet::name_error("a/b") == "invalid file name: a '/' inside a name (%2F) at byte 2");
    cr_expect(duet::name_error(std::string("a\0", 2)) ==
              "invalid file name: a control character (U+0000) at byte 2");
    cr_expect(duet::name_error("ab\tc") ==
              "invalid file name: a control character (U+0009) at byte 3");
    cr_expect(duet::name_error("a\xe2\x80\xae"
                               "b") ==
              "invalid file name: a bidirectional control (U+202E) at byte 2");
    cr_expect(duet::name_error("ok\xff") == "invalid file name: not valid UTF-8 at byte 3");
    cr_expect(duet::name_error("a\\b") == "invalid file name: a backslash at byte 2");
    cr_expect(duet::name_error(" a") == "invalid file name: must not start with a space");
    cr_expect(duet::name_error("a ") == "invalid file name: must not end with a space");
    // Same verdict as valid_name, which wraps it.
    for (const char* n : {"a", "..", "a b", "A-Z_09.x", "\xff", " x"})
        cr_expect_eq(duet::valid_name(n), duet::name_error(n).empty(), "%s", n);
}

Test(store, names_are_encoded_for_the_port_and_urls_and_decoded_back) {
    std::string name = "My Report 100% (final) na\xc3\xafve.txt";
    std::string port = duet::port_encode(name);
    cr_expect(port == "My%20Report%20100%25%20(final)%20na%C3%AFve.txt", "%s", port.c_str());
    cr_expect_eq(duet::port_encoded_size(name), port.size());
    std::string back;
    bool folder = true;
    cr_expect(duet::decode_path(port, back, folder).empty() && !folder);
    cr_expect(back == name);
    cr_expect(duet::url_encode("a b/c+d?#") == "a%20b/c+d%3F%23");
    cr_expect(duet::decode_path("a%2", back, folder) ==
              "invalid file name: bad percent escape at byte 2");
    cr_expect(duet::decode_path("a/b%2Fc/", back, folder) ==
              "invalid file name: a '/' inside a name (%2F) at byte 2");
    // JSON: a quote is the only byte of a valid name that needs an escape.
    cr_expect(duet::json_escape("a\"b\\c\x01") == "a\\\"b\\\\c\\u0001");
}

Test(store, precondition_is_checked_at_commit) {
    Store s;
    open_store(s);
    cr_assert_eq(put(s, "f", "v1"), 0);
    Digest v1 = Sha256::of("v1");
    // Two uploads that both saw v1: the first to publish wins, the second is refused.
    Upload a, b;
    cr_assert_eq(s.begin_upload(a), 0);
    cr_assert_eq(s.begin_upload(b), 0);
    cr_assert_eq(a.write("A", 1), 0);
    cr_assert_eq(b.write("B", 1), 0);
    Precondition pre{Precondition::Kind::MustMatch, v1};
    FileInfo info;
    bool created;
    cr_expect_eq(a.commit("f", nullptr, pre, info, created), 0);
    cr_expect_eq(b.commit("f", nullptr, pre, info, created), -ECANCELED);
    cr_expect(read_path(in_store("f")) == "A");
    cr_expect(entries() == std::set<std::string>{"f"}, "the loser's temporary is gone");
    // MustExist on a missing name, MustNotExist on an existing one.
    Upload c;
    cr_assert_eq(s.begin_upload(c), 0);
    cr_expect_eq(
        c.commit("g", nullptr, Precondition{Precondition::Kind::MustExist, {}}, info, created),
        -ECANCELED);
    cr_expect_eq(s.check_precondition("f", Precondition{Precondition::Kind::MustNotExist, {}}),
                 -ECANCELED);
    cr_expect_eq(s.check_precondition("g", Precondition{Precondition::Kind::MustNotExist, {}}), 0);
}

Test(store, remove_checks_its_precondition) {
    Store s;
    open_store(s);
    cr_assert_eq(put(s, "f", "v1"), 0);
    cr_expect_eq(s.remove("f", Precondition{Precondition::Kind::MustMatch, Sha256::of("v0")}),
                 -ECANCELED);
    cr_expect(entries() == std::set<std::string>{"f"});
    cr_expect_eq(s.remove("f", Precondition{Precondition::Kind::MustMatch, Sha256::of("v1")}), 0);
    cr_expect(entries().empty());
}
