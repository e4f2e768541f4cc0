#include "app/assistant.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace parley::app {

namespace {

std::optional<std::string> read_file(std::filesystem::path const& p) {
    std::ifstream in{p, std::ios::binary};
    if (!in) {
        return std::nullopt;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The file's text, or the built-in copy when `path` is the default and missing.
std::string conf_text(std::string const& setting, std::string const& path, std::string_view default_path) {
    if (auto text = read_file(path)) {
        return std::move(*text);
    }
    if (path == default_path) {
        if (auto built_in = embedded_conf(default_path)) {
            return std::string{*built_in};
        }
    }
    throw startup_error("cannot read " + setting + " file " + path);
}

}  // namespace

assistant_files load_assistant_files(domain::settings const& s) {
    domain::settings const defaults;
    assistant_files f;
    for (auto lang : {domain::language::es, domain::language::en}) {
        auto const name = "system." + std::string(domain::to_string(lang)) + ".txt";
        auto const path = (std::filesystem::path{s.assistant.prompts_dir} / name).string();
        auto const default_path = (std::filesystem::path{defaults.assistant.prompts_dir} / name).string();
        auto const text = conf_text("assistant.prompts_dir", path, default_path);
        auto t = domain::prompt_template::parse(text);
        if (!t) {
            throw startup_error("invalid prompt template " + path + ": " + t.error());
        }
        (lang == domain::language::es ? f.prompts.es : f.prompts.en) = std::move(*t);
    }
    if (!s.tools.file.empty()) {
        auto r = domain::tool_registry::parse(conf_text("tools.file", s.tools.file, defaults.tools.file));
        if (!r) {
            throw startup_error("invalid tools.file " + s.tools.file + ": " + r.error());
        }
        f.tools = std::move(*r);
    }
    if (!s.assistant.fallbacks_file.empty()) {
        auto r = domain::fallback_catalog::parse(
            conf_text("assistant.fallbacks_file", s.assistant.fallbacks_file, defaults.assistant.fallbacks_file));
        if (!r) {
            throw startup_error("invalid assistant.fallbacks_file " + s.assistant.fallbacks_file + ": " + r.error());
        }
        f.fallbacks = std::move(*r);
    }
    return f;
}

assistant_stack start_assistant(asio::any_io_executor ex, domain::settings const& s, assistant_files files,
                                std::shared_ptr<actors::openrouter_client> client, accounting_stack const& accounting,
                                std::shared_ptr<net::nats_bus> bus) {
    auto cfg = std::make_shared<actors::assistant_config>();
    cfg->request.model = s.ai.model;
    cfg->request.fallback_models = s.ai.fallback_models;
    cfg->request.max_tokens = s.ai.max_tokens;
    cfg->request.temperature = s.ai.temperature;
    cfg->max_rounds = s.tools.max_rounds;
    cfg->max_calls_per_round = static_cast<std::size_t>(s.tools.max_calls_per_round);
    cfg->history_tokens = s.assistant.history_tokens;
    cfg->max_message_chars = s.assistant.max_message_chars;
    cfg->max_context_bytes = s.assistant.max_context_bytes;
    cfg->prompts = std::move(files.prompts);
    cfg->fallbacks = std::move(files.fallbacks);

    assistant_stack a;
    a.services.client = std::move(client);
    a.services.accountant = accounting.accountant;
    a.services.circuit = actors::spawn<actors::circuit>(
        ex, domain::circuit_options{.failure_threshold = s.circuit.failure_threshold, .open_for = s.circuit.open_for});
    if (!files.tools.all().empty()) {
        actors::tool_runner_services ts;
        ts.limiter = accounting.limiter;
        ts.db = accounting.db;
        ts.bus = std::move(bus);
        a.services.tools = std::make_shared<actors::tool_runner>(
            ex, std::make_shared<domain::tool_registry const>(std::move(files.tools)), std::move(ts));
    }
    if (accounting.db) {
        a.services.store = std::make_shared<actors::conversation_store>(accounting.db);
    }
    a.services.config = std::move(cfg);
    return a;
}

task<void> assistant_stack::shutdown() {
    if (services.circuit) {
        co_await services.circuit->stop();
    }
}

}  // namespace parley::app
