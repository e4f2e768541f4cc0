#include "persistence/usage_repository.hpp"

#include "domain/money.hpp"
#include "persistence/text_columns.hpp"

#include <soci/into.h>
#include <soci/session.h>
#include <soci/statement.h>
#include <soci/use.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

namespace parley::persistence {

namespace {

namespace chr = std::chrono;
using domain::nano_usd;

// ---- SQL -----------------------------------------------------------------
// Fragments are joined by the functions below; values are always bound.

constexpr std::string_view insert_usage_sql =
    "INSERT INTO ai_usage (request_id, user_id, session_id, conversation_id, input_tokens, output_tokens,"
    " cached_tokens, cost_usd, cost_source, model, generation_id, status, created_at)"
    " VALUES (:request_id, :user_id, :session_id, :conversation_id, :input_tokens, :output_tokens,"
    " :cached_tokens, :cost_usd, :cost_source, :model, :generation_id, :status, :created_at)"
    " ON CONFLICT (request_id) DO NOTHING";

constexpr std::string_view apply_correction_sql =
    "UPDATE ai_usage SET cost_usd = :cost_usd, cost_source = 'provider'"
    " WHERE request_id = :request_id AND cost_source = 'estimate'";

// created_at as "YYYY-MM-DDTHH:MM:SS.mmmZ": SQLite stores exactly that;
// PostgreSQL formats its timestamptz the same way, in UTC whatever the
// session's time zone.
constexpr std::string_view created_at_text_postgresql =
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";
constexpr std::string_view created_at_text_sqlite = "created_at";

// A row's cost in whole micro-dollars (exact: see the header), and sums of it.
constexpr std::string_view cost_micros_sql = "CAST(ROUND(cost_usd * 1000000) AS BIGINT)";
constexpr std::string_view sum_cost_micros_sql = "CAST(COALESCE(SUM(CAST(ROUND(cost_usd * 1000000) AS BIGINT)), 0) AS BIGINT)";

constexpr std::string_view find_usage_head =
    "SELECT request_id, user_id, session_id, conversation_id, input_tokens, output_tokens, cached_tokens, ";
constexpr std::string_view find_usage_middle = ", cost_source, model, generation_id, status, ";
constexpr std::string_view find_usage_tail = " FROM ai_usage WHERE request_id = :request_id";

constexpr std::string_view spend_since_head = "SELECT user_id, ";
constexpr std::string_view spend_since_tail = " FROM ai_usage WHERE created_at >= :since GROUP BY user_id";

constexpr std::string_view calls_since_head = "SELECT user_id, ";
constexpr std::string_view calls_since_where = " FROM ai_usage WHERE created_at >= :since AND user_id IS NOT NULL";
constexpr std::string_view calls_since_tail = " ORDER BY created_at, id";

constexpr std::string_view and_user_is = " AND user_id = :user";
constexpr std::string_view and_since = " AND created_at >= :since";
constexpr std::string_view and_until = " AND created_at < :until";

// usage_report's group keys.
constexpr std::string_view day_key_postgresql = "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
constexpr std::string_view day_key_sqlite = "substr(created_at, 1, 10)";
constexpr std::string_view model_key = "model";
constexpr std::string_view user_key = "COALESCE(user_id, '(none)')";
// Byte order on both (SQLite's BINARY is the default).
constexpr std::string_view byte_order_postgresql = " COLLATE \"C\"";

constexpr std::string_view report_sums =
    ", COUNT(*), CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT),"
    " CAST(COALESCE(SUM(cached_tokens), 0) AS BIGINT), ";
constexpr std::string_view report_from = " FROM ai_usage WHERE 1 = 1";

constexpr std::string_view estimates_to_correct_sql =
    "SELECT request_id, generation_id FROM ai_usage"
    " WHERE cost_source = 'estimate' AND generation_id IS NOT NULL AND generation_id <> ''"
    " ORDER BY created_at, id LIMIT CAST(:limit AS INTEGER)";

constexpr std::string_view count_usage_sql = "SELECT COUNT(*) FROM ai_usage";
constexpr std::string_view count_usage_of_user_sql = "SELECT COUNT(*) FROM ai_usage WHERE user_id = :user";

std::string_view created_at_text(dialect d) {
    return d == dialect::postgresql ? created_at_text_postgresql : created_at_text_sqlite;
}

template <class... Parts>
std::string join(Parts const&... parts) {
    std::string out;
    (out.append(parts), ...);
    return out;
}

// ---- values ----------------------------------------------------------------

long long fit_int_column(std::int64_t v) {
    return std::clamp<std::int64_t>(v, std::numeric_limits<std::int32_t>::min(), std::numeric_limits<std::int32_t>::max());
}

// numeric(10,6) holds less than 10'000 USD: keep the 6-decimal text inside it.
nano_usd fit_cost_column(nano_usd cost) {
    constexpr std::int64_t max_nanos = 9'999'999'999'000;
    return nano_usd{std::clamp<std::int64_t>(cost.nanos, -max_nanos, max_nanos)};
}

nano_usd micros_to_nanos(long long micros) { return nano_usd{micros * 1000}; }

// The bound values of one ai_usage row (soci::use keeps references).
struct usage_binding {
    std::string request_id, user_id, session_id, conversation_id, cost_usd, cost_source, model, generation_id,
        status, created_at;
    soci::indicator user_ind = soci::i_ok, conversation_ind = soci::i_ok, generation_ind = soci::i_ok;
    long long input_tokens = 0, output_tokens = 0, cached_tokens = 0;

