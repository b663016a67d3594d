"""countersd_local: attach to a countersd on this host, with no RPC.

ctypes over the C ABI of local attach (libcountersd_local.so, its header
client/local/countersd_local.h); standard library only.

    from countersd_local import LocalTable, CountersdError, UnavailableError
    with LocalTable("/var/lib/countersd") as t:
        t.increment("page.views")              # the new value
        t.increment_batch([("a", 1), ("b", -2)])

Semantics are the RPCs' and the C++ library's, whose comment states them
in full (client/local/local_table.h): keys are 1 to 160 bytes of UTF-8 (a
str is encoded as UTF-8, bytes are passed as they are, and the daemon's
key rules decide); overflow is OUT_OF_RANGE with nothing changed; a batch
is applied whole or not at all; a full table is RESOURCE_EXHAUSTED. Every
failure raises CountersdError, whose `code` is the gRPC status number and
`code_name` its name. UnavailableError (code 14) means there is no daemon,
or the daemon restarted or set its table aside since this handle attached:
the call changed nothing; close the handle and attach again.

Thread-safety: the C handle is thread-safe, and ctypes releases the GIL
during each call, so any number of threads may share one LocalTable and
their calls run in parallel. close() waits for calls in flight on other
threads to return, then detaches; later calls raise ValueError, as on a
closed file. A fork child cannot use its parent's table (UnavailableError):
it attaches itself.

Finding the library: the `library` argument, else the environment variable
COUNTERSD_LOCAL_LIBRARY, else ctypes.util.find_library("countersd_local")
(the dynamic linker's search path).
"""

import ctypes
import ctypes.util
import os
import threading

__all__ = ["LocalTable", "CountersdError", "UnavailableError", "CODE_NAMES", "load_library"]

# The gRPC status codes, by number (grpc/status.h).
CODE_NAMES = {
    0: "OK", 1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND", 6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
    10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL",
    14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}
UNAVAILABLE = 14

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_ENV_LIBRARY = "COUNTERSD_LOCAL_LIBRARY"


class CountersdError(Exception):
    """A call that failed: `code` (gRPC status number), `code_name`, `message`."""

    def __init__(self, code, message):
        self.code = code
        self.code_name = CODE_NAMES.get(code, f"CODE_{code}")
        self.message = message
        super().__init__(f"{self.code_name}: {message}")


class UnavailableError(CountersdError):
    """UNAVAILABLE (14): no daemon, or it restarted since this handle attached."""


def _error(code, message):
    cls = UnavailableError if code == UNAVAILABLE else CountersdError
    return cls(code, message)


class _Handle(ctypes.Structure):
    """struct countersd_local, opaque."""


class _KeyDelta(ctypes.Structure):
    _fields_ = [("key", ctypes.c_char_p), ("key_len", ctypes.c_size_t),
                ("delta", ctypes.c_int64)]


_H = ctypes.POINTER(_Handle)
_P64 = ctypes.POINTER(ctypes.c_int64)
_PINT = ctypes.POINTER(ctypes.c_int)
_KEY = (ctypes.c_char_p, ctypes.c_size_t)

# Every function of countersd_local.h: name -> (restype, argtypes).
_SIGNATURES = {
    "countersd_attach2": (_H, [ctypes.c_char_p, _PINT, ctypes.c_char_p, ctypes.c_size_t]),
    "countersd_detach": (None, [_H]),
    "countersd_increment": (ctypes.c_int, [_H, *_KEY, ctypes.c_int64, _P64]),
    "countersd_get": (ctypes.c_int, [_H, *_KEY, _P64]),
    "countersd_set": (ctypes.c_int, [_H, *_KEY, ctypes.c_int64, _P64, _PINT]),
    "countersd_compare_and_set": (ctypes.c_int, [_H, *_KEY, ctypes.c_int64, ctypes.c_int64,
                                                 _PINT, _P64]),
    "countersd_delete": (ctypes.c_int, [_H, *_KEY, _P64]),
    "countersd_increment_batch": (ctypes.c_int, [_H, ctypes.POINTER(_KeyDelta),
                                                 ctypes.c_size_t, _P64]),
    "countersd_batch_get": (ctypes.c_int, [_H, ctypes.POINTER(ctypes.c_char_p),
                                           ctypes.POINTER(ctypes.c_size_t), ctypes.c_size_t,
                                           _P64, _PINT]),
    "countersd_attach_slot": (ctypes.c_uint32, [_H]),
    "countersd_last_error": (ctypes.c_char_p, []),
}

_libraries = {}  # path or name -> CDLL with its signatures declared
_libraries_lock = threading.Lock()


def load_library(library=None):
    """The C library, found as the module docstring says; OSError if not."""
    if library is not None:
        where = f"library={library!r}"
    elif os.environ.get(_ENV_LIBRARY):
        library = os.environ[_ENV_LIBRARY]
        where = f"{_ENV_LIBRARY}={library!r}"
    else:
        library = ctypes.util.find_library("countersd_local")
        where = f"find_library('countersd_local') found {library!r}"
        if library is None:
            raise OSError(
                "libcountersd_local.so not found: pass LocalTable(data_dir, library=PATH) or set "
                f"{_ENV_LIBRARY}=PATH (the file is installed with the countersd_local component, "
                "in <prefix>/lib), or put its directory on the dynamic linker's path (ldconfig)")
    library = os.fspath(library)
    with _libraries_lock:
        lib = _libraries.get(library)
        if lib is None:
            try:
                lib = ctypes.CDLL(library)
            except OSError as e:
                raise OSError(f"cannot load libcountersd_local ({where}): {e}") from e
            for name, (restype, argtypes) in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.restype = restype
                fn.argtypes = argtypes
            _libraries[library] = lib
        return lib


