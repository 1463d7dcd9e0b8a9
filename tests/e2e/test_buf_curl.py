"""buf curl (Go, connect-go's gRPC protocol) against the real server, using
nothing but server reflection: list services and methods, call Health.Check
and novacron methods, and the TLS failures a user would hit."""
import json
import os
import unittest

import harness
from harness import BUF, Server, run, stop_and_assert

HAVE_BUF = os.access(BUF, os.X_OK)
SKIP_WHY = ("%s is missing: run `npm ci` in the source tree (scripts/test does it via "
            "nc_install_npm_tools)" % BUF)

_srv = None


def setUpModule():
    global _srv
    if HAVE_BUF:
        _srv = Server(name="bufcurl").start()


def tearDownModule():
    if _srv:
        stop_and_assert(_srv)


def buf_curl(srv, *args, tls=True, ca=True, path=""):
    cmd = [BUF, "curl", "--protocol", "grpc", "--timeout", "30s"]
    if tls and ca:
        cmd += ["--cacert", harness.cert("ca.crt")]
    cmd += list(args)
    cmd.append("%s://127.0.0.1:%d%s" % ("https" if tls else "http", srv.port, path))
    return run(cmd, timeout=60)


@unittest.skipUnless(HAVE_BUF, SKIP_WHY)
class BufCurl(unittest.TestCase):
    def ok(self, res):
        self.assertEqual(res.returncode, 0, "%s\n%s" % (" ".join(res.args), res.stdout))
        return res.stdout

    def test_list_services(self):
        out = self.ok(buf_curl(_srv, "--list-services"))
        self.assertEqual(set(out.split()), set(harness.local_services()))

    def test_list_methods(self):
        out = self.ok(buf_curl(_srv, "--list-methods"))
        expected = {"%s/%s" % (name, m.name)
                    for name, sd in harness.local_services().items() for m in sd.methods}
        self.assertGreater(len(expected), 50)
        self.assertEqual(set(out.split()), expected)

    def test_health_check(self):
        out = self.ok(buf_curl(_srv, "-d", "{}", path="/grpc.health.v1.Health/Check"))
        self.assertEqual(json.loads(out), {"status": "SERVING"})
        out = self.ok(buf_curl(_srv, "-d", '{"service": "novacron.v1.VmService"}',
                               path="/grpc.health.v1.Health/Check"))
        self.assertEqual(json.loads(out), {"status": "SERVING"})

    def test_health_check_unknown_service(self):
        res = buf_curl(_srv, "-d", '{"service": "no.such.Service"}',
                       path="/grpc.health.v1.Health/Check")
        self.assertNotEqual(res.returncode, 0)
        self.assertIn('"not_found"', res.stdout)

    def bearer(self):
        """-H authorization for the bootstrap admin, logged in with buf curl."""
        out = self.ok(buf_curl(_srv, "-d", json.dumps({"username": "admin",
                                                       "password": _srv.admin_password}),
                               path="/novacron.v1.IdentityService/Login"))
        return ["-H", "authorization: Bearer " + json.loads(out)["accessToken"]]

    def test_login_and_whoami(self):
        out = self.ok(buf_curl(_srv, *self.bearer(), "-d", "{}",
                               path="/novacron.v1.IdentityService/WhoAmI"))
        who = json.loads(out)["principal"]
        self.assertEqual((who["name"], who["systemAdmin"]), ("users/admin", True))
        res = buf_curl(_srv, "-d", "{}", path="/novacron.v1.IdentityService/WhoAmI")
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("unauthenticated", res.stdout)
        self.assertIn("missing credentials", res.stdout)

    def test_novacron_method_unimplemented(self):
        res = buf_curl(_srv, *self.bearer(), "-d", '{"name": "projects/default/backups/b"}',
                       path="/novacron.v1.BackupService/GetBackup")
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertIn("unimplemented", res.stdout)
        self.assertIn("novacron.v1.BackupService.GetBackup is not implemented yet", res.stdout)

    def test_vm_method_through_reflection(self):
        res = buf_curl(_srv, *self.bearer(), "-d", '{"name": "projects/default/vms/web-1"}',
                       path="/novacron.v1.VmService/GetVm")
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertIn("not_found", res.stdout)
        self.assertIn("VM projects/default/vms/web-1 not found", res.stdout)
        res = buf_curl(_srv, *self.bearer(), "-d", "{}",
                       path="/novacron.v1.HostService/ListHosts")
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertIn('"name": "hosts/default"', res.stdout)

    def test_one_method_of_every_service(self):
        # reflection gives buf the schema of each service; the server-streaming
        # EventService.WatchEvents included. Without credentials every one is
        # refused before anything runs (Login, the public method, refuses the
        # empty password).
        for name, sd in sorted(harness.novacron_services().items()):
            m = sd.methods_by_name.get("WatchEvents") or sd.methods[0]
            with self.subTest(method="%s/%s" % (name, m.name)):
                res = buf_curl(_srv, "-d", "{}", path="/%s/%s" % (name, m.name))
                self.assertNotEqual(res.returncode, 0, res.stdout)
                self.assertIn("unauthenticated", res.stdout)

    def test_unknown_service_not_in_schema(self):
        res = buf_curl(_srv, "-d", "{}", path="/novacron.v1.NoSuchService/Get")
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertIn("novacron.v1.NoSuchService", res.stdout)

    def test_plaintext_to_tls_port_fails(self):
        res = buf_curl(_srv, "--http2-prior-knowledge", "-d", "{}", tls=False,
                       path="/grpc.health.v1.Health/Check")
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertNotIn("SERVING", res.stdout)

    def test_untrusted_server_certificate_fails(self):
        res = buf_curl(_srv, "-d", "{}", ca=False, path="/grpc.health.v1.Health/Check")
        # (buf reports the failed handshake as a reflection failure)
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertNotIn("SERVING", res.stdout)
        harness.assert_serving(self, _srv, "after buf curl failures")


@unittest.skipUnless(HAVE_BUF, SKIP_WHY)
class BufCurlMutualTLS(unittest.TestCase):
    def test_client_certificate(self):
        srv = Server("--tls-client-auth", "require", "--tls-client-ca", harness.cert("ca.crt"),
                     name="bufcurl-mtls").start()
        try:
            res = buf_curl(srv, "--cert", harness.cert("client.crt"), "--key",
                           harness.cert("client.key"), "-d", "{}",
                           path="/grpc.health.v1.Health/Check")
            self.assertEqual(res.returncode, 0, res.stdout)
            self.assertEqual(json.loads(res.stdout), {"status": "SERVING"})
            res = buf_curl(srv, "-d", "{}", path="/grpc.health.v1.Health/Check")
            self.assertNotEqual(res.returncode, 0, res.stdout)
            stop_and_assert(srv)
        finally:
            srv.kill()


if __name__ == "__main__":
    unittest.main()
