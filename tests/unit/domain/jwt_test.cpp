#include "domain/errc.hpp"
#include "domain/jwt.hpp"

#include <boost/test/unit_test.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace {

using parley::jwt_claims;
using error_code = boost::system::error_code;
using i64_limits = std::numeric_limits<std::int64_t>;

constexpr std::string_view secret = "parley-test-secret";
constexpr std::string_view std_header = R"({"alg":"HS256","typ":"JWT"})";
constexpr std::int64_t now = 1'700'000'000;

error_code const invalid = make_error_code(parley::errc::invalid_token);
error_code const expired = make_error_code(parley::errc::token_expired);

// The error of a verification, or a default (success) error_code.
error_code error_of(boost::system::result<jwt_claims> const& r) {
    return r.has_error() ? r.error() : error_code{};
}

error_code verify_error(std::string_view token, std::int64_t at = now, std::int64_t leeway = 30) {
    return error_of(parley::verify_jwt(token, secret, at, leeway));
}

// Signs already-encoded segments with HMAC-SHA256 straight from OpenSSL, so
// hand-made (even malformed) headers and payloads carry a valid signature.
std::string sign_segments(std::string_view header_segment, std::string_view payload_segment,
                          std::string_view key = secret) {
    std::string input{header_segment};
    input += '.';
    input += payload_segment;
    std::array<unsigned char, 32> mac{};
    unsigned int size = 0;
    BOOST_REQUIRE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
                       reinterpret_cast<unsigned char const*>(input.data()), input.size(), mac.data(),
                       &size) != nullptr);
    BOOST_REQUIRE_EQUAL(size, mac.size());
    return input + '.' + parley::base64url_encode({reinterpret_cast<char const*>(mac.data()), size});
}

std::string sign(std::string_view header_json, std::string_view payload_json) {
    return sign_segments(parley::base64url_encode(header_json), parley::base64url_encode(payload_json));
}

// A token with the standard header and the given payload members.
std::string sign_payload(std::string_view members) {
    return sign(std_header, "{" + std::string{members} + "}");
}

jwt_claims full_claims() {
    jwt_claims c;
    c.sub = "user-42";
    c.exp = 1'700'000'000;
    c.iat = 1'699'996'400;
    c.name = "Jos\xc3\xa9";  // José, UTF-8
    c.lang = "es";
    c.perms = {"chat", "admin"};
    return c;
}

// Segment `index` (0 header, 1 payload, 2 signature) of a compact token.
std::string_view segment(std::string_view token, int index) {
    for (int i = 0; i != index; ++i) {
        token.remove_prefix(token.find('.') + 1);
    }
    return token.substr(0, token.find('.'));
}

// Expected token computed once with Python's hmac/hashlib/base64/json:
//   h = '{"alg":"HS256","typ":"JWT"}'
//   p = json.dumps({"sub":"user-42","exp":1700000000,"iat":1699996400,"name":"José",
//                   "lang":"es","perms":["chat","admin"]}, separators=(',',':'), ensure_ascii=False)
//   si = b64url(h) + '.' + b64url(p)   # b64url = urlsafe_b64encode, '=' stripped
//   token = si + '.' + b64url(hmac.new(b'parley-test-secret', si, sha256).digest())
constexpr std::string_view python_token =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJ1c2VyLTQyIiwiZXhwIjoxNzAwMDAwMDAwLCJpYXQiOjE2OTk5OTY0MDAsIm5hbWUiOiJKb3PDqSIsImxh"
    "bmciOiJlcyIsInBlcm1zIjpbImNoYXQiLCJhZG1pbiJdfQ."
    "1WHHPx7N_V-ZI8sIf4eTddt-E6lnuxNYaQb6wH7bPIo";

}  // namespace

BOOST_AUTO_TEST_SUITE(jwt_base64url)

