#!/usr/bin/python3
"""countersd interop client: an independent gRPC stack against the contract.

Runs under Debian's python3-grpcio (gRPC Core via Python, protobuf's Python
runtime), with stubs that the caller generated from proto/counters/v1 and
tests/interop/protos at test time, so any drift between the server and the
.proto in the repository shows up here.

Usage:
  interop_client.py --address HOST:PORT --stubs DIR [--handlers N]
                    [--capacity N] [--max-batch N]
                    [--token T --read-token T] CHECK...

Each CHECK is one of the functions named check_* below, without the prefix.
Every call has a deadline. Exit status 0 when every check passed; 1 with a
message naming the failed expectation otherwise.
"""

import argparse
import sys
import threading

DEADLINE = 30.0  # seconds, per call; generous for a loaded 2-core machine


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_eq(got, want, what):
    if got != want:
        raise CheckFailed(f"{what}: got {got!r}, want {want!r}")


def open_channel(grpc, args, options):
    """Plaintext, or TLS with --cacert (and mTLS with --cert and --key)."""
    if not args.cacert:
        return grpc.insecure_channel(args.address, options=options)
    def read(path):
        with open(path, "rb") as f:
            return f.read()
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(args.cacert),
        private_key=read(args.key) if args.key else None,
        certificate_chain=read(args.cert) if args.cert else None)
    return grpc.secure_channel(args.address, creds, options=options)