def _key(key):
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        # surrogatepass: a str that is not valid Unicode reaches the daemon's
        # key rules (INVALID_ARGUMENT, as over gRPC) rather than failing here.
        return key.encode("utf-8", "surrogatepass")
    raise TypeError(f"a key is str or bytes, not {type(key).__name__}")


def _int64(what, v):
    # ctypes would wrap an int outside int64 silently.
    v = v.__index__()
    if not _INT64_MIN <= v <= _INT64_MAX:
        raise OverflowError(f"{what} {v} is outside int64")
    return v


class LocalTable:
    """The live table of the countersd that owns `data_dir`, attached."""

    def __init__(self, data_dir, library=None):
        self._lib = load_library(library)
        self._mu = threading.Lock()
        self._idle = threading.Condition(self._mu)  # notified when _in_flight reaches 0
        self._in_flight = 0
        self._closed = False
        self._h = None
        code = ctypes.c_int(0)
        err = ctypes.create_string_buffer(1024)
        h = self._lib.countersd_attach2(os.fsencode(data_dir), ctypes.byref(code), err,
                                        len(err))
        if not h:
            raise _error(code.value, err.value.decode("utf-8", "replace"))
        self._h = h

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # Nothing is in flight on an object no one refers to.
        if getattr(self, "_h", None):
            self._lib.countersd_detach(self._h)
            self._h = None

    def close(self):
        """Detaches, once calls in flight have returned. Idempotent."""
        with self._mu:
            if self._closed:
                return
            self._closed = True  # no new call starts
            while self._in_flight:
                self._idle.wait()
            h, self._h = self._h, None
        self._lib.countersd_detach(h)

    # Each call holds the handle open between _enter and _leave, so that
    # close() cannot free it under a call on another thread.
    def _enter(self):
        with self._mu:
            if self._closed:
                raise ValueError("LocalTable is closed")
            self._in_flight += 1
            return self._h

    def _leave(self):
        with self._mu:
            self._in_flight -= 1
            if self._closed and not self._in_flight:
                self._idle.notify_all()

    def _call(self, fn, *args):
        h = self._enter()
        try:
            rc = fn(h, *args)
            # countersd_last_error is per thread, and this is still the thread.
            if rc != 0:
                raise _error(rc, self._lib.countersd_last_error().decode("utf-8", "replace"))
        finally:
            self._leave()

    def increment(self, key, delta=1):
        """Adds delta (creating the counter at 0); the new value."""
        k, v = _key(key), ctypes.c_int64()
        self._call(self._lib.countersd_increment, k, len(k), _int64("delta", delta),
                   ctypes.byref(v))
        return v.value

    def get(self, key):
        """The value; CountersdError NOT_FOUND for a missing counter."""
        k, v = _key(key), ctypes.c_int64()
        self._call(self._lib.countersd_get, k, len(k), ctypes.byref(v))
        return v.value

    def batch_get(self, keys):
        """One entry per key, in order: its value, or None for a missing counter."""
        ks = [_key(k) for k in keys]
        n = len(ks)
        values, found = (ctypes.c_int64 * n)(), (ctypes.c_int * n)()
        self._call(self._lib.countersd_batch_get, (ctypes.c_char_p * n)(*ks),
                   (ctypes.c_size_t * n)(*map(len, ks)), n, values, found)
        return [v if f else None for v, f in zip(values, found)]

    def set(self, key, value):
        """Stores value; the previous value, or None if the counter did not exist."""
        k, prev, had = _key(key), ctypes.c_int64(), ctypes.c_int()
        self._call(self._lib.countersd_set, k, len(k), _int64("value", value),
                   ctypes.byref(prev), ctypes.byref(had))
        return prev.value if had.value else None

    def compare_and_set(self, key, expected, value):
        """(applied, value now stored); a missing counter counts as 0."""
        k, applied, cur = _key(key), ctypes.c_int(), ctypes.c_int64()
        self._call(self._lib.countersd_compare_and_set, k, len(k),
                   _int64("expected", expected), _int64("value", value),
                   ctypes.byref(applied), ctypes.byref(cur))
        return bool(applied.value), cur.value

    def delete(self, key):
        """Removes the counter; the value it had (NOT_FOUND if missing)."""
        k, prev = _key(key), ctypes.c_int64()
        self._call(self._lib.countersd_delete, k, len(k), ctypes.byref(prev))
        return prev.value

    def increment_batch(self, increments):
        """[(key, delta), ...] applied atomically, all or none; the value after each."""
        ops = [(_key(k), _int64("delta", d)) for k, d in increments]
        n = len(ops)
        arr = (_KeyDelta * n)(*((k, len(k), d) for k, d in ops))
        values = (ctypes.c_int64 * n)()
        self._call(self._lib.countersd_increment_batch, arr, n, values)
        return list(values)

    @property
    def slot(self):
        """This process's attach slot (counterctl stats lists it)."""
        h = self._enter()
        try:
            return self._lib.countersd_attach_slot(h)
        finally:
            self._leave()