    void assign(domain::usage_record const& r) {
        request_id = fit(r.request_id, domain::max_request_id_bytes);
        user_id = r.user_id ? fit(*r.user_id, domain::max_user_id_bytes) : std::string{};
        user_ind = r.user_id ? soci::i_ok : soci::i_null;
        session_id = fit(r.session_id, domain::max_session_id_bytes);
        conversation_id = fit(r.conversation_id, domain::max_conversation_id_bytes);
        conversation_ind = conversation_id.empty() ? soci::i_null : soci::i_ok;
        input_tokens = fit_int_column(r.input_tokens);
        output_tokens = fit_int_column(r.output_tokens);
        cached_tokens = fit_int_column(r.cached_tokens);
        cost_usd = domain::format_usd(fit_cost_column(r.cost));
        cost_source = domain::to_string(r.source);
        model = fit(r.model, domain::max_model_bytes);
        generation_id = fit(r.generation_id, domain::max_generation_id_bytes);
        generation_ind = generation_id.empty() ? soci::i_null : soci::i_ok;
        status = domain::to_string(r.status);
        created_at = iso_utc(r.created_at);
    }
};

// Digits at text[pos, pos + n) as a number, or -1.
int digits(std::string_view text, std::size_t pos, std::size_t n) {
    if (pos + n > text.size()) {
        return -1;
    }
    int v = 0;
    for (std::size_t i = pos; i != pos + n; ++i) {
        if (text[i] < '0' || text[i] > '9') {
            return -1;
        }
        v = v * 10 + (text[i] - '0');
    }
    return v;
}

chr::system_clock::time_point stored_time(std::string const& text) {
    // The database wrote this text itself; an unreadable one is a bug
    // elsewhere, and the epoch is an obviously wrong but harmless value.
    return parse_iso_utc(text).value_or(chr::system_clock::time_point{});
}

}  // namespace

std::string iso_utc(chr::system_clock::time_point t) {
    auto const ms = chr::floor<chr::milliseconds>(t);
    auto const day = chr::floor<chr::days>(ms);
    chr::year_month_day const ymd{day};
    chr::hh_mm_ss const hms{ms - day};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
    return buf;
}

std::optional<chr::system_clock::time_point> parse_iso_utc(std::string_view text) {
    int const y = digits(text, 0, 4), mo = digits(text, 5, 2), d = digits(text, 8, 2);
    if (y < 0 || mo < 0 || d < 0 || text[4] != '-' || text[7] != '-') {
        return std::nullopt;
    }
    chr::year_month_day const ymd{chr::year{y}, chr::month{static_cast<unsigned>(mo)}, chr::day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) {
        return std::nullopt;
    }
    chr::system_clock::time_point t = chr::sys_days{ymd};
    std::size_t pos = 10;
    if (pos < text.size() && (text[pos] == 'T' || text[pos] == ' ')) {
        int const h = digits(text, pos + 1, 2), mi = digits(text, pos + 4, 2), s = digits(text, pos + 7, 2);
        if (h < 0 || mi < 0 || s < 0 || text[pos + 3] != ':' || text[pos + 6] != ':' || h > 23 || mi > 59 || s > 59) {
            return std::nullopt;
        }
        t += chr::hours{h} + chr::minutes{mi} + chr::seconds{s};
        pos += 9;
        if (pos < text.size() && text[pos] == '.') {
            std::size_t const first = ++pos;
            int millis = 0;
            for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos) {
                if (pos - first < 3) {
                    millis = millis * 10 + (text[pos] - '0');
                }
            }
            std::size_t const n = pos - first;
            if (n == 0 || n > 9) {
                return std::nullopt;
            }
            for (std::size_t i = n; i < 3; ++i) {
                millis *= 10;
            }
            t += chr::milliseconds{millis};
        }
    }
    if (pos < text.size() && text[pos] == 'Z') {
        ++pos;
    }
    if (pos != text.size()) {
        return std::nullopt;
    }
    return t;
}