def check_tls_refusals(args):
    """Under mTLS: a TLS client without a certificate is refused; under TLS,
    a plaintext client is refused. Needs --cacert."""
    import grpc
    from counters.v1 import counters_pb2, counters_pb2_grpc
    request = counters_pb2.GetStatsRequest()
    plain = grpc.insecure_channel(args.address)
    try:
        counters_pb2_grpc.CounterServiceStub(plain).GetStats(request, timeout=DEADLINE)
        raise CheckFailed("a plaintext client was served by a TLS server")
    except grpc.RpcError as e:
        expect_eq(e.code(), grpc.StatusCode.UNAVAILABLE, "plaintext client's status")
    plain.close()
    if args.cert:
        with open(args.cacert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        nocert = grpc.secure_channel(args.address, creds)
        try:
            counters_pb2_grpc.CounterServiceStub(nocert).GetStats(request, timeout=DEADLINE)
            raise CheckFailed("a client without a certificate was served under mTLS")
        except grpc.RpcError as e:
            expect_eq(e.code(), grpc.StatusCode.UNAVAILABLE, "certificate-less client's status")
        nocert.close()


class Client:
    """One channel (own TCP connection) and the stubs on it."""

    def __init__(self, args, own_connection=False, token=None):
        import grpc
        from counters.v1 import counters_pb2, counters_pb2_grpc

        options = [("grpc.use_local_subchannel_pool", 1)] if own_connection else []
        self.grpc = grpc
        self.pb = counters_pb2
        self.channel = open_channel(grpc, args, options)
        self.stub = counters_pb2_grpc.CounterServiceStub(self.channel)
        # A bearer token goes in each call's metadata, as the C++ client sends it.
        self.metadata = [("authorization", f"Bearer {token}")] if token else None

    def close(self):
        self.channel.close()

    def call(self, method, request):
        return getattr(self.stub, method)(request, timeout=DEADLINE, metadata=self.metadata)

    def expect_code(self, code, method, request, what):
        """Calls and expects the call to fail with `code`; returns the error."""
        try:
            response = self.call(method, request)
        except self.grpc.RpcError as e:
            if e.code() != code:
                raise CheckFailed(f"{what}: {method} failed with {e.code()} "
                                  f"({e.details()!r}), want {code}")
            expect(e.details(), f"{what}: {code} without a message")
            return e
        raise CheckFailed(f"{what}: {method} succeeded ({response!r}), want {code}")

    def get(self, key):
        return self.call("Get", self.pb.GetRequest(key=key)).value

    def inc(self, key, delta=None):
        req = self.pb.IncrementRequest(key=key)
        if delta is not None:
            req.delta = delta
        return self.call("Increment", req).value


# ---------------------------------------------------------------- checks


def check_concurrent_increments(args):
    """Threads, each on its own connection, increment shared keys with single
    and batched increments; the totals read back are exact."""
    threads, per_thread, nkeys = 8, 400, 10
    keys = [f"py/concurrent/{i}" for i in range(nkeys)]
    errors = []

    def worker(t):
        c = Client(args, own_connection=True)
        try:
            for i in range(per_thread):
                key = keys[(t + i) % nkeys]
                if i % 3 == 0:
                    c.inc(key)  # delta absent: +1
                else:
                    c.inc(key, (i % 5) + 1)
            # One atomic batch per thread touching every key twice.
            ops = [c.pb.IncrementRequest(key=k, delta=2) for k in keys + keys]
            values = c.call("IncrementBatch",
                            c.pb.IncrementBatchRequest(increments=ops)).values
            expect_eq(len(values), len(ops), "IncrementBatch values")
        except Exception as e:  # reported by the main thread
            errors.append(f"thread {t}: {e!r}")
        finally:
            c.close()

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    expect(not errors, "; ".join(errors))

    want = {k: 0 for k in keys}
    for t in range(threads):
        for i in range(per_thread):
            want[keys[(t + i) % nkeys]] += 1 if i % 3 == 0 else (i % 5) + 1
        for k in keys:
            want[k] += 4
    c = Client(args)
    for k in keys:
        expect_eq(c.get(k), want[k], f"Get({k})")
    got = c.call("BatchGet", c.pb.BatchGetRequest(keys=keys)).counters
    expect_eq([(x.key, x.value, x.found) for x in got],
              [(k, want[k], True) for k in keys], "BatchGet")
    listed = c.call("List", c.pb.ListRequest(prefix="py/concurrent/")).counters
    expect_eq({x.key: x.value for x in listed}, want, "List")
    if args.handlers > 1:
        stats = c.call("GetStats", c.pb.GetStatsRequest())
        served = [h for h in stats.handlers if h.calls > 0]
        print(f"handlers that served calls: {len(served)} of {len(stats.handlers)}")
    c.close()


def check_status_codes(args):
    """Every error code of the contract, as Python's gRPC stack sees it."""
    c = Client(args)
    pb, codes = c.pb, c.grpc.StatusCode

    # INVALID_ARGUMENT: bad keys, on every RPC that takes one.
    bad_keys = {"empty": "", "control char": "a\x01b", "DEL": "a\x7fb",
                "C1 control": "a\u0085b", "161 bytes": "k" * 161,
                "161 bytes of UTF-8": "é" * 80 + "k"}
    for name, key in bad_keys.items():
        for method, req in [("Increment", pb.IncrementRequest(key=key)),
                            ("Get", pb.GetRequest(key=key)),
                            ("Set", pb.SetRequest(key=key, value=1)),
                            ("CompareAndSet", pb.CompareAndSetRequest(key=key)),
                            ("Delete", pb.DeleteRequest(key=key))]:
            c.expect_code(codes.INVALID_ARGUMENT, method, req, f"{method} {name} key")
    expect_eq(c.inc("k" * 160), 1, "Increment of a 160-byte key")
    expect_eq(c.inc("é" * 80), 1, "Increment of a 160-byte UTF-8 key")
    expect_eq(c.inc("py/ключ/計数"), 1, "Increment of a multi-byte UTF-8 key")
    c.expect_code(codes.INVALID_ARGUMENT, "BatchGet",
                  pb.BatchGetRequest(keys=["py/ok", ""]), "BatchGet with a bad key")
    c.expect_code(codes.INVALID_ARGUMENT, "List", pb.ListRequest(page_size=-1),
                  "List with a negative page_size")

    # NOT_FOUND: Get and Delete of a missing counter.
    c.expect_code(codes.NOT_FOUND, "Get", pb.GetRequest(key="py/missing"), "Get missing")
    c.expect_code(codes.NOT_FOUND, "Delete", pb.DeleteRequest(key="py/missing"),
                  "Delete missing")

    # OUT_OF_RANGE: overflow both ways; the counter keeps its value.
    top, bottom = 2**63 - 1, -(2**63)
    c.call("Set", pb.SetRequest(key="py/max", value=top))
    c.expect_code(codes.OUT_OF_RANGE, "Increment", pb.IncrementRequest(key="py/max"),
                  "Increment past INT64_MAX")
    expect_eq(c.get("py/max"), top, "value after a refused overflow")
    c.call("Set", pb.SetRequest(key="py/min", value=bottom))
    c.expect_code(codes.OUT_OF_RANGE, "Increment",
                  pb.IncrementRequest(key="py/min", delta=-1), "Increment past INT64_MIN")
    expect_eq(c.get("py/min"), bottom, "value after a refused underflow")

    # Batches: all or nothing.
    def batch(*ops):
        return pb.IncrementBatchRequest(
            increments=[pb.IncrementRequest(key=k, delta=d) for k, d in ops])
    c.expect_code(codes.INVALID_ARGUMENT, "IncrementBatch", batch(), "empty batch")
    c.expect_code(codes.INVALID_ARGUMENT, "IncrementBatch",
                  batch(("py/batch/a", 1), ("", 1)), "batch with a bad key")
    c.expect_code(codes.OUT_OF_RANGE, "IncrementBatch",
                  batch(("py/batch/a", 1), ("py/max", 1)), "batch that overflows")
    c.expect_code(codes.NOT_FOUND, "Get", pb.GetRequest(key="py/batch/a"),
                  "a refused batch applied nothing")
    if args.max_batch:
        ops = [(f"py/batch/{i % 7}", 1) for i in range(args.max_batch + 1)]
        c.expect_code(codes.RESOURCE_EXHAUSTED, "IncrementBatch", batch(*ops),
                      f"batch of --max-batch + 1 = {len(ops)}")
        c.expect_code(codes.NOT_FOUND, "Get", pb.GetRequest(key="py/batch/0"),
                      "an oversized batch applied nothing")
        c.expect_code(codes.RESOURCE_EXHAUSTED, "BatchGet",
                      pb.BatchGetRequest(keys=["py/x"] * (args.max_batch + 1)),
                      "BatchGet of --max-batch + 1 keys")
        values = c.call("IncrementBatch", batch(*ops[:-1])).values
        expect_eq(len(values), args.max_batch, "batch of exactly --max-batch")
    c.close()


def check_optional_fields(args):
    """proto3 `optional`: presence travels over the wire."""
    c = Client(args)
    pb = c.pb
    # Increment: delta absent means 1; delta present and 0 means 0.
    expect_eq(c.inc("py/opt/inc"), 1, "Increment with delta absent")
    expect_eq(c.inc("py/opt/inc", 0), 1, "Increment with delta 0 (present)")
    expect_eq(c.inc("py/opt/inc", -5), -4, "Increment with delta -5")
    expect_eq(c.inc("py/opt/inc"), -3, "Increment with delta absent again")

    # Set: previous_value absent for a new counter, present (even when 0)
    # for an existing one.
    r = c.call("Set", pb.SetRequest(key="py/opt/set", value=0))
    expect(not r.HasField("previous_value"), "Set of a new counter has no previous_value")
    r = c.call("Set", pb.SetRequest(key="py/opt/set", value=42))
    expect(r.HasField("previous_value"), "Set of a counter holding 0 has previous_value")
    expect_eq(r.previous_value, 0, "previous_value")
    r = c.call("Set", pb.SetRequest(key="py/opt/set", value=-1))
    expect_eq((r.HasField("previous_value"), r.previous_value), (True, 42), "previous_value")
    c.close()


def check_api_roundtrip(args):
    """The rest of the API table, field by field."""
    c = Client(args)
    pb = c.pb
    # CompareAndSet: a missing counter counts as 0, and is created only when
    # the swap applies.
    r = c.call("CompareAndSet", pb.CompareAndSetRequest(key="py/cas/miss", expected=1, value=9))
    expect_eq((r.applied, r.value), (False, 0), "CAS on a missing counter, expected 1")
    c.expect_code(c.grpc.StatusCode.NOT_FOUND, "Get", pb.GetRequest(key="py/cas/miss"),
                  "a CAS that did not apply created nothing")
    r = c.call("CompareAndSet", pb.CompareAndSetRequest(key="py/cas", expected=0, value=5))
    expect_eq((r.applied, r.value), (True, 5), "CAS on a missing counter, expected 0")
    r = c.call("CompareAndSet", pb.CompareAndSetRequest(key="py/cas", expected=4, value=6))
    expect_eq((r.applied, r.value), (False, 5), "CAS with a stale expected value")

    # Delete returns the previous value and removes the counter.
    c.inc("py/del", 17)
    r = c.call("Delete", pb.DeleteRequest(key="py/del"))
    expect_eq(r.previous_value, 17, "Delete previous_value")
    c.expect_code(c.grpc.StatusCode.NOT_FOUND, "Get", pb.GetRequest(key="py/del"),
                  "Get after Delete")

    # IncrementBatch: values[i] is the value after increments[i]; a key may
    # repeat and its increments apply in order.
    r = c.call("IncrementBatch", pb.IncrementBatchRequest(increments=[
        pb.IncrementRequest(key="py/b/x", delta=3),
        pb.IncrementRequest(key="py/b/y"),
        pb.IncrementRequest(key="py/b/x", delta=-1)]))
    expect_eq(list(r.values), [3, 1, 2], "IncrementBatch values")

    # BatchGet: one entry per key, in request order, found flags.
    r = c.call("BatchGet", pb.BatchGetRequest(keys=["py/b/y", "py/b/none", "py/b/x"]))
    expect_eq([(x.key, x.value, x.found) for x in r.counters],
              [("py/b/y", 1, True), ("py/b/none", 0, False), ("py/b/x", 2, True)],
              "BatchGet")

    # List: sorted bytewise, stable paging by last key.
    names = ["py/list/b", "py/list/a", "py/list/c", "py/list/ab", "py/list/é"]
    for i, k in enumerate(names):
        c.call("Set", pb.SetRequest(key=k, value=i))
    seen, token, pages = [], "", 0
    while True:
        r = c.call("List", pb.ListRequest(prefix="py/list/", page_size=2, page_token=token))
        expect(len(r.counters) <= 2, "List page larger than page_size")
        seen += [x.key for x in r.counters]
        pages += 1
        expect(pages < 10, "List paging does not end")
        if not r.next_page_token:
            break
        token = r.next_page_token
    expect_eq(seen, sorted(names, key=lambda s: s.encode()), "List order")

    # Snapshot: a durable generation that increases.
    s1 = c.call("Snapshot", pb.SnapshotRequest())
    s2 = c.call("Snapshot", pb.SnapshotRequest())
    expect(s2.generation > s1.generation, f"Snapshot generations {s1.generation}, {s2.generation}")
    expect(s2.counters >= len(names), f"Snapshot counters {s2.counters}")
    expect(s2.bytes > 0, "Snapshot bytes")

    # GetStats.
    st = c.call("GetStats", pb.GetStatsRequest())
    expect_eq(len(st.handlers), args.handlers, "GetStats handlers")
    expect(st.served_by_pid in [h.pid for h in st.handlers], "served_by_pid is a handler")
    if args.capacity:
        expect_eq(st.capacity, args.capacity, "GetStats capacity")
    expect(st.used >= len(names), f"GetStats used {st.used}")
    expect(st.last_snapshot_generation >= s2.generation, "GetStats last_snapshot_generation")
    expect(st.last_snapshot_unix_seconds > 0, "GetStats last_snapshot_unix_seconds")
    c.close()


def check_health(args):
    """grpc.health.v1.Health, as Kubernetes gRPC probes call it."""
    import grpc
    from health.v1 import health_pb2, health_pb2_grpc
    channel = grpc.insecure_channel(args.address)
    stub = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    for service in ["", "counters.v1.CounterService"]:
        r = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE)
        expect_eq(r.status, serving, f"Health.Check({service!r})")
    try:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=DEADLINE)
        raise CheckFailed("Health.Check of an unknown service succeeded")
    except grpc.RpcError as e:
        expect_eq(e.code(), grpc.StatusCode.NOT_FOUND, "Health.Check of an unknown service")
    # Watch streams the current status first (and later changes).
    for service, want in [("", serving),
                          ("no.such.Service", health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)]:
        stream = stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=DEADLINE)
        first = next(stream)
        expect_eq(first.status, want, f"Health.Watch({service!r}) first status")
        stream.cancel()
    channel.close()


