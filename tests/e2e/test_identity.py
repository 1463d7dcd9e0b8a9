"""IdentityService end to end: the real server on the fixture's PostgreSQL,
driven by Python grpcio. Every method, pagination, filters, idempotent
retries, etag conflicts, refresh-token rotation and reuse detection,
lockout, API keys, audit, rate limits, bad input, bootstrap, signing-secret
refusals, service principals and a PostgreSQL restart."""
import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import grpc

import harness
from harness import Server
from identity import PASSWORD, Api, admin, grant, ip, login, make_project, make_user, rid, unique
from novacron.v1.common_pb2 import Label  # noqa: E402 (stubs come with identity)

C = grpc.StatusCode
VIEWER, OPERATOR, ADMIN = ip.ROLE_VIEWER, ip.ROLE_OPERATOR, ip.ROLE_ADMIN


class Base(unittest.TestCase):
    ARGS = ("--rate-limit-anonymous-rps", "0", "--rate-limit-rps", "0")

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(*cls.ARGS, name=cls.__name__).start()
        cls.ch = cls.srv.channel()
        cls.root = admin(cls.srv, cls.ch)

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()
        cls.srv.stop()

    def refused(self, code, fn, *args, contains=None):
        with self.assertRaises(grpc.RpcError) as ctx:
            fn(*args)
        self.assertEqual(ctx.exception.code(), code, ctx.exception.details())
        if contains:
            self.assertIn(contains, ctx.exception.details())
        return ctx.exception

    def user_api(self, **fields):
        u = make_user(self.root, **fields)
        return u, login(self.ch, u, PASSWORD)[0]


