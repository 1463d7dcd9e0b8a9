"""novactl's identity commands end to end: the real novactl binary against
the real server on the fixture's PostgreSQL, over TLS. Login with the
bootstrap administrator, whoami, users, projects, role bindings, a second
user's session in its own credentials file, API keys (used through
NOVACRON_API_KEY and --api-key-file), quotas, the audit log as JSON,
refresh-token rotation saved to the credentials file, logout; the
credentials file's mode, the refusal of a group-readable one, and the exit
codes of wrong passwords and usage errors."""
import json
import os
import re
import stat
import subprocess
import unittest

from harness import BINARY_DIR, Server, cert, stop_and_assert, tmpdir

NOVACTL = os.path.join(BINARY_DIR, "tools", "novactl", "novactl")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PASSWORD = "novactl-E2e-passw0rd-x"
NO_LIMITS = ("--rate-limit-anonymous-rps", "0", "--rate-limit-rps", "0")


def unique(prefix):
    return "%s-%s" % (prefix, os.urandom(4).hex())


def novactl(*args, env=None, input=None, timeout=60):
    """Runs novactl with a clean environment (no NOVACRON_*, no
    NOVACTL_CREDENTIALS, no XDG/HOME configuration of the caller's)."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("NOVACRON_") and k not in ("NOVACTL_CREDENTIALS",
                                                        "XDG_CONFIG_HOME")}
    e["HOME"] = tmpdir("home-")  # a default credentials file never lands in the real home
    e.update(env or {})
    return subprocess.run([NOVACTL, *args], env=e, input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


class Cli:
    """novactl against one server with one credentials file."""

    def __init__(self, srv, creds=None):
        self.srv = srv
        self.creds = creds or os.path.join(tmpdir("creds-"), "novactl", "credentials")
        self.base = ["--target", srv.addr, "--ca", cert("ca.crt"), "--credentials", self.creds]

    def __call__(self, *args, env=None, input=None):
        return novactl(*self.base, *args, env=env, input=input)

    def json(self, testcase, *args, env=None, input=None):
        r = self(*args, "--output", "json", env=env, input=input)
        testcase.assertEqual(r.returncode, 0, "%s: %s" % (args, r.stderr))
        return json.loads(r.stdout)

    def login(self, testcase, username, password):
        r = self("login", username, "--password-stdin", input=password + "\n")
        testcase.assertEqual(r.returncode, 0, r.stderr)
        return r

    def saved(self):
        with open(self.creds) as f:
            return json.load(f)


class NovactlIdentity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(*NO_LIMITS, name="novactl-identity").start()

    @classmethod
    def tearDownClass(cls):
        stop_and_assert(cls.srv)

    def admin(self):
        cli = Cli(self.srv)
        cli.login(self, "admin", self.srv.admin_password)
        return cli

    def test_admin_user_project_role_apikey_quota_audit(self):
        root = self.admin()
        # the file: 0600 in a 0700 directory, with the session but no password
        self.assertEqual(stat.S_IMODE(os.stat(root.creds).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(root.creds)).st_mode), 0o700)
        saved = root.saved()
        self.assertEqual((saved["target"], saved["username"]), (self.srv.addr, "admin"))
        self.assertTrue(saved["session"].startswith("users/admin/sessions/"))
        with open(root.creds) as f:
            self.assertNotIn(self.srv.admin_password, f.read())

        who = root.json(self, "whoami")
        self.assertEqual(who["name"], "users/admin")
        self.assertEqual(who["kind"], "KIND_USER")
        self.assertTrue(who["systemAdmin"])
        self.assertEqual(who["session"], saved["session"])
        r = root("whoami")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("users/admin", r.stdout)
        self.assertNotIn(saved["access_token"], r.stdout + r.stderr)

        # a user and a project, and a role for one on the other
        user, project = unique("cli-user"), unique("cli-proj")
        u = root.json(self, "user", "create", user, "--display-name", "CLI User", "--email",
                      "cli@example.com", "--password-stdin", input=PASSWORD + "\n")
        self.assertEqual((u["name"], u["displayName"], u["disabled"]),
                         ("users/" + user, "CLI User", False))
        p = root.json(self, "project", "create", project, "--description", "from novactl",
                      "--label", "team=web", "--label", "tier=gold")
        self.assertEqual(p["name"], "projects/" + project)
        self.assertEqual(sorted((l["key"], l["value"]) for l in p["labels"]),
                         [("team", "web"), ("tier", "gold")])
        b = root.json(self, "role", "grant", user, "operator", "--project", project)
        self.assertEqual((b["user"], b["role"]), ("users/" + user, "ROLE_OPERATOR"))
        bindings = root.json(self, "role", "list", "--project", project)["roleBindings"]
        self.assertIn("users/" + user, [x["user"] for x in bindings])
        r = root("role", "list", "--project", project)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("operator", r.stdout)

        # the user logs in with a second credentials file and sees its role
        alice = Cli(self.srv)
        alice.login(self, user, PASSWORD)
        who = alice.json(self, "whoami")
        self.assertEqual(who["name"], "users/" + user)
        self.assertFalse(who["systemAdmin"])
        # each binding names its project (the binding itself, or just the project)
        self.assertIn(("projects/" + project, "ROLE_OPERATOR"),
                      [("/".join(x["name"].split("/")[:2]), x["role"]) for x in who["roleBindings"]])
        r = alice("whoami")
        self.assertIn("%s=OPERATOR" % project, r.stdout)
        names = [x["name"] for x in alice.json(self, "project", "list", "--all")["projects"]]
        self.assertIn("projects/" + project, names)
        r = alice("user", "create", unique("nope"), "--password-stdin", input=PASSWORD + "\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("PERMISSION_DENIED", r.stderr)
        self.assertEqual(root.saved()["session"], saved["session"])  # two files, two sessions

        # updates send only the flags given
        u = root.json(self, "user", "update", user, "--display-name", "Renamed")
        self.assertEqual((u["displayName"], u["email"]), ("Renamed", "cli@example.com"))
        p = root.json(self, "project", "update", project, "--description", "changed")
        self.assertEqual(p["description"], "changed")
        self.assertEqual(len(p["labels"]), 2)
        r = root("project", "update", project, "--description", "x", "--etag", "stale-etag")
        self.assertEqual(r.returncode, 1)
        self.assertIn("ABORTED", r.stderr)

        # an API key: shown once, usable through the environment and a file
        r = root("--output", "json", "apikey", "create", "ci", "--project", project, "--role",
                 "viewer", "--description", "CI pipeline", "--ttl", "1d")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cannot be retrieved again", r.stderr)
        created = json.loads(r.stdout)
        secret = created["secret"]
        self.assertEqual(created["apiKey"]["name"], "projects/%s/apiKeys/ci" % project)
        self.assertEqual(created["apiKey"]["role"], "ROLE_VIEWER")
        self.assertTrue(secret.startswith(created["apiKey"]["secretPrefix"]))
        nobody = Cli(self.srv)  # no credentials file at all
        who = nobody.json(self, "whoami", env={"NOVACRON_API_KEY": secret})
        self.assertEqual((who["kind"], who["name"]),
                         ("KIND_API_KEY", "projects/%s/apiKeys/ci" % project))
        keyfile = os.path.join(tmpdir("key-"), "ci.key")
        with open(keyfile, "w") as f:
            f.write(secret + "\n")
        os.chmod(keyfile, 0o600)
        who = nobody.json(self, "--api-key-file", keyfile, "whoami")
        self.assertEqual(who["kind"], "KIND_API_KEY")
        keys = root.json(self, "apikey", "list", "--project", project)["apiKeys"]
        self.assertEqual([k["name"] for k in keys], ["projects/%s/apiKeys/ci" % project])
        r = root("apikey", "list", "--project", project)
        self.assertNotIn(secret, r.stdout)
        revoked = root.json(self, "apikey", "revoke", "ci", "--project", project)
        self.assertEqual(revoked["state"], "STATE_REVOKED")
        r = nobody("whoami", env={"NOVACRON_API_KEY": secret})
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        r = nobody("logout", env={"NOVACRON_API_KEY": secret})
        self.assertEqual(r.returncode, 0)
        self.assertIn("not logged in", r.stderr)

        # quotas: set some limits, then lift one
        q = root.json(self, "quota", "get", project)
        self.assertEqual(q["name"], "projects/%s/quota" % project)
        self.assertIn("usage", q)
        q = root.json(self, "quota", "set", project, "--vcpus", "64", "--memory-mib", "131072",
                      "--vms", "20", "--volumes", "40", "--volume-gib", "2000", "--networks", "10",
                      "--backup-gib", "5000")
        self.assertEqual(q["limits"], {"vcpus": 64, "memoryMib": 131072, "vms": 20,
                                       "volumes": 40, "volumeGib": 2000, "networks": 10,
                                       "backupGib": 5000})
        q = root.json(self, "quota", "set", project, "--vms", "unlimited")
        self.assertNotIn("vms", q["limits"])
        self.assertEqual(q["limits"]["vcpus"], 64)
        r = root("quota", "get", project)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"vms\s+unlimited")
        self.assertRegex(r.stdout, r"volumes\s+40\s+0")
        r = root("quota", "set", project)
        self.assertEqual(r.returncode, 2)

        # the audit log recorded the calls, with novactl's request ids
        doc = root.json(self, "audit", "list", "--filter",
                        'method = "/novacron.v1.IdentityService/CreateProject" AND '
                        'principal = "users/admin"', "--all", "--page-size", "2")
        self.assertEqual(doc["nextPageToken"], "")
        # (the contract says resource names; accept the bare id too)
        mine = [e for e in doc["auditEvents"]
                if e["resource"] in ("projects/" + project, project)]
        self.assertEqual(len(mine), 1, doc["auditEvents"])
        self.assertEqual(mine[0]["resultCode"], 0)
        self.assertRegex(mine[0]["requestId"], UUID_RE)
        doc = root.json(self, "audit", "list", "--project", project)
        self.assertIn("/novacron.v1.IdentityService/CreateApiKey",
                      {e["method"] for e in doc["auditEvents"]})
        r = root("audit", "list", "--page-size", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--page-token", r.stderr)
        self.assertEqual(len(r.stdout.strip().splitlines()), 2)  # header + 1

        # lists follow every page with --all
        users = root.json(self, "user", "list", "--all", "--page-size", "1")["users"]
        self.assertTrue({"admin", user} <= {x["username"] for x in users})

        # the user changes their password; the old one stops working
        r = alice("user", "passwd", "--password-stdin", input="%s\n%s-2\n" % (PASSWORD, PASSWORD))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = Cli(self.srv)("login", user, "--password-stdin", input=PASSWORD + "\n")
        self.assertEqual(r.returncode, 1)

        # logout ends the session on the server and deletes the file
        r = alice("logout")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(alice.creds))
        r = alice("whoami")
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAUTHENTICATED", r.stderr)

        # clean up: the binding, the user, the project
        r = root("role", "revoke", user, "--project", project)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(root.json(self, "user", "delete", user)["deleted"], True)
        self.assertEqual(root.json(self, "project", "delete", project)["deleted"], True)
        r = root("user", "get", user)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)
        r = root("logout")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(root.creds))

    def test_group_readable_credentials_are_refused(self):
        root = self.admin()
        os.chmod(root.creds, 0o644)
        r = root("whoami")
        self.assertEqual(r.returncode, 2)
        self.assertIn("chmod 600", r.stderr)
        self.assertIn(root.creds, r.stderr)
        os.chmod(root.creds, 0o600)
        self.assertEqual(root("whoami").returncode, 0)
        self.assertEqual(root("logout").returncode, 0)

    def test_wrong_password_and_usage_errors(self):
        cli = Cli(self.srv)
        r = cli("login", "admin", "--password-stdin", input="not-the-password-at-all\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        self.assertFalse(os.path.exists(cli.creds))
        r = cli("login", unique("nobody"), "--password-stdin", input=PASSWORD + "\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        # the password never comes from the command line
        r = cli("login", "admin", self.srv.admin_password)
        self.assertEqual(r.returncode, 2)
        r = cli("login", "admin", "--password", self.srv.admin_password)
        self.assertEqual(r.returncode, 2)
        # no credentials at all: the server says so, novactl says what to do
        r = cli("whoami")
        self.assertEqual(r.returncode, 1)
        self.assertIn("novactl login", r.stderr)
        for args in (["user"], ["user", "frobnicate"], ["role", "grant", "x", "superuser"],
                     ["quota", "set", "default", "--vcpus", "many"]):
            r = cli(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))


class NovactlRotation(unittest.TestCase):
    """Access tokens shorter-lived than novactl's 60 s refresh margin: every
    command rotates the refresh token and saves the new one first."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(*NO_LIMITS, "--access-token-ttl-s", "30", name="novactl-rotation").start()

    @classmethod
    def tearDownClass(cls):
        stop_and_assert(cls.srv)

    def test_each_command_saves_the_rotated_token(self):
        cli = Cli(self.srv)
        cli.login(self, "admin", self.srv.admin_password)
        first = cli.saved()
        seen = {first["refresh_token"]}
        for _ in range(3):
            r = cli("whoami")
            self.assertEqual(r.returncode, 0, r.stderr)
            doc = cli.saved()
            self.assertEqual(doc["session"], first["session"])
            self.assertNotIn(doc["refresh_token"], seen)
            seen.add(doc["refresh_token"])
            self.assertNotIn("refresh_request_id", doc)
            self.assertEqual(stat.S_IMODE(os.stat(cli.creds).st_mode), 0o600)
        # parallel commands share the file without ever reusing a token
        procs = [subprocess.Popen([NOVACTL, *cli.base, "whoami"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for p in procs:
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(cli("whoami").returncode, 0)
        # an old copy of the file is a stolen token: using it ends the session
        stale = dict(first)
        with open(cli.creds, "w") as f:
            json.dump(stale, f)
        r = cli("whoami")
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        self.assertFalse(os.path.exists(cli.creds))


if __name__ == "__main__":
    unittest.main()