def check_reflection(args):
    """Server reflection describes the same service as the repository's proto."""
    import grpc
    from google.protobuf import descriptor_pb2
    from counters.v1 import counters_pb2
    from reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    channel = grpc.insecure_channel(args.address)
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                reflection_pb2.ServerReflectionRequest(
                    file_containing_symbol="counters.v1.CounterService")]
    responses = list(stub.ServerReflectionInfo(iter(requests), timeout=DEADLINE))
    expect_eq(len(responses), 2, "reflection responses")
    services = {s.name for s in responses[0].list_services_response.service}
    for want in ["counters.v1.CounterService", "grpc.health.v1.Health"]:
        expect(want in services, f"reflection lists {want} (got {sorted(services)})")

    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in responses[1].file_descriptor_response.file_descriptor_proto]
    served = {f.name: f for f in files}
    expect("counters/v1/counters.proto" in served,
           f"reflection serves counters/v1/counters.proto (got {sorted(served)})")
    ours = descriptor_pb2.FileDescriptorProto()
    counters_pb2.DESCRIPTOR.CopyToProto(ours)
    theirs = served["counters/v1/counters.proto"]

    def shape(fd):
        methods = {(m.name, m.input_type, m.output_type)
                   for s in fd.service for m in s.method}
        fields = {(msg.name, f.name, f.number, f.type, f.label, f.proto3_optional)
                  for msg in fd.message_type for f in msg.field}
        return methods, fields
    expect_eq(shape(theirs), shape(ours), "the served counters.proto differs from the repo's")
    channel.close()


