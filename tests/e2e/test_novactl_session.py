"""novactl and libnovacron's session handling against a fake
IdentityService (Python grpcio, in this process): the credentials file,
refresh-token rotation with reuse detection, single-flight refresh across
novactl processes, the idempotent retry of a refresh whose answer was lost,
refresh after an UNAUTHENTICATED answer, API keys, paging, field masks and
request ids. Needs no PostgreSQL and no novacron-server: the fake follows
proto/novacron/v1/identity.proto closely enough for the client side.
"""
import json
import os
import re
import stat
import subprocess
import threading
import time
import unittest
import uuid
from concurrent import futures

import grpc

from harness import BINARY_DIR, stubs, tmpdir

NOVACTL = os.path.join(BINARY_DIR, "tools", "novactl", "novactl")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
PASSWORD = "fake-admin-password-1"

stubs()
from google.protobuf import timestamp_pb2  # noqa: E402
from novacron.v1 import identity_pb2 as pb  # noqa: E402
from novacron.v1 import identity_pb2_grpc as pb_grpc  # noqa: E402


def ts(seconds):
    return timestamp_pb2.Timestamp(seconds=int(seconds))


class FakeIdentity(pb_grpc.IdentityServiceServicer):
    """Sessions with rotating refresh tokens and reuse detection; access
    tokens live `access_ttl` seconds."""

    def __init__(self):
        self.lock = threading.Lock()
        self.access_ttl = 3600
        self.sessions = {}  # sid -> dict
        self.access = {}  # access token -> (sid, expiry)
        self.api_keys = {}  # secret -> name
        self.refresh_calls = 0
        self.refresh_delays = []  # seconds the next refreshes sleep before answering
        self.requests = []  # (method, request, metadata)
        self.users = ["admin"] + ["user-%02d" % i for i in range(5)]

    # --- helpers
    def _record(self, method, request, context):
        with self.lock:
            self.requests.append((method, request, dict(context.invocation_metadata())))

    def _principal(self, context):
        md = dict(context.invocation_metadata())
        auth = md.get("authorization", "")
        if not auth.startswith("Bearer "):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing credentials")
        cred = auth[len("Bearer "):]
        with self.lock:
            if cred in self.api_keys:
                return ("key", self.api_keys[cred], None)
            hit = self.access.get(cred)
            if hit and hit[1] > time.time() and not self.sessions[hit[0]]["revoked"]:
                return ("user", "users/admin", hit[0])
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid or expired credentials")

    def _new_tokens(self, sid):
        s = self.sessions[sid]
        s["n"] += 1
        access = "at-%s-%d" % (sid, s["n"])
        refresh = "rt-%s-%d" % (sid, s["n"])
        exp = time.time() + self.access_ttl
        self.access[access] = (sid, exp)
        s["refresh"] = refresh
        return dict(access_token=access, access_token_expire_time=ts(exp), refresh_token=refresh,
                    refresh_token_expire_time=ts(s["end"]), session="users/admin/sessions/" + sid)

    def revoke_all_access_tokens(self):
        with self.lock:
            self.access.clear()

    def active_sessions(self):
        with self.lock:
            return [sid for sid, s in self.sessions.items() if not s["revoked"]]

    # --- methods
    def Login(self, request, context):
        self._record("Login", request, context)
        if "authorization" in dict(context.invocation_metadata()):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Login takes no credentials")
        if request.username != "admin" or request.password != PASSWORD:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid username or password")
        with self.lock:
            sid = uuid.uuid4().hex[:8]
            self.sessions[sid] = dict(n=0, refresh=None, spent={}, revoked=False,
                                      end=time.time() + 86400)
            return pb.LoginResponse(**self._new_tokens(sid))

    def RefreshToken(self, request, context):
        self._record("RefreshToken", request, context)
        with self.lock:
            self.refresh_calls += 1
            delay = self.refresh_delays.pop(0) if self.refresh_delays else 0.0
            for sid, s in self.sessions.items():
                if s["refresh"] == request.refresh_token and not s["revoked"]:
                    answer = pb.RefreshTokenResponse(**self._new_tokens(sid))
                    s["spent"][request.refresh_token] = (request.request_id, answer)
                    break
                if request.refresh_token in s["spent"]:
                    rid, answer = s["spent"][request.refresh_token]
                    if rid and rid == request.request_id and not s["revoked"]:
                        break  # idempotent retry of a lost answer
                    s["revoked"] = True  # reuse: theft
                    context.abort(grpc.StatusCode.UNAUTHENTICATED, "refresh token reused")
            else:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "unknown refresh token")
        time.sleep(delay)  # rotated already: a slow answer may be lost
        return answer

    def Logout(self, request, context):
        self._record("Logout", request, context)
        kind, name, sid = self._principal(context)
        if kind != "user":
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no session")
        with self.lock:
            self.sessions[sid]["revoked"] = True
        return pb.LogoutResponse(session=pb.Session(name="users/admin/sessions/" + sid,
                                                    state=pb.Session.STATE_REVOKED))

    def WhoAmI(self, request, context):
        self._record("WhoAmI", request, context)
        kind, name, sid = self._principal(context)
        if kind == "key":
            return pb.WhoAmIResponse(principal=pb.Principal(
                kind=pb.Principal.KIND_API_KEY, name=name,
                role_bindings=[pb.RoleBinding(role=pb.ROLE_VIEWER)]))
        return pb.WhoAmIResponse(principal=pb.Principal(
            kind=pb.Principal.KIND_USER, name=name, display_name="Admin", system_admin=True,
            session="users/admin/sessions/" + sid, role_bindings=[pb.RoleBinding(
                name="projects/default/roleBindings/admin", user=name, role=pb.ROLE_ADMIN)]))

    def ListUsers(self, request, context):
        self._record("ListUsers", request, context)
        self._principal(context)
        size = request.page_size or 2
        start = int(request.page_token or 0)
        page = self.users[start:start + size]
        nxt = str(start + size) if start + size < len(self.users) else ""
        return pb.ListUsersResponse(
            users=[pb.User(name="users/" + u, username=u) for u in page], next_page_token=nxt,
            total_size=len(self.users))

    def UpdateUser(self, request, context):
        self._record("UpdateUser", request, context)
        self._principal(context)
        return pb.UpdateUserResponse(user=request.user)

    def CreateApiKey(self, request, context):
        self._record("CreateApiKey", request, context)
        self._principal(context)
        name = "%s/apiKeys/%s" % (request.parent, request.api_key_id)
        secret = "nck_" + uuid.uuid4().hex
        with self.lock:
            self.api_keys[secret] = name
        key = pb.ApiKey(name=name, role=request.api_key.role, state=pb.ApiKey.STATE_ACTIVE,
                        secret_prefix=secret[:12], description=request.api_key.description)
        return pb.CreateApiKeyResponse(api_key=key, secret=secret)

    def SetQuota(self, request, context):
        self._record("SetQuota", request, context)
        self._principal(context)
        return pb.SetQuotaResponse(quota=pb.Quota(name=request.quota.name,
                                                  limits=request.quota.limits))


