"""scripts/run end to end, reusing the build under test (NC_BUILD_DIR): a
private PostgreSQL cluster and the server in a temporary state directory,
health over TLS with the state's CA, the printed recipes, idempotence,
status, and stop leaving nothing running. Works as root (CI) and not."""
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
from harness import run

RUN = os.path.join(harness.SOURCE_DIR, "scripts", "run")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie nobody reaped yet counts as gone
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class RunScript(unittest.TestCase):
    def setUp(self):
        # not under the harness's private (0700) temp dir: as root the
        # cluster runs as `postgres`, which must be able to reach it
        self.base = tempfile.mkdtemp(prefix="nc-run-")
        os.chmod(self.base, 0o755)
        self.state = os.path.join(self.base, "state")
        self.port = harness.free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NOVACRON_")}
        self.env["NC_BUILD_DIR"] = harness.BINARY_DIR

    def tearDown(self):
        # whatever happened, leave nothing running
        run([RUN, "stop", "--state-dir", self.state], env=self.env, timeout=60,
            cwd=harness.SOURCE_DIR)
        shutil.rmtree(self.base, ignore_errors=True)

    def script(self, *args, timeout=180):
        return run([RUN] + list(args) + ["--state-dir", self.state], env=self.env,
                   timeout=timeout, cwd=harness.SOURCE_DIR)

    def pg_ready(self):
        sock = os.path.join(self.state, "pg", "socket")
        return subprocess.run(["pg_isready", "-q", "-h", sock, "-p", "55432"],
                              timeout=30).returncode == 0

    def test_start_status_stop(self):
        t0 = time.monotonic()
        res = self.script("--listen", "127.0.0.1:%d" % self.port)
        self.assertEqual(res.returncode, 0, res.stdout)
        self.assertIn("NovaCron is running", res.stdout)
        started = time.monotonic() - t0

        # the state directory
        for rel in ("certs/ca.crt", "certs/server.crt", "certs/client.key", "database-url",
                    "logs/server.log", "server.pid", "server.addr", "pg/data/PG_VERSION"):
            self.assertTrue(os.path.exists(os.path.join(self.state, rel)), rel)
        with open(os.path.join(self.state, "server.addr")) as f:
            self.assertEqual(f.read().strip(), "127.0.0.1:%d" % self.port)
        with open(os.path.join(self.state, "server.pid")) as f:
            pid = int(f.read())
        self.assertTrue(pid_alive(pid))
        self.assertEqual(os.stat(os.path.join(self.state, "database-url")).st_mode & 0o077, 0)

        # the server, over TLS with the state's CA
        import grpc
        ca = os.path.join(self.state, "certs", "ca.crt")
        creds = grpc.ssl_channel_credentials(harness.read(ca))
        for target in ("127.0.0.1:%d" % self.port, "localhost:%d" % self.port):
            with grpc.secure_channel(target, creds, options=harness.CHANNEL_OPTIONS) as ch:
                self.assertEqual(harness.health_check(ch), "SERVING", target)

        # PostgreSQL, through the printed connection string
        with open(os.path.join(self.state, "database-url")) as f:
            url = f.read().strip()
        self.assertIn(url, res.stdout)
        self.assertTrue(self.pg_ready())
        q = run(["psql", "-X", "-Atc", "SELECT current_user, current_database()", url],
                env={k: v for k, v in self.env.items() if not k.startswith("PG")})
        self.assertEqual(q.returncode, 0, q.stdout)
        self.assertEqual(q.stdout.strip(), "novacron|novacron")

        # the server migrated the schema at start ...
        pgenv = {k: v for k, v in self.env.items() if not k.startswith("PG")}
        q = run(["psql", "-X", "-Atc", "SELECT max(version) FROM schema_migrations", url],
                env=pgenv)
        self.assertEqual(q.returncode, 0, q.stdout)
        self.assertGreaterEqual(int(q.stdout.strip()), 1)
        with open(os.path.join(self.state, "logs", "server.log")) as f:
            self.assertIn('"msg":"database ready"', f.read())
        # ... and a server older than the database's schema refuses to start
        q = run(["psql", "-X", "-Atc", "INSERT INTO schema_migrations (version, name) "
                 "VALUES (99999, 'from_a_newer_server')", url], env=pgenv)
        self.assertEqual(q.returncode, 0, q.stdout)
        try:
            old = run([harness.SERVER_BIN, "--insecure", "--listen", "127.0.0.1:0",
                       "--database-url", url], timeout=30)
            self.assertEqual(old.returncode, 1, old.stdout)
            self.assertIn("SCHEMA_TOO_NEW", old.stdout)
            self.assertIn("newer than this server", old.stdout)
        finally:
            run(["psql", "-X", "-Atc", "DELETE FROM schema_migrations WHERE version = 99999",
                 url], env=pgenv)
        # an unreachable database stops the start too
        bad = run([harness.SERVER_BIN, "--insecure", "--listen", "127.0.0.1:0",
                   "--database-url", "postgresql:///novacron?host=/nonexistent&port=1",
                   "--database-connect-timeout-ms", "500"], timeout=30)
        self.assertEqual(bad.returncode, 1, bad.stdout)
        self.assertIn("UNAVAILABLE", bad.stdout)

        # the printed recipes work as printed
        py = [ln for ln in res.stdout.splitlines() if "examples/python/health.py" in ln]
        self.assertEqual(len(py), 1, res.stdout)
        cmd = shlex.split(py[0].split(None, 1)[1])
        self.assertEqual(cmd[0], "/usr/bin/python3")
        out = run(cmd, cwd=harness.SOURCE_DIR)
        self.assertEqual(out.returncode, 0, out.stdout)
        self.assertIn("health: SERVING", out.stdout)
        self.assertIn("WhoAmI: users/admin (system administrator)", out.stdout)
        self.assertIn("novacron.v1.VmService/ListVms: OK", out.stdout)
        # the first administrator's password: a private file, printed by path only
        pw = os.path.join(self.state, "admin-password")
        self.assertEqual(os.stat(pw).st_mode & 0o777, 0o600)
        self.assertIn("admin-password", res.stdout)
        with open(pw) as f:
            self.assertNotIn(f.read().strip(), res.stdout)
        secret = os.path.join(self.state, "token-secret")
        self.assertEqual(os.stat(secret).st_mode & 0o777, 0o600)
        if os.access(harness.BUF, os.X_OK):
            check = [ln for ln in res.stdout.splitlines() if "Health/Check" in ln]
            self.assertEqual(len(check), 1, res.stdout)
            cmd = shlex.split(re.sub(r"^\s*(buf curl)?\s*", "", check[0]))
            out = run(cmd, cwd=harness.SOURCE_DIR)
            self.assertEqual(out.returncode, 0, out.stdout)
            self.assertIn('"SERVING"', out.stdout)
        for word in ("novactl", "grpcurl -cacert", "--list-services", "scripts/run stop"):
            self.assertIn(word, res.stdout)

        # idempotent: a second run finds both running and changes nothing
        res2 = self.script("--listen", "127.0.0.1:%d" % self.port)
        self.assertEqual(res2.returncode, 0, res2.stdout)
        self.assertIn("already running", res2.stdout)
        with open(os.path.join(self.state, "server.pid")) as f:
            self.assertEqual(int(f.read()), pid)

        st = self.script("status")
        self.assertEqual(st.returncode, 0, st.stdout)
        self.assertRegex(st.stdout, r"novacron-server\s+running")
        self.assertRegex(st.stdout, r"PostgreSQL\s+running")

        # stop: both gone
        t1 = time.monotonic()
        stop = self.script("stop", timeout=90)
        self.assertEqual(stop.returncode, 0, stop.stdout)
        stopped = time.monotonic() - t1
        self.assertFalse(pid_alive(pid), "server still running after stop")
        self.assertFalse(os.path.exists(os.path.join(self.state, "server.addr")))
        self.assertFalse(os.path.exists(os.path.join(self.state, "server.pid")))
        self.assertFalse(self.pg_ready(), "PostgreSQL still answers after stop")
        self.assertFalse(os.path.exists(os.path.join(self.state, "pg", "data", "postmaster.pid")))
        with open(os.path.join(self.state, "logs", "server.log"), errors="replace") as f:
            log = f.read()
        self.assertIn('"msg":"stopped"', log)  # a clean shutdown ...
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):  # ... and no reports
            self.assertNotIn(bad, log)

        st = self.script("status")
        self.assertEqual(st.returncode, 3, st.stdout)
        self.assertRegex(st.stdout, r"novacron-server\s+not running")
        self.assertIn("not running", st.stdout.split("PostgreSQL", 1)[1])
        print("\n  start %.1f s (initdb included), stop %.1f s" % (started, stopped))


if __name__ == "__main__":
    unittest.main()