class Sessions(Base):
    def test_login_whoami_refresh_logout(self):
        u = make_user(self.root, display_name="Session Tester")
        api, lr = login(self.ch, u, PASSWORD)
        self.assertTrue(lr.refresh_token.startswith("ncr_"))
        self.assertTrue(lr.session.startswith("users/%s/sessions/" % u))
        self.assertGreater(lr.access_token_expire_time.seconds, time.time())
        who = api.WhoAmI(ip.WhoAmIRequest()).principal
        self.assertEqual(who.kind, ip.Principal.KIND_USER)
        self.assertEqual(who.name, "users/" + u)
        self.assertEqual(who.display_name, "Session Tester")
        self.assertEqual(who.session, lr.session)
        self.assertFalse(who.system_admin)

        anon = Api(self.ch)
        r1 = anon.RefreshToken(ip.RefreshTokenRequest(refresh_token=lr.refresh_token))
        self.assertNotEqual(r1.refresh_token, lr.refresh_token)
        self.assertEqual(r1.session, lr.session)
        self.assertEqual(r1.refresh_token_expire_time.seconds, lr.refresh_token_expire_time.seconds)
        api2 = Api(self.ch, r1.access_token)
        self.assertEqual(api2.WhoAmI(ip.WhoAmIRequest()).principal.name, "users/" + u)

        sessions = api2.ListSessions(ip.ListSessionsRequest(parent="users/" + u)).sessions
        self.assertEqual(len(sessions), 1)
        self.assertTrue(sessions[0].current)
        self.assertEqual(sessions[0].state, ip.Session.STATE_ACTIVE)
        self.assertTrue(sessions[0].HasField("last_refresh_time"))

        out = api2.Logout(ip.LogoutRequest(request_id=rid())).session
        self.assertEqual(out.state, ip.Session.STATE_REVOKED)
        self.assertEqual(out.revoke_reason, "logout")
        # both access tokens of the session stop working at once
        for a in (api, api2):
            self.refused(C.UNAUTHENTICATED, a.WhoAmI, ip.WhoAmIRequest())
        self.refused(C.UNAUTHENTICATED, anon.RefreshToken,
                     ip.RefreshTokenRequest(refresh_token=r1.refresh_token))

    def test_list_sessions_filters_and_pages(self):
        u = make_user(self.root)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
        apis = [login(self.ch, u, PASSWORD) for _ in range(3)]
        apis[0][0].Logout(ip.LogoutRequest())
        a = apis[1][0]
        parent = "users/" + u
        active = a.ListSessions(ip.ListSessionsRequest(parent=parent, filter="state = STATE_ACTIVE"))
        self.assertEqual(sorted(x.name for x in active.sessions),
                         sorted(r.session for _, r in apis[1:]))
        revoked = a.ListSessions(ip.ListSessionsRequest(parent=parent,
                                                        filter="state = STATE_REVOKED"))
        self.assertEqual([x.name for x in revoked.sessions], [apis[0][1].session])
        # newest first by default; paging with a token bound to the request
        first = a.ListSessions(ip.ListSessionsRequest(parent=parent, page_size=2))
        self.assertEqual((first.total_size, len(first.sessions)), (3, 2))
        rest = a.ListSessions(ip.ListSessionsRequest(parent=parent, page_size=2,
                                                     page_token=first.next_page_token))
        names = [x.name for x in first.sessions] + [x.name for x in rest.sessions]
        self.assertEqual(names, [r.session for _, r in reversed(apis)])
        self.assertEqual(rest.next_page_token, "")
        self.refused(C.INVALID_ARGUMENT, a.ListSessions, ip.ListSessionsRequest(
            parent=parent, page_size=2, page_token=first.next_page_token,
            filter="state = STATE_ACTIVE"))
        oldest = a.ListSessions(ip.ListSessionsRequest(parent=parent, order_by="create_time"))
        self.assertEqual(oldest.sessions[0].name, apis[0][1].session)
        self.refused(C.INVALID_ARGUMENT, a.ListSessions,
                     ip.ListSessionsRequest(parent=parent, filter="peer = \"x\""))
        everyone = self.root.ListSessions(ip.ListSessionsRequest(
            parent="users/-", filter='state = STATE_ACTIVE AND create_time >= "%s"' % since,
            page_size=500))
        self.assertTrue(set(r.session for _, r in apis[1:]) <=
                        set(x.name for x in everyone.sessions))

    def test_refresh_reuse_revokes_the_session(self):
        u = make_user(self.root)
        api, lr = login(self.ch, u, PASSWORD)
        anon = Api(self.ch)
        r1 = anon.RefreshToken(ip.RefreshTokenRequest(refresh_token=lr.refresh_token))
        # the stolen, already used token comes back: the whole session dies
        e = self.refused(C.UNAUTHENTICATED, anon.RefreshToken,
                         ip.RefreshTokenRequest(refresh_token=lr.refresh_token))
        self.assertIn("already used", e.details())
        self.refused(C.UNAUTHENTICATED, anon.RefreshToken,
                     ip.RefreshTokenRequest(refresh_token=r1.refresh_token))
        self.refused(C.UNAUTHENTICATED, Api(self.ch, r1.access_token).WhoAmI, ip.WhoAmIRequest())
        s = self.root.ListSessions(ip.ListSessionsRequest(parent="users/" + u)).sessions[0]
        self.assertEqual(s.state, ip.Session.STATE_REVOKED)
        self.assertEqual(s.revoke_reason, "refresh token reuse")

    def test_refresh_retry_with_same_request_id_is_not_reuse(self):
        u = make_user(self.root)
        _, lr = login(self.ch, u, PASSWORD)
        anon = Api(self.ch)
        key = rid()
        a = anon.RefreshToken(ip.RefreshTokenRequest(refresh_token=lr.refresh_token,
                                                     request_id=key))
        b = anon.RefreshToken(ip.RefreshTokenRequest(refresh_token=lr.refresh_token,
                                                     request_id=key))
        self.assertEqual(a.refresh_token, b.refresh_token)
        c = anon.RefreshToken(ip.RefreshTokenRequest(refresh_token=b.refresh_token))
        self.assertTrue(c.refresh_token.startswith("ncr_"))
        # once the retried token was itself used, the retry is reuse
        self.refused(C.UNAUTHENTICATED, anon.RefreshToken,
                     ip.RefreshTokenRequest(refresh_token=lr.refresh_token, request_id=key))

    def test_bad_credentials(self):
        u = make_user(self.root)
        anon = Api(self.ch)
        e1 = self.refused(C.UNAUTHENTICATED, anon.Login,
                          ip.LoginRequest(username=u, password="wrong-password-123"))
        e2 = self.refused(C.UNAUTHENTICATED, anon.Login,
                          ip.LoginRequest(username=unique("ghost"), password="whatever-pass-1"))
        self.assertEqual(e1.details(), e2.details())  # no user enumeration
        for bad in ("", "Robert'); DROP TABLE users;--", "x" * 5000, "a\x00b"):
            self.refused(C.UNAUTHENTICATED, anon.Login, ip.LoginRequest(username=bad,
                                                                          password=bad or "p"))
        for token in ("garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2Vycy9hZG1pbiJ9.",
                      "nck_" + "0" * 64, "nck_short", "ncr_" + "0" * 64):
            e = self.refused(C.UNAUTHENTICATED, Api(self.ch, token).WhoAmI, ip.WhoAmIRequest())
            self.assertNotIn(token, e.details())
        self.refused(C.UNAUTHENTICATED, anon.RefreshToken,
                     ip.RefreshTokenRequest(refresh_token="ncr_" + "ab" * 32))
        # a token signed by another server's secret
        other = Server(env={"NOVACRON_TOKEN_SECRET": "another-clusters-secret-8c2f4e1a9b7d3056"},
                       name="other").start()
        try:
            with other.channel() as och:
                foreign, _ = login(och, "admin", other.admin_password)
            self.refused(C.UNAUTHENTICATED, Api(self.ch, foreign.token).WhoAmI, ip.WhoAmIRequest(),
                         contains="invalid access token")
        finally:
            other.stop()

    def test_revoke_session_and_password_change(self):
        u = make_user(self.root)
        a1, l1 = login(self.ch, u, PASSWORD)
        a2, l2 = login(self.ch, u, PASSWORD)
        # another user cannot see or revoke it: same answer as a missing one
        _, stranger = self.user_api()
        e = self.refused(C.NOT_FOUND, stranger.RevokeSession,
                         ip.RevokeSessionRequest(name=l1.session, request_id=rid()))
        self.refused(C.NOT_FOUND, stranger.RevokeSession,
                     ip.RevokeSessionRequest(name="users/%s/sessions/%s" % (u, rid()),
                                             request_id=rid()))
        self.assertIn("not found", e.details())
        self.refused(C.PERMISSION_DENIED, stranger.ListSessions,
                     ip.ListSessionsRequest(parent="users/" + u))
        s = a1.RevokeSession(ip.RevokeSessionRequest(name=l2.session, request_id=rid())).session
        self.assertEqual(s.state, ip.Session.STATE_REVOKED)
        self.refused(C.UNAUTHENTICATED, a2.WhoAmI, ip.WhoAmIRequest())
        # own password change: needs the old one, keeps the current session only
        a3, l3 = login(self.ch, u, PASSWORD)
        self.refused(C.UNAUTHENTICATED, a1.ChangePassword, ip.ChangePasswordRequest(
            name="users/" + u, old_password="not-the-password-1", new_password="Another-pass-77"))
        self.refused(C.INVALID_ARGUMENT, a1.ChangePassword, ip.ChangePasswordRequest(
            name="users/" + u, old_password=PASSWORD, new_password="short"))
        user = a1.ChangePassword(ip.ChangePasswordRequest(
            name="users/" + u, old_password=PASSWORD, new_password="Another-pass-77",
            request_id=rid())).user
        self.assertEqual(user.name, "users/" + u)
        self.assertEqual(a1.WhoAmI(ip.WhoAmIRequest()).principal.name, "users/" + u)
        self.refused(C.UNAUTHENTICATED, a3.WhoAmI, ip.WhoAmIRequest())
        self.refused(C.UNAUTHENTICATED, Api(self.ch).Login, ip.LoginRequest(username=u,
                                                                            password=PASSWORD))
        login(self.ch, u, "Another-pass-77")
        # others' passwords: system administrators only, no old password needed
        self.refused(C.PERMISSION_DENIED, stranger.ChangePassword, ip.ChangePasswordRequest(
            name="users/" + u, new_password="Stolen-pass-99x"))
        self.root.ChangePassword(ip.ChangePasswordRequest(name="users/" + u,
                                                          new_password="Reset-by-admin-5"))
        self.refused(C.UNAUTHENTICATED, a1.WhoAmI, ip.WhoAmIRequest())
        login(self.ch, u, "Reset-by-admin-5")


