// README.md is the user's whole reference (README), so it is tested like code:
// - the tour runs verbatim, in a fresh directory, against the built binary;
// - no link leaves the repository, and every in-page anchor exists;
// - every route and method, HTTP status, file-port command and ERR code the code can produce is in
//   the reference; the lists come from the code's own tables (route_table(), reason_phrase(),
//   verb_table()) and, for ERR codes, from the sources' "ERR NNN" answers;
// - the systemd units pass systemd-analyze verify.
// Run from the repository root, as make test does.
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "duet/fileport/file_proto.hpp"
#include "duet/http/http_response.hpp"
#include "duet/http/http_routes.hpp"
#include "helper.hpp"

namespace fs = std::filesystem;

namespace {

std::string readme() {
    std::string text = t::read_file("README.md");
    cr_assert(!text.empty(), "README.md not found in %s (run from the repository root)",
              fs::current_path().c_str());
    return text;
}

// The body of every fenced block whose info string is exactly `info`.
std::vector<std::string> fenced_blocks(const std::string& md, const std::string& info) {
    std::vector<std::string> out;
    std::string open = "```" + info + "\n";
    for (std::size_t at = md.find(open); at != std::string::npos; at = md.find(open, at)) {
        if (at > 0 && md[at - 1] != '\n') {
            ++at;
            continue;
        }
        std::size_t start = at + open.size();
        std::size_t end = md.find("\n```", start - 1);
        cr_assert(end != std::string::npos, "unclosed ```%s block", info.c_str());
        out.push_back(md.substr(start, end + 1 - start));
        at = end + 4;
    }
    return out;
}

// The page without fenced blocks and inline code: what renders as prose, where links live.
std::string prose(const std::string& md) {
    std::string out;
    bool fenced = false;
    std::size_t at = 0;
    while (at < md.size()) {
        std::size_t nl = md.find('\n', at);
        if (nl == std::string::npos) nl = md.size();
        std::string line = md.substr(at, nl - at);
        at = nl + 1;
        if (line.rfind("```", 0) == 0) {
            fenced = !fenced;
            continue;
        }
        if (fenced) continue;
        // Drop `code spans`.
        std::string kept;
        bool code = false;
        for (char c : line) {
            if (c == '`')
                code = !code;
            else if (!code)
                kept += c;
        }
        out += kept + "\n";
    }
    return out;
}

// GitHub's heading anchors: lower case, punctuation dropped, spaces to '-'.
std::set<std::string> anchors(const std::string& md) {
    std::set<std::string> out;
    bool fenced = false;
    std::size_t at = 0;
    while (at < md.size()) {
        std::size_t nl = md.find('\n', at);
        if (nl == std::string::npos) nl = md.size();
        std::string line = md.substr(at, nl - at);
        at = nl + 1;
        if (line.rfind("```", 0) == 0) fenced = !fenced;
        if (fenced || line.empty() || line[0] != '#') continue;
        std::size_t text = line.find_first_not_of('#');
        if (text == std::string::npos || line[text] != ' ') continue;
        std::string slug;
        for (char c : line.substr(text + 1)) {
            unsigned char u = static_cast<unsigned char>(c);
            if (std::isalnum(u) || c == '-' || c == '_')
                slug += char(std::tolower(u));
            else if (c == ' ')
                slug += '-';
            else if (u >= 0x80)
                slug += c;  // kept by GitHub as well
        }
        out.insert(slug);
    }
    return out;
}

// Table rows as cells, the first column in [0]; an escaped "\|" stays inside its cell.
std::vector<std::vector<std::string>> table_rows(const std::string& md) {
    std::vector<std::vector<std::string>> rows;
    std::size_t at = 0;
    while (at < md.size()) {
        std::size_t nl = md.find('\n', at);
        if (nl == std::string::npos) nl = md.size();
        std::string line = md.substr(at, nl - at);
        at = nl + 1;
        if (line.size() < 2 || line[0] != '|') continue;
        std::vector<std::string> cells(1);
        for (std::size_t i = 1; i < line.size(); ++i) {
            if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
                cells.back() += '|';
                ++i;
            } else if (line[i] == '|') {
                cells.emplace_back();
            } else {
                cells.back() += line[i];
            }
        }
        rows.push_back(cells);
    }
    return rows;
}

bool has_word(const std::string& text, const std::string& word) {
    for (std::size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
        bool left = at == 0 || !std::isalnum(static_cast<unsigned char>(text[at - 1]));
        std::size_t e = at + word.size();
        bool right = e >= text.size() || !std::isalnum(static_cast<unsigned char>(text[e]));
        if (left && right) return true;
    }
    return false;
}

