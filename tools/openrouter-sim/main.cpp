// openrouter-sim: parses options, runs the simulator, stops on SIGINT/SIGTERM.
#include "options.hpp"
#include "sim.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/system/system_error.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <span>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
    using namespace parley;
    auto parsed = sim::parse_options(std::span<char const* const>{argv + 1, static_cast<std::size_t>(argc > 0 ? argc - 1 : 0)});
    if (!parsed.opts) {
        std::cerr << "openrouter-sim: " << parsed.error << '\n';
        return 2;
    }
    auto opts = std::move(*parsed.opts);
    if (opts.help) {
        std::cout << sim::usage_text();
        return 0;
    }
    // stdout carries only the "listening" line; diagnostics go to stderr.
    spdlog::set_default_logger(spdlog::stderr_color_mt("openrouter-sim"));

    asio::io_context ioc{static_cast<int>(opts.threads)};
    std::unique_ptr<sim::simulator> simulator;
    try {
        simulator = std::make_unique<sim::simulator>(ioc.get_executor(), opts);
    } catch (std::exception const& e) {
        std::cerr << "openrouter-sim: " << e.what() << '\n';
        return 2;
    }
    try {
        simulator->start();
    } catch (boost::system::system_error const& e) {
        std::cerr << "openrouter-sim: cannot listen on " << opts.host << ":" << opts.port << ": " << e.code().message()
                  << '\n';
        return 1;
    }

    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    signals.async_wait([&](boost::system::error_code ec, int) {
        if (ec) return;
        simulator->stop();
        ioc.stop();
    });

    std::cout << "openrouter-sim listening on " << simulator->url() << std::endl;

    std::vector<std::thread> threads;
    for (std::uint32_t i = 1; i < opts.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
    for (auto& t : threads) t.join();
    // In-flight answers are dropped with the io_context; the simulator object
    // goes first (its frames hold only shared state).
    simulator.reset();
    return 0;
}