class Lockout(Base):
    ARGS = ("--rate-limit-anonymous-rps", "0", "--login-max-failures", "3",
            "--login-lockout-s", "3")

    def test_lockout_after_failures(self):
        u = make_user(self.root)
        anon = Api(self.ch)
        for _ in range(3):
            self.refused(C.UNAUTHENTICATED, anon.Login,
                         ip.LoginRequest(username=u, password="wrong-password-123"))
        # locked: even the right password is refused, with a hint
        e = self.refused(C.RESOURCE_EXHAUSTED, anon.Login, ip.LoginRequest(username=u,
                                                                            password=PASSWORD))
        self.assertIn("try again", e.details())
        time.sleep(3.5)
        login(self.ch, u, PASSWORD)
        # success resets the count
        for _ in range(2):
            self.refused(C.UNAUTHENTICATED, anon.Login,
                         ip.LoginRequest(username=u, password="wrong-password-123"))
        login(self.ch, u, PASSWORD)


class Users(Base):
    def test_create_get_list_update_delete(self):
        uid = unique("alice")
        req = ip.CreateUserRequest(user_id=uid, password=PASSWORD, request_id=rid(),
                                   user=ip.User(display_name="Alice A", email="alice@example.com"))
        u = self.root.CreateUser(req).user
        self.assertEqual((u.name, u.username, u.email), ("users/" + uid, uid, "alice@example.com"))
        self.assertTrue(u.uid and u.etag and u.HasField("create_time"))
        # idempotent retry: same response; same id with another request: refused
        self.assertEqual(self.root.CreateUser(req).user.uid, u.uid)
        req2 = ip.CreateUserRequest(user_id=uid + "x", password=PASSWORD,
                                    request_id=req.request_id)
        self.refused(C.INVALID_ARGUMENT, self.root.CreateUser, req2, contains="request_id")
        self.refused(C.ALREADY_EXISTS, self.root.CreateUser,
                     ip.CreateUserRequest(user_id=uid, password=PASSWORD))
        got = self.root.GetUser(ip.GetUserRequest(name="users/" + uid)).user
        self.assertEqual(got.etag, u.etag)
        self.refused(C.NOT_FOUND, self.root.GetUser, ip.GetUserRequest(name="users/nobody-here"))

        upd = self.root.UpdateUser(ip.UpdateUserRequest(
            user=ip.User(name="users/" + uid, display_name="Alice B", etag=u.etag),
            update_mask={"paths": ["display_name"]}, request_id=rid())).user
        self.assertEqual(upd.display_name, "Alice B")
        self.assertEqual(upd.email, "alice@example.com")
        self.assertNotEqual(upd.etag, u.etag)
        self.refused(C.ABORTED, self.root.UpdateUser, ip.UpdateUserRequest(
            user=ip.User(name="users/" + uid, display_name="stale", etag=u.etag),
            update_mask={"paths": ["display_name"]}))
        self.refused(C.INVALID_ARGUMENT, self.root.UpdateUser, ip.UpdateUserRequest(
            user=ip.User(name="users/" + uid), update_mask={"paths": ["password_hash"]}))
        self.refused(C.INVALID_ARGUMENT, self.root.UpdateUser, ip.UpdateUserRequest(
            user=ip.User(name="users/" + uid)))

        # users manage themselves, not their flags, and not others
        api = login(self.ch, uid, PASSWORD)[0]
        me = api.UpdateUser(ip.UpdateUserRequest(user=ip.User(name="users/" + uid, email=""),
                                                 update_mask={"paths": ["email"]})).user
        self.assertEqual(me.email, "")
        self.refused(C.PERMISSION_DENIED, api.UpdateUser, ip.UpdateUserRequest(
            user=ip.User(name="users/" + uid, system_admin=True),
            update_mask={"paths": ["system_admin"]}))
        self.refused(C.PERMISSION_DENIED, api.GetUser, ip.GetUserRequest(name="users/admin"))
        self.refused(C.PERMISSION_DENIED, api.CreateUser,
                     ip.CreateUserRequest(user_id=unique("x"), password=PASSWORD))
        mine = api.ListUsers(ip.ListUsersRequest())
        self.assertEqual([x.name for x in mine.users], ["users/" + uid])

        # disabling revokes sessions and blocks login
        cur = self.root.GetUser(ip.GetUserRequest(name="users/" + uid)).user
        self.root.UpdateUser(ip.UpdateUserRequest(user=ip.User(name=cur.name, disabled=True),
                                                  update_mask={"paths": ["disabled"]}))
        self.refused(C.UNAUTHENTICATED, api.WhoAmI, ip.WhoAmIRequest())
        self.refused(C.UNAUTHENTICATED, Api(self.ch).Login, ip.LoginRequest(username=uid,
                                                                            password=PASSWORD))
        cur = self.root.GetUser(ip.GetUserRequest(name="users/" + uid)).user
        self.refused(C.ABORTED, self.root.DeleteUser,
                     ip.DeleteUserRequest(name=cur.name, etag="v999"))
        self.root.DeleteUser(ip.DeleteUserRequest(name=cur.name, etag=cur.etag, request_id=rid()))
        self.refused(C.NOT_FOUND, self.root.GetUser, ip.GetUserRequest(name=cur.name))

    def test_list_pagination_and_filters(self):
        prefix = unique("pg")
        names = sorted(make_user(self.root, prefix=prefix) for _ in range(5))
        seen, token, pages = [], "", 0
        while True:
            r = self.root.ListUsers(ip.ListUsersRequest(page_size=2, page_token=token,
                                                        filter='username = "%s-*"' % prefix))
            self.assertEqual(r.total_size, 5)
            seen += [u.username for u in r.users]
            pages += 1
            token = r.next_page_token
            if not token:
                break
        self.assertEqual((seen, pages), (names, 3))
        desc = self.root.ListUsers(ip.ListUsersRequest(
            filter='username = "%s-*" AND disabled = false' % prefix, order_by="name desc"))
        self.assertEqual([u.username for u in desc.users], names[::-1])
        first = self.root.ListUsers(ip.ListUsersRequest(page_size=2,
                                                        filter='username = "%s-*"' % prefix))
        self.refused(C.INVALID_ARGUMENT, self.root.ListUsers, ip.ListUsersRequest(
            page_size=2, page_token=first.next_page_token, filter="disabled = true"))
        for bad in ('password_hash = "x"', "username = ", 'username = "a" OR disabled = true',
                    "disabled = maybe", "'; DROP TABLE users; --"):
            self.refused(C.INVALID_ARGUMENT, self.root.ListUsers, ip.ListUsersRequest(filter=bad))
        self.refused(C.INVALID_ARGUMENT, self.root.ListUsers, ip.ListUsersRequest(page_size=-1))
        self.refused(C.INVALID_ARGUMENT, self.root.ListUsers, ip.ListUsersRequest(order_by="email"))
        self.refused(C.INVALID_ARGUMENT, self.root.ListUsers,
                     ip.ListUsersRequest(page_token="not-a-token"))

    def test_last_admin_and_self_protection(self):
        me = self.root.GetUser(ip.GetUserRequest(name="users/admin")).user
        self.refused(C.FAILED_PRECONDITION, self.root.DeleteUser,
                     ip.DeleteUserRequest(name="users/admin"))
        others = self.root.ListUsers(ip.ListUsersRequest(filter="system_admin = true AND "
                                                                "disabled = false"))
        if others.total_size == 1:
            self.refused(C.FAILED_PRECONDITION, self.root.UpdateUser, ip.UpdateUserRequest(
                user=ip.User(name=me.name, system_admin=False),
                update_mask={"paths": ["system_admin"]}))

    def test_bad_input(self):
        for user_id in ("", "Alice", "1abc", "a" * 64, "a/b", "a'b", "a;drop", "ü", "a\nb"):
            self.refused(C.INVALID_ARGUMENT, self.root.CreateUser,
                         ip.CreateUserRequest(user_id=user_id, password=PASSWORD))
        uid = unique("bad")
        for pw, why in (("short-1", "at least"), (uid + "-long-enough", "user"),
                        ("password1234", "common")):
            self.refused(C.INVALID_ARGUMENT, self.root.CreateUser,
                         ip.CreateUserRequest(user_id=uid, password=pw))
        for user in (ip.User(display_name="x\x07y"), ip.User(display_name="x" * 200),
                     ip.User(email="not-an-address"), ip.User(email="a@b\x00c.d")):
            self.refused(C.INVALID_ARGUMENT, self.root.CreateUser,
                         ip.CreateUserRequest(user_id=uid, password=PASSWORD, user=user))
        self.refused(C.INVALID_ARGUMENT, self.root.CreateUser,
                     ip.CreateUserRequest(user_id=uid, password=PASSWORD, request_id="nope"))
        self.refused(C.NOT_FOUND, self.root.GetUser, ip.GetUserRequest(name="users/" + uid))
        for name in ("", "users/", "users/A", "projects/x", "users/a/b", "users/x'--"):
            self.refused(C.INVALID_ARGUMENT, self.root.GetUser, ip.GetUserRequest(name=name))


