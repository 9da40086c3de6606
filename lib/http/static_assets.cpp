#include "http/static_assets.hpp"

#include <array>
#include <cassert>
#include <string>

#include "http/detail/embedded_files.hpp"

namespace vapor::http {
namespace {

/// Where each embedded file (named as lib/http/CMakeLists.txt embeds it) is served, and as what.
struct AssetSource {
  std::string_view path;
  std::string_view file;
  std::string_view content_type;
};

constexpr std::array<AssetSource, 7> sources{{
    {"/", "index.html", "text/html; charset=utf-8"},
    {"/assets/app.js", "app.js", "text/javascript; charset=utf-8"},
    {"/assets/curves.js", "curves.js", "text/javascript; charset=utf-8"},
    {"/assets/format.js", "format.js", "text/javascript; charset=utf-8"},
    {"/assets/app.css", "app.css", "text/css; charset=utf-8"},
    {"/assets/uplot.js", "uPlot.iife.min.js", "text/javascript; charset=utf-8"},
    {"/assets/uplot.css", "uPlot.min.css", "text/css; charset=utf-8"},
}};

/// The served assets, built once from the embedded files (the ETag strings live here).
struct Catalog {
  std::array<std::string, sources.size()> etags;
  std::array<StaticAsset, sources.size()> assets;
};

Catalog build_catalog() {
  Catalog catalog;
  const auto files = detail::embedded_files();
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const AssetSource& source = sources[i];
    const detail::EmbeddedFile* found = nullptr;
    for (const detail::EmbeddedFile& file : files) {
      if (file.name == source.file) found = &file;
    }
    assert(found != nullptr && "lib/http/CMakeLists.txt embeds every file listed in sources");
    if (found == nullptr) continue;
    catalog.etags[i] = "\"" + std::string(found->sha256.substr(0, 32)) + "\"";
    catalog.assets[i] = StaticAsset{
        source.path, source.content_type, catalog.etags[i],
        std::string_view(reinterpret_cast<const char*>(found->data), found->size)};
  }
  return catalog;
}

const Catalog& catalog() {
  static const Catalog built = build_catalog();
  return built;
}

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

}  // namespace

const StaticAsset* find_static_asset(std::string_view path) {
  for (const StaticAsset& asset : catalog().assets) {
    if (!asset.path.empty() && asset.path == path) return &asset;
  }
  return nullptr;
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  while (!if_none_match.empty()) {
    const auto comma = if_none_match.find(',');
    std::string_view candidate = trim(if_none_match.substr(0, comma));
    if_none_match =
        comma == std::string_view::npos ? std::string_view{} : if_none_match.substr(comma + 1);
    if (candidate == "*") return true;
    if (candidate.starts_with("W/")) candidate.remove_prefix(2);
    if (!candidate.empty() && candidate == etag) return true;
  }
  return false;
}

}  // namespace vapor::http