namespace {

constexpr std::size_t rows_per_insert = 64;  // 13 values each: 832 bound parameters a statement

// "INSERT ... VALUES (...), (...) ... ON CONFLICT (request_id) DO NOTHING"
// for `n` rows, each value bound by name as :v<row>_<column> (SQL bind parameters).
std::string multi_row_insert_sql(std::size_t n) {
    auto const head = insert_usage_sql.substr(0, insert_usage_sql.find(" VALUES"));
    std::string out{head};
    out += " VALUES ";
    for (std::size_t i = 0; i != n; ++i) {
        out += i == 0 ? "(" : ", (";
        for (int c = 0; c != 13; ++c) {
            out += c == 0 ? ":v" : ", :v";
            out += std::to_string(i);
            out += '_';
            out += std::to_string(c);
        }
        out += ')';
    }
    out += " ON CONFLICT (request_id) DO NOTHING";
    return out;
}

}  // namespace

// SQLite runs in-process: one prepared statement executed per row is its
// cheapest form (a multi-row statement costs more to prepare than it saves).
static std::size_t insert_row_by_row(soci::session& sql, std::span<domain::usage_record const> rows) {
    usage_binding b;
    soci::statement st =
        (sql.prepare << insert_usage_sql, soci::use(b.request_id, "request_id"),
         soci::use(b.user_id, b.user_ind, "user_id"), soci::use(b.session_id, "session_id"),
         soci::use(b.conversation_id, b.conversation_ind, "conversation_id"),
         soci::use(b.input_tokens, "input_tokens"), soci::use(b.output_tokens, "output_tokens"),
         soci::use(b.cached_tokens, "cached_tokens"), soci::use(b.cost_usd, "cost_usd"),
         soci::use(b.cost_source, "cost_source"), soci::use(b.model, "model"),
         soci::use(b.generation_id, b.generation_ind, "generation_id"), soci::use(b.status, "status"),
         soci::use(b.created_at, "created_at"));
    std::size_t inserted = 0;
    for (auto const& r : rows) {
        b.assign(r);
        st.execute(true);
        inserted += static_cast<std::size_t>(std::max(st.get_affected_rows(), 0LL));
    }
    return inserted;
}