BOOST_AUTO_TEST_CASE(encodes_rfc4648_vectors_without_padding) {
    BOOST_TEST(parley::base64url_encode("") == "");
    BOOST_TEST(parley::base64url_encode("f") == "Zg");
    BOOST_TEST(parley::base64url_encode("fo") == "Zm8");
    BOOST_TEST(parley::base64url_encode("foo") == "Zm9v");
    BOOST_TEST(parley::base64url_encode("foob") == "Zm9vYg");
    BOOST_TEST(parley::base64url_encode("fooba") == "Zm9vYmE");
    BOOST_TEST(parley::base64url_encode("foobar") == "Zm9vYmFy");
    BOOST_TEST(parley::base64url_encode("\xfb\xff\xbf") == "-_-_");  // URL alphabet, not +/
    BOOST_TEST(parley::base64url_encode("\xfb\xff") == "-_8");
}

BOOST_AUTO_TEST_CASE(decodes_rfc4648_vectors) {
    BOOST_TEST(parley::base64url_decode("").value() == "");
    BOOST_TEST(parley::base64url_decode("Zg").value() == "f");
    BOOST_TEST(parley::base64url_decode("Zm8").value() == "fo");
    BOOST_TEST(parley::base64url_decode("Zm9v").value() == "foo");
    BOOST_TEST(parley::base64url_decode("Zm9vYmFy").value() == "foobar");
    BOOST_TEST(parley::base64url_decode("-_-_").value() == "\xfb\xff\xbf");
}

BOOST_AUTO_TEST_CASE(round_trips_every_byte_value_at_every_tail_length) {
    std::string all;
    for (int b = 0; b != 256; ++b) {
        all += static_cast<char>(b);
    }
    for (std::size_t n = all.size() - 3; n <= all.size(); ++n) {
        auto const data = all.substr(0, n);
        BOOST_TEST(parley::base64url_decode(parley::base64url_encode(data)).value() == data);
    }
}

BOOST_AUTO_TEST_CASE(rejects_padding_foreign_characters_and_impossible_lengths) {
    std::initializer_list<std::string_view> const bad_inputs = {
        "Zg==", "Zm8=", "Zg=", "Z+8", "Z/8", "Zm 9v", "Zm9v\n", "Zm.9", "Zm9\xc3\xa9", "Z", "Zm9vY",
        "A", "Zm9vA",  // 1 mod 4 even when the stray 6 bits are zero
        std::string_view{"Zm\0v", 4}};
    for (std::string_view bad : bad_inputs) {
        BOOST_TEST_CONTEXT("input " << bad) {
            BOOST_TEST(!parley::base64url_decode(bad).has_value());
        }
    }
}