class Projects(Base):
    def test_projects_quota_and_bindings(self):
        pid = unique("proj")
        req = ip.CreateProjectRequest(project_id=pid, request_id=rid(), project=ip.Project(
            display_name="Web", description="the web tier",
            labels=[Label(key="team", value="web"), Label(key="env", value="prod")]))
        p = self.root.CreateProject(req).project
        self.assertEqual(p.name, "projects/" + pid)
        self.assertEqual({(l.key, l.value) for l in p.labels}, {("team", "web"), ("env", "prod")})
        self.assertEqual(self.root.CreateProject(req).project.uid, p.uid)
        self.refused(C.ALREADY_EXISTS, self.root.CreateProject,
                     ip.CreateProjectRequest(project_id=pid))
        found = self.root.ListProjects(ip.ListProjectsRequest(
            filter='labels.team = "web" AND display_name = "Web"'))
        self.assertIn(p.name, [x.name for x in found.projects])

        # quota: unlimited by default, set per limit with a mask, etag checked
        q = self.root.GetQuota(ip.GetQuotaRequest(name=p.name + "/quota")).quota
        self.assertFalse(q.limits.HasField("vcpus"))
        q2 = self.root.SetQuota(ip.SetQuotaRequest(
            quota=ip.Quota(name=q.name, etag=q.etag,
                           limits=ip.Quota.Limits(vcpus={"value": 64}, vms={"value": 10})),
            update_mask={"paths": ["limits.vcpus", "limits.vms"]}, request_id=rid())).quota
        self.assertEqual((q2.limits.vcpus.value, q2.limits.vms.value), (64, 10))
        self.assertFalse(q2.limits.HasField("networks"))
        self.assertEqual(q2.usage.vms, 0)
        self.refused(C.ABORTED, self.root.SetQuota, ip.SetQuotaRequest(
            quota=ip.Quota(name=q.name, etag=q.etag), update_mask={"paths": ["limits"]}))
        self.refused(C.INVALID_ARGUMENT, self.root.SetQuota, ip.SetQuotaRequest(
            quota=ip.Quota(name=q.name, limits=ip.Quota.Limits(vcpus={"value": -1})),
            update_mask={"paths": ["limits.vcpus"]}))
        self.refused(C.INVALID_ARGUMENT, self.root.SetQuota, ip.SetQuotaRequest(
            quota=ip.Quota(name=q.name), update_mask={"paths": ["limits.gpus"]}))
        q3 = self.root.SetQuota(ip.SetQuotaRequest(quota=ip.Quota(name=q.name),
                                                   update_mask={"paths": ["limits"]})).quota
        self.assertFalse(q3.limits.HasField("vcpus"))

        # roles: a viewer reads, cannot change; no role = same answer as absent
        viewer, vapi = self.user_api()
        self.refused(C.PERMISSION_DENIED, vapi.GetProject, ip.GetProjectRequest(name=p.name))
        e1 = self.refused(C.PERMISSION_DENIED, vapi.GetQuota,
                          ip.GetQuotaRequest(name=p.name + "/quota"))
        e2 = self.refused(C.PERMISSION_DENIED, vapi.GetQuota,
                          ip.GetQuotaRequest(name="projects/%s/quota" % unique("absent")))
        self.assertEqual(e1.details().replace(pid, "X").split(" on ")[0],
                         e2.details().split(" on ")[0])
        b = grant(self.root, pid, viewer, VIEWER).role_binding
        self.assertEqual(b.name, "projects/%s/roleBindings/%s" % (pid, viewer))
        self.assertEqual(vapi.GetProject(ip.GetProjectRequest(name=p.name)).project.uid, p.uid)
        self.assertEqual([x.name for x in vapi.ListProjects(ip.ListProjectsRequest()).projects],
                         [p.name])
        self.refused(C.PERMISSION_DENIED, vapi.UpdateProject, ip.UpdateProjectRequest(
            project=ip.Project(name=p.name, description="mine"),
            update_mask={"paths": ["description"]}))
        self.refused(C.ALREADY_EXISTS, grant, self.root, pid, viewer, ADMIN)
        self.refused(C.NOT_FOUND, grant, self.root, pid, unique("ghost"), ADMIN)
        self.refused(C.INVALID_ARGUMENT, self.root.CreateRoleBinding, ip.CreateRoleBindingRequest(
            parent=p.name, role_binding_id="x", role_binding=ip.RoleBinding(
                user="users/" + viewer, role=7)))
        rbs = vapi.ListRoleBindings(ip.ListRoleBindingsRequest(parent="projects/-"))
        self.assertEqual([x.name for x in rbs.role_bindings], [b.name])
        rbs = self.root.ListRoleBindings(ip.ListRoleBindingsRequest(
            parent=p.name, filter='role = ROLE_VIEWER AND user = "users/%s"' % viewer))
        self.assertEqual(rbs.total_size, 1)

        # project admin: updates the project, manages bindings, not the quota
        padmin, aapi = self.user_api()
        grant(self.root, pid, padmin, ADMIN)
        up = aapi.UpdateProject(ip.UpdateProjectRequest(
            project=ip.Project(name=p.name, description="new", labels=[]),
            update_mask={"paths": ["description", "labels"]}, request_id=rid())).project
        self.assertEqual((up.description, len(up.labels)), ("new", 0))
        self.refused(C.PERMISSION_DENIED, aapi.SetQuota, ip.SetQuotaRequest(
            quota=ip.Quota(name=q.name), update_mask={"paths": ["limits"]}))
        self.refused(C.PERMISSION_DENIED, aapi.DeleteProject, ip.DeleteProjectRequest(name=p.name))
        aapi.DeleteRoleBinding(ip.DeleteRoleBindingRequest(name=b.name, request_id=rid()))
        self.refused(C.PERMISSION_DENIED, vapi.GetProject, ip.GetProjectRequest(name=p.name))
        self.refused(C.NOT_FOUND, aapi.DeleteRoleBinding, ip.DeleteRoleBindingRequest(name=b.name))

        cur = self.root.GetProject(ip.GetProjectRequest(name=p.name)).project
        self.refused(C.ABORTED, self.root.DeleteProject,
                     ip.DeleteProjectRequest(name=p.name, etag=p.etag))
        self.root.DeleteProject(ip.DeleteProjectRequest(name=p.name, etag=cur.etag))
        self.refused(C.NOT_FOUND, self.root.GetProject, ip.GetProjectRequest(name=p.name))
        # its bindings went with it
        self.assertEqual(aapi.ListProjects(ip.ListProjectsRequest()).total_size, 0)

    def test_bad_input(self):
        for pid in ("", "-", "A", "a" * 64, "a b", "a/b", "x'); --"):
            self.refused(C.INVALID_ARGUMENT, self.root.CreateProject,
                         ip.CreateProjectRequest(project_id=pid))
        for proj in (ip.Project(description="d" * 1025), ip.Project(display_name="\x1b[31m"),
                     ip.Project(labels=[Label(key="Bad Key", value="v")]),
                     ip.Project(labels=[Label(key="k", value="1"), Label(key="k", value="2")])):
            self.refused(C.INVALID_ARGUMENT, self.root.CreateProject,
                         ip.CreateProjectRequest(project_id=unique("p"), project=proj))


