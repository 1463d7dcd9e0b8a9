"""Certificate renewal without a restart: the server re-reads its key and
certificate when the files change, so new connections get the new
certificate while the process keeps serving (docs/operations.md, TLS)."""
import os
import shutil
import time
import unittest

import grpc

from harness import Server, cert, health_check, other_ca_dir, stop_and_assert, tmpdir


def check(srv, ca):
    with srv.channel(ca=ca) as ch:
        return health_check(ch)


class CertificateReload(unittest.TestCase):
    def test_new_certificate_is_served_without_restart(self):
        d = tmpdir("reload-")
        crt, key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
        shutil.copy(cert("server.crt"), crt)
        shutil.copy(cert("server.key"), key)
        srv = Server(name="reload")
        default = srv.command  # serve the copies, which the test may replace
        srv.command = lambda: [{cert("server.crt"): crt, cert("server.key"): key}.get(a, a)
                               for a in default()]
        srv.start()
        try:
            self.assertEqual(check(srv, cert("ca.crt")), "SERVING")
            pid = srv.proc.pid
            other = other_ca_dir()
            time.sleep(0.05)  # a distinct modification time even on coarse clocks
            # the renewal an operator does: new files moved into place
            for name, dst in (("server.key", key), ("server.crt", crt)):
                shutil.copy(os.path.join(other, name), dst + ".new")
                os.replace(dst + ".new", dst)
            self.assertEqual(check(srv, os.path.join(other, "ca.crt")),
                             "SERVING")
            with self.assertRaises(grpc.RpcError) as ctx:
                check(srv, cert("ca.crt"))  # the old CA no longer matches
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertEqual(srv.proc.pid, pid)
            self.assertIn("TLS certificate reloaded", srv.log())

            # a broken renewal keeps the last good certificate in service
            with open(crt + ".new", "w") as f:
                f.write("not a certificate\n")
            os.replace(crt + ".new", crt)
            self.assertEqual(check(srv, os.path.join(other, "ca.crt")),
                             "SERVING")
            self.assertIn("TLS reload failed", srv.log())
            stop_and_assert(srv)
        finally:
            srv.kill()


if __name__ == "__main__":
    unittest.main()