def check_tokens(args):
    """Bearer tokens against a daemon with --auth-file: --token may write
    under py/ only, --read-token may only read; none is UNAUTHENTICATED."""
    import grpc
    expect(args.token and args.read_token, "tokens needs --token and --read-token")
    anonymous = Client(args)
    anonymous.expect_code(grpc.StatusCode.UNAUTHENTICATED, "Increment",
                          anonymous.pb.IncrementRequest(key="py/a"), "no token")
    wrong = Client(args, token="not-a-token")
    wrong.expect_code(grpc.StatusCode.UNAUTHENTICATED, "Get",
                      wrong.pb.GetRequest(key="py/a"), "unknown token")
    w = Client(args, token=args.token)
    expect_eq(w.inc("py/a", 5), 5, "scoped writer's Increment")
    expect_eq(w.inc("py/b"), 1, "scoped writer's Increment")
    e = w.expect_code(grpc.StatusCode.PERMISSION_DENIED, "Increment",
                      w.pb.IncrementRequest(key="elsewhere"), "out-of-scope Increment")
    expect("elsewhere" in e.details(), f"the denial names the key: {e.details()!r}")
    batch = w.pb.IncrementBatchRequest(increments=[w.pb.IncrementRequest(key="py/a", delta=1),
                                                   w.pb.IncrementRequest(key="x", delta=1)])
    w.expect_code(grpc.StatusCode.PERMISSION_DENIED, "IncrementBatch", batch,
                  "a batch with an out-of-scope key")
    expect_eq(w.get("py/a"), 5, "the refused batch applied nothing")
    listing = w.call("List", w.pb.ListRequest(prefix=""))
    expect_eq([c.key for c in listing.counters], ["py/a", "py/b"], "List of the whole scope")
    # A stream: an out-of-scope message is refused alone; the stream goes on.
    answers = list(w.stub.IncrementStream(
        stream_messages(w.pb, [(1, [("py/a", 1)]), (2, [("py/a", 1), ("x", 1)]),
                               (3, [("py/b", 1)])]),
        timeout=DEADLINE, metadata=w.metadata))
    expect_eq([a.code for a in answers],
              [0, grpc.StatusCode.PERMISSION_DENIED.value[0], 0], "scoped writer's stream")
    expect_eq((w.get("py/a"), w.get("py/b")), (6, 2), "the refused message applied nothing")
    r = Client(args, token=args.read_token)
    expect_eq(r.get("py/a"), 6, "reader's Get")
    r.expect_code(grpc.StatusCode.PERMISSION_DENIED, "Increment",
                  r.pb.IncrementRequest(key="py/a"), "reader's Increment")
    try:
        list(r.stub.IncrementStream(stream_messages(r.pb, [(1, [("py/a", 1)])]),
                                    timeout=DEADLINE, metadata=r.metadata))
        raise CheckFailed("a reader's IncrementStream ended OK")
    except grpc.RpcError as e:
        expect_eq(e.code(), grpc.StatusCode.PERMISSION_DENIED, "reader's IncrementStream")
    for c in (anonymous, wrong, w, r):
        c.close()
    check_health(args)  # Health stays open without a token


