#include "domain/tools.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace json = boost::json;
using namespace parley::domain;
using namespace std::chrono_literals;

namespace {

std::string read_file(std::string const& path) {
    std::ifstream in{path, std::ios::binary};
    BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
    return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

tool_registry parse_ok(std::string_view text) {
    auto r = tool_registry::parse(text);
    BOOST_REQUIRE_MESSAGE(r.has_value(), "registry refused: " << (r ? std::string{} : r.error()));
    return *r;
}

std::string parse_error(std::string_view text) {
    auto r = tool_registry::parse(text);
    return r ? std::string{} : r.error();
}

json::object obj(std::string_view text) { return json::parse(text).as_object(); }

// {"tools": [<tools>]}
std::string file_of(std::string const& tools) { return R"({"tools": [)" + tools + "]}"; }

// A valid builtin tool named `name`, with `extra` keys added.
std::string builtin_tool(std::string const& name = "t", std::string const& extra = "") {
    return R"({"name": ")" + name + R"(", "handler": {"type": "builtin", "name": "current_time"})" + extra + "}";
}

// A tool "w" with `keys` in its http handler, after the URL.
std::string http_tool(std::string const& url = "http://127.0.0.1:9000/weather", std::string const& keys = "") {
    return R"({"name": "w", "handler": {"type": "http", "url": ")" + url + "\"" + keys + "}}";
}

// A tool "t" with this handler object.
std::string handler_tool(std::string const& handler) { return R"({"name": "t", "handler": )" + handler + "}"; }

// A tool "t" with these parameters.
std::string params_tool(std::string const& parameters) {
    return R"({"name": "t", "parameters": )" + parameters +
           R"(, "handler": {"type": "builtin", "name": "current_time"}})";
}

constexpr std::string_view example = R"({"tools": [
    {"name": "current_time",
     "description": "The current date and time (UTC).",
     "parameters": {"type": "object", "properties": {}},
     "permission": "",
     "handler": {"type": "builtin", "name": "current_time"}},
    {"name": "weather", "description": "The weather in a city.",
     "parameters": {"type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"]},
     "permission": "weather",
     "handler": {"type": "http", "url": "http://127.0.0.1:9000/weather",
                 "timeout_ms": 2500, "max_response_bytes": 1000}},
    {"name": "admin_stats", "handler": {"type": "builtin", "name": "my_usage"}, "permission": "admin"},
    {"name": "my_usage", "handler": {"type": "builtin", "name": "my_usage"}}
]})";

json::object const weather_schema = json::parse(R"({"type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "unit": {"type": "string", "enum": ["c", "f"]},
        "temp": {"type": "number"},
        "note": {"type": ["string", "null"]},
        "flag": {"type": "boolean"},
        "list": {"type": "array"},
        "opts": {"type": "object", "properties": {"x": {"type": "string"}}},
        "nothing": {"type": "null"},
        "level": {"enum": [1, "high", null]},
        "any": {}
    },
    "required": ["city", "days"]})")
                                       .as_object();

std::string argument_error(std::string_view arguments, json::object const& schema = weather_schema) {
    auto r = check_arguments(schema, arguments);
    return r ? std::string{} : r.error();
}

}  // namespace

// ---- the registry --------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(tools_registry_suite)

BOOST_AUTO_TEST_CASE(an_empty_registry_has_no_tools) {
    tool_registry const none;
    BOOST_TEST(none.all().empty());
    BOOST_TEST(none.find("current_time") == nullptr);
    BOOST_TEST(none.offered({"admin"}).empty());
    BOOST_TEST(parse_ok(R"({"tools": []})").all().empty());
}

