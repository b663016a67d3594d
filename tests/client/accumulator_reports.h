// Reports: what an Accumulator's on_error callback told a test, kept for
// its assertions (thread-safe: the flusher calls it). For the Accumulator's
// tests on the fake server and against the daemon.
#ifndef COUNTERSD_TESTS_CLIENT_ACCUMULATOR_REPORTS_H_
#define COUNTERSD_TESTS_CLIENT_ACCUMULATOR_REPORTS_H_

#include <functional>
#include <mutex>
#include <vector>

#include "client/accumulator.h"

namespace countersd::testing {

class Reports {
 public:
  std::function<void(const AccumulatorError&)> Callback() {
    return [this](const AccumulatorError& e) {
      std::lock_guard lock(mu_);
      errors_.push_back(e);
    };
  }
  std::vector<AccumulatorError> Of(AccumulatorError::Kind kind) const {
    std::lock_guard lock(mu_);
    std::vector<AccumulatorError> out;
    for (const AccumulatorError& e : errors_) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return errors_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<AccumulatorError> errors_;
};

}  // namespace countersd::testing

#endif  // COUNTERSD_TESTS_CLIENT_ACCUMULATOR_REPORTS_H_
