"""harness.py - shared by the e2e tests: the real novacron-server binary,
started per test (class) on 127.0.0.1:0 with TLS, and foreign clients.

Environment (ctest sets all four, see tests/CMakeLists.txt NC_TEST_ENV):
  NC_SERVER_BIN   the novacron-server binary
  NC_CERT_DIR     scripts/gen-certs output: ca.crt server.* client.*
  NC_SOURCE_DIR   the source tree (proto/, examples/, scripts/)
  NC_BINARY_DIR   the build tree
Without them the defaults assume the source tree with a build in build/,
so `cd tests/e2e && /usr/bin/python3 -m unittest -v test_python_client`
works by hand after `scripts/gen-certs build/test-certs`.
"""
import atexit
import binascii
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.environ.get("NC_SOURCE_DIR") or os.path.join(HERE, "..", ".."))
BINARY_DIR = os.path.abspath(os.environ.get("NC_BINARY_DIR") or os.path.join(SOURCE_DIR, "build"))
SERVER_BIN = os.environ.get("NC_SERVER_BIN") or os.path.join(BINARY_DIR, "server",
                                                             "novacron-server")
CERT_DIR = os.environ.get("NC_CERT_DIR") or os.path.join(BINARY_DIR, "test-certs")
BUF = os.path.join(SOURCE_DIR, "node_modules", ".bin", "buf")
PYTHON = "/usr/bin/python3"

READY_TIMEOUT = 10.0  # seconds for the server to write its ready file
STOP_TIMEOUT = 15.0  # seconds for the server to exit after SIGTERM

