#include "app/cli.hpp"

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto env = [](std::string_view name) -> std::optional<std::string> {
        if (char const* v = std::getenv(std::string{name}.c_str())) return std::string{v};
        return std::nullopt;
    };
    return parley::app::run_cli(args, env, std::cout, std::cerr);
}