BOOST_AUTO_TEST_CASE(rejects_nonzero_unused_trailing_bits) {
    // "Zg"/"Zm8" are canonical; "Zh"/"Zm9" decode to the same bytes with
    // stray low bits, which a strict decoder must refuse.
    BOOST_TEST(!parley::base64url_decode("Zh").has_value());
    BOOST_TEST(!parley::base64url_decode("Zm9").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(jwt_sha256_hex)

BOOST_AUTO_TEST_CASE(matches_fips_180_vectors) {
    BOOST_TEST(parley::sha256_hex("abc") ==
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    BOOST_TEST(parley::sha256_hex("") ==
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    BOOST_TEST(parley::sha256_hex(std::string_view{}) ==
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(jwt_mint)

BOOST_AUTO_TEST_CASE(matches_an_independent_implementation) {
    BOOST_TEST(parley::mint_jwt(full_claims(), secret) == python_token);
}

BOOST_AUTO_TEST_CASE(writes_only_the_claims_that_are_set) {
    jwt_claims c;
    c.sub = "u";
    c.exp = 123;
    auto const token = parley::mint_jwt(c, secret);
    BOOST_TEST(parley::base64url_decode(segment(token, 0)).value() == std_header);
    BOOST_TEST(parley::base64url_decode(segment(token, 1)).value() == R"({"sub":"u","exp":123})");
}

BOOST_AUTO_TEST_CASE(refuses_an_empty_secret) {
    BOOST_CHECK_THROW(parley::mint_jwt(full_claims(), ""), std::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(jwt_verify)

BOOST_AUTO_TEST_CASE(round_trips_every_claim) {
    auto const c = full_claims();
    auto const r = parley::verify_jwt(parley::mint_jwt(c, secret), secret, c.exp);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->sub == "user-42");
    BOOST_TEST(r->exp == 1'700'000'000);
    BOOST_TEST(r->iat.value() == 1'699'996'400);
    BOOST_TEST(r->name.value() == "Jos\xc3\xa9");
    BOOST_TEST(r->lang.value() == "es");
    BOOST_TEST(r->perms == c.perms, boost::test_tools::per_element());
    BOOST_TEST((*r == c));
}

BOOST_AUTO_TEST_CASE(round_trips_minimal_claims) {
    jwt_claims c;
    c.sub = "svc";
    c.exp = now + 60;
    auto const r = parley::verify_jwt(parley::mint_jwt(c, secret), secret, now);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST((*r == c));
    BOOST_TEST(!r->iat.has_value());
    BOOST_TEST(!r->name.has_value());
    BOOST_TEST(!r->lang.has_value());
    BOOST_TEST(r->perms.empty());
}

BOOST_AUTO_TEST_CASE(verifies_the_independent_vector) {
    auto const r = parley::verify_jwt(python_token, secret, now);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST((*r == full_claims()));
}

BOOST_AUTO_TEST_CASE(accepts_foreign_formatting_and_ignores_unknown_claims) {
    // From Python: json.dumps with its default ", " / ": " separators, the
    // header's members swapped, an "iss" claim and an "nbf" in the past.
    //   h = '{"typ": "JWT", "alg": "HS256"}'
    //   p = '{"iss": "someone", "exp": 1700000000, "perms": ["usage"], "sub": "svc-7", "nbf": 1699990000}'
    constexpr std::string_view token =
        "eyJ0eXAiOiAiSldUIiwgImFsZyI6ICJIUzI1NiJ9."
        "eyJpc3MiOiAic29tZW9uZSIsICJleHAiOiAxNzAwMDAwMDAwLCAicGVybXMiOiBbInVzYWdlIl0sICJzdWIiOiAic3Zj"
        "LTciLCAibmJmIjogMTY5OTk5MDAwMH0."
        "l4FIBtMCGV1j1A0pPEPqd0xhL5LXwx66QWzQLhkRvwo";
    auto const r = parley::verify_jwt(token, secret, now);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->sub == "svc-7");
    BOOST_TEST(r->exp == 1'700'000'000);
    BOOST_TEST(r->perms == std::vector<std::string>{"usage"}, boost::test_tools::per_element());
    BOOST_TEST(!r->lang.has_value());
}

BOOST_AUTO_TEST_CASE(requires_exp_even_with_a_valid_signature) {
    // The well-known jwt.io example: correctly signed, but it has no "exp".
    constexpr std::string_view token =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    BOOST_TEST(error_of(parley::verify_jwt(token, "your-256-bit-secret", now)) == invalid);
    BOOST_TEST(error_of(parley::verify_jwt(token, secret, now)) == invalid);
}

BOOST_AUTO_TEST_CASE(rejects_a_wrong_or_empty_secret) {
    auto const token = parley::mint_jwt(full_claims(), secret);
    BOOST_TEST(error_of(parley::verify_jwt(token, "parley-test-secreT", now)) == invalid);
    BOOST_TEST(error_of(parley::verify_jwt(token, "", now)) == invalid);
    // A token signed with an empty key (as a sloppy issuer might) never verifies.
    auto const empty_key = sign_segments(segment(token, 0), segment(token, 1), "");
    BOOST_TEST(error_of(parley::verify_jwt(empty_key, "", now)) == invalid);
}

BOOST_AUTO_TEST_CASE(rejects_a_tampered_payload) {
    auto const token = parley::mint_jwt(full_claims(), secret);
    auto forged = full_claims();
    forged.sub = "user-43";
    forged.perms.push_back("root");
    auto const other = parley::mint_jwt(forged, "attacker-secret");
    // The forged payload under the original header and signature.
    auto const spliced = std::string{segment(token, 0)} + '.' + std::string{segment(other, 1)} + '.' +
                         std::string{segment(token, 2)};
    BOOST_TEST(verify_error(spliced) == invalid);
    BOOST_TEST(verify_error(other) == invalid);
    // One character of the payload changed.
    auto flipped = token;
    auto const at = segment(token, 0).size() + 5;
    flipped[at] = flipped[at] == 'A' ? 'B' : 'A';
    BOOST_TEST(verify_error(flipped) == invalid);
}

BOOST_AUTO_TEST_CASE(rejects_a_tampered_signature) {
    auto const token = parley::mint_jwt(full_claims(), secret);
    BOOST_REQUIRE(verify_error(token) == error_code{});
    auto const sig_at = token.rfind('.') + 1;
    auto const prefix = token.substr(0, sig_at);
    auto const sig = token.substr(sig_at);
    BOOST_TEST_REQUIRE(sig.size() == 43U);
    for (std::size_t i : {std::size_t{0}, std::size_t{20}, std::size_t{41}}) {
        auto bad = token;
        bad[sig_at + i] = bad[sig_at + i] == 'A' ? 'B' : 'A';
        BOOST_TEST_CONTEXT("byte " << i) {
            BOOST_TEST(verify_error(bad) == invalid);
        }
    }
    BOOST_TEST(verify_error(prefix) == invalid);                               // empty signature
    BOOST_TEST(verify_error(prefix + sig.substr(0, 42)) == invalid);            // 31 bytes + bits
    BOOST_TEST(verify_error(prefix + sig.substr(0, 40)) == invalid);            // 30 bytes
    BOOST_TEST(verify_error(prefix + sig + "AA") == invalid);                   // 33+ bytes
    BOOST_TEST(verify_error(prefix + sig + "=") == invalid);                    // padding
    BOOST_TEST(verify_error(prefix + sig.substr(0, 42) + "+") == invalid);      // base64 '+'
    // Same 32 bytes, non-canonical last character (2 unused bits set).
    auto alias = token;
    constexpr std::string_view alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    alias.back() = alphabet[alphabet.find(token.back()) | 1];
    BOOST_TEST_REQUIRE(alias != token);
    BOOST_TEST(verify_error(alias) == invalid);
}

BOOST_AUTO_TEST_CASE(rejects_a_signature_prefix_whose_missing_byte_is_zero) {
    // Find a token whose MAC ends in 0x00 and drop that byte: a comparison
    // that read past the 31 given bytes would meet std::string's NUL and pass.
    jwt_claims c = full_claims();
    std::optional<std::string> truncated;
    for (int i = 0; i != 10'000 && !truncated; ++i) {
        c.sub = "user-" + std::to_string(i);
        auto const token = parley::mint_jwt(c, secret);
        auto const mac = parley::base64url_decode(segment(token, 2)).value();
        if (mac.back() == '\0') {
            truncated = token.substr(0, token.rfind('.') + 1) + parley::base64url_encode(mac.substr(0, 31));
        }
    }
    BOOST_REQUIRE(truncated.has_value());
    BOOST_TEST(verify_error(*truncated) == invalid);
}

BOOST_AUTO_TEST_CASE(rejects_every_alg_but_hs256_even_when_correctly_signed) {
    constexpr std::string_view payload = R"({"sub":"u","exp":1700000000})";
    BOOST_REQUIRE(verify_error(sign(std_header, payload)) == error_code{});
    for (std::string_view header :
         {R"({"alg":"none","typ":"JWT"})", R"({"alg":"None"})", R"({"alg":"HS512","typ":"JWT"})",
          R"({"alg":"HS384"})", R"({"alg":"RS256","typ":"JWT"})", R"({"alg":"ES256"})",
          R"({"alg":"hs256"})", R"({"alg":"HS256 "})", R"({"alg":""})", R"({"alg":null})",
          R"({"alg":256})", R"({"alg":["HS256"]})", R"({"typ":"JWT"})", R"({})",
          R"({"ALG":"HS256"})"}) {
        BOOST_TEST_CONTEXT("header " << header) {
            BOOST_TEST(verify_error(sign(header, payload)) == invalid);
        }
    }
}

BOOST_AUTO_TEST_CASE(rejects_unsigned_alg_none_tokens) {
    // The classic attack: alg none and an empty signature.
    auto const h = parley::base64url_encode(R"({"alg":"none","typ":"JWT"})");
    auto const p = parley::base64url_encode(R"({"sub":"admin","exp":1700000000,"perms":["admin"]})");
    BOOST_TEST(verify_error(h + '.' + p + '.') == invalid);
    BOOST_TEST(verify_error(h + '.' + p) == invalid);
}

BOOST_AUTO_TEST_CASE(rejects_crit_headers) {
    constexpr std::string_view payload = R"({"sub":"u","exp":1700000000})";
    BOOST_TEST(verify_error(sign(R"({"alg":"HS256","crit":["b64"],"b64":false})", payload)) == invalid);
    BOOST_TEST(verify_error(sign(R"({"alg":"HS256","crit":[]})", payload)) == invalid);
    BOOST_TEST(verify_error(sign(R"({"alg":"HS256","kid":"k1","typ":"JWT"})", payload)) == error_code{});
}

BOOST_AUTO_TEST_CASE(rejects_headers_that_are_not_json_objects) {
    constexpr std::string_view payload = R"({"sub":"u","exp":1700000000})";
    for (std::string_view header : {"", "HS256", R"({"alg":"HS256")", R"(["HS256"])", R"("HS256")",
                                    "null", R"({"alg":"HS256"} x)"}) {
        BOOST_TEST_CONTEXT("header " << header) {
            BOOST_TEST(verify_error(sign(header, payload)) == invalid);
        }
    }
}

BOOST_AUTO_TEST_CASE(rejects_payloads_that_are_not_json_objects) {
    for (std::string_view payload : {"", "[]", R"("sub")", "1700000000", R"({"sub":"u","exp":1700000000)",
                                     R"({"sub":"u","exp":1700000000,})", "{\"sub\":\"\xff\",\"exp\":1}"}) {
        BOOST_TEST_CONTEXT("payload " << payload) {
            BOOST_TEST(verify_error(sign(std_header, payload)) == invalid);
        }
    }
}

BOOST_AUTO_TEST_CASE(rejects_bad_base64_in_signed_segments) {
    auto const h = parley::base64url_encode(std_header);
    auto const p = parley::base64url_encode(R"({"sub":"u","exp":1700000000})");
    BOOST_REQUIRE(verify_error(sign_segments(h, p)) == error_code{});
    // Signed as-is, so only the decoding can refuse them.
    BOOST_TEST(verify_error(sign_segments(h + "=", p)) == invalid);
    BOOST_TEST(verify_error(sign_segments(h, p + "=")) == invalid);
    BOOST_TEST(verify_error(sign_segments("+" + h.substr(1), p)) == invalid);
    BOOST_TEST(verify_error(sign_segments(h, p.substr(0, p.size() - 1) + "/")) == invalid);
    BOOST_TEST(verify_error(sign_segments(h, p + "AA")) == invalid);  // length 1 mod 4
    BOOST_TEST(verify_error(sign_segments(h, p + "A")) == invalid);   // decodes, then a stray NUL
    BOOST_TEST(verify_error(sign_segments(h, p + "!")) == invalid);
}

BOOST_AUTO_TEST_CASE(rejects_a_wrong_segment_count) {
    auto const token = parley::mint_jwt(full_claims(), secret);
    auto const h = std::string{segment(token, 0)};
    auto const p = std::string{segment(token, 1)};
    auto const s = std::string{segment(token, 2)};
    for (std::string const& bad : {std::string{}, std::string{"."}, std::string{".."},
                                   std::string{"..."}, h, h + '.' + p, h + '.' + p + s,
                                   token + '.', '.' + token, token + '.' + s, h + '.' + p + '.' + s + ".x",
                                   h + ".." + p + '.' + s}) {
        BOOST_TEST_CONTEXT("token " << bad) {
            BOOST_TEST(verify_error(bad) == invalid);
        }
    }
}

BOOST_AUTO_TEST_CASE(rejects_tokens_over_the_size_limit_unread) {
    // Pad "name" until correctly signed tokens of exactly the limit and one
    // byte over it appear.
    std::optional<std::string> at_limit;
    std::optional<std::string> over_limit;
    auto c = full_claims();
    for (std::size_t n = parley::max_jwt_size * 3 / 4 - 200; n != parley::max_jwt_size; ++n) {
        c.name = std::string(n, 'x');
        auto token = parley::mint_jwt(c, secret);
        if (token.size() == parley::max_jwt_size) {
            at_limit = token;
        }
        if (token.size() == parley::max_jwt_size + 1) {
            over_limit = token;
            break;
        }
    }
    BOOST_REQUIRE(at_limit.has_value());
    BOOST_REQUIRE(over_limit.has_value());
    BOOST_TEST(parley::verify_jwt(*at_limit, secret, c.exp).has_value());
    BOOST_TEST(verify_error(*over_limit, c.exp) == invalid);
    BOOST_TEST(verify_error(std::string(1 << 20, 'A'), c.exp) == invalid);
}

BOOST_AUTO_TEST_CASE(expiry_honours_the_leeway_boundary) {
    auto const token = sign_payload(R"("sub":"u","exp":1000)");
    BOOST_TEST(verify_error(token, 0) == error_code{});
    BOOST_TEST(verify_error(token, 1000, 0) == error_code{});  // exp + 0 == now: still valid
    BOOST_TEST(verify_error(token, 1001, 0) == expired);
    BOOST_TEST(verify_error(token, 1030, 30) == error_code{});
    BOOST_TEST(verify_error(token, 1031, 30) == expired);
    // The default leeway is 30 s.
    BOOST_TEST(error_of(parley::verify_jwt(token, secret, 1030)) == error_code{});
    BOOST_TEST(error_of(parley::verify_jwt(token, secret, 1031)) == expired);
    // Expired is reported only for otherwise valid tokens.
    BOOST_TEST(verify_error(sign_payload(R"("sub":"","exp":1000)"), 5000) == invalid);
    BOOST_TEST(verify_error(token, 5000, 0) == expired);
}

BOOST_AUTO_TEST_CASE(expiry_arithmetic_does_not_overflow) {
    auto const max = i64_limits::max();
    auto const min = i64_limits::min();
    auto const far = sign_payload(R"("sub":"u","exp":9223372036854775807)");
    BOOST_TEST(verify_error(far, max, 30) == error_code{});
    BOOST_TEST(verify_error(far, max, max) == error_code{});
    auto const ancient = sign_payload(R"("sub":"u","exp":-9223372036854775808)");
    BOOST_TEST(verify_error(ancient, min, 30) == error_code{});       // now - leeway underflows
    BOOST_TEST(verify_error(ancient, min + 30, 30) == error_code{});  // exp + 30 == now
    BOOST_TEST(verify_error(ancient, min + 31, 30) == expired);
    BOOST_TEST(verify_error(ancient, 0, max) == expired);
}

BOOST_AUTO_TEST_CASE(nbf_must_not_be_beyond_now_plus_leeway) {
    auto const token = sign_payload(R"("sub":"u","exp":5000,"nbf":2000)");
    BOOST_TEST(verify_error(token, 2000, 0) == error_code{});
    BOOST_TEST(verify_error(token, 1999, 0) == invalid);
    BOOST_TEST(verify_error(token, 1970, 30) == error_code{});
    BOOST_TEST(verify_error(token, 1969, 30) == invalid);
    BOOST_TEST(verify_error(token, 1969) == invalid);  // default leeway 30
    auto const max = i64_limits::max();
    auto const late = sign_payload(R"("sub":"u","exp":9223372036854775807,"nbf":9223372036854775807)");
    BOOST_TEST(verify_error(late, max, 30) == error_code{});  // now + leeway overflows
    BOOST_TEST(verify_error(late, max - 30, 30) == error_code{});
    BOOST_TEST(verify_error(late, max - 31, 30) == invalid);
    BOOST_TEST(verify_error(sign_payload(R"("sub":"u","exp":5000,"nbf":"2000")"), 3000) == invalid);
    BOOST_TEST(verify_error(sign_payload(R"("sub":"u","exp":5000,"nbf":2000.5)"), 3000) == invalid);
}

BOOST_AUTO_TEST_CASE(rejects_missing_or_mistyped_sub) {
    auto const sub_of = [](std::string const& json) {
        return verify_error(sign_payload("\"exp\":1700000000" + json));
    };
    BOOST_TEST(sub_of("") == invalid);
    BOOST_TEST(sub_of(R"(,"sub":"")") == invalid);
    BOOST_TEST(sub_of(R"(,"sub":42)") == invalid);
    BOOST_TEST(sub_of(R"(,"sub":null)") == invalid);
    BOOST_TEST(sub_of(R"(,"sub":["u"])") == invalid);
    BOOST_TEST(sub_of(R"(,"sub":{"id":"u"})") == invalid);
    BOOST_TEST(sub_of(R"(,"Sub":"u")") == invalid);
    BOOST_TEST(sub_of(",\"sub\":\"" + std::string(255, 'u') + '"') == error_code{});
    BOOST_TEST(sub_of(",\"sub\":\"" + std::string(256, 'u') + '"') == invalid);
}

BOOST_AUTO_TEST_CASE(rejects_missing_or_mistyped_exp) {
    auto const exp_of = [](std::string const& json) {
        return verify_error(sign_payload("\"sub\":\"u\"" + json), 0);
    };
    BOOST_TEST(exp_of(R"(,"exp":1700000000)") == error_code{});
    BOOST_TEST(exp_of("") == invalid);
    BOOST_TEST(exp_of(R"(,"exp":"1700000000")") == invalid);
    BOOST_TEST(exp_of(R"(,"exp":1700000000.0)") == invalid);
    BOOST_TEST(exp_of(R"(,"exp":1.7e9)") == invalid);
    BOOST_TEST(exp_of(R"(,"exp":9223372036854775808)") == invalid);  // above INT64_MAX
    BOOST_TEST(exp_of(R"(,"exp":true)") == invalid);
    BOOST_TEST(exp_of(R"(,"exp":null)") == invalid);
    BOOST_TEST(exp_of(R"(,"exp":[1700000000])") == invalid);
}

BOOST_AUTO_TEST_CASE(rejects_mistyped_optional_claims) {
    auto const with = [](std::string_view json) {
        return verify_error(sign_payload(R"("sub":"u","exp":1700000000,)" + std::string{json}));
    };
    BOOST_TEST(with(R"("perms":[])") == error_code{});
    BOOST_TEST(with(R"("perms":["a","b"])") == error_code{});
    BOOST_TEST(with(R"("perms":"admin")") == invalid);
    BOOST_TEST(with(R"("perms":["admin",1])") == invalid);
    BOOST_TEST(with(R"("perms":[null])") == invalid);
    BOOST_TEST(with(R"("perms":[["admin"]])") == invalid);
    BOOST_TEST(with(R"("perms":{"admin":true})") == invalid);
    BOOST_TEST(with(R"("perms":null)") == invalid);
    BOOST_TEST(with(R"("lang":"en")") == error_code{});
    BOOST_TEST(with(R"("lang":1)") == invalid);
    BOOST_TEST(with(R"("lang":null)") == invalid);
    BOOST_TEST(with(R"("name":["x"])") == invalid);
    BOOST_TEST(with(R"("iat":1699996400)") == error_code{});
    BOOST_TEST(with(R"("iat":"1699996400")") == invalid);
    BOOST_TEST(with(R"("iat":1.5)") == invalid);
}

BOOST_AUTO_TEST_CASE(reports_errors_in_the_parley_category) {
    auto const r = parley::verify_jwt("x.y.z", secret, now);
    BOOST_REQUIRE(r.has_error());
    BOOST_TEST((r.error() == parley::errc::invalid_token));
    BOOST_TEST(std::string{r.error().category().name()} == "parley");
}

BOOST_AUTO_TEST_SUITE_END()
