#!/usr/bin/env python3
"""A crew worker in plain Python 3 (standard library only), written from docs/protocol.md.

A crew coordinator starts this script and sends it tasks over fd 3; it answers on fd 4.
From C++, declare the jobs with the same names and signatures and start a pool of it:

    const crew::job<std::string(std::string)> py_upper{"py_upper"};
    crew::process_pool_options o;
    o.executable = "/usr/bin/python3";
    o.args = {"apps/examples/python_worker.py"};   // add "--no-batch" to turn off section 9
    crew::process_pool pool(ioc.get_executor(), o);
    pool.submit(py_upper("hello")).get();          // "HELLO"

It does not run on its own (fds 3 and 4 must be a coordinator's pipes); its test,
tests/integration/test_python_worker.cpp, runs it in a pool: ctest -R test_python_worker.

To serve your own function, add it below with `@job(name, signature)`: the signature is in
the protocol's wire names (section 3), e.g. "f64(vec<f64>)". Values arrive as Python values:
integers as int, f32/f64 as float, bool as bool, str as str (the bytes decoded as UTF-8 with
"surrogateescape", so any bytes round-trip; return str or bytes), vec as list, pair and tuple
as tuple. An exception raised by a job reaches the caller as crew::errc::job_failed with its
text. What a job prints goes to the coordinator's log, never into the protocol.

Implemented: hello, task/result/error, cancel (ignored: a long job is killed after the pool's
cancel grace), shutdown, end of input, and batches (section 9). Not implemented: the
shared-memory transport (section 8); the hello leaves its flag clear, so everything is inline.
Exit status: 0 on end of input or shutdown, 3 when the coordinator sends a frame that breaks
the protocol (the reason goes to stderr; crew-worker does the same).
"""

import os
import signal
import struct
import sys
import time

# --- frames (section 2) -------------------------------------------------------------------

MAGIC, VERSION = 0x57455243, 1  # "CREW" little-endian, protocol version 1
HEADER = struct.Struct("<IBBHQI")  # magic, version, type, flags, task id, payload length
HELLO, TASK, RESULT, ERROR, CANCEL, SHUTDOWN, BATCH, BATCH_RESULT = range(1, 9)
FLAG_BATCHES = 2  # hello flag bit 1: this worker takes batch frames (section 9)
MAX_PAYLOAD = 256 << 20  # our limit for one frame's payload, as crew's default
JOB_FAILED, UNKNOWN_JOB, DECODE_ERROR, PAYLOAD_TOO_LARGE = 1, 2, 7, 8  # error codes (section 6)

U32, U64 = struct.Struct("<I"), struct.Struct("<Q")


class ProtocolViolation(Exception):
    """The coordinator sent something this worker cannot accept: it exits with status 3."""


def read_frame(inp):
    """The next (type, task id, payload) from fd 3, or None at end of input between frames."""
    header = inp.read(HEADER.size)
    if not header:
        return None
    if len(header) < HEADER.size:
        raise ProtocolViolation(f"end of input inside a frame header ({len(header)} bytes)")
    magic, version, ftype, flags, task_id, length = HEADER.unpack(header)
    if magic != MAGIC:
        raise ProtocolViolation(f"bad magic {magic:#010x}")
    if version != VERSION:
        raise ProtocolViolation(f"protocol version {version}, this worker speaks {VERSION}")
    if ftype not in (TASK, CANCEL, SHUTDOWN) and not (ftype == BATCH and BATCHES):
        raise ProtocolViolation(f"frame type {ftype} is not one a coordinator may send here")
    if flags != 0:  # bit 0 (shm) is only for workers that mapped the files; we did not
        raise ProtocolViolation(f"unexpected frame flags {flags:#x}")
    if length > MAX_PAYLOAD:  # checked before reading (or allocating) the payload
        raise ProtocolViolation(f"payload of {length} bytes is over the limit of {MAX_PAYLOAD}")
    payload = inp.read(length)
    if len(payload) < length:
        raise ProtocolViolation("end of input inside a frame payload")
    return ftype, task_id, payload


def send_frame(out, ftype, task_id, payload=b"", flags=0):
    out.write(HEADER.pack(MAGIC, VERSION, ftype, flags, task_id, len(payload)))
    out.write(payload)
    out.flush()


# --- values (section 3) --------------------------------------------------------------------


class DecodeError(Exception):
    pass


