"""The C example, built the way a user builds it: against an INSTALLED
libnovacron found with pkg-config (cmake --install into a temporary
prefix), shared and static, then run against a real server."""
import os
import subprocess
import unittest

from harness import BINARY_DIR, SOURCE_DIR, Server, cert, stop_and_assert, tmpdir


def run(cmd, env=None, cwd=None):
    return subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=240)


class InstalledSdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = tmpdir("prefix-")
        res = run(["cmake", "--install", BINARY_DIR, "--prefix", cls.prefix])
        if res.returncode != 0:
            raise AssertionError("cmake --install failed:\n" + res.stdout)
        libdirs = [os.path.join(cls.prefix, d) for d in ("lib", "lib64", "lib/x86_64-linux-gnu")]
        cls.libdir = next(d for d in libdirs if os.path.exists(os.path.join(d, "pkgconfig")))
        cls.env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(cls.libdir, "pkgconfig"))

    def test_install_layout(self):
        for rel in ("include/novacron/novacron.h", "bin/novacron-server", "bin/novactl"):
            self.assertTrue(os.path.exists(os.path.join(self.prefix, rel)), rel)
        for lib in ("libnovacron.so.0", "libnovacron.a", "cmake/NovaCron/NovaCronConfig.cmake"):
            self.assertTrue(os.path.exists(os.path.join(self.libdir, lib)), lib)
        res = run(["pkg-config", "--modversion", "novacron"], env=self.env)
        self.assertEqual(res.returncode, 0, res.stdout)

    def build_and_run(self, static):
        out = tmpdir("example-")
        env = dict(self.env)
        # a sanitizer build installs an instrumented library: link the runtime too
        san = os.environ.get("NC_SANITIZE", "").replace(";", ",")
        sanflags = ["-fsanitize=" + san] if san else []
        if static:
            libs = run(["pkg-config", "--static", "--libs", "novacron"], env=env).stdout.split()
            # link libnovacron.a explicitly: proves the static archive is complete
            libs = [os.path.join(self.libdir, "libnovacron.a") if l == "-lnovacron" else l
                    for l in libs]
            cflags = run(["pkg-config", "--cflags", "novacron"], env=env).stdout.split()
            for prog in ("health", "projects"):
                res = run(["cc", "-O1", "-Wall", "-Wextra", "-Werror", *sanflags, *cflags, "-o",
                           os.path.join(out, prog),
                           os.path.join(SOURCE_DIR, "examples", "c", prog + ".c"), *libs], env=env)
                self.assertEqual(res.returncode, 0, res.stdout)
        else:
            # the example's own Makefile, building out of the source tree
            src = os.path.join(SOURCE_DIR, "examples", "c")
            res = run(["make", "-C", out, "-f", os.path.join(src, "Makefile"), "VPATH=" + src,
                       "CFLAGS=-O1 -Wall -Wextra -Werror " + " ".join(sanflags),
                       "LDFLAGS=" + " ".join(sanflags), "health", "projects"], env=env)
        self.assertEqual(res.returncode, 0, res.stdout)
        with Server(name="c-example") as srv:
            env["LD_LIBRARY_PATH"] = self.libdir
            res = run([os.path.join(out, "health"), srv.addr, cert("ca.crt")], env=env)
            self.assertEqual(res.returncode, 0, res.stdout)
            self.assertIn("SERVING", res.stdout)
            # log in, WhoAmI, list projects page by page, log out
            res = run([os.path.join(out, "projects"), srv.addr, cert("ca.crt")],
                      env=dict(env, NOVACRON_PASSWORD=srv.admin_password))
            self.assertEqual(res.returncode, 0, res.stdout)
            self.assertIn("logged in as users/admin (system administrator)", res.stdout)
            self.assertIn("projects/default\t", res.stdout)
            res = run([os.path.join(out, "projects"), srv.addr, cert("ca.crt")],
                      env=dict(env, NOVACRON_PASSWORD="not-the-password-1"))
            self.assertEqual(res.returncode, 1, res.stdout)
            self.assertIn("UNAUTHENTICATED", res.stdout)
            stop_and_assert(srv)

    def test_shared_library_example(self):
        self.build_and_run(static=False)

    def test_static_library_example(self):
        self.build_and_run(static=True)


if __name__ == "__main__":
    unittest.main()
