#include <crew/registry.hpp>

#include <stdexcept>

namespace crew {

void registry::insert(entry e) {
  auto name = e.info.name;
  if (!entries_.emplace(name, std::move(e)).second)
    throw std::invalid_argument("crew::registry: job '" + name + "' is registered twice");
}

const registry::entry* registry::find(std::string_view name) const noexcept {
  auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<job_info> registry::jobs() const {
  std::vector<job_info> out;
  out.reserve(entries_.size());
  for (const auto& [name, e] : entries_)
    out.push_back(e.info);
  return out;
}

const registry::entry& registry::lookup(const std::string& name, const std::string& signature,
                                        const std::type_info& type) const {
  const entry* e = find(name);
  if (!e) throw task_error(make_error_code(errc::unknown_job), "no job named '" + name + "'");
  if (e->signature_type != std::type_index(type))
    throw task_error(
        make_error_code(errc::signature_mismatch),
        "job '" + name + "' is registered as " + e->info.signature + ", called as " + signature);
  return *e;
}

}  // namespace crew