std::size_t insert_usage(soci::session& sql, dialect d, std::span<domain::usage_record const> rows) {
    if (rows.empty()) {
        return 0;
    }
    write_transaction tr{sql, d};
    if (d == dialect::sqlite) {
        auto const inserted = insert_row_by_row(sql, rows);
        tr.commit();
        return inserted;
    }
    // PostgreSQL: one statement per rows_per_insert rows, all in one
    // transaction: a round trip per chunk instead of one per row.
    std::size_t inserted = 0;
    std::vector<usage_binding> bindings(std::min(rows.size(), rows_per_insert));
    for (std::size_t at = 0; at < rows.size(); at += rows_per_insert) {
        auto const n = std::min(rows_per_insert, rows.size() - at);
        soci::statement st{sql};
        st.alloc();
        st.prepare(multi_row_insert_sql(n));
        for (std::size_t i = 0; i != n; ++i) {
            auto& b = bindings[i];
            b.assign(rows[at + i]);
            st.exchange(soci::use(b.request_id));
            st.exchange(soci::use(b.user_id, b.user_ind));
            st.exchange(soci::use(b.session_id));
            st.exchange(soci::use(b.conversation_id, b.conversation_ind));
            st.exchange(soci::use(b.input_tokens));
            st.exchange(soci::use(b.output_tokens));
            st.exchange(soci::use(b.cached_tokens));
            st.exchange(soci::use(b.cost_usd));
            st.exchange(soci::use(b.cost_source));
            st.exchange(soci::use(b.model));
            st.exchange(soci::use(b.generation_id, b.generation_ind));
            st.exchange(soci::use(b.status));
            st.exchange(soci::use(b.created_at));
        }
        st.define_and_bind();
        st.execute(true);
        inserted += static_cast<std::size_t>(std::max(st.get_affected_rows(), 0LL));
    }
    tr.commit();
    return inserted;
}

std::size_t apply_corrections(soci::session& sql, dialect d, std::span<domain::cost_correction const> corrections) {
    if (corrections.empty()) {
        return 0;
    }
    write_transaction tr{sql, d};
    std::string cost, request_id;
    soci::statement st =
        (sql.prepare << apply_correction_sql, soci::use(cost, "cost_usd"), soci::use(request_id, "request_id"));
    std::size_t changed = 0;
    for (auto const& c : corrections) {
        cost = domain::format_usd(fit_cost_column(c.cost));
        request_id = fit(c.request_id, domain::max_request_id_bytes);
        st.execute(true);
        changed += static_cast<std::size_t>(std::max(st.get_affected_rows(), 0LL));
    }
    tr.commit();
    return changed;
}

std::optional<domain::usage_record> find_usage(soci::session& sql, dialect d, std::string_view request_id) {
    std::string const query =
        join(find_usage_head, cost_micros_sql, find_usage_middle, created_at_text(d), find_usage_tail);
    std::string key = fit(request_id, domain::max_request_id_bytes);
    std::string rid, user, session, conversation, source, model, generation, status, created;
    soci::indicator user_ind = soci::i_ok, conversation_ind = soci::i_ok, generation_ind = soci::i_ok;
    long long input = 0, output = 0, cached = 0, micros = 0;
    sql << query, soci::use(key, "request_id"), soci::into(rid), soci::into(user, user_ind), soci::into(session),
        soci::into(conversation, conversation_ind), soci::into(input), soci::into(output), soci::into(cached),
        soci::into(micros), soci::into(source), soci::into(model), soci::into(generation, generation_ind),
        soci::into(status), soci::into(created);
    if (!sql.got_data()) {
        return std::nullopt;
    }
    domain::usage_record r;
    r.request_id = std::move(rid);
    if (user_ind == soci::i_ok) {
        r.user_id = std::move(user);
    }
    r.session_id = std::move(session);
    if (conversation_ind == soci::i_ok) {
        r.conversation_id = std::move(conversation);
    }
    r.input_tokens = input;
    r.output_tokens = output;
    r.cached_tokens = cached;
    r.cost = micros_to_nanos(micros);
    r.source = domain::parse_cost_source(source).value_or(domain::cost_source::pricing);
    r.model = std::move(model);
    if (generation_ind == soci::i_ok) {
        r.generation_id = std::move(generation);
    }
    r.status = domain::parse_call_status(status).value_or(domain::call_status::error);
    r.created_at = stored_time(created);
    return r;
}

spend_totals spend_since(soci::session& sql, dialect, chr::system_clock::time_point since) {
    std::string const query = join(spend_since_head, sum_cost_micros_sql, spend_since_tail);
    std::string since_text = iso_utc(since);
    std::string user;
    soci::indicator user_ind = soci::i_ok;
    long long micros = 0;
    soci::statement st =
        (sql.prepare << query, soci::use(since_text, "since"), soci::into(user, user_ind), soci::into(micros));
    st.execute();
    spend_totals totals;
    while (st.fetch()) {
        totals.global += micros_to_nanos(micros);
        if (user_ind == soci::i_ok) {
            totals.per_user[user] += micros_to_nanos(micros);
        }
    }
    return totals;
}