class ApiKeys(Base):
    def test_api_key_lifecycle(self):
        pid = make_project(self.root)
        op, oapi = self.user_api()
        grant(self.root, pid, op, ADMIN)
        key_req = ip.CreateApiKeyRequest(parent="projects/" + pid, api_key_id="ci",
                                         api_key=ip.ApiKey(role=VIEWER, description="CI"),
                                         request_id=rid())
        created = oapi.CreateApiKey(key_req)
        secret = created.secret
        self.assertTrue(secret.startswith("nck_"))
        self.assertEqual(created.api_key.secret_prefix, secret[:12])
        self.assertEqual(created.api_key.creator, "users/" + op)
        self.assertEqual(created.api_key.state, ip.ApiKey.STATE_ACTIVE)
        # a retry within the window returns the same secret
        self.assertEqual(oapi.CreateApiKey(key_req).secret, secret)
        self.refused(C.ALREADY_EXISTS, oapi.CreateApiKey, ip.CreateApiKeyRequest(
            parent="projects/" + pid, api_key_id="ci", api_key=ip.ApiKey(role=VIEWER)))

        k = Api(self.ch, secret)
        who = k.WhoAmI(ip.WhoAmIRequest()).principal
        self.assertEqual(who.kind, ip.Principal.KIND_API_KEY)
        self.assertEqual(who.name, "projects/%s/apiKeys/ci" % pid)
        self.assertEqual([(b.name, b.role) for b in who.role_bindings],
                         [("projects/" + pid, VIEWER)])
        self.assertEqual(k.GetProject(ip.GetProjectRequest(name="projects/" + pid)).project.name,
                         "projects/" + pid)
        self.refused(C.PERMISSION_DENIED, k.GetProject, ip.GetProjectRequest(
            name="projects/default"))
        self.refused(C.PERMISSION_DENIED, k.CreateApiKey, ip.CreateApiKeyRequest(
            parent="projects/" + pid, api_key_id="escalate", api_key=ip.ApiKey(role=ADMIN)))
        self.refused(C.FAILED_PRECONDITION, k.Logout, ip.LogoutRequest())

        keys = oapi.ListApiKeys(ip.ListApiKeysRequest(parent="projects/" + pid,
                                                      filter="state = STATE_ACTIVE"))
        self.assertEqual([x.name for x in keys.api_keys], ["projects/%s/apiKeys/ci" % pid])
        self.assertTrue(keys.api_keys[0].HasField("last_used_time"))
        self.assertNotIn(secret, str(keys))

        # a key above the creator's role is refused; an expiry must be in the future
        viewer, vapi = self.user_api()
        grant(self.root, pid, viewer, VIEWER)
        self.refused(C.PERMISSION_DENIED, vapi.CreateApiKey, ip.CreateApiKeyRequest(
            parent="projects/" + pid, api_key_id="v", api_key=ip.ApiKey(role=VIEWER)))
        self.refused(C.INVALID_ARGUMENT, oapi.CreateApiKey, ip.CreateApiKeyRequest(
            parent="projects/" + pid, api_key_id="old",
            api_key=ip.ApiKey(role=VIEWER, expire_time={"seconds": 1000})))
        short = oapi.CreateApiKey(ip.CreateApiKeyRequest(
            parent="projects/" + pid, api_key_id="short",
            api_key=ip.ApiKey(role=VIEWER, expire_time={"seconds": int(time.time()) + 2})))
        Api(self.ch, short.secret).WhoAmI(ip.WhoAmIRequest())
        time.sleep(2.5)
        self.refused(C.UNAUTHENTICATED, Api(self.ch, short.secret).WhoAmI, ip.WhoAmIRequest())

        revoked = oapi.RevokeApiKey(ip.RevokeApiKeyRequest(
            name="projects/%s/apiKeys/ci" % pid, request_id=rid())).api_key
        self.assertEqual(revoked.state, ip.ApiKey.STATE_REVOKED)
        again = oapi.RevokeApiKey(ip.RevokeApiKeyRequest(name=revoked.name)).api_key
        self.assertEqual(again.revoke_time, revoked.revoke_time)
        self.refused(C.UNAUTHENTICATED, k.WhoAmI, ip.WhoAmIRequest())


