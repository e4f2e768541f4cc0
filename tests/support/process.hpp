#pragma once
// Starts a real child process for integration tests, with its output in a
// file, and stops it by its PID only (never by name).
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <string_view>
#include <vector>

extern char** environ;

namespace parley::test {

inline std::string read_file(std::filesystem::path const& p) {
    std::ifstream in{p, std::ios::binary};
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

inline void write_file(std::filesystem::path const& p, std::string_view text) {
    std::ofstream out{p, std::ios::binary | std::ios::trunc};
    out << text;
}

inline std::filesystem::path bin_path(std::string const& name) {
    return std::filesystem::path{PARLEY_BIN_DIR} / name;
}

inline std::filesystem::path source_path(std::string const& rel) {
    return std::filesystem::path{PARLEY_SOURCE_DIR} / rel;
}

// A scratch directory removed at scope exit.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "parley-test-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(temp_dir const&) = delete;
    temp_dir& operator=(temp_dir const&) = delete;
};

class child_process {
public:
    // env: variables set (or, with an empty optional, removed) on top of ours.
    child_process(std::filesystem::path exe, std::vector<std::string> args,
                  std::map<std::string, std::optional<std::string>> env = {})
        : output_{std::filesystem::temp_directory_path() /
                  ("parley-child-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++) + ".log")} {
        std::vector<std::string> argv_s{exe.string()};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_s) argv.push_back(a.data());
        argv.push_back(nullptr);

        std::map<std::string, std::string> merged;
        for (char** e = environ; *e; ++e) {
            std::string kv{*e};
            auto eq = kv.find('=');
            if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
        for (auto& [k, v] : env) {
            if (v) merged[k] = *v;
            else merged.erase(k);
        }
        std::vector<std::string> env_s;
        for (auto& [k, v] : merged) env_s.push_back(k + "=" + v);
        std::vector<char*> envp;
        for (auto& e : env_s) envp.push_back(e.data());
        envp.push_back(nullptr);

        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, output_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        int rc = posix_spawn(&pid_, exe.c_str(), &fa, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) throw std::runtime_error("posix_spawn " + exe.string() + ": " + std::strerror(rc));
    }

    ~child_process() {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);
            wait();
        }
        std::error_code ec;
        std::filesystem::remove(output_, ec);
    }
    child_process(child_process const&) = delete;
    child_process& operator=(child_process const&) = delete;

    pid_t pid() const { return pid_; }
    std::string output() const { return read_file(output_); }

    // Waits until the output matches `pattern`; returns the first capture group
    // (or the whole match). Fails the test on timeout or early exit.
    std::string wait_for_output(std::string const& pattern,
                                std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
        std::regex re{pattern};
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            std::smatch m;
            std::string out = output();
            if (std::regex_search(out, m, re)) return m.size() > 1 ? m[1].str() : m[0].str();
            if (poll_exit()) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        BOOST_FAIL("process " << pid_ << " did not print /" << pattern << "/; output:\n" << output());
        return {};
    }

    void signal(int sig) { ::kill(pid_, sig); }

    // Exit code (or 128+signal); nullopt when still running after timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!poll_exit()) {
            if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return status_;
    }

private:
    bool poll_exit() {
        if (status_) return true;
        int st = 0;
        pid_t r = ::waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return true;
        }
        return false;
    }
    static int& counter() {
        static int n = 0;
        return n;
    }

    std::filesystem::path output_;
    pid_t pid_ = -1;
    std::optional<int> status_;
};

}  // namespace parley::test
