// GET /v1/ws: the WebSocket front door (app/http_api.hpp has the contract).
#include "app/api_common.hpp"
#include "app/drain.hpp"
#include "app/frame_queue.hpp"
#include "app/http_api.hpp"
#include "app/metrics.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <spdlog/spdlog.h>

namespace parley::app {

namespace json = boost::json;
namespace http = net::http;

json::object error_frame(domain::language lang, std::string const& id, std::string const& code,
                         std::string_view text) {
    json::object o;
    o["type"] = "error";
    if (!id.empty()) {
        o["id"] = id;
    }
    o["code"] = code;
    o["message"] = domain::render(lang, text.empty() ? std::string_view{code} : text);
    return o;
}

void cancel_turn_soon(std::shared_ptr<actors::session> session, asio::any_io_executor ex) {
    auto cancel = [session]() -> task<void> {
        std::string const any_turn;  // (named: no temporaries in a co_await with GCC 12)
        co_await session->cancel(any_turn);
    };
    asio::co_spawn(ex, std::move(cancel), asio::detached);
}

std::optional<actors::turn_request> turn_of(json::object const& o) {
    actors::turn_request rq;
    auto const* id = o.if_contains("id");
    auto const* text = o.if_contains("text");
    if (!id || !id->is_string() || id->as_string().empty() || id->as_string().size() > 64 || !text ||
        !text->is_string()) {
        return std::nullopt;
    }
    rq.id = id->as_string();
    rq.text = text->as_string();
    if (auto const* c = o.if_contains("context"); c && !c->is_null()) {
        if (!c->is_object()) {
            return std::nullopt;
        }
        rq.context = c->as_object();
    }
    rq.stream = true;
    if (auto const* s = o.if_contains("stream"); s && !s->is_null()) {
        if (!s->is_bool()) {
            return std::nullopt;
        }
        rq.stream = s->as_bool();
    }
    return rq;
}

namespace {

constexpr std::uint16_t close_policy = 1008;
constexpr std::uint16_t close_going_away = 1001;
constexpr std::uint16_t close_too_slow = 1013;  // "try again later": the client did not read its frames

// What the reader, the writer and the session's sink share. `ws` and
// `alive` are touched on the connection's strand only.
struct ws_state {
    std::shared_ptr<frame_queue> queue;
    net::websocket_connection* ws = nullptr;
    bool alive = true;
    bool dropped = false;           // the connection was dropped (no close frame)
    bool draining = false;          // the server is shutting down: no new turns
    std::uint16_t close_code = 0;   // set: the writer closes with it once the queue is drained
    std::string close_reason;
    domain::language lang = domain::language::es;
    std::shared_ptr<actors::session> session;
};

std::string string_field(json::object const& o, std::string_view key) {
    auto const* v = o.if_contains(key);
    return v && v->is_string() ? std::string{v->as_string()} : std::string{};
}

task<void> write_loop(std::shared_ptr<ws_state> st) {
    for (;;) {
        auto f = co_await st->queue->pop();
        if (f.empty()) {
            break;  // closed and drained
        }
        if (st->close_code == close_too_slow) {
            continue;  // a client too slow to read gets no more frames, only the close
        }
        auto text = json::serialize(f);
        bool const ok = co_await st->ws->write(std::move(text));
        if (!ok) {
            st->ws->abort();  // the reader ends too
            break;
        }
    }
    if (st->close_code != 0 && !st->dropped) {
        co_await st->ws->close(st->close_code, st->close_reason);
        st->ws->abort();
    }
}

// Ends the connection after the frames queued so far (the writer closes it).
void end_with(ws_state& st, json::object last, std::uint16_t code, std::string reason) {
    st.queue->push(std::move(last));
    st.close_code = code;
    st.close_reason = std::move(reason);
    st.queue->close();
}

task<void> read_loop(std::shared_ptr<http_api const> api, net::request const& req, std::shared_ptr<ws_state> st) {
    auto ex = co_await asio::this_coro::executor;
    std::optional<domain::principal> from_header;
    auto const header = req[http::field::authorization];
    if (!header.empty()) {
        auto token = domain::bearer_token(std::string_view{header.data(), header.size()});
        if (token) {
            auto p = api->verified->authenticate(*token, api->auth, api->now_unix());
            if (p) {
                from_header = std::move(*p);
            }
        }
        if (!from_header) {
            end_with(*st, error_frame(st->lang, "", "unauthorized"), close_policy, "unauthorized");
            co_return;
        }
    }

    // The hello, within the timeout: a watchdog ends the connection (the
    // writer closes it, which ends the pending read).
    auto hello_timer = std::make_shared<asio::steady_timer>(ex, api->hello_timeout);
    auto hello_seen = std::make_shared<bool>(false);
    auto watchdog = [hello_timer, hello_seen, st]() -> task<void> {
        auto [ec] = co_await hello_timer->async_wait(use_nothrow);
        if (!ec && !*hello_seen) {
            end_with(*st, error_frame(st->lang, "", "unauthorized"), close_policy, "no hello in time");
        }
    };
    asio::co_spawn(ex, std::move(watchdog), asio::detached);
    auto first_text = co_await st->ws->read();
    *hello_seen = true;
    hello_timer->cancel();
    if (!first_text || st->close_code != 0) {
        st->queue->close();
        co_return;  // gone (or timed out) before saying hello
    }
    boost::system::error_code jec;
    auto hello_value = json::parse(*first_text, jec);
    if (jec || !hello_value.is_object() || string_field(hello_value.as_object(), "type") != "hello") {
        end_with(*st, error_frame(st->lang, "", "unauthorized"), close_policy, "the first frame must be hello");
        co_return;
    }
    auto const& hello = hello_value.as_object();
    std::optional<domain::principal> who = from_header;
    if (auto const token = string_field(hello, "token"); !token.empty()) {
        auto p = api->verified->authenticate(token, api->auth, api->now_unix());
        if (!p) {
            end_with(*st, error_frame(st->lang, "", "unauthorized"), close_policy, "unauthorized");
            co_return;
        }
        who = std::move(*p);
    }
    if (!who) {
        end_with(*st, error_frame(st->lang, "", "unauthorized"), close_policy, "unauthorized");
        co_return;
    }
    st->lang = who->lang.value_or(api->default_language);
    if (auto const l = domain::parse_language(string_field(hello, "language"))) {
        st->lang = *l;
    }
    actors::session_options so;
    so.user.id = who->user_id;
    so.user.name = who->name;
    so.user.permissions = who->permissions;
    so.lang = st->lang;
    if (auto const c = string_field(hello, "conversation_id"); !c.empty()) {
        so.resume = c.substr(0, 64);
    }
    auto conn_ex = ex;
    so.sink = [st, conn_ex](json::object f) {
        st->queue->push(std::move(f));
        if (st->queue->overflowed()) {
            // A client that does not read: its waiting frames are dropped
            // and the connection closed with 1013 (on its strand; the
            // reader's end cancels the turn). A close frame that cannot be
            // sent either (the client reads nothing) ends in a drop.
            asio::post(conn_ex, [st, conn_ex] {
                if (!st->alive || st->dropped || st->close_code != 0) {
                    return;
                }
                spdlog::warn("websocket: a client too slow to read is disconnected (1013)");
                st->queue->discard();
                st->close_code = close_too_slow;
                st->close_reason = "too slow: frames were not read in time";
                st->queue->close();
                if (st->session) {
                    cancel_turn_soon(st->session, conn_ex);
                }
                auto timer = std::make_shared<asio::steady_timer>(conn_ex, std::chrono::seconds{2});
                timer->async_wait([st, timer](boost::system::error_code ec) {
                    if (!ec && st->alive && !st->dropped) {
                        st->dropped = true;
                        st->ws->abort();
                    }
                });
            });
        }
    };
    auto opened = co_await actors::open_session(ex, api->assistant, std::move(so));
    if (!opened.session) {
        end_with(*st, error_frame(st->lang, "", opened.error_code), close_policy, opened.error_code);
        co_return;
    }
    st->session = opened.session;
    // Graceful shutdown: on drain, no new turns, and the connection closes
    // with 1001 once the turn in flight is over; at the grace period's end
    // that turn is cancelled (and recorded).
    std::shared_ptr<drain::ticket> ticket;
    if (api->drain) {
        auto on_drain = [st, conn_ex] {
            // (Runs on the connection's strand, where st is touched.)
            auto closer = [st]() -> task<void> {
                st->draining = true;
                auto session = st->session;
                co_await session->idle();
                if (st->close_code == 0) {
                    st->close_code = close_going_away;
                    st->close_reason = "server shutting down";
                    st->queue->close();
                }
            };
            asio::co_spawn(conn_ex, std::move(closer), asio::detached);
        };
        auto on_cancel = [st, conn_ex] { cancel_turn_soon(st->session, conn_ex); };
        ticket = api->drain->enter(std::move(on_drain), std::move(on_cancel));
        if (!ticket) {
            co_await st->session->shutdown(false);
            end_with(*st, error_frame(st->lang, "", "shutting_down"), close_going_away, "server shutting down");
            co_return;
        }
    }
    session_gauge gauge(api->stats);
    auto info = co_await st->session->info();
    if (info) {
        st->queue->push(actors::ready_frame(*info));
    }

    for (;;) {
        auto text = co_await st->ws->read();
        if (!text) {
            break;
        }
        boost::system::error_code ec;
        auto v = json::parse(*text, ec);
        if (ec || !v.is_object()) {
            st->queue->push(error_frame(st->lang, "", "bad_request"));
            continue;
        }
        auto const& o = v.as_object();
        auto const type = string_field(o, "type");
        auto const id = string_field(o, "id").substr(0, 64);
        if (type == "message" && st->draining) {
            st->queue->push(error_frame(st->lang, id, "shutting_down"));
        } else if (type == "message") {
            auto rq = turn_of(o);
            if (!rq) {
                st->queue->push(error_frame(st->lang, id, "bad_request"));
                continue;
            }
            co_await st->session->send(std::move(*rq));
        } else if (type == "cancel") {
            co_await st->session->cancel(id);
        } else if (type == "language") {
            auto const l = domain::parse_language(string_field(o, "language"));
            if (!l) {
                st->queue->push(error_frame(st->lang, id, "bad_request"));
                continue;
            }
            st->lang = *l;
            co_await st->session->set_language(*l);
        } else if (type == "ping") {
            json::object pong;
            pong["type"] = "pong";
            st->queue->push(std::move(pong));
        } else {
            st->queue->push(error_frame(st->lang, id, "bad_request"));
        }
    }
    // The connection is gone: the turn in flight is cancelled and recorded.
    co_await st->session->shutdown(true);
    st->queue->close();
}

}  // namespace

task<void> serve_websocket(std::shared_ptr<http_api const> api, net::request const& req,
                           net::websocket_connection& ws) {
    auto ex = co_await asio::this_coro::executor;
    auto st = std::make_shared<ws_state>();
    st->queue = std::make_shared<frame_queue>(ex, api->max_pending_frames);
    st->ws = &ws;
    st->lang = api->default_language;
    using namespace asio::experimental::awaitable_operators;
    auto reader = read_loop(api, req, st);
    auto writer = write_loop(st);
    co_await (std::move(reader) && std::move(writer));
    st->alive = false;
}

}  // namespace parley::app
