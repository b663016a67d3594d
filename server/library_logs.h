// gRPC's and protobuf's own log lines, in the daemon's log.
//
// Both libraries write to stderr in formats of their own by default: a
// line that is not JSON in a --log-format=json log, and one line per event
// however many there are. A client can cause many: every failed TLS
// handshake (gRPC logs each at ERROR), every request with a string field
// that is not UTF-8 (protobuf logs each parse failure; request_decoding.h
// already answers it INVALID_ARGUMENT). RouteLibraryLogs installs a log
// function in each library (gpr_set_log_function, protobuf's
// SetLogHandler) that writes through shared/log.h, with the library and the
// source line as fields, and at most one line a second per source line
// (shared/log_rate_limit.h: a source line is a bounded key), the next one
// saying how many were left out. Called once by each process that uses
// gRPC, after the fork (a handler); the supervisor includes no gRPC header.
#ifndef COUNTERSD_SERVER_LIBRARY_LOGS_H_
#define COUNTERSD_SERVER_LIBRARY_LOGS_H_

namespace countersd {

void RouteLibraryLogs();

}  // namespace countersd

#endif  // COUNTERSD_SERVER_LIBRARY_LOGS_H_
