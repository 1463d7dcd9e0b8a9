"""The examples run as documented in examples/README.md: the Python client
(generating its stubs into a fresh cache), the stub generator as a program,
and buf-curl.sh — against a real server, with plain TLS and with mTLS."""
import os
import unittest

import harness
from harness import PYTHON, Server, run, stop_and_assert

EXAMPLES = os.path.join(harness.SOURCE_DIR, "examples")
HEALTH_PY = os.path.join(EXAMPLES, "python", "health.py")
BUF_CURL_SH = os.path.join(EXAMPLES, "buf-curl.sh")

_srv = None


def setUpModule():
    global _srv, _pwfile
    _srv = Server(name="examples").start()
    _pwfile = os.path.join(harness.tmpdir("pw-"), "admin-password")
    with open(_pwfile, "w") as f:
        f.write(_srv.admin_password + "\n")
    os.chmod(_pwfile, 0o600)


def tearDownModule():
    stop_and_assert(_srv)


def example_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVACRON_")}
    env["NOVACRON_STUBS_CACHE"] = _cache  # never the user's ~/.cache
    env.update(extra)
    return env


_cache = harness.tmpdir("stubs-cache-")


class PythonExample(unittest.TestCase):
    def test_health_py(self):
        res = run([PYTHON, HEALTH_PY, "--target", _srv.addr, "--ca", harness.cert("ca.crt"),
                   "--user", "admin", "--password-file", _pwfile], env=example_env())
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertIn("health: SERVING", res.stdout)
        self.assertIn("login: OK, session users/admin/sessions/", res.stdout)
        self.assertIn("IdentityService/WhoAmI: users/admin (system administrator)", res.stdout)
        self.assertIn("novacron.v1.VmService/ListVms: OK, 0 VM(s)", res.stdout)
        self.assertNotIn(_srv.admin_password, res.stdout)
        # without credentials: health works, the API refuses
        res = run([PYTHON, HEALTH_PY, "--target", _srv.addr, "--ca", harness.cert("ca.crt")],
                  env=example_env())
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertIn("WhoAmI: UNAUTHENTICATED", res.stdout)
        self.assertTrue(os.listdir(_cache), "no stubs cached")

    def test_health_py_target_from_environment_with_token(self):
        res = run([PYTHON, HEALTH_PY, "--ca", harness.cert("ca.crt"), "--token", "e2e-token"],
                  env=example_env(NOVACRON_TARGET="localhost:%d" % _srv.port))
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertIn("health: SERVING", res.stdout)

    def test_health_py_fails_cleanly(self):
        # untrusted server certificate: a message and exit status 1, no traceback
        res = run([PYTHON, HEALTH_PY, "--target", _srv.addr, "--timeout", "3"],
                  env=example_env())
        self.assertEqual(res.returncode, 1, res.stdout)
        self.assertIn("health: UNAVAILABLE", res.stdout)
        self.assertNotIn("Traceback", res.stdout)

    def test_health_py_mtls(self):
        srv = Server("--tls-client-auth", "require", "--tls-client-ca", harness.cert("ca.crt"),
                     name="examples-mtls").start()
        try:
            res = run([PYTHON, HEALTH_PY, "--target", srv.addr, "--ca", harness.cert("ca.crt"),
                       "--cert", harness.cert("client.crt"), "--key", harness.cert("client.key")],
                      env=example_env())
            self.assertEqual(res.returncode, 0, res.stdout)
            self.assertIn("health: SERVING", res.stdout)
            stop_and_assert(srv)
        finally:
            srv.kill()

    def test_stub_generator_as_program(self):
        out = harness.tmpdir("gen-")
        res = run([PYTHON, os.path.join(EXAMPLES, "python", "novacron_stubs.py"), out])
        self.assertEqual(res.returncode, 0, res.stdout)
        for rel in ("novacron/v1/vm_pb2.py", "novacron/v1/vm_pb2_grpc.py",
                    "grpcstubs/health/v1/health_pb2_grpc.py",
                    "grpcstubs/reflection/v1/reflection_pb2_grpc.py",
                    "grpcstubs/reflection/v1alpha/reflection_pb2_grpc.py"):
            self.assertTrue(os.path.isfile(os.path.join(out, rel)), rel)


@unittest.skipUnless(os.access(harness.BUF, os.X_OK),
                     "%s is missing: run `npm ci` in the source tree" % harness.BUF)
class BufCurlExample(unittest.TestCase):
    def test_buf_curl_sh(self):
        res = run([BUF_CURL_SH, "--target", "localhost:%d" % _srv.port, "--ca",
                   harness.cert("ca.crt"), "--user", "admin", "--password-file", _pwfile],
                  env=example_env(), timeout=120)
        self.assertEqual(res.returncode, 0, res.stdout)
        out = res.stdout
        for name in harness.local_services():
            self.assertIn(name + "\n", out)
        self.assertIn("novacron.v1.VmService/CreateVm\n", out)
        self.assertEqual(out.count('"status": "SERVING"'), 2, out)
        self.assertIn('"name": "users/admin"', out)
        self.assertIn("/novacron.v1.VmService/ListVms\n{}\n(exit status 0)", out)
        self.assertNotIn(_srv.admin_password, out)
        self.assertIn("$ ", out)  # the commands are shown

    def test_buf_curl_sh_defaults_from_environment(self):
        res = run([BUF_CURL_SH, "--token", "e2e-token"], env=example_env(
            NOVACRON_TARGET="127.0.0.1:%d" % _srv.port, NOVACRON_CA=harness.cert("ca.crt")),
            timeout=120)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertIn("Authorization: Bearer e2e-token", res.stdout)
        self.assertIn('"status": "SERVING"', res.stdout)
        self.assertIn('"code": "unauthenticated"', res.stdout)

    def test_buf_curl_sh_fails_when_unreachable(self):
        res = run([BUF_CURL_SH, "--target", "127.0.0.1:%d" % harness.free_port(), "--ca",
                   harness.cert("ca.crt")], env=example_env(), timeout=120)
        self.assertNotEqual(res.returncode, 0, res.stdout)


if __name__ == "__main__":
    unittest.main()