// "scheme:" at the start (RFC 3986: a letter, then letters, digits, + . -).
bool starts_with_scheme(const std::string& s) {
    if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
    for (std::size_t i = 1; i < s.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == ':') return true;
        if (!std::isalnum(c) && c != '+' && c != '.' && c != '-') return false;
    }
    return false;
}

// Link targets in prose: "[text](target ...)" and reference definitions "[label]: target".
std::vector<std::string> link_targets(const std::string& text) {
    std::vector<std::string> out;
    for (std::size_t at = text.find("]("); at != std::string::npos; at = text.find("](", at + 2)) {
        std::size_t end = text.find_first_of(") \n", at + 2);
        out.push_back(text.substr(at + 2, end == std::string::npos ? end : end - at - 2));
    }
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t nl = text.find('\n', at);
        if (nl == std::string::npos) nl = text.size();
        std::string line = text.substr(at, nl - at);
        at = nl + 1;
        std::size_t b = line.find_first_not_of(" \t");
        if (b == std::string::npos || line[b] != '[') continue;
        std::size_t close = line.find("]:", b);
        if (close == std::string::npos || line.find(']', b) != close) continue;
        std::size_t t0 = line.find_first_not_of(" \t", close + 2);
        if (t0 != std::string::npos) out.push_back(line.substr(t0, line.find(' ', t0) - t0));
    }
    return out;
}

// Text that renders as a link without brackets: <scheme:...> autolinks and bare addresses.
std::vector<std::string> bare_links(const std::string& text) {
    std::vector<std::string> out;
    for (const char* needle : {"http://", "https://", "www."})
        for (std::size_t at = text.find(needle); at != std::string::npos;
             at = text.find(needle, at + 1))
            out.push_back(text.substr(at, text.find_first_of(" \n", at) - at));
    for (std::size_t at = text.find('<'); at != std::string::npos; at = text.find('<', at + 1)) {
        std::string rest = text.substr(at + 1, text.find_first_of(">\n", at) - at - 1);
        if (starts_with_scheme(rest)) out.push_back("<" + rest + ">");
    }
    return out;
}

std::string absolute(const std::string& path) {
    return fs::absolute(path).lexically_normal().string();
}

// Runs `script` with bash in `dir`, in a process group of its own, with `env` added; waits up to
// `timeout_ms`, then kills the whole group (so nothing the script started outlives it). Returns
// the exit status (or -1) and the combined output in `output`.
int run_script(const std::string& dir, const std::string& script,
               const std::vector<std::string>& env, int timeout_ms, std::string& output) {
    std::string path = dir + "/script.sh", log = dir + "/script.out";
    cr_assert(t::write_file(path, script));
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        if (chdir(dir.c_str()) != 0) _exit(127);
        for (const std::string& e : env) putenv(const_cast<char*>(e.c_str()));
        FILE* out = freopen(log.c_str(), "w", stdout);
        if (!out || dup2(fileno(stdout), 2) < 0) _exit(127);
        execlp("bash", "bash", "-e", path.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    setpgid(pid, pid);
    int status = -1, st = 0;
    std::int64_t deadline = t::now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            break;
        }
        if (t::now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            break;
        }
        usleep(20000);  // a child's exit has no fd to wait on here; 20 ms polls cost nothing
    }
    kill(-pid, SIGKILL);  // whatever the script left behind (ESRCH when nothing is left)
    output = t::read_file(log);
    return status;
}

std::string tmpdir() {
    std::string dir = t::make_tmpdir();
    cr_assert(!dir.empty());
    t::remove_at_teardown(dir);
    return dir;
}

void cleanup() {
    t::teardown();
}

}  // namespace

TestSuite(readme, .fini = cleanup, .timeout = 120);

Test(readme, tour_runs_verbatim_in_an_empty_directory) {
    std::vector<std::string> tours = fenced_blocks(readme(), "sh tour");
    cr_assert_eq(tours.size(), 1u, "want exactly one ```sh tour block, found %zu", tours.size());
    std::string bin = absolute(t::duet_binary());
    cr_assert(access(bin.c_str(), X_OK) == 0, "no binary at %s", bin.c_str());
    std::string dir = tmpdir();
    // TMPDIR: the tour's own `mktemp -d` lands in our directory, which teardown removes.
    std::string out;
    int status = run_script(dir, tours[0], {"DUET=" + bin, "TMPDIR=" + dir}, 90000, out);
    cr_assert_eq(status, 0, "the tour failed (exit %d) against %s; its output:\n%s", status,
                 bin.c_str(), out.c_str());
    cr_assert(out.find("tour: ok") != std::string::npos, "the tour did not finish:\n%s",
              out.c_str());
    // It cleans up after itself: nothing of its mktemp directory is left in TMPDIR.
    for (const auto& e : fs::directory_iterator(dir))
        cr_expect(e.path().filename().string().rfind("tmp.", 0) != 0, "the tour left %s behind",
                  e.path().c_str());
}