BOOST_AUTO_TEST_CASE(every_field_is_read) {
    auto const r = parse_ok(example);
    BOOST_REQUIRE_EQUAL(r.all().size(), 4u);

    auto const& clock = r.all()[0];
    BOOST_TEST(clock.spec.name == "current_time");
    BOOST_TEST(clock.spec.description == "The current date and time (UTC).");
    BOOST_TEST(clock.spec.parameters == obj(R"({"type": "object", "properties": {}})"));
    BOOST_TEST(clock.permission.empty());
    BOOST_TEST((clock.handler.kind == tool_handler_kind::builtin));
    BOOST_TEST(clock.handler.builtin == builtin_current_time);

    auto const& weather = r.all()[1];
    BOOST_TEST(weather.spec.name == "weather");
    BOOST_TEST(weather.spec.parameters.at("required") == json::parse(R"(["city"])"));
    BOOST_TEST(weather.permission == "weather");
    BOOST_TEST((weather.handler.kind == tool_handler_kind::http));
    BOOST_TEST(weather.handler.url == "http://127.0.0.1:9000/weather");
    BOOST_TEST(weather.handler.timeout.count() == 2500);
    BOOST_TEST(weather.handler.max_response_bytes == 1000u);

    // Left out: no description, no parameters, everyone.
    auto const& usage = r.all()[3];
    BOOST_TEST(usage.spec.description.empty());
    BOOST_TEST(usage.spec.parameters.empty());
    BOOST_TEST(usage.permission.empty());
    BOOST_TEST(usage.handler.builtin == builtin_my_usage);
}

BOOST_AUTO_TEST_CASE(http_limits_have_defaults_and_accept_their_bounds) {
    auto const defaults = parse_ok(file_of(http_tool())).all().at(0).handler;
    BOOST_TEST(defaults.timeout.count() == 5000);
    BOOST_TEST(defaults.max_response_bytes == 65536u);

    auto const low = parse_ok(file_of(http_tool("https://tools.example/w", R"(, "timeout_ms": 1, "max_response_bytes": 1)")))
                         .all()
                         .at(0)
                         .handler;
    BOOST_TEST(low.timeout.count() == 1);
    BOOST_TEST(low.max_response_bytes == 1u);

    auto const high = parse_ok(file_of(http_tool("http://[::1]:8080/w", R"(, "timeout_ms": 120000, "max_response_bytes": 16777216)")))
                          .all()
                          .at(0)
                          .handler;
    BOOST_TEST(high.timeout.count() == 120000);
    BOOST_TEST(high.max_response_bytes == 16u * 1024 * 1024);

    // A whole number written as a double is a whole number.
    auto const written = parse_ok(file_of(http_tool("HTTP://Host:8080/w", R"(, "timeout_ms": 5e3, "max_response_bytes": 2048.0)")))
                             .all()
                             .at(0)
                             .handler;
    BOOST_TEST(written.timeout.count() == 5000);
    BOOST_TEST(written.max_response_bytes == 2048u);
    BOOST_TEST(written.url == "HTTP://Host:8080/w");
}

BOOST_AUTO_TEST_CASE(nats_handlers_name_a_subject_and_limits) {
    auto const h = parse_ok(file_of(handler_tool(
                                R"({"type": "nats", "subject": "tools.weather", "timeout_ms": 800, "max_response_bytes": 99})")))
                       .all()
                       .at(0)
                       .handler;
    BOOST_TEST((h.kind == parley::domain::tool_handler_kind::nats));
    BOOST_TEST(h.subject == "tools.weather");
    BOOST_TEST(h.timeout.count() == 800);
    BOOST_TEST(h.max_response_bytes == 99u);
}

BOOST_AUTO_TEST_CASE(comments_and_trailing_commas_are_allowed) {
    auto const r = parse_ok(R"(// tools
        {"tools": [
            /* the clock */ {"name": "t", "handler": {"type": "builtin", "name": "current_time",},},
        ],})");
    BOOST_TEST(r.all().size() == 1u);
}

BOOST_AUTO_TEST_CASE(names_may_use_letters_digits_underscore_and_dash_up_to_64) {
    std::string const longest(64, 'a');
    auto const r = parse_ok(file_of(builtin_tool("Az09_-") + "," + builtin_tool(longest)));
    BOOST_TEST(r.all().at(0).spec.name == "Az09_-");
    BOOST_TEST(r.all().at(1).spec.name == longest);
}

BOOST_AUTO_TEST_CASE(up_to_128_tools_and_4096_byte_descriptions) {
    std::string tools;
    for (int i = 0; i != 128; ++i) {
        tools += (i == 0 ? "" : ",") + builtin_tool("t" + std::to_string(i));
    }
    BOOST_TEST(parse_ok(file_of(tools)).all().size() == 128u);
    BOOST_TEST(parse_error(file_of(tools + "," + builtin_tool("t128"))) ==
               "tools.json: 129 tools, more than the 128 allowed");

    std::string const description(4096, 'd');
    auto const r = parse_ok(file_of(builtin_tool("t", R"(, "description": ")" + description + "\"")));
    BOOST_TEST(r.all().at(0).spec.description == description);
}

