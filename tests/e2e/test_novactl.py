"""novactl, the CLI on the C SDK, against the real server: the human and
JSON outputs, exit codes, flags and their environment variables."""
import json
import os
import subprocess
import time
import unittest

from harness import BINARY_DIR, Server, cert, free_port, other_ca_dir, stop_and_assert

NOVACTL = os.path.join(BINARY_DIR, "tools", "novactl", "novactl")


def novactl(*args, env=None, timeout=30):
    e = {k: v for k, v in os.environ.items() if not k.startswith("NOVACRON_")}
    e.update(env or {})
    return subprocess.run([NOVACTL, *args], env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


class Novactl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(name="novactl").start()
        cls.base = ["--target", cls.srv.addr, "--ca", cert("ca.crt")]

    @classmethod
    def tearDownClass(cls):
        stop_and_assert(cls.srv)

    def test_health_table_and_json(self):
        r = novactl(*self.base, "health")
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "SERVING"), r.stderr)
        r = novactl(*self.base, "--output", "json", "health", "novacron.v1.VmService")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout),
                         {"service": "novacron.v1.VmService", "status": "SERVING"})

    def test_environment_supplies_target_and_ca(self):
        r = novactl("health", env={"NOVACRON_TARGET": self.srv.addr, "NOVACRON_CA": cert("ca.crt")})
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "SERVING"), r.stderr)

    def test_unknown_service_fails_with_the_status(self):
        r = novactl(*self.base, "health", "no.Such")
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)
        self.assertIn("request id", r.stderr)

    def test_usage_errors_exit_2(self):
        for args in (["--no-such-flag", "health"], ["frobnicate"], ["--output", "xml", "health"]):
            r = novactl(*self.base, *args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertTrue(r.stderr.strip(), args)

    def test_connection_failures_exit_1(self):
        r = novactl("--target", "127.0.0.1:%d" % free_port(), "--ca", cert("ca.crt"),
                    "--timeout", "2", "health")
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, "UNAVAILABLE|DEADLINE_EXCEEDED")
        r = novactl("--target", self.srv.addr, "--ca", os.path.join(other_ca_dir(), "ca.crt"),
                    "--timeout", "3", "health")
        self.assertEqual(r.returncode, 1, "a server signed by another CA must be refused")
        r = novactl("--target", self.srv.addr, "--ca", "/nonexistent/ca.crt", "health")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent/ca.crt", r.stderr)

    def test_version(self):
        r = novactl("version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("0.1.0", r.stdout)
        r = novactl("--output", "json", "version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIsInstance(json.loads(r.stdout), dict)


class NovactlWatchAndMtls(unittest.TestCase):
    def test_watch_reports_not_serving_on_shutdown(self):
        srv = Server(name="novactl-watch").start()
        try:
            p = subprocess.Popen([NOVACTL, "--target", srv.addr, "--ca", cert("ca.crt"),
                                  "health", "--watch"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            first = p.stdout.readline().strip()
            self.assertEqual(first, "SERVING")
            time.sleep(0.2)
            srv.signal()
            out, err = p.communicate(timeout=15)
            self.assertIn("NOT_SERVING", out)
            self.assertNotEqual(p.returncode, 0)  # the watch ended UNAVAILABLE
            self.assertEqual(srv.wait(), 0, srv.log_tail())
        finally:
            srv.kill()

    def test_mtls_client_certificate(self):
        srv = Server("--tls-client-auth", "require", "--tls-client-ca", cert("ca.crt"),
                     name="novactl-mtls").start()
        try:
            base = ["--target", srv.addr, "--ca", cert("ca.crt"), "--timeout", "5"]
            r = novactl(*base, "health")
            self.assertEqual(r.returncode, 1, "no client certificate must be refused")
            r = novactl(*base, "--cert", cert("client.crt"), "--key", cert("client.key"), "health")
            self.assertEqual((r.returncode, r.stdout.strip()), (0, "SERVING"), r.stderr)
            stop_and_assert(srv)
        finally:
            srv.kill()


if __name__ == "__main__":
    unittest.main()