def check_non_utf8_requests(args):
    """Requests that are not their typed message, sent as hand-encoded bytes
    (a raw unary_unary, no serializer: protobuf's Python runtime refuses to
    build them): a non-UTF-8 string field gets INVALID_ARGUMENT naming the
    field, a malformed message INVALID_ARGUMENT naming the type, never
    INTERNAL, and nothing is applied."""
    c = Client(args)
    codes = c.grpc.StatusCode

    def field(number, value):  # a length-delimited field, value < 128 bytes
        return bytes([number << 3 | 2, len(value)]) + value

    def raw(method, payload):
        call = c.channel.unary_unary(f"/counters.v1.CounterService/{method}",
                                     request_serializer=None, response_deserializer=None)
        return call(payload, timeout=DEADLINE)

    def expect_invalid(method, payload, message):
        try:
            reply = raw(method, payload)
        except c.grpc.RpcError as e:
            expect_eq((e.code(), e.details()), (codes.INVALID_ARGUMENT, message),
                      f"{method} of {payload!r}")
            return
        raise CheckFailed(f"{method} of {payload!r} succeeded ({reply!r}), want INVALID_ARGUMENT")

    good = "py/utf8/good"
    c.call("Set", c.pb.SetRequest(key=good, value=5))
    # The raw path itself works: valid bytes in, the typed response's bytes out.
    reply = raw("Increment", field(1, good.encode()) + b"\x10\x02")
    expect_eq(c.pb.IncrementResponse.FromString(reply).value, 7, "raw Increment")

    bad = b"ok\xff"  # invalid UTF-8 at offset 2
    rule = "must be valid UTF-8 (invalid byte sequence at offset 2)"
    for method in ["Increment", "Get", "Set", "CompareAndSet", "Delete"]:
        expect_invalid(method, field(1, bad), f"key {rule}")
    batch = (field(1, field(1, good.encode()) + b"\x10\x01") + field(1, field(1, bad)))
    expect_invalid("IncrementBatch", batch, f"increments[1].key {rule}")
    expect_invalid("BatchGet", field(1, good.encode()) + field(1, bad), f"keys[1] {rule}")
    expect_invalid("List", field(1, bad), f"prefix {rule}")
    expect_invalid("List", field(3, bad), f"page_token {rule}")
    expect_invalid("Increment", b"\x0a\x32abc",  # field 1 claims 50 bytes; 3 follow
                   "request is not a valid counters.v1.IncrementRequest message")
    expect_eq(c.get(good), 7, "value after the rejected batch")
    c.close()