BOOST_AUTO_TEST_CASE(find_looks_up_the_exact_name) {
    auto const r = parse_ok(example);
    BOOST_REQUIRE(r.find("weather") != nullptr);
    BOOST_TEST(r.find("weather") == &r.all()[1]);
    BOOST_TEST(r.find("Weather") == nullptr);
    BOOST_TEST(r.find("weathe") == nullptr);
    BOOST_TEST(r.find("") == nullptr);
}

BOOST_AUTO_TEST_CASE(offered_holds_the_permitted_tools_in_file_order) {
    auto const r = parse_ok(example);
    auto names_of = [](std::vector<tool_spec> const& specs) {
        std::vector<std::string> names;
        for (auto const& s : specs) {
            names.push_back(s.name);
        }
        return names;
    };
    using names = std::vector<std::string>;
    BOOST_TEST((names_of(r.offered({})) == names{"current_time", "my_usage"}));
    BOOST_TEST((names_of(r.offered({"weather"})) == names{"current_time", "weather", "my_usage"}));
    BOOST_TEST((names_of(r.offered({"admin", "other", "weather"})) ==
                names{"current_time", "weather", "admin_stats", "my_usage"}));
    BOOST_TEST((names_of(r.offered({"Weather"})) == names{"current_time", "my_usage"}));
    BOOST_TEST((r.offered_names({"admin"}) == names{"current_time", "admin_stats", "my_usage"}));
    BOOST_TEST((r.offered({"weather"}).at(1) == r.all()[1].spec));
}

BOOST_AUTO_TEST_CASE(may_use_needs_the_permission_unless_there_is_none) {
    auto const r = parse_ok(example);
    BOOST_TEST(may_use(*r.find("current_time"), {}));
    BOOST_TEST(may_use(*r.find("weather"), {"a", "weather"}));
    BOOST_TEST(!may_use(*r.find("weather"), {}));
    BOOST_TEST(!may_use(*r.find("weather"), {"admin", "weathers", ""}));
}

BOOST_AUTO_TEST_CASE(text_that_is_not_json_is_refused_with_its_place) {
    BOOST_TEST(parse_error("").starts_with("tools.json: not JSON (line 1, column 1: "));
    BOOST_TEST(parse_error("{\n  \"tools\": [\n    x\n]}").starts_with("tools.json: not JSON (line 3, column 5: "));
    BOOST_TEST(parse_error(R"({"tools": [})").starts_with("tools.json: not JSON (line 1, column 12: "));
}

struct error_case {
    std::string what;
    std::string text;
    std::string error;
};

