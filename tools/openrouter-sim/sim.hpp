#pragma once
// The OpenRouter simulator as an object: an http_server whose handler speaks
// OpenRouter's chat completions API (openrouter-api.md) plus test controls.
// main.cpp only parses options, runs the io_context and handles signals.
#include "net/asio.hpp"
#include "options.hpp"

#include <memory>
#include <string>

namespace parley::sim {

class simulator {
public:
    // Throws std::runtime_error (one line) when the TLS files cannot be loaded.
    simulator(asio::any_io_executor ex, options opts);
    ~simulator();
    simulator(simulator const&) = delete;
    simulator& operator=(simulator const&) = delete;

    // Binds and listens; throws boost::system::system_error.
    void start();
    // Stops accepting and closes open connections.
    void stop();
    unsigned short port() const;
    // http(s)://host:port
    std::string url() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace parley::sim