class Audit(Base):
    def test_audit_records(self):
        pid = make_project(self.root)
        padmin, aapi = self.user_api()
        grant(self.root, pid, padmin, ADMIN)
        key = rid()
        aapi.UpdateProject(ip.UpdateProjectRequest(
            project=ip.Project(name="projects/" + pid, description="audited"),
            update_mask={"paths": ["description"]}, request_id=key))
        outsider, oapi = self.user_api()
        self.refused(C.PERMISSION_DENIED, oapi.UpdateProject, ip.UpdateProjectRequest(
            project=ip.Project(name="projects/" + pid), update_mask={"paths": ["description"]}))
        ghost = unique("ghost")
        self.refused(C.UNAUTHENTICATED, Api(self.ch).Login,
                     ip.LoginRequest(username=ghost, password="Nope-nope-123"))

        ev = aapi.ListAuditEvents(ip.ListAuditEventsRequest(parent="projects/" + pid)).audit_events
        mine = [e for e in ev if e.request_id == key]
        self.assertEqual(len(mine), 1, ev)
        e = mine[0]
        self.assertEqual((e.principal, e.project, e.method, e.resource, e.result_code),
                         ("users/" + padmin, "projects/" + pid,
                          "/novacron.v1.IdentityService/UpdateProject", "projects/" + pid, 0))
        self.assertTrue(e.peer and e.name.startswith("auditEvents/"))
        denied = [x for x in ev if x.principal == "users/" + outsider]
        self.assertEqual(len(denied), 1, ev)
        self.assertEqual({x.result_code for x in denied}, {7})
        self.assertEqual({x.method for x in denied},
                         {"/novacron.v1.IdentityService/UpdateProject"})
        # newest first by default
        times = [(x.time.seconds, x.time.nanos) for x in ev]
        self.assertEqual(times, sorted(times, reverse=True))

        # only system administrators list everything
        self.refused(C.PERMISSION_DENIED, aapi.ListAuditEvents, ip.ListAuditEventsRequest())
        self.refused(C.PERMISSION_DENIED, oapi.ListAuditEvents,
                     ip.ListAuditEventsRequest(parent="projects/" + pid))
        allev = self.root.ListAuditEvents(ip.ListAuditEventsRequest(
            filter='principal = "anonymous:%s" AND result_code = 16' % ghost))
        self.assertEqual(allev.total_size, 1)
        self.assertEqual(allev.audit_events[0].method, "/novacron.v1.IdentityService/Login")
        page = self.root.ListAuditEvents(ip.ListAuditEventsRequest(page_size=1))
        self.assertTrue(page.next_page_token)
        self.refused(C.INVALID_ARGUMENT, self.root.ListAuditEvents,
                     ip.ListAuditEventsRequest(filter='time >= "yesterday"'))
        # reads are not audited
        self.root.GetProject(ip.GetProjectRequest(name="projects/" + pid))
        reads = self.root.ListAuditEvents(ip.ListAuditEventsRequest(
            filter='method = "/novacron.v1.IdentityService/GetProject"'))
        self.assertEqual(reads.total_size, 0)

    def test_concurrent_changes_are_recorded_once(self):
        # records queued while a batch is being written belong to the next
        # batch: the writer once wrote them in both
        pid = make_project(self.root)
        keys = [rid() for _ in range(120)]

        def update(i):
            self.root.UpdateProject(ip.UpdateProjectRequest(
                project=ip.Project(name="projects/" + pid, description="d%d" % i),
                update_mask={"paths": ["description"]}, request_id=keys[i]))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(update, range(len(keys))))
        seen = []
        token = ""
        while True:
            page = self.root.ListAuditEvents(ip.ListAuditEventsRequest(
                parent="projects/" + pid, page_size=500, page_token=token))
            seen += [e.request_id for e in page.audit_events]
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(sorted(r for r in seen if r in set(keys)), sorted(keys))