def stream_messages(pb, messages):
    """IncrementStreamRequests from (sequence, [(key, delta), ...])."""
    for sequence, increments in messages:
        yield pb.IncrementStreamRequest(
            sequence=sequence,
            increments=[pb.IncrementRequest(key=k, delta=d) for k, d in increments])


def check_increment_stream(args):
    """IncrementStream from Python: every message answered in order with its
    sequence; a failed message in the middle changes nothing and the stream
    goes on; threads with a stream each add up exactly."""
    c = Client(args)
    codes = c.grpc.StatusCode
    c.call("Set", c.pb.SetRequest(key="py/stream/big", value=2**63 - 1))
    messages = [(10, [("py/stream/a", 2), ("py/stream/a", 3)]),
                (11, [("py/stream/a", 1), ("py/stream/big", 1)]),  # overflows
                (12, [("py/stream/a", 1), ("", 1)]),               # a bad key
                (13, [("py/stream/a", 4)])]
    answers = list(c.stub.IncrementStream(stream_messages(c.pb, messages), timeout=DEADLINE))
    expect_eq([a.sequence for a in answers], [10, 11, 12, 13], "answered sequences")
    expect_eq((answers[0].code, list(answers[0].values)), (0, [2, 5]), "message 10")
    expect_eq(answers[1].code, codes.OUT_OF_RANGE.value[0], "message 11's code")
    expect_eq(list(answers[1].values), [], "message 11's values")
    expect_eq(answers[2].code, codes.INVALID_ARGUMENT.value[0], "message 12's code")
    expect("increments[1]" in answers[2].message, f"message 12 names the key: {answers[2].message!r}")
    expect_eq((answers[3].code, list(answers[3].values)), (0, [9]), "message 13")
    expect_eq(c.get("py/stream/a"), 9, "value after the stream")

    threads, per_thread, errors = 4, 300, []

    def worker(t):
        try:
            key = f"py/stream/t{t}"
            msgs = ((i, [(key, 1), ("py/stream/shared", 1)]) for i in range(per_thread))
            got = list(c.stub.IncrementStream(stream_messages(c.pb, msgs), timeout=DEADLINE))
            expect_eq(len(got), per_thread, f"thread {t}'s answers")
            expect(all(a.code == 0 for a in got), f"thread {t}: a message failed")
            expect_eq([a.values[0] for a in got], list(range(1, per_thread + 1)),
                      f"thread {t}'s values, in order")
        except Exception as e:  # reported by the main thread
            errors.append(e)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    if errors:
        raise errors[0]
    expect_eq(c.get("py/stream/shared"), threads * per_thread, "shared key's total")
    c.close()


def check_increment_stream_raw(args):
    """IncrementStream messages as hand-encoded bytes: a non-UTF-8 key is
    answered INVALID_ARGUMENT under its own sequence and the stream goes on;
    bytes that are no message end the stream INVALID_ARGUMENT."""
    c = Client(args)
    codes = c.grpc.StatusCode
    raw = c.channel.stream_stream("/counters.v1.CounterService/IncrementStream",
                                  request_serializer=None, response_deserializer=None)

    def field(number, value):  # a length-delimited field, value < 128 bytes
        return bytes([number << 3 | 2, len(value)]) + value

    def message(sequence, key):  # sequence < 128; delta absent (1)
        return bytes([1 << 3, sequence]) + field(2, field(1, key))

    good = b"py/stream/raw"
    replies = list(raw(iter([message(1, good), message(2, b"ok\xff"), message(3, good)]),
                       timeout=DEADLINE))
    answers = [c.pb.IncrementStreamResponse.FromString(r) for r in replies]
    expect_eq([a.sequence for a in answers], [1, 2, 3], "answered sequences")
    expect_eq([a.code for a in answers], [0, codes.INVALID_ARGUMENT.value[0], 0], "codes")
    expect_eq(answers[1].message,
              "increments[0].key must be valid UTF-8 (invalid byte sequence at offset 2)",
              "the non-UTF-8 message's status")
    expect_eq(c.get(good.decode()), 2, "messages 1 and 3 applied, 2 not")
    try:
        list(raw(iter([message(4, good), b"\x12\x32abc"]), timeout=DEADLINE))
        raise CheckFailed("a stream with bytes that are no message ended OK")
    except c.grpc.RpcError as e:
        expect_eq((e.code(), e.details()),
                  (codes.INVALID_ARGUMENT,
                   "request is not a valid counters.v1.IncrementStreamRequest message"),
                  "the malformed stream's status")
    expect_eq(c.get(good.decode()), 3, "the message before the malformed one applied")
    c.close()