std::vector<std::pair<std::string, chr::system_clock::time_point>> calls_since(
    soci::session& sql, dialect d, chr::system_clock::time_point since, std::optional<std::string> const& user) {
    std::string const query =
        join(calls_since_head, created_at_text(d), calls_since_where, user ? and_user_is : "", calls_since_tail);
    std::string since_text = iso_utc(since);
    std::string who = user.value_or("");
    std::string user_id, created;
    soci::statement st{sql};
    st.exchange(soci::use(since_text, "since"));
    if (user) {
        st.exchange(soci::use(who, "user"));
    }
    st.exchange(soci::into(user_id));
    st.exchange(soci::into(created));
    st.alloc();
    st.prepare(query);
    st.define_and_bind();
    st.execute();
    std::vector<std::pair<std::string, chr::system_clock::time_point>> out;
    while (st.fetch()) {
        out.emplace_back(user_id, stored_time(created));
    }
    return out;
}

std::vector<usage_row> usage_report(soci::session& sql, dialect d, usage_filter const& filter) {
    std::string_view key = model_key;
    switch (filter.by) {
    case usage_group::day: key = d == dialect::postgresql ? day_key_postgresql : day_key_sqlite; break;
    case usage_group::model: key = model_key; break;
    case usage_group::user: key = user_key; break;
    }
    std::string const query = join("SELECT ", key, report_sums, sum_cost_micros_sql, report_from,
                                   filter.since ? and_since : "", filter.until ? and_until : "",
                                   filter.user ? and_user_is : "", " GROUP BY ", key, " ORDER BY ", key,
                                   d == dialect::postgresql ? byte_order_postgresql : "");
    std::string since_text = filter.since ? iso_utc(*filter.since) : std::string{};
    std::string until_text = filter.until ? iso_utc(*filter.until) : std::string{};
    std::string who = filter.user.value_or("");
    usage_row row;
    long long requests = 0, input = 0, output = 0, cached = 0, micros = 0;
    soci::statement st{sql};
    if (filter.since) {
        st.exchange(soci::use(since_text, "since"));
    }
    if (filter.until) {
        st.exchange(soci::use(until_text, "until"));
    }
    if (filter.user) {
        st.exchange(soci::use(who, "user"));
    }
    st.exchange(soci::into(row.key));
    st.exchange(soci::into(requests));
    st.exchange(soci::into(input));
    st.exchange(soci::into(output));
    st.exchange(soci::into(cached));
    st.exchange(soci::into(micros));
    st.alloc();
    st.prepare(query);
    st.define_and_bind();
    st.execute();
    std::vector<usage_row> out;
    while (st.fetch()) {
        row.requests = requests;
        row.input_tokens = input;
        row.output_tokens = output;
        row.cached_tokens = cached;
        row.cost_micros = micros;
        out.push_back(row);
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> estimates_to_correct(soci::session& sql, dialect,
                                                                      std::size_t limit) {
    std::vector<std::pair<std::string, std::string>> out;
    if (limit == 0) {
        return out;
    }
    long long n = static_cast<long long>(std::min<std::size_t>(limit, std::numeric_limits<std::int32_t>::max()));
    std::string request_id, generation_id;
    soci::statement st = (sql.prepare << estimates_to_correct_sql, soci::use(n, "limit"), soci::into(request_id),
                          soci::into(generation_id));
    st.execute();
    while (st.fetch()) {
        out.emplace_back(request_id, generation_id);
    }
    return out;
}

std::int64_t count_usage(soci::session& sql, dialect, std::optional<std::string> const& user) {
    long long n = 0;
    if (user) {
        std::string who = *user;
        sql << count_usage_of_user_sql, soci::use(who, "user"), soci::into(n);
    } else {
        sql << count_usage_sql, soci::into(n);
    }
    return n;
}

}  // namespace parley::persistence