# Every channel: no HTTP proxy from the environment, quick reconnects.
CHANNEL_OPTIONS = [("grpc.enable_http_proxy", 0), ("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 500)]

_tmp_root = tempfile.mkdtemp(prefix="nc-e2e-")
atexit.register(shutil.rmtree, _tmp_root, True)


def tmpdir(prefix="t-"):
    """A fresh directory removed when the process exits."""
    return tempfile.mkdtemp(prefix=prefix, dir=_tmp_root)


def cert(name):
    """Path of a file in NC_CERT_DIR (ca.crt, server.key, ...)."""
    return os.path.join(CERT_DIR, name)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------- stubs

_stubs_lock = threading.Lock()
_stubs_dir = None


def stubs():
    """Generates the Python stubs from proto/ once per process into a temp
    directory (examples/python/novacron_stubs.py does the protoc call) and
    puts them on sys.path. Returns the novacron_stubs module."""
    global _stubs_dir
    with _stubs_lock:
        examples = os.path.join(SOURCE_DIR, "examples", "python")
        if examples not in sys.path:
            sys.path.insert(0, examples)
        import novacron_stubs
        if _stubs_dir is None:
            _stubs_dir = novacron_stubs.load(out_dir=tmpdir("stubs-"),
                                             root=os.path.join(SOURCE_DIR, "proto"))
        return novacron_stubs


def novacron_modules():
    """Every generated novacron.v1 *_pb2 module, imported."""
    import importlib
    ns = stubs()
    mods = []
    for rel in ns.novacron_protos(os.path.join(SOURCE_DIR, "proto")):
        name = rel[:-len(".proto")].replace("/", ".") + "_pb2"
        mods.append(importlib.import_module(name))
    return mods


def novacron_services():
    """{full service name: ServiceDescriptor} from the local protos."""
    out = {}
    for mod in novacron_modules():
        for sd in mod.DESCRIPTOR.services_by_name.values():
            out[sd.full_name] = sd
    return out


def local_services():
    """novacron.v1 services plus health and both reflection services, as the
    local (generated) descriptors see them."""
    stubs()
    from grpcstubs.health.v1 import health_pb2
    from grpcstubs.reflection.v1 import reflection_pb2 as r1
    from grpcstubs.reflection.v1alpha import reflection_pb2 as r1a
    out = novacron_services()
    for mod in (health_pb2, r1, r1a):
        for sd in mod.DESCRIPTOR.services_by_name.values():
            out[sd.full_name] = sd
    return out


# ---------------------------------------------------------------- server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Identity: every test server shares the fixture's PostgreSQL (tests/pg.sh)
# and, so tokens of one server are accepted by the next on the same
# database, one signing secret per test process. The first server on a
# database creates `admin` with ADMIN_PASSWORD and the `default` project.
DATABASE_URL = os.environ.get("NC_DATABASE_URL", "")
TOKEN_SECRET = os.environ.get("NC_TOKEN_SECRET") or binascii.hexlify(os.urandom(32)).decode()
ADMIN_PASSWORD = os.environ.get("NC_ADMIN_PASSWORD", "e2e-Bootstrap-Passw0rd-7x")


def server_env(database_url=None):
    """The NOVACRON_* environment a test server needs: database, signing
    secret and the first administrator's password."""
    return {"NOVACRON_DATABASE_URL": database_url or DATABASE_URL,
            "NOVACRON_TOKEN_SECRET": TOKEN_SECRET,
            "NOVACRON_ADMIN_PASSWORD": ADMIN_PASSWORD}


def create_database(prefix="t"):
    """A fresh, empty database on the fixture's cluster; returns its URL
    (for tests of first start, migrations and bootstrap)."""
    name = "%s_%s" % (prefix, binascii.hexlify(os.urandom(6)).decode())
    pgdir = os.environ["NC_TEST_PG"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    subprocess.run([os.path.join(bindir, "createdb"), "-h", os.path.join(pgdir, "sock"),
                    "-p", "5432", "-U", "novacron", name], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return DATABASE_URL.replace("/novacron?", "/%s?" % name, 1)


class ServerError(Exception):
    pass


_started = []  # every Server started, so that none outlives the test process


@atexit.register
def _kill_leftovers():
    for srv in _started:
        srv.kill()


class Server:
    """One novacron-server process with TLS on 127.0.0.1:0.

        srv = Server("--max-recv-message-bytes", "65536").start()
        ... srv.addr ...
        rc = srv.stop()          # SIGTERM, wait; 0 expected
    Usable as a context manager (stop() on exit, without asserting)."""

    def __init__(self, *args, tls=True, name="server", database_url=None, env=None):
        self.args = list(args)
        self.database_url = database_url or DATABASE_URL
        self.extra_env = dict(env or {})
        self.admin_password = ADMIN_PASSWORD
        self.tls = tls
        self.dir = tmpdir(name + "-")
        self.ready_file = os.path.join(self.dir, "ready")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self.addr = None
        self.port = None
        self.returncode = None

    def command(self):
        cmd = [SERVER_BIN, "--listen", "127.0.0.1:0", "--ready-file", self.ready_file]
        # servers of concurrent tests share databases: each is its own
        # replica unless the test names one (to restart it as the same)
        if not any(a == "--replica-id" or a.startswith("--replica-id=") for a in self.args):
            cmd += ["--replica-id", os.path.basename(self.dir)]
        if self.tls:
            cmd += ["--tls-cert", cert("server.crt"), "--tls-key", cert("server.key")]
        else:
            cmd += ["--insecure"]
        return cmd + self.args

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOVACRON_")}
        env.update(server_env(self.database_url))
        env.update(self.extra_env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env)
        _started.append(self)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if os.path.exists(self.ready_file):
                with open(self.ready_file) as f:
                    self.addr = f.read().strip()
                self.port = int(self.addr.rsplit(":", 1)[1])
                return self
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise ServerError("server exited with %d before it was ready:\n%s" %
                                  (self.proc.returncode, self.log_tail()))
            time.sleep(0.02)
        self.kill()
        raise ServerError("server not ready within %.0f s:\n%s" % (READY_TIMEOUT, self.log_tail()))

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout=STOP_TIMEOUT):
        """Waits for exit; returns the exit code (raises ServerError on timeout,
        after killing the process)."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServerError("server did not exit within %.0f s of SIGTERM:\n%s" %
                              (timeout, self.log_tail()))
        return self.returncode

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM and wait. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log().splitlines()[-n:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        try:
            self.stop()
        finally:
            self.kill()

    # --- clients

    def channel(self, ca=True, cert_pair=False, target=None, options=()):
        """A TLS channel to the server: ca=True trusts NC_CERT_DIR/ca.crt, a
        path trusts that file, None the system roots; cert_pair=True presents
        client.crt/client.key, a (cert, key) tuple those files."""
        key = chain = None
        if cert_pair is True:
            cert_pair = (cert("client.crt"), cert("client.key"))
        if cert_pair:
            chain, key = read(cert_pair[0]), read(cert_pair[1])
        if ca is True:
            ca = cert("ca.crt")
        creds = grpc.ssl_channel_credentials(root_certificates=read(ca) if ca else None,
                                             private_key=key, certificate_chain=chain)
        return grpc.secure_channel(target or self.addr, creds,
                                   options=CHANNEL_OPTIONS + list(options))

    def insecure_channel(self, target=None):
        return grpc.insecure_channel(target or self.addr, options=CHANNEL_OPTIONS)


def stop_and_assert(srv, timeout=STOP_TIMEOUT):
    """Stops srv with SIGTERM and asserts a clean exit 0 (a sanitizer report
    or a crash turns into a non-zero exit and fails here, with the log).
    Raises AssertionError, so it also works in tearDownClass."""
    rc = srv.stop(timeout)
    if rc != 0:
        raise AssertionError("server exit code %r; log tail:\n%s" % (rc, srv.log_tail(80)))


# ---------------------------------------------------------------- health


def health_check(channel, service="", timeout=5.0):
    """Health.Check -> status name ("SERVING", ...); raises grpc.RpcError."""
    stubs()
    from grpcstubs.health.v1 import health_pb2, health_pb2_grpc
    resp = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


def assert_serving(testcase, srv, msg=""):
    """The server process is alive and answers Health.Check SERVING over a
    fresh TLS channel."""
    testcase.assertTrue(srv.alive(), "server died %s; log tail:\n%s" % (msg, srv.log_tail()))
    with srv.channel() as ch:
        testcase.assertEqual(health_check(ch), "SERVING", msg)


def run(cmd, timeout=60, env=None, **kw):
    """subprocess.run capturing text output (stdout+stderr together)."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, env=env, **kw)


_other_ca = None


def other_ca_dir():
    """A second, unrelated development CA with its own server and client
    certificates (scripts/gen-certs), made once per process."""
    global _other_ca
    if _other_ca is None:
        d = tmpdir("other-ca-")
        res = run([os.path.join(SOURCE_DIR, "scripts", "gen-certs"), d])
        if res.returncode != 0:
            raise RuntimeError("gen-certs failed:\n" + res.stdout)
        _other_ca = d
    return _other_ca