Test(readme, no_link_leaves_the_repository) {
    std::string md = readme();
    std::string text = prose(md);
    std::set<std::string> heads = anchors(md);
    std::vector<std::string> targets = link_targets(text);
    cr_assert(!targets.empty(), "no links found at all: is the parser broken?");
    for (const std::string& target : targets) {
        if (target.rfind('#', 0) == 0) {
            cr_expect(heads.count(target.substr(1)), "link to a missing heading: %s",
                      target.c_str());
            continue;
        }
        std::string file = target.substr(0, target.find('#'));
        cr_expect(!starts_with_scheme(file) && file.rfind("//", 0) != 0 && file.rfind('/', 0) != 0,
                  "link outside the repository: %s", target.c_str());
        fs::path p = fs::path(file).lexically_normal();
        cr_expect(!p.empty() && p.string().rfind("..", 0) != 0,
                  "link climbing out of the repository: %s", target.c_str());
        cr_expect(fs::exists(p), "link to a file that is not in the repository: %s",
                  target.c_str());
    }
    // Autolinks and bare addresses render as links too.
    for (const std::string& link : bare_links(text))
        cr_expect(false, "bare link in the prose: %s", link.c_str());
    cr_expect(md.find("../") == std::string::npos, "the page names a path outside the repository");
}

Test(readme, every_route_and_method_is_in_the_reference) {
    auto rows = table_rows(readme());
    for (const duet::RouteSpec& r : duet::route_table()) {
        std::string doc =
            "`" + std::string(r.path) + (r.prefix ? std::string(r.placeholder) : "") + "`";
        std::string_view allow = r.allow;
        allow.remove_prefix(allow.find(' ') + 1);
        while (!allow.empty() && (allow.back() == '\n' || allow.back() == '\r'))
            allow.remove_suffix(1);
        std::vector<std::string> methods;
        for (std::size_t at = 0; at <= allow.size();) {
            std::size_t comma = allow.find(", ", at);
            if (comma == std::string_view::npos) comma = allow.size();
            methods.emplace_back(allow.substr(at, comma - at));
            at = comma + 2;
        }
        for (const std::string& m : methods) {
            // "*" takes OPTIONS only (RFC 9110 §9.3.7; Allow lists the server's methods).
            if (r.path == "*" && m != "OPTIONS") continue;
            bool found = false;
            for (auto& cells : rows) {
                if (cells.size() < 2 || !has_word(cells[1], m)) continue;
                if (cells[0].find(doc) != std::string::npos) found = true;
                if (m == "OPTIONS" && cells[0].find("any route") != std::string::npos) found = true;
            }
            cr_expect(found, "no route-table row for %s %s", m.c_str(), doc.c_str());
        }
    }
}

Test(readme, every_status_code_is_in_the_reference) {
    std::string md = readme();
    int count = 0;
    for (int code = 100; code < 600; ++code) {
        std::string reason = duet::reason_phrase(code);
        if (reason == "Unknown") continue;
        ++count;
        std::string row = "\n| " + std::to_string(code) + " | " + reason + " |";
        cr_expect(md.find(row) != std::string::npos, "no status-table row '%s'", row.c_str() + 1);
    }
    cr_assert_gt(count, 10, "the reason table looks empty");
}

