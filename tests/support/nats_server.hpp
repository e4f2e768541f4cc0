#pragma once
// A private nats-server on a free loopback port for tests, stopped by its
// PID (SIGTERM) when the object goes.
#include "support/pg_server.hpp"
#include "support/process.hpp"

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

namespace parley::test {

struct nats_server {
    unsigned short port;
    std::unique_ptr<child_process> proc;

    explicit nats_server(unsigned short p = free_loopback_port()) : port{p} { start(); }
    void start() {
        proc = std::make_unique<child_process>(
            "/usr/sbin/nats-server", std::vector<std::string>{"-a", "127.0.0.1", "-p", std::to_string(port)});
        proc->wait_for_output("Server is ready", std::chrono::seconds{10});
    }
    void stop() {
        proc->signal(SIGTERM);
        proc->wait(std::chrono::seconds{10});
    }
    ~nats_server() {
        if (!proc->wait(std::chrono::milliseconds{0})) stop();
    }
    std::string url() const { return "nats://127.0.0.1:" + std::to_string(port); }
};

}  // namespace parley::test