BOOST_AUTO_TEST_CASE(every_mistake_is_refused_with_one_line_naming_the_tool) {
    std::string const t = R"(tools.json: tool 1 ("t"): )";
    std::string const w = R"(tools.json: tool 1 ("w"): )";
    std::string const no_tools = R"(tools.json: expected an object with a "tools" array)";
    std::string const bad_name = "tools.json: tool 1: name must be 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'";
    std::string const bad_params = t + R"(parameters must be a JSON object with "type": "object")";
    std::string const bad_type =
        t + "parameters.properties.city.type must be string, number, integer, boolean, array, object, null or an "
            "array of those";
    std::string const bad_handler = t + R"(handler must be an object with a "type": builtin, http or nats)";
    std::string const bad_timeout = w + "handler.timeout_ms must be a whole number from 1 to 120000";
    std::string const bad_size = w + "handler.max_response_bytes must be a whole number from 1 to 16777216";
    std::string const bad_builtin = t + "handler.name must be current_time or my_usage";
    std::string const bad_url_type = w + "handler.url must be a string, an http:// or https:// URL";

    std::vector<error_case> const cases{
        {"top level array", "[]", no_tools},
        {"no tools key", R"({"tool": []})", no_tools},
        {"tools not an array", R"({"tools": {}})", no_tools},
        {"unknown top-level key", R"({"tools": [], "extra": 1})",
         R"(tools.json: unknown key "extra" at the top level (only "tools"))"},
        {"tool not an object", R"({"tools": [1]})", "tools.json: tool 1: must be an object"},
        {"name missing", file_of(R"({"handler": {"type": "builtin", "name": "current_time"}})"), bad_name},
        {"name not a string", file_of(R"({"name": 3, "handler": {"type": "builtin", "name": "current_time"}})"),
         bad_name},
        {"name empty", file_of(builtin_tool("")), bad_name},
        {"name with a space", file_of(builtin_tool("my tool")), bad_name},
        {"name with a dot", file_of(builtin_tool("a.b")), bad_name},
        {"name not ASCII", file_of(builtin_tool("año")), bad_name},
        {"name of 65", file_of(builtin_tool(std::string(65, 'a'))), bad_name},
        {"name repeated", file_of(builtin_tool("a") + "," + builtin_tool("b") + "," + builtin_tool("a")),
         R"(tools.json: tool 3 ("a"): the name is already used by tool 1)"},
        {"unknown tool key", file_of(builtin_tool("t", R"(, "colour": "red")")), t + R"(unknown key "colour")"},
        {"description not a string", file_of(builtin_tool("t", R"(, "description": 3)")),
         t + "description must be a string"},
        {"description over 4096", file_of(builtin_tool("t", R"(, "description": ")" + std::string(4097, 'd') + "\"")),
         t + "description is 4097 bytes, more than the 4096 allowed"},
        {"parameters not an object", file_of(params_tool(R"("none")")), bad_params},
        {"parameters without type", file_of(params_tool("{}")), bad_params},
        {"parameters of another type", file_of(params_tool(R"({"type": "array"})")), bad_params},
        {"properties not an object", file_of(params_tool(R"({"type": "object", "properties": []})")),
         t + "parameters.properties must be an object"},
        {"property not an object", file_of(params_tool(R"({"type": "object", "properties": {"city": 1}})")),
         t + "parameters.properties.city must be an object (a JSON schema)"},
        {"unknown property type",
         file_of(params_tool(R"({"type": "object", "properties": {"city": {"type": "str"}}})")), bad_type},
        {"unknown type in a list",
         file_of(params_tool(R"({"type": "object", "properties": {"city": {"type": ["string", "int"]}}})")),
         bad_type},
        {"empty type list", file_of(params_tool(R"({"type": "object", "properties": {"city": {"type": []}}})")),
         bad_type},
        {"type not a string", file_of(params_tool(R"({"type": "object", "properties": {"city": {"type": 3}}})")),
         bad_type},
        {"enum not an array",
         file_of(params_tool(R"({"type": "object", "properties": {"city": {"enum": "Lima"}}})")),
         t + "parameters.properties.city.enum must be an array"},
        {"required not an array", file_of(params_tool(R"({"type": "object", "required": "city"})")),
         t + "parameters.required must be an array of property names"},
        {"required with a number", file_of(params_tool(R"({"type": "object", "required": ["city", 1]})")),
         t + "parameters.required must be an array of property names"},
        {"additionalProperties not a boolean",
         file_of(params_tool(R"({"type": "object", "additionalProperties": "no"})")),
         t + "parameters.additionalProperties must be a boolean or an object"},
        {"permission not a string", file_of(builtin_tool("t", R"(, "permission": null)")),
         t + R"(permission must be a string ("" for everyone))"},
        {"handler missing", file_of(R"({"name": "t"})"), bad_handler},
        {"handler a string", file_of(handler_tool(R"("builtin")")), bad_handler},
        {"handler without type", file_of(handler_tool(R"({"name": "current_time"})")), bad_handler},
        {"handler type not a string", file_of(handler_tool(R"({"type": 1})")), bad_handler},
        {"unknown handler type", file_of(handler_tool(R"({"type": "grpc"})")),
         t + R"(unknown handler type "grpc" (builtin, http or nats))"},
        {"nats without subject", file_of(handler_tool(R"({"type": "nats"})")),
         t + "handler.subject must be a NATS subject: dot-separated tokens, no spaces or wildcards"},
        {"nats wildcard subject", file_of(handler_tool(R"({"type": "nats", "subject": "tools.*"})")),
         t + "handler.subject must be a NATS subject: dot-separated tokens, no spaces or wildcards"},
        {"nats empty token", file_of(handler_tool(R"({"type": "nats", "subject": "tools..w"})")),
         t + "handler.subject must be a NATS subject: dot-separated tokens, no spaces or wildcards"},
        {"nats with another key", file_of(handler_tool(R"({"type": "nats", "subject": "a", "url": "x"})")),
         t + R"(unknown key "url" in the handler (nats: type, subject, timeout_ms, max_response_bytes))"},
        {"unknown builtin", file_of(handler_tool(R"({"type": "builtin", "name": "clock"})")), bad_builtin},
        {"builtin without name", file_of(handler_tool(R"({"type": "builtin"})")), bad_builtin},
        {"builtin with another key", file_of(handler_tool(R"({"type": "builtin", "name": "my_usage", "timeout_ms": 5})")),
         t + R"(unknown key "timeout_ms" in the handler (builtin: type, name))"},
        {"http without url", file_of(R"({"name": "w", "handler": {"type": "http"}})"), bad_url_type},
        {"http url not a string", file_of(R"({"name": "w", "handler": {"type": "http", "url": 80}})"), bad_url_type},
        {"http url not a URL", file_of(http_tool("not a url")), w + R"(handler.url "not a url" is not a URL)"},
        {"http url empty", file_of(http_tool("")), w + R"(handler.url "" is not a URL)"},
        {"http url of another scheme", file_of(http_tool("ftp://files.example/w")),
         w + R"(handler.url "ftp://files.example/w" must start with http:// or https://)"},
        {"http url without authority", file_of(http_tool("http:weather")),
         w + R"(handler.url "http:weather" has no host)"},
        {"http url with an empty host", file_of(http_tool("http:///weather")),
         w + R"(handler.url "http:///weather" has no host)"},
        {"http url with user info", file_of(http_tool("http://bot:s3cret@tools.example/w")),
         w + "handler.url must not hold user info (user:password@)"},
        {"http url with a query", file_of(http_tool("http://tools.example/w?city=Lima")),
         w + R"(handler.url "http://tools.example/w?city=Lima" must not have a query (?...))"},
        {"http url with an empty query", file_of(http_tool("http://tools.example/w?")),
         w + R"(handler.url "http://tools.example/w?" must not have a query (?...))"},
        {"http url with a fragment", file_of(http_tool("http://tools.example/w#top")),
         w + R"(handler.url "http://tools.example/w#top" must not have a fragment (#...))"},
        {"http with another key", file_of(http_tool("http://tools.example/w", R"(, "subject": "x")")),
         w + R"(unknown key "subject" in the handler (http: type, url, timeout_ms, max_response_bytes))"},
        {"timeout 0", file_of(http_tool("http://tools.example/w", R"(, "timeout_ms": 0)")), bad_timeout},
        {"timeout over 120 s", file_of(http_tool("http://tools.example/w", R"(, "timeout_ms": 120001)")),
         bad_timeout},
        {"timeout negative", file_of(http_tool("http://tools.example/w", R"(, "timeout_ms": -1)")), bad_timeout},
        {"timeout fractional", file_of(http_tool("http://tools.example/w", R"(, "timeout_ms": 1.5)")), bad_timeout},
        {"timeout a string", file_of(http_tool("http://tools.example/w", R"(, "timeout_ms": "5000")")),
         bad_timeout},
        {"timeout null", file_of(http_tool("http://tools.example/w", R"(, "timeout_ms": null)")), bad_timeout},
        {"size 0", file_of(http_tool("http://tools.example/w", R"(, "max_response_bytes": 0)")), bad_size},
        {"size over 16 MiB", file_of(http_tool("http://tools.example/w", R"(, "max_response_bytes": 16777217)")),
         bad_size},
        {"size huge", file_of(http_tool("http://tools.example/w", R"(, "max_response_bytes": 1e30)")), bad_size},
        {"size beyond int64",
         file_of(http_tool("http://tools.example/w", R"(, "max_response_bytes": 18446744073709551615)")), bad_size},
        {"the brief's example",
         file_of(builtin_tool("clock") + "," +
                 R"({"name": "weather", "handler": {"type": "http", "url": "http://h/w", "timeout_ms": 0}})"),
         R"(tools.json: tool 2 ("weather"): handler.timeout_ms must be a whole number from 1 to 120000)"},
    };
    for (auto const& c : cases) {
        BOOST_TEST_CONTEXT(c.what) {
            auto const error = parse_error(c.text);
            BOOST_TEST(error == c.error);
            BOOST_TEST(error.find('\n') == std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_CASE(an_unknown_key_is_shown_printable_and_short) {
    auto const error = parse_error(file_of(builtin_tool("t", R"(, "a\nb": 1)")));
    BOOST_TEST(error == R"(tools.json: tool 1 ("t"): unknown key "a b")");
}

BOOST_AUTO_TEST_CASE(the_shipped_tools_file_parses) {
    auto const r = parse_ok(read_file(std::string{PARLEY_SOURCE_DIR} + "/conf/tools.json"));
    BOOST_REQUIRE_EQUAL(r.all().size(), 2u);

    auto const* clock = r.find("current_time");
    BOOST_REQUIRE(clock != nullptr);
    BOOST_TEST(clock->spec.description == "The current date and time in UTC, ISO 8601");
    BOOST_TEST((clock->handler.kind == tool_handler_kind::builtin));
    BOOST_TEST(clock->handler.builtin == builtin_current_time);
    BOOST_TEST(clock->permission.empty());

    auto const* usage = r.find("my_usage");
    BOOST_REQUIRE(usage != nullptr);
    BOOST_TEST(usage->spec.description ==
               "The caller's own usage: requests in the last hour, spend today and what is left of their limits");
    BOOST_TEST(usage->handler.builtin == builtin_my_usage);
    BOOST_TEST(usage->permission.empty());

    BOOST_TEST((r.offered_names({}) == std::vector<std::string>{"current_time", "my_usage"}));
    for (auto const& t : r.all()) {
        BOOST_TEST_CONTEXT(t.spec.name) {
            BOOST_TEST(t.spec.parameters.at("type") == "object");
            BOOST_TEST(check_arguments(t.spec.parameters, "").has_value());
            BOOST_TEST(check_arguments(t.spec.parameters, "{}").has_value());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- arguments -----------------------------------------------------------------

BOOST_AUTO_TEST_SUITE(tools_arguments_suite)

BOOST_AUTO_TEST_CASE(valid_arguments_come_back_as_an_object) {
    auto const r = check_arguments(weather_schema, R"({"city": "Lima", "days": 3, "extra": [1]})");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(*r == obj(R"({"city": "Lima", "days": 3, "extra": [1]})"));
}

BOOST_AUTO_TEST_CASE(empty_arguments_are_an_empty_object) {
    json::object const open = obj(R"({"type": "object", "properties": {}})");
    for (std::string_view text : {"", "  \n", "{}"}) {
        BOOST_TEST_CONTEXT('"' << text << '"') {
            auto const r = check_arguments(open, text);
            BOOST_REQUIRE(r.has_value());
            BOOST_TEST(r->empty());
        }
    }
    BOOST_TEST(check_arguments(json::object{}, "").has_value());
    BOOST_TEST(argument_error("") == "missing required argument 'city'");
}

BOOST_AUTO_TEST_CASE(text_that_is_not_a_json_object_is_refused) {
    BOOST_TEST(argument_error("{") == "arguments are not valid JSON");
    BOOST_TEST(argument_error("{'city': 'Lima'}") == "arguments are not valid JSON");
    BOOST_TEST(argument_error(R"({"city": "Lima",})") == "arguments are not valid JSON");  // strict JSON
    BOOST_TEST(argument_error(R"({"city": "Lima"} x)") == "arguments are not valid JSON");
    BOOST_TEST(argument_error(R"(["Lima"])") == "arguments are not a JSON object");
    BOOST_TEST(argument_error("3") == "arguments are not a JSON object");
    BOOST_TEST(argument_error("null") == "arguments are not a JSON object");
    BOOST_TEST(argument_error(R"("{}")") == "arguments are not a JSON object");
}

BOOST_AUTO_TEST_CASE(required_arguments_are_checked_in_the_schema_order) {
    BOOST_TEST(argument_error("{}") == "missing required argument 'city'");
    BOOST_TEST(argument_error(R"({"days": 3})") == "missing required argument 'city'");
    BOOST_TEST(argument_error(R"({"city": "Lima"})") == "missing required argument 'days'");
    // A null value is present.
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": null})") == "argument 'days' must be integer");
}

BOOST_AUTO_TEST_CASE(present_arguments_are_checked_in_the_order_they_come) {
    BOOST_TEST(argument_error(R"({"days": "x", "city": 3})") == "argument 'days' must be integer");
    BOOST_TEST(argument_error(R"({"city": 3, "days": "x"})") == "argument 'city' must be string");
}

BOOST_AUTO_TEST_CASE(integer_means_a_number_without_a_fraction) {
    auto const days = [](std::string const& value) {
        return argument_error(R"({"city": "Lima", "days": )" + value + "}");
    };
    for (std::string value : {"3", "-3", "0", "3.0", "1e3", "18446744073709551615", "-9223372036854775808"}) {
        BOOST_TEST_CONTEXT(value) { BOOST_TEST(days(value).empty()); }
    }
    for (std::string value : {"1.5", "-0.25", "\"3\"", "true", "[3]", "{}"}) {
        BOOST_TEST_CONTEXT(value) { BOOST_TEST(days(value) == "argument 'days' must be integer"); }
    }
}

BOOST_AUTO_TEST_CASE(number_accepts_any_number) {
    for (std::string value : {"3", "-3", "1.5", "1e300", "18446744073709551615"}) {
        BOOST_TEST_CONTEXT(value) {
            BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "temp": )" + value + "}").empty());
        }
    }
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "temp": "20"})") == "argument 'temp' must be number");
}

BOOST_AUTO_TEST_CASE(every_type_name_is_checked) {
    auto const with = [](std::string const& member) {
        return argument_error(R"({"city": "Lima", "days": 1, )" + member + "}");
    };
    BOOST_TEST(with(R"("flag": true)").empty());
    BOOST_TEST(with(R"("flag": 1)") == "argument 'flag' must be boolean");
    BOOST_TEST(with(R"("list": [])").empty());
    BOOST_TEST(with(R"("list": {})") == "argument 'list' must be array");
    BOOST_TEST(with(R"("opts": {})").empty());
    BOOST_TEST(with(R"("opts": [])") == "argument 'opts' must be object");
    BOOST_TEST(with(R"("nothing": null)").empty());
    BOOST_TEST(with(R"("nothing": 0)") == "argument 'nothing' must be null");
    BOOST_TEST(with(R"("city": "")").empty());
    BOOST_TEST(with(R"("any": [1, {"a": null}])").empty());  // no type declared: anything
}

BOOST_AUTO_TEST_CASE(a_list_of_types_accepts_any_of_them) {
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "note": "hi"})").empty());
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "note": null})").empty());
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "note": 1})") == "argument 'note' must be string or null");
    auto const three = obj(R"({"type": "object", "properties": {"x": {"type": ["string", "number", "null"]}}})");
    BOOST_TEST(argument_error(R"({"x": true})", three) == "argument 'x' must be string, number or null");
}