def novactl(*args, env=None, input=None, timeout=30):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("NOVACRON_") and k != "NOVACTL_CREDENTIALS"}
    e.update(env or {})
    return subprocess.run([NOVACTL, *args], env=e, input=input, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout)


class Session(unittest.TestCase):
    def setUp(self):
        self.fake = FakeIdentity()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_IdentityServiceServicer_to_server(self.fake, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.target = "127.0.0.1:%d" % port
        self.dir = tmpdir("session-")
        self.creds = os.path.join(self.dir, "cfg", "novactl", "credentials")
        self.base = ["--target", self.target, "--insecure", "--credentials", self.creds]

    def tearDown(self):
        self.server.stop(None)

    def login(self):
        r = novactl(*self.base, "login", "admin", "--password-stdin", input=PASSWORD + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def saved(self):
        with open(self.creds) as f:
            return json.load(f)

    def test_login_saves_a_private_file_without_printing_tokens(self):
        r = self.login()
        self.assertEqual(stat.S_IMODE(os.stat(self.creds).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.creds)).st_mode), 0o700)
        doc = self.saved()
        self.assertEqual(doc["target"], self.target)
        self.assertEqual(doc["username"], "admin")
        self.assertTrue(doc["access_token"].startswith("at-"))
        self.assertNotIn(doc["access_token"], r.stdout + r.stderr)
        self.assertNotIn(doc["refresh_token"], r.stdout + r.stderr)
        login = [m for m in self.fake.requests if m[0] == "Login"][0]
        self.assertNotIn("authorization", login[2])
        r = novactl(*self.base, "--output", "json", "whoami")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["name"], "users/admin")
        # without --target the saved server is used
        r = novactl("--insecure", "--credentials", self.creds, "whoami")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("users/admin", r.stdout)

    def test_wrong_password(self):
        r = novactl(*self.base, "login", "admin", "--password-stdin", input="nope\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        self.assertFalse(os.path.exists(self.creds))

    def test_password_never_from_a_missing_terminal(self):
        r = subprocess.run([NOVACTL, *self.base, "login", "admin"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30, start_new_session=True)  # no controlling terminal
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--password-stdin", r.stderr)

    def test_group_readable_file_is_refused(self):
        self.login()
        os.chmod(self.creds, 0o644)
        r = novactl(*self.base, "whoami")
        self.assertEqual(r.returncode, 2)
        self.assertIn("chmod 600", r.stderr)
        self.assertFalse([m for m in self.fake.requests if m[0] == "WhoAmI"])

    def test_every_command_rotates_and_saves_the_newest_token(self):
        self.fake.access_ttl = 30  # inside the 60 s margin: every command refreshes
        self.login()
        tokens = [self.saved()["refresh_token"]]
        for _ in range(3):
            r = novactl(*self.base, "whoami")
            self.assertEqual(r.returncode, 0, r.stderr)
            tokens.append(self.saved()["refresh_token"])
        self.assertEqual(len(set(tokens)), 4, tokens)
        self.assertEqual(self.fake.refresh_calls, 3)
        self.assertEqual(len(self.fake.active_sessions()), 1)
        self.assertEqual(stat.S_IMODE(os.stat(self.creds).st_mode), 0o600)
        for m in self.fake.requests:
            if m[0] == "RefreshToken":
                self.assertRegex(m[1].request_id, UUID_RE)
                self.assertNotIn("authorization", m[2])

    def test_parallel_novactls_never_reuse_a_refresh_token(self):
        self.fake.access_ttl = 30
        self.login()
        procs = [subprocess.Popen([NOVACTL, *self.base, "whoami"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(4)]
        for p in procs:
            out, err = p.communicate(timeout=30)
            self.assertEqual(p.returncode, 0, err)
        self.assertEqual(len(self.fake.active_sessions()), 1, "a refresh token was reused")

    def test_lost_refresh_answer_is_retried_idempotently(self):
        self.fake.access_ttl = 30
        self.login()
        spent = self.saved()["refresh_token"]
        # the server rotates, but its answers come too late (twice: up front
        # under the file lock, then the call's own attempt)
        self.fake.refresh_delays = [3.0, 3.0]
        r = novactl(*self.base, "--timeout", "1", "whoami")
        # the access token had 30 s left: the call went ahead with it
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = self.saved()
        self.assertEqual(doc["refresh_token"], spent)  # the answer never arrived
        self.assertRegex(doc["refresh_request_id"], UUID_RE)  # but its id was saved first
        time.sleep(3.5)
        r = novactl(*self.base, "whoami")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(self.fake.active_sessions()), 1, "the retry looked like reuse")
        doc = self.saved()
        self.assertNotEqual(doc["refresh_token"], spent)
        self.assertNotIn("refresh_request_id", doc)

    def test_rejected_access_token_is_refreshed_and_the_call_retried(self):
        self.login()
        before = self.saved()["refresh_token"]
        self.fake.revoke_all_access_tokens()  # e.g. a signing key rotation
        r = novactl(*self.base, "whoami")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.fake.refresh_calls, 1)
        self.assertNotEqual(self.saved()["refresh_token"], before)
        whoami = [m for m in self.fake.requests if m[0] == "WhoAmI"]
        self.assertEqual(len(whoami), 2)

    def test_reused_refresh_token_ends_the_session(self):
        self.fake.access_ttl = 30
        self.login()
        with open(self.creds) as f:
            stale = f.read()
        self.assertEqual(novactl(*self.base, "whoami").returncode, 0)  # rotates
        with open(self.creds, "w") as f:
            f.write(stale)  # an old copy, as a thief would hold
        r = novactl(*self.base, "whoami")
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        self.assertIn("novactl login", r.stderr)
        self.assertFalse(os.path.exists(self.creds), "an ended session must not stay saved")
        self.assertEqual(self.fake.active_sessions(), [])

    def test_logout_revokes_and_deletes(self):
        self.login()
        r = novactl(*self.base, "logout")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(self.creds))
        self.assertEqual(self.fake.active_sessions(), [])
        r = novactl(*self.base, "logout")
        self.assertEqual(r.returncode, 0)
        self.assertIn("not logged in", r.stderr)

    def test_logout_with_the_server_down_still_deletes(self):
        self.login()
        self.server.stop(None)
        r = novactl(*self.base, "--timeout", "3", "logout")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("warning", r.stderr)
        self.assertFalse(os.path.exists(self.creds))

    def test_session_is_not_sent_to_another_server(self):
        self.login()
        other = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        fake2 = FakeIdentity()
        pb_grpc.add_IdentityServiceServicer_to_server(fake2, other)
        port = other.add_insecure_port("127.0.0.1:0")
        other.start()
        try:
            r = novactl("--target", "127.0.0.1:%d" % port, "--insecure", "--credentials",
                        self.creds, "whoami")
            self.assertEqual(r.returncode, 1)
            self.assertIn("not sending it", r.stderr)
            self.assertNotIn("authorization", fake2.requests[0][2])
        finally:
            other.stop(None)

    def test_api_key_from_environment_and_file(self):
        self.login()
        r = novactl(*self.base, "--output", "json", "apikey", "create", "ci", "--role", "viewer",
                    "--description", "CI")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("cannot be retrieved again", r.stderr)
        secret = json.loads(r.stdout)["secret"]
        create = [m for m in self.fake.requests if m[0] == "CreateApiKey"][0]
        self.assertEqual(create[1].parent, "projects/default")
        self.assertRegex(create[1].request_id, UUID_RE)
        self.assertEqual(create[2].get("x-request-id"), create[1].request_id)
        os.remove(self.creds)  # the key alone must do
        r = novactl(*self.base, "whoami", env={"NOVACRON_API_KEY": secret})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("projects/default/apiKeys/ci", r.stdout)
        keyfile = os.path.join(self.dir, "key")
        with open(keyfile, "w") as f:
            f.write(secret + "\n")
        r = novactl(*self.base, "--api-key-file", keyfile, "--output", "json", "whoami")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["kind"], "KIND_API_KEY")

    def test_list_all_pages_and_hint(self):
        self.login()
        r = novactl(*self.base, "--output", "json", "user", "list", "--all")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual([u["username"] for u in doc["users"]], self.fake.users)
        self.assertEqual(doc["nextPageToken"], "")
        r = novactl(*self.base, "user", "list", "--page-size", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("--page-token 3", r.stderr)
        self.assertEqual(len(r.stdout.strip().splitlines()), 4)  # header + 3

    def test_update_builds_the_field_mask(self):
        self.login()
        r = novactl(*self.base, "user", "update", "alice", "--display-name", "Alice",
                    "--disable", "--etag", "e1")
        self.assertEqual(r.returncode, 0, r.stderr)
        req = [m for m in self.fake.requests if m[0] == "UpdateUser"][0][1]
        self.assertEqual(list(req.update_mask.paths), ["display_name", "disabled"])
        self.assertEqual((req.user.name, req.user.etag, req.user.disabled),
                         ("users/alice", "e1", True))
        self.assertRegex(req.request_id, UUID_RE)
        r = novactl(*self.base, "user", "update", "alice", "--enable", "--disable")
        self.assertEqual(r.returncode, 2)
        r = novactl(*self.base, "user", "update", "alice")
        self.assertEqual(r.returncode, 2)

    def test_quota_set_mask_and_unlimited(self):
        self.login()
        r = novactl(*self.base, "--output", "json", "quota", "set", "default", "--vcpus", "64",
                    "--memory-mib", "131072", "--vms", "unlimited")
        self.assertEqual(r.returncode, 0, r.stderr)
        req = [m for m in self.fake.requests if m[0] == "SetQuota"][0][1]
        self.assertEqual(req.quota.name, "projects/default/quota")
        self.assertEqual(list(req.update_mask.paths),
                         ["limits.vcpus", "limits.memory_mib", "limits.vms"])
        self.assertEqual(req.quota.limits.vcpus.value, 64)
        self.assertFalse(req.quota.limits.HasField("vms"))
        self.assertEqual(json.loads(r.stdout)["limits"]["memoryMib"], 131072)
        r = novactl(*self.base, "quota", "set", "default", "--vcpus", "lots")
        self.assertEqual(r.returncode, 2)


if __name__ == "__main__":
    unittest.main()