class RateLimit(unittest.TestCase):
    def test_per_principal_and_per_peer(self):
        srv = Server("--rate-limit-rps", "1", "--rate-limit-burst", "3",
                     "--rate-limit-anonymous-rps", "1", "--rate-limit-anonymous-burst", "2",
                     name="ratelimit").start()
        try:
            with srv.channel() as ch:
                api = admin(srv, ch)  # one anonymous token: Login
                codes = []
                for _ in range(5):
                    try:
                        api.with_call("WhoAmI", ip.WhoAmIRequest())
                        codes.append("OK")
                    except grpc.RpcError as e:
                        codes.append(e.code())
                        last = e
                self.assertEqual(codes[:3], ["OK"] * 3)
                self.assertIn(C.RESOURCE_EXHAUSTED, codes[3:])
                hint = dict(last.trailing_metadata()).get("retry-after-ms")
                self.assertTrue(hint and 1 <= int(hint) <= 1000, hint)
                self.assertIn("rate limit exceeded for users/admin", last.details())
                time.sleep(int(hint) / 1000.0 + 0.05)
                api.WhoAmI(ip.WhoAmIRequest())
                # anonymous Login: burst 2 per host, then refused before any password check
                anon = Api(ch)
                codes = []
                for _ in range(6):
                    try:
                        anon.Login(ip.LoginRequest(username="admin", password="wrong-pass-99"))
                    except grpc.RpcError as e:
                        codes.append(e.code())
                self.assertIn(C.RESOURCE_EXHAUSTED, codes)
                # health is never limited
                for _ in range(20):
                    self.assertEqual(harness.health_check(ch), "SERVING")
            harness.stop_and_assert(srv)
        finally:
            srv.kill()


class StartChecks(unittest.TestCase):
    def run_server(self, *args, env=None, db=None):
        srv = Server(*args, database_url=db, env=env, name="start")
        return srv

    def test_refuses_weak_or_missing_secrets(self):
        cases = [("", "no token signing secret"), ("changeme_in_production", "refused"),
                 ("short-secret", "refused"), ("a" * 40, "refused")]
        for secret, why in cases:
            with self.subTest(secret=secret):
                srv = Server(env={"NOVACRON_TOKEN_SECRET": secret}, name="secret")
                with self.assertRaises(harness.ServerError) as ctx:
                    srv.start()
                self.assertEqual(srv.returncode, 1)
                self.assertIn(why, str(ctx.exception))
                self.assertNotIn("changeme_in_production\"", str(ctx.exception))
        # a secret file readable by others is refused too
        d = harness.tmpdir("secret-")
        path = os.path.join(d, "secret")
        with open(path, "w") as f:
            f.write("a-perfectly-random-secret-5e8d1c0b7a9f2364\n")
        os.chmod(path, 0o644)
        srv = Server("--token-secret-file", path, env={"NOVACRON_TOKEN_SECRET": ""}, name="sf")
        with self.assertRaises(harness.ServerError) as ctx:
            srv.start()
        self.assertIn("chmod 600", str(ctx.exception))
        os.chmod(path, 0o600)
        Server("--token-secret-file", path, env={"NOVACRON_TOKEN_SECRET": ""}, name="sf").start().stop()

    def test_requires_a_database(self):
        srv = Server(database_url="-", env={"NOVACRON_DATABASE_URL": ""}, name="nodb")
        with self.assertRaises(harness.ServerError) as ctx:
            srv.start()
        self.assertIn("--database-url", str(ctx.exception))

    def test_bootstrap_writes_the_admin_password(self):
        db = harness.create_database("boot")
        d = harness.tmpdir("boot-")
        pwfile = os.path.join(d, "admin-password")
        srv = Server("--admin-password-file", pwfile, database_url=db,
                     env={"NOVACRON_ADMIN_PASSWORD": ""}, name="boot").start()
        try:
            mode = stat.S_IMODE(os.stat(pwfile).st_mode)
            self.assertEqual(mode, 0o600)
            password = harness.read(pwfile).decode().strip()
            self.assertGreaterEqual(len(password), 24)
            with srv.channel() as ch:
                api = login(ch, "admin", password)[0]
                who = api.WhoAmI(ip.WhoAmIRequest()).principal
                self.assertTrue(who.system_admin)
                projects = api.ListProjects(ip.ListProjectsRequest()).projects
                self.assertEqual([p.name for p in projects], ["projects/default"])
            self.assertNotIn(password, harness.read(srv.log_path).decode())
            srv.stop()
            # the second start keeps the administrator and the file
            os.unlink(pwfile)
            srv = Server("--admin-password-file", pwfile, database_url=db,
                         env={"NOVACRON_ADMIN_PASSWORD": ""}, name="boot2").start()
            self.assertFalse(os.path.exists(pwfile))
            with srv.channel() as ch:
                login(ch, "admin", password)
        finally:
            srv.stop()
        # a fresh database without any way to get a password: refuse to start
        srv = Server(database_url=harness.create_database("boot"),
                     env={"NOVACRON_ADMIN_PASSWORD": ""}, name="boot3")
        with self.assertRaises(harness.ServerError) as ctx:
            srv.start()
        self.assertIn("NOVACRON_ADMIN_PASSWORD", str(ctx.exception))
        weak = Server(database_url=harness.create_database("boot"),
                      env={"NOVACRON_ADMIN_PASSWORD": "password"}, name="boot4")
        with self.assertRaises(harness.ServerError) as ctx:
            weak.start()
        self.assertIn("refused", str(ctx.exception))


