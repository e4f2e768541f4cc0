#pragma once
// A private PostgreSQL server for tests that stop and start the database
// (outages): its own cluster in a temporary directory, on a free loopback
// port, started and stopped with pg_ctl by its data directory (never by
// name). Run as root (CI), the server runs as the `postgres` user.
#include "support/process.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace parley::test {

inline unsigned short free_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        if (fd >= 0) ::close(fd);
        throw std::runtime_error("no free loopback port");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

class pg_server {
public:
    pg_server() : port_{free_loopback_port()} {
        for (auto const& e : std::filesystem::directory_iterator{"/usr/lib/postgresql"}) {
            if (std::filesystem::exists(e.path() / "bin" / "initdb") && e.path() / "bin" > bin_) bin_ = e.path() / "bin";
        }
        if (bin_.empty()) throw std::runtime_error("PostgreSQL's initdb not found under /usr/lib/postgresql");
        std::filesystem::permissions(dir_.path, std::filesystem::perms::all);
        if (::getuid() == 0) run("chown postgres " + dir_.path.string());
        run(as_owner() + bin_.string() + "/initdb -D " + data() + " -A trust -U postgres --no-sync >" +
            dir_.path.string() + "/initdb.out 2>&1");
        start();
        run(as_owner() + bin_.string() + "/createdb -h 127.0.0.1 -p " + std::to_string(port_) + " -U postgres parley");
    }
    ~pg_server() {
        std::system((as_owner() + bin_.string() + "/pg_ctl -D " + data() + " -m immediate -w stop >/dev/null 2>&1").c_str());
    }
    pg_server(pg_server const&) = delete;
    pg_server& operator=(pg_server const&) = delete;

    void start() {
        run(as_owner() + bin_.string() + "/pg_ctl -D " + data() + " -l " + dir_.path.string() + "/server.out -w -o \"-p " +
            std::to_string(port_) + " -k " + dir_.path.string() +
            " -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null");
    }
    // A fast shutdown: connections are closed, the port stops answering.
    void stop() { run(as_owner() + bin_.string() + "/pg_ctl -D " + data() + " -m fast -w stop >/dev/null"); }

    std::string url() const { return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/parley"; }
    unsigned short port() const { return port_; }

private:
    std::string data() const { return (dir_.path / "data").string(); }
    static std::string as_owner() { return ::getuid() == 0 ? "runuser -u postgres -- " : ""; }
    static void run(std::string const& cmd) {
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
    }

    temp_dir dir_;
    unsigned short port_;
    std::filesystem::path bin_;
};

}  // namespace parley::test