BOOST_AUTO_TEST_CASE(an_enum_limits_the_values) {
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "unit": "c"})").empty());
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "unit": "k"})") ==
               R"(argument 'unit' must be one of "c", "f")");
    // The type is checked before the enum.
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "unit": 1})") == "argument 'unit' must be string");
    // An enum without a type, with values of several kinds.
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "level": null})").empty());
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "level": 1})").empty());
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "level": "low"})") ==
               R"(argument 'level' must be one of 1, "high", null)");
}

BOOST_AUTO_TEST_CASE(undeclared_arguments_are_allowed_unless_additional_properties_is_false) {
    auto closed = weather_schema;
    closed["additionalProperties"] = false;
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "colour": "red"})").empty());
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "colour": "red"})", closed) ==
               "unknown argument 'colour'");
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1})", closed).empty());
    // Checked in the arguments' order, with the declared ones.
    BOOST_TEST(argument_error(R"({"city": "Lima", "x": 1, "days": "2"})", closed) == "unknown argument 'x'");
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": "2", "x": 1})", closed) ==
               "argument 'days' must be integer");

    auto open = weather_schema;
    open["additionalProperties"] = true;
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "colour": "red"})", open).empty());
}

BOOST_AUTO_TEST_CASE(nested_schemas_are_checked_only_for_their_top_level_type) {
    BOOST_TEST(argument_error(R"({"city": "Lima", "days": 1, "opts": {"x": 1, "y": 2}})").empty());
}

BOOST_AUTO_TEST_CASE(names_in_messages_are_printable_and_short) {
    auto closed = obj(R"({"type": "object", "additionalProperties": false})");
    BOOST_TEST(argument_error(R"({"a\nb": 1})", closed) == "unknown argument 'a b'");
    std::string const long_name(100, 'n');
    BOOST_TEST(argument_error(R"({")" + long_name + R"(": 1})", closed) ==
               "unknown argument '" + std::string(64, 'n') + "...'");
}

BOOST_AUTO_TEST_SUITE_END()
