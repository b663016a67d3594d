// The C ABI (countersd_local.h) over countersd::local::LocalTable.
#include "client/local/countersd_local.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "client/local/local_table.h"

struct countersd_local {
  std::unique_ptr<countersd::local::LocalTable> table;
};

namespace {

thread_local std::string g_last_error;

int Fail(const absl::Status& s) {
  g_last_error.assign(s.message().data(), s.message().size());
  return static_cast<int>(s.code());
}

std::string_view Key(const char* key, size_t len) {
  return key == nullptr ? std::string_view() : std::string_view(key, len);
}

}  // namespace

// The library is built with hidden visibility: only these are exported.
#pragma GCC visibility push(default)
extern "C" {

countersd_local* countersd_attach2(const char* data_dir, int* code, char* err, size_t err_len) {
  auto t = countersd::local::LocalTable::Attach(data_dir == nullptr ? "" : data_dir);
  if (code != nullptr) *code = static_cast<int>(t.status().code());
  if (!t.ok()) {
    Fail(t.status());
    if (err != nullptr && err_len > 0) {
      const size_t n = std::min(err_len - 1, g_last_error.size());
      std::memcpy(err, g_last_error.data(), n);
      err[n] = '\0';
    }
    return nullptr;
  }
  return new countersd_local{*std::move(t)};
}

countersd_local* countersd_attach(const char* data_dir, char* err, size_t err_len) {
  return countersd_attach2(data_dir, nullptr, err, err_len);
}

void countersd_detach(countersd_local* t) { delete t; }

int countersd_increment(countersd_local* t, const char* key, size_t key_len, int64_t delta,
                        int64_t* value) {
  absl::StatusOr<int64_t> v = t->table->Increment(Key(key, key_len), delta);
  if (!v.ok()) return Fail(v.status());
  if (value != nullptr) *value = *v;
  return 0;
}

int countersd_get(countersd_local* t, const char* key, size_t key_len, int64_t* value) {
  absl::StatusOr<int64_t> v = t->table->Get(Key(key, key_len));
  if (!v.ok()) return Fail(v.status());
  if (value != nullptr) *value = *v;
  return 0;
}

int countersd_set(countersd_local* t, const char* key, size_t key_len, int64_t value,
                  int64_t* previous, int* had_previous) {
  absl::StatusOr<std::optional<int64_t>> v = t->table->Set(Key(key, key_len), value);
  if (!v.ok()) return Fail(v.status());
  if (previous != nullptr) *previous = v->value_or(0);
  if (had_previous != nullptr) *had_previous = v->has_value() ? 1 : 0;
  return 0;
}

int countersd_compare_and_set(countersd_local* t, const char* key, size_t key_len,
                              int64_t expected, int64_t value, int* applied, int64_t* current) {
  auto r = t->table->CompareAndSet(Key(key, key_len), expected, value);
  if (!r.ok()) return Fail(r.status());
  if (applied != nullptr) *applied = r->applied ? 1 : 0;
  if (current != nullptr) *current = r->value;
  return 0;
}

int countersd_delete(countersd_local* t, const char* key, size_t key_len, int64_t* previous) {
  absl::StatusOr<int64_t> v = t->table->Delete(Key(key, key_len));
  if (!v.ok()) return Fail(v.status());
  if (previous != nullptr) *previous = *v;
  return 0;
}

int countersd_increment_batch(countersd_local* t, const countersd_key_delta* ops, size_t n,
                              int64_t* values) {
  static thread_local std::vector<countersd::local::LocalTable::KeyDelta> batch;
  batch.clear();
  for (size_t i = 0; i < n; ++i) batch.push_back({Key(ops[i].key, ops[i].key_len), ops[i].delta});
  absl::StatusOr<std::vector<int64_t>> v = t->table->IncrementBatch(batch);
  if (!v.ok()) return Fail(v.status());
  if (values != nullptr) std::copy(v->begin(), v->end(), values);
  return 0;
}

int countersd_batch_get(countersd_local* t, const char* const* keys, const size_t* key_lens,
                        size_t n, int64_t* values, int* found) {
  static thread_local std::vector<std::string_view> batch;
  batch.clear();
  for (size_t i = 0; i < n; ++i) batch.push_back(Key(keys[i], key_lens[i]));
  auto v = t->table->BatchGet(batch);
  if (!v.ok()) return Fail(v.status());
  for (size_t i = 0; i < n; ++i) {
    if (values != nullptr) values[i] = (*v)[i].value_or(0);
    if (found != nullptr) found[i] = (*v)[i].has_value() ? 1 : 0;
  }
  return 0;
}

uint32_t countersd_attach_slot(const countersd_local* t) { return t->table->slot(); }

const char* countersd_last_error(void) { return g_last_error.c_str(); }

}  // extern "C"
#pragma GCC visibility pop