class ServicePrincipal(unittest.TestCase):
    def test_client_certificate_maps_to_a_service(self):
        srv = Server("--tls-client-ca", harness.cert("ca.crt"), "--tls-client-auth", "optional",
                     "--service-principals", "novacron-client=projects/default:viewer",
                     name="svc").start()
        try:
            with srv.channel(cert_pair=True) as ch:
                who = Api(ch).WhoAmI(ip.WhoAmIRequest()).principal
                self.assertEqual(who.kind, ip.Principal.KIND_SERVICE)
                self.assertEqual(who.name, "services/novacron-client")
                self.assertEqual([(b.name, b.role) for b in who.role_bindings],
                                 [("projects/default", VIEWER)])
                Api(ch).GetProject(ip.GetProjectRequest(name="projects/default"))
                with self.assertRaises(grpc.RpcError) as ctx:
                    Api(ch).CreateProject(ip.CreateProjectRequest(project_id=unique("p")))
                self.assertEqual(ctx.exception.code(), C.PERMISSION_DENIED)
            with srv.channel() as ch:  # no certificate: anonymous
                with self.assertRaises(grpc.RpcError) as ctx:
                    Api(ch).WhoAmI(ip.WhoAmIRequest())
                self.assertEqual(ctx.exception.code(), C.UNAUTHENTICATED)
        finally:
            srv.stop()
        bad = Server("--service-principals", "x=projects/p:owner", name="svcbad")
        with self.assertRaises(harness.ServerError):
            bad.start()


class AsymmetricKeys(unittest.TestCase):
    """--token-key-file: RS256 with an RSA key, ES256 with a P-256 key."""

    def key(self, *genpkey):
        d = harness.tmpdir("key-")
        path = os.path.join(d, "key.pem")
        subprocess.run(["openssl", "genpkey", *genpkey, "-out", path], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(path, 0o600)
        return path

    def header(self, token):
        head = token.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))

    def test_rs256_and_es256(self):
        for alg, genpkey in (("RS256", ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048")),
                             ("ES256", ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"))):
            with self.subTest(alg=alg):
                srv = Server("--token-key-file", self.key(*genpkey), name=alg).start()
                try:
                    with srv.channel() as ch:
                        api, lr = login(ch, "admin", srv.admin_password)
                        self.assertEqual(self.header(lr.access_token)["alg"], alg)
                        self.assertEqual(api.WhoAmI(ip.WhoAmIRequest()).principal.name,
                                         "users/admin")
                        r = Api(ch).RefreshToken(ip.RefreshTokenRequest(
                            refresh_token=lr.refresh_token))
                        self.assertEqual(self.header(r.access_token)["alg"], alg)
                        # the same token re-signed as HS256 with the key's public half as
                        # the HMAC secret (algorithm confusion) is refused
                        head, body, _ = lr.access_token.split(".")
                        h = self.header(lr.access_token)
                        h["alg"] = "HS256"
                        enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
                        forged_head = enc(json.dumps(h).encode())
                        public = subprocess.run(["openssl", "pkey", "-in", srv.args[1],
                                                 "-pubout"], check=True,
                                                stdout=subprocess.PIPE).stdout
                        sig = hmac.new(public, (forged_head + "." + body).encode(),
                                       hashlib.sha256)
                        forged = "%s.%s.%s" % (forged_head, body, enc(sig.digest()))
                        with self.assertRaises(grpc.RpcError) as ctx:
                            Api(ch, forged).WhoAmI(ip.WhoAmIRequest())
                        self.assertEqual(ctx.exception.code(), C.UNAUTHENTICATED)
                finally:
                    srv.stop()
        bad = Server("--token-key-file", self.key("-algorithm", "RSA", "-pkeyopt",
                                                  "rsa_keygen_bits:1024"), name="rsa1024")
        with self.assertRaises(harness.ServerError) as ctx:
            bad.start()
        self.assertIn("token signing key", str(ctx.exception))


class DatabaseRestart(unittest.TestCase):
    """PostgreSQL stopped and started under a running server: calls fail
    UNAVAILABLE, then succeed, without restarting the server."""

    def test_calls_recover_after_postgres_restart(self):
        pgdir = harness.tmpdir("pg-")
        pg = os.path.join(harness.SOURCE_DIR, "tests", "pg.sh")
        # a private cluster: stopping the shared one would hurt other tests
        pgdir = "/tmp/nc-pgr-" + os.urandom(4).hex()
        subprocess.run([pg, "start", pgdir], check=True, stdout=subprocess.DEVNULL)
        url = "postgresql:///novacron?host=%s/sock&port=5432&user=novacron" % pgdir
        srv = Server("--database-connect-timeout-ms", "1000", database_url=url,
                     name="pgrestart").start()
        try:
            with srv.channel() as ch:
                api = admin(srv, ch)
                api.GetProject(ip.GetProjectRequest(name="projects/default"))
                data = os.path.join(pgdir, "data")
                bindir = sorted(__import__("glob").glob("/usr/lib/postgresql/*/bin"))[-1]
                as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
                ctl = as_pg + [os.path.join(bindir, "pg_ctl")]
                subprocess.run(ctl + ["stop", "-D", data, "-m", "fast", "-w"], check=True,
                               stdout=subprocess.DEVNULL)
                with self.assertRaises(grpc.RpcError) as ctx:
                    api.GetProject(ip.GetProjectRequest(name="projects/default"))
                self.assertEqual(ctx.exception.code(), C.UNAVAILABLE, ctx.exception.details())
                self.assertNotIn("SELECT", ctx.exception.details())
                self.assertEqual(harness.health_check(ch), "SERVING")
                subprocess.run(ctl + ["start", "-D", data, "-l", os.path.join(pgdir, "pg2.log"),
                                      "-w"], check=True, stdout=subprocess.DEVNULL)
                deadline = time.monotonic() + 20
                while True:
                    try:
                        api.GetProject(ip.GetProjectRequest(name="projects/default"))
                        break
                    except grpc.RpcError as e:
                        self.assertEqual(e.code(), C.UNAVAILABLE, e.details())
                        self.assertLess(time.monotonic(), deadline)
                        time.sleep(0.2)
                # and writes work again (the audit backlog is written too)
                p = make_project(api)
                ev = api.ListAuditEvents(ip.ListAuditEventsRequest(
                    parent="projects/" + p)).audit_events
                self.assertEqual(srv.proc.poll(), None)
            harness.stop_and_assert(srv)
        finally:
            srv.kill()
            subprocess.run([pg, "stop", pgdir], stdout=subprocess.DEVNULL)
        del ev


if __name__ == "__main__":
    unittest.main()
