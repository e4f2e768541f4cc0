#include "app/logging.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>

namespace parley::app {
namespace {

// UTC, millisecond precision: 2026-11-25T15:32:42.123Z
void append_time(spdlog::log_clock::time_point tp, spdlog::memory_buf_t& dest) {
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(tp);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp - secs).count();
    std::time_t t = spdlog::log_clock::to_time_t(tp);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    dest.append(buf, buf + n);
    fmt::format_to(std::back_inserter(dest), ".{:03}Z", ms);
}

std::string_view level_name(spdlog::level::level_enum l) {
    auto const& sv = spdlog::level::to_string_view(l);
    return {sv.data(), sv.size()};
}

class json_formatter final : public spdlog::formatter {
public:
    void format(spdlog::details::log_msg const& msg, spdlog::memory_buf_t& dest) override {
        dest.append(std::string_view{"{\"ts\":\""});
        append_time(msg.time, dest);
        dest.append(std::string_view{"\",\"level\":"});
        append_json_string(level_name(msg.level), dest);
        dest.append(std::string_view{",\"msg\":"});
        append_json_string({msg.payload.data(), msg.payload.size()}, dest);
        dest.append(std::string_view{"}\n"});
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<json_formatter>(); }

private:
    static void append_json_string(std::string_view s, spdlog::memory_buf_t& dest) {
        auto quoted = boost::json::serialize(boost::json::string_view{s.data(), s.size()});
        dest.append(quoted.data(), quoted.data() + quoted.size());
    }
};

class text_formatter final : public spdlog::formatter {
public:
    void format(spdlog::details::log_msg const& msg, spdlog::memory_buf_t& dest) override {
        append_time(msg.time, dest);
        dest.push_back(' ');
        auto level = level_name(msg.level);
        dest.append(level.data(), level.data() + level.size());
        dest.push_back(' ');
        dest.append(msg.payload.data(), msg.payload.data() + msg.payload.size());
        dest.push_back('\n');
    }
    std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<text_formatter>(); }
};

}  // namespace

void setup_logging(domain::log_format format, std::string_view level) {
    auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    if (format == domain::log_format::json) sink->set_formatter(std::make_unique<json_formatter>());
    else sink->set_formatter(std::make_unique<text_formatter>());
    auto logger = std::make_shared<spdlog::logger>("parley", std::move(sink));
    logger->set_level(spdlog::level::from_str(std::string{level}));
    logger->flush_on(spdlog::level::trace);  // one line per event, visible at once
    spdlog::set_default_logger(std::move(logger));
}

void use_stderr_logging(domain::log_level level) {
    auto logger = std::make_shared<spdlog::logger>("parley", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_level(level == domain::log_level::trace   ? spdlog::level::trace
                      : level == domain::log_level::debug ? spdlog::level::debug
                                                          : spdlog::level::warn);
    spdlog::set_default_logger(std::move(logger));
}

}  // namespace parley::app