def check_session_duplicates(args):
    """Exactly-once writes (WriteOptions) as a raw client sends them: every
    write resent with the same session and sequence is applied once and
    answered with its first response; the same sequence with another
    request is INVALID_ARGUMENT; a failed write is not remembered, so its
    resend runs again; malformed options are INVALID_ARGUMENT."""
    import os
    c = Client(args)
    pb, codes = c.pb, c.grpc.StatusCode
    session = os.urandom(16)

    def opts(sequence, session_id=session):
        return pb.WriteOptions(session_id=session_id, sequence=sequence)

    def twice(method, request, what):
        first = c.call(method, request)
        again = c.call(method, request)
        expect_eq(again, first, f"{what}: the resend's response")
        return first

    inc = pb.IncrementRequest(key="py/session/a", delta=5, options=opts(1))
    expect_eq(twice("Increment", inc, "Increment").value, 5, "Increment's value")
    expect_eq(c.get("py/session/a"), 5, "Increment applied once")
    expect_eq(c.inc("py/session/a"), 6, "a write without options, applied")
    expect_eq(c.call("Increment", inc).value, 5, "a later resend: the original response")
    expect_eq(c.get("py/session/a"), 6, "the later resend not applied")

    s = twice("Set", pb.SetRequest(key="py/session/a", value=100, options=opts(2)), "Set")
    expect_eq((s.HasField("previous_value"), s.previous_value), (True, 6), "Set's previous")
    expect_eq(c.get("py/session/a"), 100, "Set applied")
    cas = twice("CompareAndSet",
                pb.CompareAndSetRequest(key="py/session/a", expected=100, value=7,
                                        options=opts(3)), "CompareAndSet")
    expect_eq((cas.applied, cas.value), (True, 7), "CompareAndSet applied, resent or not")
    cas = twice("CompareAndSet",
                pb.CompareAndSetRequest(key="py/session/a", expected=100, value=8,
                                        options=opts(4)), "CompareAndSet not applied")
    expect_eq((cas.applied, cas.value), (False, 7), "CompareAndSet not applied, resent")
    d = twice("Delete", pb.DeleteRequest(key="py/session/a", options=opts(5)), "Delete")
    expect_eq(d.previous_value, 7, "Delete's previous value, not NOT_FOUND when resent")
    c.expect_code(codes.NOT_FOUND, "Get", pb.GetRequest(key="py/session/a"), "deleted")

    batch = pb.IncrementBatchRequest(
        increments=[pb.IncrementRequest(key="py/session/b", delta=1),
                    pb.IncrementRequest(key="py/session/b", delta=2)],
        options=opts(6))
    expect_eq(list(twice("IncrementBatch", batch, "IncrementBatch").values), [1, 3],
              "IncrementBatch's values")
    expect_eq(c.get("py/session/b"), 3, "IncrementBatch applied once")

    # A used sequence with another request: other key, delta or method.
    for method, req, what in [
            ("Increment", pb.IncrementRequest(key="py/session/b", delta=5, options=opts(1)),
             "another key under sequence 1"),
            ("Increment", pb.IncrementRequest(key="py/session/a", delta=9, options=opts(1)),
             "another delta under sequence 1"),
            ("Set", pb.SetRequest(key="py/session/b", value=1, options=opts(6)),
             "a Set under the batch's sequence 6")]:
        c.expect_code(codes.INVALID_ARGUMENT, method, req, what)
    expect_eq(c.get("py/session/b"), 3, "none of them applied")

    # Only writes that succeeded are remembered: a refused one runs again.
    c.call("Set", pb.SetRequest(key="py/session/c", value=2**63 - 1, options=opts(7)))
    over = pb.IncrementRequest(key="py/session/c", delta=1, options=opts(8))
    c.expect_code(codes.OUT_OF_RANGE, "Increment", over, "an overflowing increment")
    c.call("Set", pb.SetRequest(key="py/session/c", value=0, options=opts(9)))
    expect_eq(c.call("Increment", over).value, 1, "the refused sequence's resend, applied")
    expect_eq(c.call("Increment", over).value, 1, "and now remembered")
    expect_eq(c.get("py/session/c"), 1, "applied once")

    # Options inside a batch's increments; a session id of another length;
    # sequence 0 with a session.
    inner = pb.IncrementBatchRequest(increments=[
        pb.IncrementRequest(key="py/session/d", options=opts(10))])
    c.expect_code(codes.INVALID_ARGUMENT, "IncrementBatch", inner, "options inside a batch")
    c.expect_code(codes.INVALID_ARGUMENT, "Increment",
                  pb.IncrementRequest(key="py/session/d", options=opts(10, session[:15])),
                  "a 15-byte session id")
    c.expect_code(codes.INVALID_ARGUMENT, "Increment",
                  pb.IncrementRequest(key="py/session/d", options=opts(0)), "sequence 0")
    c.expect_code(codes.NOT_FOUND, "Get", pb.GetRequest(key="py/session/d"), "none applied")
    c.close()


