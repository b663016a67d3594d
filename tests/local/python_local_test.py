#!/usr/bin/python3
"""The Python module of local attach (client/local/python/countersd_local.py)
against a real countersd, through libcountersd_local.so.

Usage (ctest passes these; tests/local/CMakeLists.txt):
  python_local_test.py --countersd=PATH --counterctl=PATH --library=PATH
                       --module-dir=DIR [unittest args]

Each test class starts its own daemon on a fresh data directory and stops
it (SIGTERM, then wait) in its cleanup, whatever happened; a daemon also
gets SIGTERM if this process dies (PR_SET_PDEATHSIG), so a killed test
leaves nothing running. What the daemon sees is checked over gRPC with
counterctl.
"""

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import unittest

ARGS = None  # the parsed command line, set in main()
local = None  # the countersd_local module, imported from --module-dir in main()

READY_TIMEOUT = 120  # seconds; generous for a loaded 2-core machine
STOP_TIMEOUT = 120
INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, OUT_OF_RANGE, UNAVAILABLE = 3, 5, 8, 11, 14

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # In the child between fork and exec: SIGTERM (a clean shutdown) when
    # the thread that started it, this test's main thread, exits.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Daemon:
    """A countersd on DATA_DIR, ready once start() returns."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.address = None
        self.proc = None
        self._log = []  # stderr lines
        self._log_mu = threading.Lock()
        self._ready = threading.Event()
        self._eof = threading.Event()

    def start(self):
        """Starts it (again, after stop()) and waits for its "ready" line."""
        self.address = None
        self._ready.clear()
        self._eof.clear()
        argv = [ARGS.countersd, f"--data-dir={self.data_dir}", "--listen=127.0.0.1:0",
                "--metrics-listen=", "--handlers=1", "--capacity=4096", "--log-format=json"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=_die_with_parent)
        threading.Thread(target=self._read_log, args=(self.proc.stderr,), daemon=True).start()
        # The ready line, or EOF: whichever comes first sets _ready.
        if not self._ready.wait(READY_TIMEOUT) or self.address is None:
            why = "exited before it was ready" if self._eof.is_set() else (
                f"was not ready within {READY_TIMEOUT}s")
            self.stop()
            raise AssertionError(f"countersd {why}: {' '.join(argv)}\n--- log ---\n{self.log()}")

    def _read_log(self, stderr):
        # Reads to EOF, so that the daemon never blocks on a full pipe.
        for raw in stderr:
            line = raw.decode("utf-8", "replace")
            with self._log_mu:
                self._log.append(line)
            if not self._ready.is_set():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("msg") == "ready":
                    self.address = entry["listen"]
                    self._ready.set()
        stderr.close()
        self._eof.set()
        self._ready.set()

    def log(self):
        with self._log_mu:
            return "".join(self._log)

    def stop(self):
        """SIGTERM and wait; SIGKILL to its process tree if it does not stop."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_TIMEOUT)
            self._eof.wait(STOP_TIMEOUT)  # the whole log, its children's last lines too
            return code
        except subprocess.TimeoutExpired:
            self.proc.kill()  # its children die with it (PR_SET_PDEATHSIG, supervisor.cc)
            self.proc.wait()
            raise AssertionError(f"countersd did not stop within {STOP_TIMEOUT}s\n{self.log()}")

    def grpc_get(self, *keys):
        """{key: value or None} as the daemon serves them over gRPC (counterctl)."""
        out = subprocess.run([ARGS.counterctl, f"--addr={self.address}", "--output=json", "get",
                              *keys], stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=120, check=False)
        if out.returncode not in (0, 3):  # 3: some counter not found
            raise AssertionError(f"counterctl get failed ({out.returncode}): {out.stderr!r}")
        return {c["key"]: c["value"] if c["found"] else None
                for c in json.loads(out.stdout)["counters"]}

    def grpc_increment(self, key, delta):
        out = subprocess.run([ARGS.counterctl, f"--addr={self.address}", "inc", key, str(delta)],
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
                             check=False)
        if out.returncode != 0:
            raise AssertionError(f"counterctl inc failed ({out.returncode}): {out.stderr!r}")
        return int(out.stdout)


def start_daemon(test_class):
    """A daemon on a fresh data directory for test_class, stopped at its end."""
    tmp = tempfile.TemporaryDirectory(prefix="countersd-pylocal-")
    test_class.addClassCleanup(tmp.cleanup)
    daemon = Daemon(tmp.name)
    test_class.addClassCleanup(daemon.stop)
    daemon.start()
    return daemon


def attach(data_dir):
    return local.LocalTable(data_dir, library=ARGS.library)


class LocalTableTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = start_daemon(cls)
        cls.table = attach(cls.daemon.data_dir)
        cls.addClassCleanup(cls.table.close)

    def key(self, name):
        """A key unique to this test."""
        return f"{self._testMethodName}/{name}"

    def assert_error(self, code, fn, *args):
        with self.assertRaises(local.CountersdError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.code, code, str(cm.exception))
        self.assertEqual(cm.exception.code_name, local.CODE_NAMES[code])
        self.assertTrue(cm.exception.message, "the error has a message")
        return cm.exception

    def test_attached_to_a_slot(self):
        self.assertIsInstance(self.table.slot, int)
        self.assertLess(self.table.slot, 1024)

    def test_increment_get_set_cas_delete(self):
        t, k = self.table, self.key("k")
        self.assertEqual(t.increment(k), 1)
        self.assertEqual(t.increment(k, 41), 42)
        self.assertEqual(t.increment(k, -50), -8)
        self.assertEqual(t.get(k), -8)
        self.assertEqual(t.set(k, 100), -8)
        self.assertIsNone(t.set(self.key("new"), 7), "no previous value")
        self.assertEqual(t.get(self.key("new")), 7)
        self.assertEqual(t.compare_and_set(k, 99, 5), (False, 100))
        self.assertEqual(t.get(k), 100)
        self.assertEqual(t.compare_and_set(k, 100, 5), (True, 5))
        self.assertEqual(t.get(k), 5)
        # A missing counter counts as 0, created only if the swap applies.
        self.assertEqual(t.compare_and_set(self.key("cas-miss"), 1, 9), (False, 0))
        self.assert_error(NOT_FOUND, t.get, self.key("cas-miss"))
        self.assertEqual(t.compare_and_set(self.key("cas-new"), 0, 9), (True, 9))
        self.assertEqual(t.delete(k), 5)
        self.assert_error(NOT_FOUND, t.get, k)
        self.assertEqual(t.increment(k), 1, "a deleted counter starts again at 0")
        self.assertEqual(t.increment(self.key("bytes").encode(), 3), 3, "bytes keys")
        self.assertEqual(t.get(self.key("bytes")), 3, "str and bytes name the same counter")
        self.assertEqual(t.increment("é/" + self.key("utf8")), 1)
        self.assertEqual(t.get(("é/" + self.key("utf8")).encode("utf-8")), 1)

    def test_batches(self):
        t, a, b = self.table, self.key("a"), self.key("b")
        self.assertEqual(t.increment_batch([(a, 2), (b, 5), (a, 3)]), [2, 5, 5])
        self.assertEqual(t.batch_get([b, self.key("missing"), a]), [5, None, 5])
        self.assertEqual(t.batch_get([]), [])

    def test_not_found(self):
        t, k = self.table, self.key("never")
        self.assertIn(k, self.assert_error(NOT_FOUND, t.get, k).message)
        self.assert_error(NOT_FOUND, t.delete, k)

    def test_invalid_keys(self):
        t = self.table
        too_long = b"k" * 161
        self.assertEqual(t.increment(b"k" * 160), 1, "160 bytes is the limit, inclusive")
        for key in ("", b"", too_long, too_long.decode(), b"bad\xff", "lone\udc80surrogate"):
            with self.subTest(key=key):
                for fn, args in ((t.increment, (key,)), (t.get, (key,)), (t.set, (key, 1)),
                                 (t.compare_and_set, (key, 0, 1)), (t.delete, (key,)),
                                 (t.batch_get, ([key],))):
                    self.assert_error(INVALID_ARGUMENT, fn, *args)
        self.assertIn("161", self.assert_error(INVALID_ARGUMENT, t.increment, too_long).message)
        self.assert_error(INVALID_ARGUMENT, t.increment_batch, [(self.key("ok"), 1), (b"", 1)])
        self.assert_error(NOT_FOUND, t.get, self.key("ok"))  # the batch did nothing
        with self.assertRaises(TypeError):
            t.increment(7)

    def test_overflow_is_out_of_range_and_changes_nothing(self):
        t, hi, lo = self.table, self.key("hi"), self.key("lo")
        t.set(hi, INT64_MAX)
        t.set(lo, INT64_MIN)
        self.assert_error(OUT_OF_RANGE, t.increment, hi, 1)
        self.assert_error(OUT_OF_RANGE, t.increment, lo, -1)
        self.assertEqual(t.get(hi), INT64_MAX)
        self.assertEqual(t.get(lo), INT64_MIN)
        self.assertEqual(t.increment(hi, -1), INT64_MAX - 1)
        with self.assertRaises(OverflowError):  # not representable in the C call
            t.increment(hi, INT64_MAX + 1)
        self.assertEqual(t.get(hi), INT64_MAX - 1)

    def test_batch_refused_as_a_whole(self):
        t, first, new, hi = self.table, self.key("first"), self.key("new"), self.key("hi")
        t.set(first, 10)
        t.set(hi, INT64_MAX)
        e = self.assert_error(OUT_OF_RANGE, t.increment_batch, [(first, 1), (hi, 1)])
        self.assertIn("increment 1", e.message, "it names the refused increment's index")
        self.assert_error(OUT_OF_RANGE, t.increment_batch, [(new, 1), (hi, 1)])
        self.assertEqual(t.batch_get([first, new, hi]), [10, None, INT64_MAX])

    def test_batch_over_the_table_limit_is_resource_exhausted(self):
        ops = [(self.key(f"k{i}"), 1) for i in range(1001)]  # the limit is 1,000
        self.assert_error(RESOURCE_EXHAUSTED, self.table.increment_batch, ops)
        self.assertEqual(self.table.batch_get([k for k, _ in ops[:3]]), [None] * 3)
        self.assertEqual(self.table.increment_batch(ops[:1000])[-1], 1)

    def test_a_fork_child_cannot_use_its_parents_table(self):
        t, k = self.table, self.key("k")
        t.increment(k)
        pid = os.fork()
        if pid == 0:  # the child: only the call under test, then _exit
            code = 0  # the call succeeded: the test fails
            try:
                t.increment(k, 100)
            except local.CountersdError as e:
                code = e.code
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), UNAVAILABLE)
        self.assertEqual(t.get(k), 1, "the child changed nothing")
        self.assertEqual(t.increment(k), 2, "the parent's table still works")

    def test_values_are_the_daemons(self):
        t, a, b, c = self.table, self.key("a"), self.key("b"), self.key("c")
        t.increment(a, 7)
        t.increment_batch([(b, 3), (a, 1)])
        t.set(c, -4)
        self.assertEqual(self.daemon.grpc_get(a, b, c, self.key("none")),
                         {a: 8, b: 3, c: -4, self.key("none"): None})
        # And the other way: an RPC's increment is in the table this handle sees.
        self.assertEqual(self.daemon.grpc_increment(a, 2), 10)
        self.assertEqual(t.get(a), 10)
        t.delete(c)
        self.assertEqual(self.daemon.grpc_get(c), {c: None})

    def test_threads_sharing_one_handle_give_an_exact_total(self):
        t, k = self.table, self.key("hot")
        threads_n, per_thread = 8, 5000
        returned = [[] for _ in range(threads_n)]
        start = threading.Barrier(threads_n)
        errors = []

        def work(out):
            try:
                start.wait()
                for _ in range(per_thread):
                    out.append(t.increment(k))
            except Exception as e:  # reported below, not lost in the thread
                errors.append(e)

        threads = [threading.Thread(target=work, args=(returned[i],)) for i in range(threads_n)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(errors, [])
        total = threads_n * per_thread
        self.assertEqual(t.get(k), total)
        # Each increment saw a value of its own: none was lost or doubled.
        self.assertEqual(sorted(v for out in returned for v in out), list(range(1, total + 1)))
        self.assertEqual(self.daemon.grpc_get(k), {k: total})

    def test_close_detaches(self):
        with attach(self.daemon.data_dir) as t:
            t.increment(self.key("k"))
        with self.assertRaises(ValueError):
            t.get(self.key("k"))
        t.close()  # again: nothing
        self.assertEqual(self.table.get(self.key("k")), 1)

    def test_no_daemon_is_unavailable(self):
        with tempfile.TemporaryDirectory(prefix="countersd-pylocal-empty-") as empty:
            with self.assertRaises(local.UnavailableError) as cm:
                attach(empty)
        e = cm.exception
        self.assertEqual((e.code, e.code_name), (UNAVAILABLE, "UNAVAILABLE"))
        self.assertIsInstance(e, local.CountersdError)
        self.assertIn(empty, e.message, "the message names the directory")
        self.assertIn("no countersd", e.message)


class RestartTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = start_daemon(cls)

    def test_old_handle_is_unavailable_after_a_restart_and_a_new_one_sees_the_values(self):
        old = attach(self.daemon.data_dir)
        self.addCleanup(old.close)
        old.increment("kept", 5)
        old.increment_batch([("kept", 1), ("other", 2)])

        self.assertEqual(self.daemon.stop(), 0, self.daemon.log())
        # No daemon: the handle refuses, having changed nothing.
        self.assertRaises(local.UnavailableError, old.increment, "kept", 100)

        self.daemon.start()
        self.assertRaises(local.UnavailableError, old.increment, "kept", 100)
        self.assertRaises(local.UnavailableError, old.increment_batch, [("kept", 100)])
        self.assertRaises(local.UnavailableError, old.set, "kept", 100)
        self.assertRaises(local.UnavailableError, old.get, "kept")
        with self.assertRaises(local.UnavailableError) as cm:
            old.batch_get(["kept"])
        self.assertIn("attach again", cm.exception.message)

        with attach(self.daemon.data_dir) as new:
            self.assertEqual(new.batch_get(["kept", "other"]), [6, 2])
            self.assertEqual(new.increment("kept"), 7)
        self.assertEqual(self.daemon.grpc_get("kept", "other"), {"kept": 7, "other": 2})


def main():
    global ARGS, local
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("countersd", "counterctl", "library", "module-dir"):
        parser.add_argument(f"--{flag}", required=True)
    ARGS, rest = parser.parse_known_args()
    sys.path.insert(0, ARGS.module_dir)
    import countersd_local
    local = countersd_local
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)


if __name__ == "__main__":
    main()
