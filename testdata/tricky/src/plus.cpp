#include <map>
#include <string>
#include <vector>

namespace {
template <typename T> T twice(const T &v) { return v + v; }
}

std::string plus_describe(const std::vector<int> &xs)
{
    std::map<int, std::string> names{{1, "one"}, {2, "two"}};
    std::string out = __FILE__;
    for (int x : xs)
        out += names.count(x) ? names[x] : twice(std::to_string(x));
    return out;
}
