// A test helper for the crash test: makes N real upstream calls through the
// whole accounting stack (admission, the call to the simulator, the usage
// row in the write-ahead log), prints "recorded N <cost>...", then waits to
// be killed. Configured like parley, from the environment (a long
// PARLEY_USAGE_FLUSH_INTERVAL_MS keeps the rows in the log only).
//   usage_crash_helper N USER
#include "actors/accountant.hpp"
#include "actors/openrouter_client.hpp"
#include "app/accounting.hpp"
#include "domain/claude_format.hpp"
#include "domain/config.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdlib>
#include <iostream>
#include <string>

using namespace parley;

namespace {

task<void> calls(domain::settings s, std::shared_ptr<actors::openrouter_client> client, int n, std::string user) {
    auto stack = co_await app::start_accounting(s, client, user);
    actors::call_identity who;
    who.user_id = user;
    who.session_id = "crash-helper";
    std::string costs;
    for (int i = 0; i != n; ++i) {
        domain::request_options ro;
        ro.model = s.ai.model;
        ro.max_tokens = 50;
        ro.stream = i % 2 == 1;
        domain::message m;
        m.content = "call " + std::to_string(i);
        std::vector<domain::message> history;  // no braced list in a coroutine: GCC 12 rejects it
        history.push_back(std::move(m));
        auto call = actors::make_chat_call(history, ro);
        auto const bytes = call.body.size();
        std::vector<std::string> models;
        models.push_back(s.ai.model);
        auto const worst = stack.accountant->worst_case(bytes, models, 50);
        auto adm = co_await stack.accountant->admit(who, worst);
        if (!adm || !adm->admitted) {
            std::cout << "refused" << std::endl;
            co_return;
        }
        auto r = co_await client->complete(std::move(call));
        auto row = co_await stack.accountant->record(who, *adm, s.ai.model, bytes, r);
        if (!row) {
            std::cout << "not recorded" << std::endl;
            co_return;
        }
        costs += " " + domain::format_usd(row->cost);
    }
    std::cout << "recorded " << n << costs << std::endl;
    asio::steady_timer forever{co_await asio::this_coro::executor, std::chrono::hours{1}};
    co_await forever.async_wait(asio::use_awaitable);  // until SIGKILL
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: usage_crash_helper N USER\n";
        return 2;
    }
    int const n = std::atoi(argv[1]);
    std::string const user = argv[2];
    auto loaded = domain::load_settings("", [](std::string_view name) -> std::optional<std::string> {
        if (char const* v = std::getenv(std::string{name}.c_str())) return std::string{v};
        return std::nullopt;
    }, {});
    if (!loaded) {
        std::cerr << loaded.error().message() << "\n";
        return 2;
    }
    auto const s = *loaded;
    asio::io_context ioc{1};
    auto client = std::make_shared<actors::openrouter_client>(ioc.get_executor(), actors::openrouter_options::from(s));
    asio::co_spawn(ioc, calls(s, client, n, user), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    ioc.run();
    return 0;
}
