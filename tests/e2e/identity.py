"""Helpers for tests that talk to IdentityService with credentials: a stub
wrapper that sends `authorization: Bearer <credential>`, login, unique
names, and UUID request ids."""
import os
import uuid

import harness

harness.stubs()
from novacron.v1 import identity_pb2 as ip  # noqa: E402
from novacron.v1 import identity_pb2_grpc as ig  # noqa: E402

TIMEOUT = 20


class Api:
    """IdentityService stub whose calls carry a bearer credential.

        api = Api(channel, token)
        api.GetUser(ip.GetUserRequest(name="users/alice"))
        resp, call = api.with_call("WhoAmI", ip.WhoAmIRequest())"""

    def __init__(self, channel, token=None):
        self.channel = channel
        self.stub = ig.IdentityServiceStub(channel)
        self.token = token

    def metadata(self):
        return [("authorization", "Bearer " + self.token)] if self.token else []

    def __getattr__(self, name):
        method = getattr(self.stub, name)

        def call(request, timeout=TIMEOUT):
            return method(request, metadata=self.metadata(), timeout=timeout)
        return call

    def with_call(self, name, request, timeout=TIMEOUT):
        return getattr(self.stub, name).with_call(request, metadata=self.metadata(),
                                                  timeout=timeout)


def login(channel, username, password):
    """(Api with the access token, LoginResponse)."""
    resp = Api(channel).Login(ip.LoginRequest(username=username, password=password))
    return Api(channel, resp.access_token), resp


def admin(srv, channel):
    """An Api logged in as the bootstrap administrator of `srv`'s database."""
    return login(channel, "admin", srv.admin_password)[0]


def unique(prefix):
    """A fresh resource id: prefix + 8 hex characters."""
    return "%s-%s" % (prefix, os.urandom(4).hex())


def rid():
    return str(uuid.uuid4())


PASSWORD = "correct-Horse-battery-9"


def make_user(api, prefix="u", password=PASSWORD, **fields):
    """Creates a user (as a system administrator) and returns its id."""
    user_id = unique(prefix)
    api.CreateUser(ip.CreateUserRequest(user_id=user_id, user=ip.User(**fields),
                                        password=password, request_id=rid()))
    return user_id


def make_project(api, prefix="p", **fields):
    project_id = unique(prefix)
    api.CreateProject(ip.CreateProjectRequest(project_id=project_id,
                                              project=ip.Project(**fields), request_id=rid()))
    return project_id


def grant(api, project, user, role):
    return api.CreateRoleBinding(ip.CreateRoleBindingRequest(
        parent="projects/" + project, role_binding_id=user,
        role_binding=ip.RoleBinding(user="users/" + user, role=role), request_id=rid()))
