#include "app/nats_front.hpp"

#include "app/api_common.hpp"
#include "app/drain.hpp"
#include "app/frame_queue.hpp"
#include "app/metrics.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

namespace parley::app {

namespace json = boost::json;

namespace {

struct request_context {
    std::shared_ptr<http_api const> api;
    std::shared_ptr<net::nats_bus> bus;
    std::shared_ptr<nats_front_counters> counters;
    nats_front_options options;
    net::nats_message message;

    void reply(json::object const& frame) {
        if (bus->publish(message.reply, json::serialize(frame))) {
            ++counters->frames_out;
        }
    }
};

// The request's language field, when it is a valid one.
std::optional<domain::language> language_of(json::object const& o) {
    auto const* l = o.if_contains("language");
    if (!l || !l->is_string()) {
        return std::nullopt;
    }
    return domain::parse_language(l->as_string());
}

task<void> serve_request(std::shared_ptr<request_context> rc) {
    auto const& api = rc->api;
    auto& counters = *rc->counters;
    if (rc->message.reply.empty()) {
        ++counters.no_reply;
        spdlog::warn("NATS: a request on {} without a reply subject was dropped", rc->message.subject);
        co_return;
    }
    boost::system::error_code ec;
    auto v = json::parse(rc->message.data, ec);
    if (ec || !v.is_object()) {
        ++counters.bad_request;
        rc->reply(error_frame(api->default_language, "", "bad_request"));
        co_return;
    }
    auto& o = v.as_object();
    auto const asked = language_of(o);
    std::string const given_id = o.contains("id") && o.at("id").is_string()
                                     ? std::string{o.at("id").as_string().subview().substr(0, 64)}
                                     : std::string{};
    std::optional<domain::principal> who;
    if (auto const* t = o.if_contains("token"); t && t->is_string()) {
        auto p = api->verified->authenticate(t->as_string(), api->auth, api->now_unix());
        if (p) {
            who = std::move(*p);
        }
    }
    if (!who) {
        ++counters.unauthorized;
        spdlog::warn("NATS: a request on {} with a missing or invalid token was refused", rc->message.subject);
        rc->reply(error_frame(asked.value_or(api->default_language), given_id, "unauthorized"));
        co_return;
    }
    auto const lang = asked.value_or(who->lang.value_or(api->default_language));
    if (!o.contains("id")) {
        o["id"] = "n1";
    }
    auto rq = turn_of(o);
    std::optional<std::string> resume;
    if (auto const* c = o.if_contains("conversation_id"); c && !c->is_null()) {
        if (!c->is_string() || c->as_string().empty() || c->as_string().size() > 64) {
            rq.reset();
        } else {
            resume = std::string{c->as_string()};
        }
    }
    if (!rq) {
        ++counters.bad_request;
        rc->reply(error_frame(lang, given_id, "bad_request"));
        co_return;
    }

    auto executor = co_await asio::this_coro::executor;
    auto queue = std::make_shared<frame_queue>(executor, api->max_pending_frames);
    actors::session_options so;
    so.user.id = who->user_id;
    so.user.name = who->name;
    so.user.permissions = who->permissions;
    so.lang = lang;
    so.resume = resume;
    so.sink = [queue](json::object f) { queue->push(std::move(f)); };
    auto opened = co_await actors::open_session(executor, api->assistant, std::move(so));
    if (!opened.session) {
        rc->reply(error_frame(lang, rq->id, opened.error_code));
        co_return;
    }
    auto session = opened.session;
    // Graceful shutdown lets the turn finish within the grace period, then
    // cancels it; so does the request's own time limit.
    auto cancel_turn = [session, executor] { cancel_turn_soon(session, executor); };
    std::shared_ptr<drain::ticket> ticket;
    if (api->drain) {
        std::function<void()> const no_drain_step;
        ticket = api->drain->enter(no_drain_step, cancel_turn);
        if (!ticket) {
            co_await session->shutdown(false);
            rc->reply(error_frame(lang, rq->id, "shutting_down"));
            co_return;
        }
    }
    ++counters.requests;
    session_gauge gauge(api->stats);
    auto limit = std::make_shared<asio::steady_timer>(executor, rc->options.request_timeout);
    limit->async_wait([cancel_turn](boost::system::error_code e) {
        if (!e) {
            cancel_turn();
        }
    });
    auto info = co_await session->info();
    co_await session->send(std::move(*rq));
    for (;;) {
        auto f = co_await queue->pop();
        auto const type = std::string{f.at("type").as_string()};
        bool const final = type == "done" || type == "error";
        if (final && info) {
            // No `ready` frame on NATS: the last frame says which
            // conversation the turn joined (to resume it).
            f["conversation_id"] = info->conversation_id;
        }
        rc->reply(f);
        if (final) {
            break;
        }
    }
    limit->cancel();
    co_await session->shutdown(false);
}

}  // namespace

std::shared_ptr<nats_front_counters> start_nats_front(asio::any_io_executor ex, std::shared_ptr<http_api const> api,
                                                      std::shared_ptr<net::nats_bus> bus,
                                                      nats_front_options options) {
    auto counters = std::make_shared<nats_front_counters>();
    auto const subject = options.subject;
    auto const queue = options.queue_group;
    std::weak_ptr<net::nats_bus> weak = bus;
    bus->queue_subscribe(subject, queue, [ex, api, weak, counters, options](net::nats_message m) {
        auto bus = weak.lock();
        if (!bus) {
            return;  // LCOV_EXCL_LINE: the bus closes its subscriptions before it goes
        }
        auto rc = std::make_shared<request_context>();
        rc->api = api;
        rc->bus = std::move(bus);
        rc->counters = counters;
        rc->options = options;
        rc->message = std::move(m);
        // Each request on a strand of its own: requests run in parallel.
        asio::co_spawn(net::make_strand(ex), serve_request(std::move(rc)), asio::detached);
    });
    spdlog::info("NATS: serving chat requests on {} (queue group {})", subject, queue);
    return counters;
}

}  // namespace parley::app