Test(readme, every_file_port_command_and_err_code_is_in_the_reference) {
    std::string md = readme();
    auto rows = table_rows(md);
    for (const duet::VerbName& v : duet::verb_table()) {
        std::string name(v.name);
        bool documented = false;
        for (auto& cells : rows)
            if (!cells.empty() && cells[0].find("`" + name) != std::string::npos) documented = true;
        cr_expect(documented, "no command-table row for %s", name.c_str());
        bool in_help = false;
        for (const char* line : duet::kHelpLines)
            in_help = in_help || std::string(line).rfind(name + " ", 0) == 0 || line == name;
        cr_expect(in_help, "HELP does not list %s", name.c_str());
    }
    std::set<std::string> codes;
    for (const auto& e : fs::recursive_directory_iterator("src")) {
        std::string src = t::read_file(e.path().string());
        for (std::size_t at = src.find("\"ERR "); at != std::string::npos;
             at = src.find("\"ERR ", at + 1)) {
            std::string code = src.substr(at + 5, 3);
            if (code.size() == 3 && std::all_of(code.begin(), code.end(), ::isdigit))
                codes.insert(code);
        }
    }
    cr_assert_gt(codes.size(), 3u, "no ERR answers found in src/: is the pattern broken?");
    for (const std::string& c : codes)
        cr_expect(md.find("`ERR " + c) != std::string::npos, "ERR %s is not in the reference",
                  c.c_str());
}

// Both unit sets from the README: the socket units with the 252 service, and with the 253+ one
// the README describes as that service with `Type=notify-reload` and no `ExecReload=` line.
Test(readme, systemd_units_pass_systemd_analyze_verify) {
    int status = -1;
    std::string version = t::sh("systemd-analyze --version 2>/dev/null | head -1", &status);
    if (version.rfind("systemd ", 0) != 0)
        cr_skip_test("systemd-analyze is not installed (test/deps.sh installs systemd)");
    int have = std::atoi(version.c_str() + 8);
    std::string md = readme();
    std::vector<std::string> sockets[2] = {fenced_blocks(md, "ini unit=duet-http.socket"),
                                           fenced_blocks(md, "ini unit=duet-files.socket")};
    std::vector<std::string> service252 = fenced_blocks(md, "ini unit=duet.service systemd=252");
    cr_assert(sockets[0].size() == 1 && sockets[1].size() == 1, "want one block per socket unit");
    cr_assert(service252.size() == 1, "want one service block for systemd=252");
    cr_assert(md.find("replace `Type=notify` by `Type=notify-reload` and drop the `ExecReload=`") !=
                  std::string::npos,
              "the README no longer says how the 253+ unit differs");
    std::string service253 = service252[0];
    std::size_t type = service253.find("Type=notify\n");
    cr_assert(type != std::string::npos, "the 252 unit has no Type=notify line");
    service253.replace(type, 12, "Type=notify-reload\n");
    std::size_t reload = service253.find("ExecReload=");
    cr_assert(reload != std::string::npos, "the 252 unit has no ExecReload= line");
    service253.erase(reload, service253.find('\n', reload) + 1 - reload);
    // verify checks that ExecStart's program exists: point it at the binary we built.
    std::string bin = absolute("build/duet");
    for (int need : {252, 253}) {
        std::string dir = tmpdir() + "/" + std::to_string(need);
        fs::create_directories(dir);
        std::string service = need == 252 ? service252[0] : service253;
        std::string from = "/usr/local/bin/duet";
        cr_assert(service.find(from) != std::string::npos);
        service.replace(service.find(from), from.size(), bin);
        t::write_file(dir + "/duet.service", service);
        t::write_file(dir + "/duet-http.socket", sockets[0][0]);
        t::write_file(dir + "/duet-files.socket", sockets[1][0]);
        std::string out = t::sh("cd '" + dir +
                                    "' && systemd-analyze verify ./duet.service "
                                    "./duet-http.socket ./duet-files.socket 2>&1",
                                &status);
        cr_expect_eq(status, 0, "systemd %d unit: verify exited %d:\n%s", need, status,
                     out.c_str());
        if (have >= need) {
            cr_expect(out.empty(), "systemd %d unit: verify warned:\n%s", need, out.c_str());
            continue;
        }
        // An older systemd parses the unit but does not know Type=notify-reload: it warns and
        // exits 0. Only that warning may appear; then the rest of the unit is sound.
        std::string rest;
        std::size_t at = 0;
        while (at < out.size()) {
            std::size_t nl = out.find('\n', at);
            if (nl == std::string::npos) nl = out.size();
            std::string line = out.substr(at, nl - at);
            at = nl + 1;
            if (line.find("Failed to parse service type, ignoring: notify-reload") ==
                std::string::npos)
                rest += line + "\n";
        }
        cr_expect(rest.empty(), "systemd %d unit on systemd %d: unexpected warnings:\n%s", need,
                  have, rest.c_str());
        std::fprintf(stderr,
                     "note: systemd %d here: the systemd %d unit was checked for syntax only "
                     "(Type=notify-reload is unknown before 253)\n",
                     have, need);
    }
}