def check_session_window(args):
    """The window of 64 sequences below the highest applied: a sequence at
    or below highest - 64 is FAILED_PRECONDITION and not applied; one above
    is answered from the window; sequences may arrive out of order within
    it; a session the daemon does not know starts only at a sequence of 64
    or less (FAILED_PRECONDITION "unknown session" above)."""
    import os
    c = Client(args)
    pb, codes = c.pb, c.grpc.StatusCode
    session = os.urandom(16)

    def inc(sequence, session_id=session):
        return pb.IncrementRequest(key="py/window", delta=1,
                                   options=pb.WriteOptions(session_id=session_id,
                                                           sequence=sequence))

    for n in range(1, 71):
        expect_eq(c.call("Increment", inc(n)).value, n, f"sequence {n}")
    e = c.expect_code(codes.FAILED_PRECONDITION, "Increment", inc(6),
                      "sequence 6, at highest (70) - 64")
    expect("older than the daemon remembers" in e.details(), f"the refusal: {e.details()!r}")
    expect_eq(c.call("Increment", inc(7)).value, 7, "sequence 7, the oldest remembered")
    expect_eq(c.get("py/window"), 70, "neither applied again")
    # Out of order within the window.
    expect_eq(c.call("Increment", inc(72)).value, 71, "sequence 72 before 71")
    expect_eq(c.call("Increment", inc(71)).value, 72, "then 71")
    expect_eq(c.call("Increment", inc(72)).value, 71, "72 resent")
    expect_eq(c.get("py/window"), 72, "each applied once")

    fresh = os.urandom(16)
    e = c.expect_code(codes.FAILED_PRECONDITION, "Increment", inc(65, fresh),
                      "an unknown session at sequence 65")
    expect("unknown session" in e.details(), f"the refusal: {e.details()!r}")
    expect_eq(c.get("py/window"), 72, "the unknown session's write not applied")
    expect_eq(c.call("Increment", inc(64, fresh)).value, 73, "an unknown session at 64 starts")
    expect_eq(c.call("Increment", inc(64, fresh)).value, 73, "and remembers it")
    expect_eq(c.get("py/window"), 73, "applied once")
    c.close()


CHECKS = {name[len("check_"):]: fn for name, fn in globals().items()
          if name.startswith("check_")}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--address", required=True)
    parser.add_argument("--stubs", required=True, help="directory of the generated stubs")
    parser.add_argument("--handlers", type=int, default=1)
    parser.add_argument("--capacity", type=int, default=0)
    parser.add_argument("--max-batch", type=int, default=0)
    parser.add_argument("--cacert", help="TLS: the server's CA (PEM)")
    parser.add_argument("--cert", help="mTLS: the client's certificate (PEM)")
    parser.add_argument("--key", help="mTLS: the client's private key (PEM)")
    parser.add_argument("--token", default="", help="bearer token (check 'tokens')")
    parser.add_argument("--read-token", default="", help="a read-only token (check 'tokens')")
    parser.add_argument("checks", nargs="+", choices=sorted(CHECKS))
    args = parser.parse_args()
    sys.path.insert(0, args.stubs)
    for name in args.checks:
        try:
            CHECKS[name](args)
        except CheckFailed as e:
            print(f"FAIL {name}: {e}", file=sys.stderr)
            return 1
        print(f"ok {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