class Reader:
    """Reads encoded values from bytes, never past their end."""

    def __init__(self, data):
        self.data, self.pos = memoryview(data), 0

    def left(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n > self.left():
            raise DecodeError(f"truncated: {n} bytes needed, {self.left()} left")
        self.pos += n
        return self.data[self.pos - n : self.pos]


SCALARS = {"bool": "B", "i8": "b", "i16": "h", "i32": "i", "i64": "q", "u8": "B", "u16": "H",
           "u32": "I", "u64": "Q", "f32": "f", "f64": "d"}  # fmt: skip


def split_top(names):
    """Splits "i32,vec<pair<i32,str>>" at the commas outside angle brackets."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(names):
        depth += (c == "<") - (c == ">")
        if c == "," and depth == 0:
            parts.append(names[start:i])
            start = i + 1
    return parts + [names[start:]] if names else []


class Codec:
    """Encoder and decoder of one wire type; `size` is its encoded size if fixed, else None."""

    def __init__(self, name):
        self.name = name
        self.size = None
        if name in SCALARS:
            self.scalar = struct.Struct("<" + SCALARS[name])
            self.size = self.scalar.size
        elif name.startswith("vec<") and name.endswith(">"):
            self.element = Codec(name[4:-1])
        elif name.startswith(("pair<", "tuple<")) and name.endswith(">"):
            self.parts = [Codec(n) for n in split_top(name[name.index("<") + 1 : -1])]
            if name.startswith("pair<") and len(self.parts) != 2:
                raise ValueError(f"a pair has two types: {name}")
            if all(p.size is not None for p in self.parts):
                self.size = sum(p.size for p in self.parts)
        elif name != "str":
            raise ValueError(f"no codec for the type {name!r}")

    def encode(self, value, out):
        if self.name in SCALARS:
            out += self.scalar.pack(value)
        elif self.name == "str":
            data = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
            out += U64.pack(len(data)) + data  # bytes, bytearray or str
        elif self.name.startswith("vec<"):
            out += U64.pack(len(value))
            for x in value:
                self.element.encode(x, out)
        else:
            if len(value) != len(self.parts):
                raise ValueError(f"{self.name} needs {len(self.parts)} elements, got {len(value)}")
            for part, x in zip(self.parts, value):
                part.encode(x, out)

    def decode(self, r):
        if self.name in SCALARS:
            (value,) = self.scalar.unpack(r.take(self.size))
            if self.name == "bool":
                if value > 1:
                    raise DecodeError(f"bool byte is {value}, not 0 or 1")
                return value == 1
            return value
        if self.name == "str":
            (n,) = U64.unpack(r.take(8))
            return bytes(r.take(n)).decode("utf-8", "surrogateescape")  # take() checks n
        if self.name.startswith("vec<"):
            (n,) = U64.unpack(r.take(8))
            unit = self.element.size or 1  # every element takes at least a byte
            if n > r.left() // unit:  # checked before anything is allocated
                raise DecodeError(f"{n} elements claimed, only {r.left()} bytes left")
            if self.element.name in SCALARS and self.element.name != "bool":
                return list(struct.unpack(f"<{n}{SCALARS[self.element.name]}", r.take(n * unit)))
            return [self.element.decode(r) for _ in range(n)]
        return tuple(part.decode(r) for part in self.parts)


STR = Codec("str")


# --- jobs (sections 4 and 5) ---------------------------------------------------------------


class Job:
    def __init__(self, name, signature, function):
        self.name, self.signature, self.function = name, signature, function
        result, args = signature[:-1].split("(", 1)
        self.result = None if result == "void" else Codec(result)
        self.args = [Codec(a) for a in split_top(args)]

    def call(self, payload):
        """Runs the job on encoded arguments; returns the encoded result."""
        r = Reader(payload)
        try:
            values = [codec.decode(r) for codec in self.args]
        except DecodeError as e:
            raise DecodeError(f"{self.name}: the arguments do not decode as {self.signature}: {e}")
        if r.left():
            raise DecodeError(f"{self.name}: {r.left()} bytes left over after the arguments")
        value = self.function(*values)
        out = bytearray()
        if self.result is not None:
            self.result.encode(value, out)
        return bytes(out)


JOBS = []  # in hello order: a task names its job by position in this list
BATCHES = "--no-batch" not in sys.argv[1:]
current_task_id = 0  # the id of the task or batch frame being served


def job(name, signature):
    """Decorator: serves the function as job `name` with `signature` in wire names."""

    def register(function):
        JOBS.append(Job(name, signature, function))
        return function

    return register


@job("py_upper", "str(str)")
def py_upper(s):
    return s.upper()


@job("py_add", "i64(i64,i64)")
def py_add(a, b):
    return a + b


@job("py_sum", "f64(vec<f64>)")
def py_sum(values):
    return float(sum(values))


@job("py_split", "vec<str>(str,str)")
def py_split(s, separator):
    return s.split(separator)


@job("py_fail", "i32(str)")
def py_fail(message):
    raise RuntimeError(message)


@job("py_exit", "i32(i32)")
def py_exit(code):
    print(f"py_exit: exiting with status {code} in the middle of a task", file=sys.stderr)
    sys.stderr.flush()
    os._exit(code)


@job("py_sleep_ms", "i32(i32)")
def py_sleep_ms(ms):
    print(f"py_sleep_ms: sleeping {ms} ms")  # a log line for the coordinator, not a frame
    time.sleep(ms / 1000)
    return ms


@job("py_task_id", "u64(i32)")
def py_task_id(_):
    return current_task_id  # items of one batch share it


# --- serving (sections 1, 6, 7 and 9) ------------------------------------------------------


def error_payload(code, message):
    try:
        data = message.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that did not come from bytes
        data = message.encode("utf-8", "backslashreplace")
    return U32.pack(code) + U64.pack(len(data)) + data


def run(index, args):
    """One call: (RESULT, encoded result) or (ERROR, error payload)."""
    if index >= len(JOBS):
        return ERROR, error_payload(UNKNOWN_JOB, f"no job at index {index} ({len(JOBS)} jobs)")
    try:
        return RESULT, JOBS[index].call(args)
    except DecodeError as e:
        return ERROR, error_payload(DECODE_ERROR, str(e))
    except Exception as e:  # the job raised (or its result did not encode)
        return ERROR, error_payload(JOB_FAILED, str(e) or type(e).__name__)


def run_batch(payload):
    """A batch frame's outcome: (BATCH_RESULT, payload) or (ERROR, payload) for all of it."""
    r = Reader(payload)
    try:
        index, count = struct.unpack("<II", r.take(8))
        items = [r.take(U32.unpack(r.take(4))[0]) for _ in range(count)]
        if r.left():
            raise DecodeError(f"{r.left()} bytes left over after {count} items")
    except DecodeError as e:
        return ERROR, error_payload(DECODE_ERROR, f"malformed batch: {e}")
    if index >= len(JOBS):  # one error frame for the whole batch
        return ERROR, error_payload(UNKNOWN_JOB, f"no job at index {index} ({len(JOBS)} jobs)")
    out = bytearray(U32.pack(count))
    for args in items:
        kind, body = run(index, args)
        out += struct.pack("<BI", kind, len(body)) + body
    return BATCH_RESULT, bytes(out)


def hello_payload():
    out = bytearray(struct.pack("<II", os.getpid(), len(JOBS)))
    for j in JOBS:
        STR.encode(j.name, out)
        STR.encode(j.signature, out)
    return bytes(out)


def serve(inp, out):
    global current_task_id
    send_frame(out, HELLO, 0, hello_payload(), FLAG_BATCHES if BATCHES else 0)
    while (frame := read_frame(inp)) is not None:
        ftype, task_id, payload = frame
        if ftype == SHUTDOWN:
            return
        if ftype == CANCEL:  # we never stop a job early; skip it
            continue
        current_task_id = task_id
        if ftype == BATCH:
            kind, body = run_batch(payload)
        elif len(payload) < 4:
            kind, body = ERROR, error_payload(DECODE_ERROR, "task payload without a job index")
        else:
            kind, body = run(U32.unpack_from(payload)[0], payload[4:])
        if len(body) > MAX_PAYLOAD:
            kind, body = ERROR, error_payload(PAYLOAD_TOO_LARGE, f"reply of {len(body)} bytes")
        send_frame(out, kind, task_id, body)


def die_with_coordinator():
    """Section 7: die with the coordinator even while a job runs (Linux only, optional).
    If it died before this, fd 3 is already at end of input: the loop ends at once."""
    if "CREW_COORDINATOR_PID" in os.environ:
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def not_dumpable():
    """As crew's runtime does: a compromised sibling of the same user can then neither read
    this worker's tasks nor forge its replies through /proc (Linux only, optional)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0)  # 4: PR_SET_DUMPABLE
    except (OSError, AttributeError):
        pass


def main():
    not_dumpable()
    die_with_coordinator()
    sys.stdout.reconfigure(line_buffering=True)  # job output reaches the log line by line
    try:
        inp, out = open(3, "rb"), open(4, "wb")
    except OSError:
        print("python_worker: no fd 3/4; start it from a crew process_pool", file=sys.stderr)
        return 2
    try:
        with inp, out:
            serve(inp, out)
    except ProtocolViolation as e:
        print(f"python_worker: protocol violation: {e}", file=sys.stderr)
        return 3
    except BrokenPipeError:  # the coordinator closed the reply channel: it is gone
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
