"""The authorization matrix: every RPC of every novacron.v1 service called by
each kind of caller, with the status code of every cell pinned.

Callers (columns):
  anon       no credentials
  other      ROLE_VIEWER on project Q only (no role on P)
  viewer     ROLE_VIEWER on P
  operator   ROLE_OPERATOR on P
  p-admin    ROLE_ADMIN on P
  sysadmin   the bootstrap system administrator `admin`
  ghost      `other` again, on a project that does not exist at all
             (project-scoped methods only): the same PERMISSION_DENIED, and
             the same message but for the project id, so the answer is no
             existence oracle.
  other@-    `other` again, naming the project `-` (`projects/-`,
             `projects/-/vms/web-1`, ...; project-scoped methods only). The
             protos allow `projects/-` ("every project the caller has a role
             on") for a few list methods only; everywhere else it names no
             project, so a caller without any role must not get through
             authorization (PERMISSION_DENIED or INVALID_ARGUMENT).

The expected policy is the explicit POLICY table below, written from the
comments in proto/novacron/v1/*.proto (NOT from the server's method tables in
server/api/*.c, which are what is tested). Each request names something
inside project P in the method's scope field (or a global resource, e.g.
hosts/h1). A cell that passes authorization answers UNIMPLEMENTED "... is not
implemented yet" for the services without handlers; the built compute
services answer the code in BUILT (their requests name resources that do
not exist, or validate only); IdentityService requests
are chosen so that permitted callers get a deterministic code without
damaging the fixture (ALREADY_EXISTS on an existing id, NOT_FOUND on a
missing one, ABORTED on a stale etag, INVALID_ARGUMENT on a too short
password...). On failure the whole matrix is printed to stderr.
"""
import collections
import sys
import unittest

import grpc

import harness
from harness import Server
from identity import PASSWORD, Api, grant, ip, login, make_project, make_user, rid, unique

C = grpc.StatusCode
VIEWER, OPERATOR, ADMIN = ip.ROLE_VIEWER, ip.ROLE_OPERATOR, ip.ROLE_ADMIN
TIMEOUT = 20

# ---------------------------------------------------------------- policy

# Access classes.
PUBLIC = "public"  # no credentials needed (Login, RefreshToken)
AUTH = "authenticated"  # any authenticated caller; the handler applies finer rules
V = "viewer"  # ROLE_VIEWER or higher on the project named by the request
OP = "operator"  # ROLE_OPERATOR or higher on that project
ADM = "admin"  # ROLE_ADMIN on that project
SA = "system_admin"  # system administrators only
RANK = {V: 1, OP: 2, ADM: 3}
PROJECT_SCOPED = (V, OP, ADM)

# method -> access class, from the proto comments (the quoted source is the
# service or method comment of the named file).
POLICY = {
    # vm.proto: "Get/List/GetVmStats need ROLE_VIEWER on the project, every
    # other method ROLE_OPERATOR."
    "novacron.v1.VmService": {
        "CreateVm": OP, "GetVm": V, "ListVms": V, "UpdateVm": OP, "DeleteVm": OP,
        "StartVm": OP, "StopVm": OP, "RebootVm": OP, "PauseVm": OP, "ResumeVm": OP,
        "ResizeVm": OP, "MigrateVm": OP, "CloneVm": OP, "CreateSnapshot": OP,
        "GetSnapshot": V, "ListSnapshots": V, "RevertSnapshot": OP, "DeleteSnapshot": OP,
        "AttachVolume": OP, "DetachVolume": OP, "AttachNic": OP, "DetachNic": OP,
        "GetVmStats": V,
    },
    # host.proto: "changing them requires a system administrator
    # (PERMISSION_DENIED otherwise), while any authenticated principal may
    # read them".
    "novacron.v1.HostService": {
        "RegisterHost": SA, "GetHost": AUTH, "ListHosts": AUTH, "UpdateHost": SA,
        "DrainHost": SA, "DeregisterHost": SA,
    },
    # storage.proto: pools "only system administrators create or delete
    # them, while every authenticated principal may read them"; volumes
    # "Reading needs ROLE_VIEWER on the project; changing needs
    # ROLE_OPERATOR". (GetVolume's comment says "NOT_FOUND ... also when the
    # caller cannot see the project"; this test holds it to the rule of the
    # issue, vm.proto and identity.proto instead: PERMISSION_DENIED whether
    # or not the project exists, like every other project-scoped method.)
    "novacron.v1.StorageService": {
        "CreatePool": SA, "GetPool": AUTH, "ListPools": AUTH, "DeletePool": SA,
        "CreateVolume": OP, "GetVolume": V, "ListVolumes": V, "ResizeVolume": OP,
        "CloneVolume": OP, "DeleteVolume": OP,
    },
    # network.proto: "Reading needs ROLE_VIEWER on the project; changing
    # needs ROLE_OPERATOR." (each method repeats it)
    "novacron.v1.NetworkService": {
        "CreateNetwork": OP, "GetNetwork": V, "ListNetworks": V, "UpdateNetwork": OP,
        "DeleteNetwork": OP, "ListLeases": V, "AddReservation": OP,
        "RemoveReservation": OP,
    },
    # identity.proto, per method.
    "novacron.v1.IdentityService": {
        "Login": PUBLIC,  # "Needs no credentials."
        "RefreshToken": PUBLIC,  # "Needs no other credentials."
        "Logout": AUTH,  # "Revokes the caller's current session"
        "WhoAmI": AUTH,  # "Describes the authenticated caller"
        "CreateUser": SA,  # "Requires system administrator."
        "GetUser": AUTH,  # "Users may read themselves; reading others requires SA"
        "ListUsers": AUTH,  # "SAs see all users; other callers see only themselves"
        "UpdateUser": AUTH,  # "Users may change their own display_name and email"
        "DeleteUser": SA,  # "Requires system administrator"
        "ChangePassword": AUTH,  # own password, or SA for another user's
        "CreateProject": SA,  # "Requires system administrator."
        "GetProject": V,  # "Requires a role on it (or system administrator)."
        "ListProjects": AUTH,  # "Lists projects the caller has a role on"
        "UpdateProject": ADM,  # "Requires ROLE_ADMIN on it."
        "DeleteProject": SA,  # "Requires system administrator."
        "GetQuota": V,  # "Requires ROLE_VIEWER."
        "SetQuota": SA,  # "Requires system administrator."
        "CreateRoleBinding": ADM,  # "Requires ROLE_ADMIN on the project."
        "ListRoleBindings": V,  # "Requires ROLE_VIEWER on the listed projects."
        "DeleteRoleBinding": ADM,  # "Requires ROLE_ADMIN on the project."
        "CreateApiKey": ADM,  # "Requires ROLE_ADMIN on the project"
        "ListApiKeys": ADM,  # "Requires ROLE_ADMIN."
        "RevokeApiKey": ADM,  # "Requires ROLE_ADMIN."
        "ListSessions": AUTH,  # own sessions, SAs anyone's
        "RevokeSession": AUTH,  # "Allowed for the session's user and SAs"
        "ListAuditEvents": ADM,  # "Project admins may list their project's
                                 # events; all events require SA" (variant)
    },
    # backup.proto: "Reading needs ROLE_VIEWER on the project; backups and
    # restores need ROLE_OPERATOR; repositories and policies need
    # ROLE_ADMIN." (each method repeats it)
    "novacron.v1.BackupService": {
        "CreateRepository": ADM, "GetRepository": V, "ListRepositories": V,
        "DeleteRepository": ADM, "CreateBackupPolicy": ADM, "GetBackupPolicy": V,
        "ListBackupPolicies": V, "UpdateBackupPolicy": ADM, "DeleteBackupPolicy": ADM,
        "CreateBackup": OP, "GetBackup": V, "ListBackups": V, "DeleteBackup": OP,
        "VerifyBackup": OP, "RestoreBackup": OP,
    },
    # federation.proto: "Managing peers requires system administrator;
    # GetClusterInfo, GetPeer and ListPeers need any authenticated
    # principal"; ListFederatedVms "Local VMs need ROLE_VIEWER on their
    # project"; TransferVm "Requires ROLE_OPERATOR on the VM's project".
    "novacron.v1.FederationService": {
        "GetClusterInfo": AUTH, "RegisterPeer": SA, "GetPeer": AUTH, "ListPeers": AUTH,
        "RemovePeer": SA, "ListFederatedVms": V, "TransferVm": OP,
    },
    # operations.proto is silent on roles for project operations (it only
    # reserves `projects/-` to system administrators). Judgment call, by the
    # rule of the other services and of Role (ROLE_OPERATOR "operating
    # resources"): reading and waiting are reads (ROLE_VIEWER), cancelling
    # is operating (ROLE_OPERATOR).
    "novacron.v1.OperationsService": {
        "GetOperation": V, "ListOperations": V, "WaitOperation": V, "CancelOperation": OP,
    },
    # event.proto: "Needs ROLE_VIEWER on the project named by `parent`."
    "novacron.v1.EventService": {
        "WatchEvents": V,
    },
}
N_METHODS = 100  # 23 vm + 6 host + 10 storage + 8 network + 26 identity + 15 backup
#                  + 7 federation + 4 operations + 1 event

# Requests of the services without handlers: the scope field names
# something inside {p} (or a global resource). Nested messages as dicts.
VM = "projects/{p}/vms/web-1"
SNAP = VM + "/snapshots/s1"
VOL = "projects/{p}/volumes/disk-1"
NET = "projects/{p}/networks/net-1"
REPO = "projects/{p}/repositories/repo-1"
POLICY_NAME = "projects/{p}/backupPolicies/nightly"
BACKUP = "projects/{p}/backups/b1"
OPERATION = "projects/{p}/operations/" + "0f0e0d0c-0b0a-4908-8706-050403020100"
PARENT = "projects/{p}"
HOST = "hosts/h1"
POOL = "hosts/h1/pools/pool-1"
PEER = "peers/peer-1"
REQUESTS = {
    "novacron.v1.VmService": {
        # validate_only: a permitted caller gets OK and nothing is created
        "CreateVm": {"parent": PARENT, "vm_id": "web-1", "vm": {"vcpus": 1, "memory_mib": 512},
                     "validate_only": True},
        "GetVm": {"name": VM},
        "ListVms": {"parent": PARENT},
        "UpdateVm": {"vm": {"name": VM, "description": "x"},
                     "update_mask": {"paths": ["description"]}},
        "DeleteVm": {"name": VM},
        "StartVm": {"name": VM},
        "StopVm": {"name": VM},
        "RebootVm": {"name": VM},
        "PauseVm": {"name": VM},
        "ResumeVm": {"name": VM},
        "ResizeVm": {"name": VM, "vcpus": 2},
        "MigrateVm": {"name": VM, "target_host": HOST},
        "CloneVm": {"name": VM, "vm_id": "web-2"},
        "CreateSnapshot": {"parent": VM, "snapshot_id": "s1"},
        "GetSnapshot": {"name": SNAP},
        "ListSnapshots": {"parent": VM},
        "RevertSnapshot": {"name": SNAP},
        "DeleteSnapshot": {"name": SNAP},
        "AttachVolume": {"name": VM, "disk": {"volume": VOL}},
        "DetachVolume": {"name": VM, "volume": VOL},
        "AttachNic": {"name": VM, "nic": {"network": NET}},
        "DetachNic": {"name": VM, "mac": "52:54:00:12:34:56"},
        "GetVmStats": {"name": VM},
    },
    "novacron.v1.HostService": {
        "RegisterHost": {"host_id": "h1", "host": {"uri": "qemu+ssh://h1/system"},
                         "validate_only": True},
        "GetHost": {"name": HOST},
        "ListHosts": {},
        "UpdateHost": {"host": {"name": HOST, "description": "x"},
                       "update_mask": {"paths": ["description"]}},
        "DrainHost": {"name": HOST},
        "DeregisterHost": {"name": HOST},
    },
    "novacron.v1.StorageService": {
        "CreatePool": {"parent": HOST, "pool_id": "pool-1",
                       "pool": {"type": 1, "target_path": "/srv/pool-1"}},  # TYPE_DIR
        "GetPool": {"name": POOL},
        "ListPools": {"parent": HOST},
        "DeletePool": {"name": POOL},
        "CreateVolume": {"parent": PARENT, "volume_id": "disk-1",
                         "volume": {"pool": POOL, "size_bytes": 1 << 30}},
        "GetVolume": {"name": VOL},
        "ListVolumes": {"parent": PARENT},
        "ResizeVolume": {"name": VOL, "size_bytes": 2 << 30},
        "CloneVolume": {"name": VOL, "volume_id": "disk-2"},
        "DeleteVolume": {"name": VOL},
    },
    "novacron.v1.NetworkService": {
        "CreateNetwork": {"parent": PARENT, "network_id": "net-1",
                          "network": {"host": HOST, "mode": 1,  # MODE_NAT
                                      "ipv4_cidr": "192.168.100.0/24"}},
        "GetNetwork": {"name": NET},
        "ListNetworks": {"parent": PARENT},
        "UpdateNetwork": {"network": {"name": NET}, "update_mask": {"paths": ["description"]}},
        "DeleteNetwork": {"name": NET},
        "ListLeases": {"parent": NET},
        "AddReservation": {"name": NET, "reservation": {"mac": "52:54:00:12:34:56",
                                                        "ip": "192.168.100.10"}},
        "RemoveReservation": {"name": NET, "mac": "52:54:00:12:34:56"},
    },
    "novacron.v1.BackupService": {
        "CreateRepository": {"parent": PARENT, "repository_id": "repo-1"},
        "GetRepository": {"name": REPO},
        "ListRepositories": {"parent": PARENT},
        "DeleteRepository": {"name": REPO},
        "CreateBackupPolicy": {"parent": PARENT, "backup_policy_id": "nightly"},
        "GetBackupPolicy": {"name": POLICY_NAME},
        "ListBackupPolicies": {"parent": PARENT},
        "UpdateBackupPolicy": {"backup_policy": {"name": POLICY_NAME},
                               "update_mask": {"paths": ["description"]}},
        "DeleteBackupPolicy": {"name": POLICY_NAME},
        "CreateBackup": {"parent": PARENT, "backup_id": "b1", "backup": {"vm": VM}},
        "GetBackup": {"name": BACKUP},
        "ListBackups": {"parent": PARENT},
        "DeleteBackup": {"name": BACKUP},
        "VerifyBackup": {"name": BACKUP},
        "RestoreBackup": {"name": BACKUP, "new_vm_id": "web-restored"},
    },
    "novacron.v1.FederationService": {
        "GetClusterInfo": {},
        "RegisterPeer": {"peer_id": "peer-1", "peer": {"endpoint": "peer.example:8443"}},
        "GetPeer": {"name": PEER},
        "ListPeers": {},
        "RemovePeer": {"name": PEER},
        "ListFederatedVms": {"parent": PARENT},
        "TransferVm": {"name": VM, "peer": PEER},
    },
    "novacron.v1.OperationsService": {
        "GetOperation": {"name": OPERATION},
        "ListOperations": {"parent": PARENT},
        "WaitOperation": {"name": OPERATION},
        "CancelOperation": {"name": OPERATION},
    },
    "novacron.v1.EventService": {
        "WatchEvents": {"parent": PARENT},
    },
}

# What a permitted caller gets from the built services other than
# IdentityService: NOT_FOUND for the missing VM, snapshot, host, pool,
# volume, network and operation the requests name; OK for lists, validate_only creates and a
# watch (its first message arrives).
_NF = C.NOT_FOUND
BUILT = {
    "novacron.v1.VmService": dict(
        {m: _NF for m in POLICY["novacron.v1.VmService"]}, CreateVm=C.OK, ListVms=C.OK),
    "novacron.v1.HostService": dict(
        {m: _NF for m in POLICY["novacron.v1.HostService"]}, RegisterHost=C.OK, ListHosts=C.OK),
    "novacron.v1.OperationsService": dict(
        {m: _NF for m in POLICY["novacron.v1.OperationsService"]}, ListOperations=C.OK),
    # the pool, host, volume and network the requests name do not exist
    "novacron.v1.StorageService": dict(
        {m: _NF for m in POLICY["novacron.v1.StorageService"]}, ListPools=C.OK,
        ListVolumes=C.OK),
    "novacron.v1.NetworkService": dict(
        {m: _NF for m in POLICY["novacron.v1.NetworkService"]}, ListNetworks=C.OK),
    "novacron.v1.EventService": {"WatchEvents": C.OK},
}


def allowed_code(svc, method):
    return BUILT.get(svc, {}).get(method, C.UNIMPLEMENTED)


# Methods whose proto allows the wildcard parent `projects/-`, and what a
# caller with no role gets for it (the wildcard column); every other
# project-scoped method must refuse it (NOT_THROUGH).
NOT_THROUGH = (C.PERMISSION_DENIED, C.INVALID_ARGUMENT)
WILDCARD = {
    # vm.proto ListVmsRequest.parent: "or `projects/-` for every project the
    # caller has a role on"
    ("novacron.v1.VmService", "ListVms"): C.OK,
    # identity.proto ListRoleBindingsRequest.parent: likewise
    ("novacron.v1.IdentityService", "ListRoleBindings"): C.OK,
    # federation.proto ListFederatedVmsRequest.parent: "`projects/-`: every
    # project the caller may see here"
    ("novacron.v1.FederationService", "ListFederatedVms"): C.UNIMPLEMENTED,
    # event.proto WatchEventsRequest.parent: "`projects/-` for the events of
    # every project the caller has a role on"
    ("novacron.v1.EventService", "WatchEvents"): C.OK,
    # operations.proto ListOperationsRequest.parent: "`projects/-` for every
    # project (system administrators only)"
    ("novacron.v1.OperationsService", "ListOperations"): C.PERMISSION_DENIED,
}

# Extra request variants of handler-less methods: (service, method) ->
# [(variant, class, template)].
EXTRA_VARIANTS = {
    # event.proto: an empty parent is "for system administrators only
    # (PERMISSION_DENIED otherwise)".
    ("novacron.v1.EventService", "WatchEvents"): [("all events", SA, {"parent": ""})],
    # operations.proto: an Operation is `projects/{project}/operations/{op}`
    # "or `operations/{operation}` for system-level work". The proto does
    # not say who may see those; they belong to no project, so (as
    # server/api/operations.c says) system administrators only, and a
    # refusal by role is PERMISSION_DENIED.
    ("novacron.v1.OperationsService", "GetOperation"): [
        ("system-level", SA, {"name": "operations/0f0e0d0c-0b0a-4908-8706-050403020100"})],
    ("novacron.v1.OperationsService", "WaitOperation"): [
        ("system-level", SA, {"name": "operations/0f0e0d0c-0b0a-4908-8706-050403020100"})],
    ("novacron.v1.OperationsService", "CancelOperation"): [
        ("system-level", SA, {"name": "operations/0f0e0d0c-0b0a-4908-8706-050403020100"})],
}

# ---------------------------------------------------------------- callers

ANON, OTHER, VWR, OPR, PADM, SYS, GHOST, WILD = ("anon", "other", "viewer", "operator",
                                                "p-admin", "sysadmin", "ghost", "other@-")
CALLERS = (ANON, OTHER, VWR, OPR, PADM, SYS)
COLUMNS = CALLERS + (GHOST, WILD)
ROLE_ON_P = {OTHER: 0, VWR: 1, OPR: 2, PADM: 3}
USERS = (OTHER, VWR, OPR, PADM)  # the non-administrator users


def except_sysadmin(code):
    """Per-caller expectations: `code` for every user but the system
    administrator."""
    return {u: code for u in USERS}


class Case:
    """One row: a request for one method (one variant of it) and its
    expectation. `build(ctx)` returns the request message; `allowed` is the
    code of callers the policy lets through; `expect` overrides single
    callers (for `authenticated` methods)."""

    def __init__(self, service, method, klass, build, allowed, variant="", expect=None,
                 token=None):
        self.service, self.method, self.klass = service, method, klass
        self.build, self.allowed, self.variant = build, allowed, variant
        self.expect = dict(expect or {})
        self.token = token  # (fixture, caller) -> token to use instead of the main one

    @property
    def label(self):
        short = self.service.rsplit(".", 1)[1].replace("Service", "")
        return "%s.%s%s" % (short, self.method, "[%s]" % self.variant if self.variant else "")

    def expected(self, caller):
        """The expected code, or a tuple of acceptable ones."""
        if caller == GHOST:
            return C.PERMISSION_DENIED
        if caller == WILD:
            return WILDCARD.get((self.service, self.method), NOT_THROUGH)
        if caller in self.expect:
            return self.expect[caller]
        if self.klass == PUBLIC:
            return self.allowed
        if caller == ANON:
            return C.UNAUTHENTICATED
        if caller == SYS or self.klass == AUTH:
            return self.allowed
        if self.klass == SA:
            return C.PERMISSION_DENIED
        return self.allowed if ROLE_ON_P[caller] >= RANK[self.klass] else C.PERMISSION_DENIED

    def columns(self):
        return COLUMNS if self.klass in PROJECT_SCOPED else CALLERS


class Ctx:
    """What a request builder knows: the fixture (the test), the project id
    to name and the calling column (ANON, OTHER, ...)."""

    def __init__(self, fx, project, caller):
        self.fx, self.p, self.caller = fx, project, caller

    @property
    def me(self):
        """The caller's username (anonymous: the bystander's)."""
        return self.fx.usernames.get(self.caller) or self.fx.bystander


def _fill(template, project):
    if isinstance(template, str):
        return template.format(p=project)
    if isinstance(template, dict):
        return {k: _fill(v, project) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, project) for v in template]
    return template


STALE = "v999999"  # an etag no fixture object has: ABORTED once allowed
WEAK = "short"  # refused by the password policy: INVALID_ARGUMENT once allowed
IS = "novacron.v1.IdentityService"


def identity_cases():
    """The IdentityService rows: requests that change nothing for the callers
    that are let through (or only things made for the purpose)."""
    P = C.PERMISSION_DENIED
    rows = [
        # -- public: empty credentials are refused, right ones accepted, by
        # whoever calls (a bearer token is not looked at)
        ("Login", "empty", lambda c: ip.LoginRequest(), C.UNAUTHENTICATED, {}),
        ("Login", "valid", lambda c: ip.LoginRequest(username=c.fx.bystander, password=PASSWORD),
         C.OK, {}),
        ("RefreshToken", "empty", lambda c: ip.RefreshTokenRequest(), C.UNAUTHENTICATED, {}),
        ("RefreshToken", "valid",
         lambda c: ip.RefreshTokenRequest(refresh_token=c.fx.fresh_refresh_token()), C.OK, {}),
        # -- authenticated
        ("Logout", "", lambda c: ip.LogoutRequest(request_id=rid()), C.OK, {}),
        ("WhoAmI", "", lambda c: ip.WhoAmIRequest(), C.OK, {}),
        ("GetUser", "self", lambda c: ip.GetUserRequest(name="users/" + c.me), C.OK, {}),
        ("GetUser", "other", lambda c: ip.GetUserRequest(name="users/" + c.fx.bystander), C.OK,
         except_sysadmin(P)),
        ("ListUsers", "", lambda c: ip.ListUsersRequest(), C.OK, {}),
        ("UpdateUser", "self display_name", lambda c: ip.UpdateUserRequest(
            user=ip.User(name="users/" + c.me, display_name="Matrix", etag=STALE),
            update_mask={"paths": ["display_name"]}), C.ABORTED, {}),
        ("UpdateUser", "other", lambda c: ip.UpdateUserRequest(
            user=ip.User(name="users/" + c.fx.bystander, display_name="Matrix", etag=STALE),
            update_mask={"paths": ["display_name"]}), C.ABORTED, except_sysadmin(P)),
        ("UpdateUser", "self system_admin", lambda c: ip.UpdateUserRequest(
            user=ip.User(name="users/" + c.me, system_admin=True, etag=STALE),
            update_mask={"paths": ["system_admin"]}), C.ABORTED, except_sysadmin(P)),
        ("ChangePassword", "self", lambda c: ip.ChangePasswordRequest(
            name="users/" + c.me, old_password=PASSWORD, new_password=WEAK),
         C.INVALID_ARGUMENT, {}),
        ("ChangePassword", "other", lambda c: ip.ChangePasswordRequest(
            name="users/" + c.fx.bystander, new_password=WEAK), C.INVALID_ARGUMENT,
         except_sysadmin(P)),
        ("ListProjects", "", lambda c: ip.ListProjectsRequest(), C.OK, {}),
        ("ListSessions", "self", lambda c: ip.ListSessionsRequest(parent="users/" + c.me),
         C.OK, {}),
        ("ListSessions", "other",
         lambda c: ip.ListSessionsRequest(parent="users/" + c.fx.bystander), C.OK,
         except_sysadmin(P)),
        ("ListSessions", "users/-", lambda c: ip.ListSessionsRequest(parent="users/-"), C.OK,
         except_sysadmin(P)),
        # a second session of the caller's own (not the one it calls with)
        ("RevokeSession", "self", lambda c: ip.RevokeSessionRequest(
            name=c.fx.spare_session.get(c.caller) or c.fx.bystander_session), C.OK, {}),
        # another user's live session: reported missing to everyone but the
        # system administrator (identity.proto: no existence oracle)
        ("RevokeSession", "other",
         lambda c: ip.RevokeSessionRequest(name=c.fx.bystander_session), C.OK,
         except_sysadmin(C.NOT_FOUND)),
        # -- system administrator
        ("CreateUser", "", lambda c: ip.CreateUserRequest(
            user_id=c.fx.bystander, password=PASSWORD), C.ALREADY_EXISTS, {}),
        ("DeleteUser", "", lambda c: ip.DeleteUserRequest(name="users/" + c.fx.nobody),
         C.NOT_FOUND, {}),
        ("CreateProject", "", lambda c: ip.CreateProjectRequest(project_id=c.fx.p),
         C.ALREADY_EXISTS, {}),
        ("DeleteProject", "", lambda c: ip.DeleteProjectRequest(
            name="projects/" + c.fx.gone), C.NOT_FOUND, {}),
        ("SetQuota", "", lambda c: ip.SetQuotaRequest(
            quota=ip.Quota(name="projects/%s/quota" % c.p, etag=STALE,
                           limits={"vcpus": {"value": 1000}}),
            update_mask={"paths": ["limits.vcpus"]}), C.ABORTED, {}),
        # -- project roles
        ("GetProject", "", lambda c: ip.GetProjectRequest(name="projects/" + c.p), C.OK, {}),
        ("UpdateProject", "", lambda c: ip.UpdateProjectRequest(
            project=ip.Project(name="projects/" + c.p, description="matrix", etag=STALE),
            update_mask={"paths": ["description"]}), C.ABORTED, {}),
        ("GetQuota", "", lambda c: ip.GetQuotaRequest(name="projects/%s/quota" % c.p), C.OK, {}),
        ("CreateRoleBinding", "", lambda c: ip.CreateRoleBindingRequest(
            parent="projects/" + c.p, role_binding_id=c.fx.usernames[VWR],
            role_binding=ip.RoleBinding(user="users/" + c.fx.usernames[VWR], role=VIEWER)),
         C.ALREADY_EXISTS, {}),
        ("ListRoleBindings", "", lambda c: ip.ListRoleBindingsRequest(parent="projects/" + c.p),
         C.OK, {}),
        ("DeleteRoleBinding", "", lambda c: ip.DeleteRoleBindingRequest(
            name="projects/%s/roleBindings/%s" % (c.p, c.fx.nobody)), C.NOT_FOUND, {}),
        ("CreateApiKey", "", lambda c: ip.CreateApiKeyRequest(
            parent="projects/" + c.p, api_key_id=c.fx.key_id,
            api_key=ip.ApiKey(role=VIEWER)), C.ALREADY_EXISTS, {}),
        ("ListApiKeys", "", lambda c: ip.ListApiKeysRequest(parent="projects/" + c.p), C.OK, {}),
        ("RevokeApiKey", "", lambda c: ip.RevokeApiKeyRequest(
            name="projects/%s/apiKeys/%s" % (c.p, c.fx.nobody)), C.NOT_FOUND, {}),
        ("ListAuditEvents", "project",
         lambda c: ip.ListAuditEventsRequest(parent="projects/" + c.p), C.OK, {}),
    ]
    cases = []
    for method, variant, build, allowed, expect in rows:
        cases.append(Case(IS, method, POLICY[IS][method], build, allowed, variant, expect,
                          token=(lambda fx, caller: fx.logout_token[caller])
                          if method == "Logout" else None))
    # identity.proto: "all events require system administrator"
    cases.append(Case(IS, "ListAuditEvents", SA, lambda c: ip.ListAuditEventsRequest(), C.OK,
                      "all"))
    return cases


# ---------------------------------------------------------------- plumbing


def message_classes():
    out = {}
    for mod in harness.novacron_modules():
        for name, d in mod.DESCRIPTOR.message_types_by_name.items():
            out[d.full_name] = getattr(mod, name)
    return out


SHORT = {C.OK: "OK", C.UNAUTHENTICATED: "UNAUTH", C.PERMISSION_DENIED: "DENIED",
         C.UNIMPLEMENTED: "UNIMPL", C.NOT_FOUND: "NOTFOUND", C.ALREADY_EXISTS: "EXISTS",
         C.ABORTED: "ABORTED", C.INVALID_ARGUMENT: "INVALID", C.FAILED_PRECONDITION: "PRECOND",
         C.UNAVAILABLE: "UNAVAIL", C.INTERNAL: "INTERNAL", C.RESOURCE_EXHAUSTED: "EXHAUST"}


def short(code):
    return SHORT.get(code, code.name if code is not None else "-")


def names(exp):
    """A code or a tuple of acceptable codes, for messages."""
    return " or ".join(c.name for c in exp) if isinstance(exp, tuple) else exp.name


class AuthzMatrix(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server("--rate-limit-rps", "0", "--rate-limit-anonymous-rps", "0",
                         name="matrix").start()
        try:
            cls._setup()
        except BaseException:
            cls.srv.stop()
            raise

    @classmethod
    def _setup(cls):
        cls.ch = cls.srv.channel()
        cls.services = harness.novacron_services()
        cls.classes = message_classes()
        root, _ = login(cls.ch, "admin", cls.srv.admin_password)
        cls.root = root
        cls.p = make_project(root, prefix="mp")
        cls.q = make_project(root, prefix="mq")
        cls.gone = unique("gone")  # never created
        cls.nobody = unique("nobody")  # no such user, binding or key
        cls.usernames = {SYS: "admin"}
        passwords = {SYS: cls.srv.admin_password}
        for caller, prefix in ((OTHER, "other"), (VWR, "viewer"), (OPR, "operator"),
                               (PADM, "padmin")):
            cls.usernames[caller] = make_user(root, prefix=prefix)
            passwords[caller] = PASSWORD
        grant(root, cls.q, cls.usernames[OTHER], VIEWER)
        grant(root, cls.p, cls.usernames[VWR], VIEWER)
        grant(root, cls.p, cls.usernames[OPR], OPERATOR)
        grant(root, cls.p, cls.usernames[PADM], ADMIN)
        cls.bystander = make_user(root, prefix="bystander")  # no role anywhere
        cls.tokens = {ANON: None, SYS: root.token}
        cls.logout_token = {ANON: None}
        cls.spare_session = {}
        for caller in CALLERS[1:]:
            name, pw = cls.usernames[caller], passwords[caller]
            if caller != SYS:
                cls.tokens[caller] = login(cls.ch, name, pw)[0].token
            cls.logout_token[caller] = login(cls.ch, name, pw)[0].token
            cls.spare_session[caller] = login(cls.ch, name, pw)[1].session
        cls.bystander_session = login(cls.ch, cls.bystander, PASSWORD)[1].session
        # an operator key on P: the CreateApiKey row collides with its id
        padmin = Api(cls.ch, cls.tokens[PADM])
        cls.key_id = unique("ops")
        cls.key_secret = padmin.CreateApiKey(ip.CreateApiKeyRequest(
            parent="projects/" + cls.p, api_key_id=cls.key_id,
            api_key=ip.ApiKey(role=OPERATOR, description="matrix operator key"),
            request_id=rid())).secret

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()
        harness.stop_and_assert(cls.srv)

    # --- helpers

    def fresh_refresh_token(self):
        return login(self.ch, self.bystander, PASSWORD)[1].refresh_token

    def cases(self):
        out = []
        for svc, methods in sorted(POLICY.items()):
            if svc == IS:
                continue
            for method, klass in methods.items():
                template = REQUESTS[svc][method]
                out.append(Case(svc, method, klass, self._templated(svc, method, template),
                                allowed_code(svc, method)))
                for variant, vklass, vt in EXTRA_VARIANTS.get((svc, method), []):
                    out.append(Case(svc, method, vklass, self._templated(svc, method, vt),
                                    allowed_code(svc, method), variant))
        return out + identity_cases()

    def _templated(self, svc, method, template):
        md = self.services[svc].methods_by_name[method]
        cls = self.classes[md.input_type.full_name]
        return lambda ctx: cls(**_fill(template, ctx.p))

    def invoke(self, svc, method, request, token):
        """(status code, details) of one call; a stream that answers is OK
        once its first message arrives."""
        md = self.services[svc].methods_by_name[method]
        path = "/%s/%s" % (svc, method)
        resp_cls = self.classes[md.output_type.full_name]
        metadata = [("authorization", "Bearer " + token)] if token else []
        kw = dict(request_serializer=type(request).SerializeToString,
                  response_deserializer=resp_cls.FromString)
        try:
            if md.server_streaming:
                call = self.ch.unary_stream(path, **kw)(request, metadata=metadata,
                                                       timeout=TIMEOUT)
                for _ in call:
                    call.cancel()
                    break
                return C.OK, ""
            self.ch.unary_unary(path, **kw)(request, metadata=metadata, timeout=TIMEOUT)
            return C.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details() or ""

    def cell(self, case, column):
        caller = OTHER if column in (GHOST, WILD) else column
        project = {GHOST: self.gone, WILD: "-"}.get(column, self.p)
        request = case.build(Ctx(self, project, caller))
        token = case.token(self, caller) if case.token else self.tokens[caller]
        return self.invoke(case.service, case.method, request, token)

    def print_matrix(self, results, cases, bad):
        w = max(len(c.label) for c in cases) + 1
        lines = ["", "authorization matrix (actual; '!' marks a cell that differs, "
                 "see the list below):",
                 "%-*s" % (w, "method") + "".join("%-10s" % c for c in COLUMNS)]
        for case in cases:
            row = "%-*s" % (w, case.label)
            for col in COLUMNS:
                if col not in case.columns():
                    row += "%-10s" % "."
                    continue
                code, _ = results[(case.label, col)]
                mark = "!" if (case.label, col) in bad else ""
                row += "%-10s" % (short(code) + mark)
            lines.append(row.rstrip())
        lines.append("")
        lines.append("mismatches (method caller: expected, actual, message):")
        for (label, col), (exp, code, details) in sorted(bad.items()):
            lines.append("  %s %s: expected %s, got %s: %s" % (label, col, names(exp),
                                                              code.name, details))
        sys.stderr.write("\n".join(lines) + "\n")

    # --- tests

    def test_table_covers_every_method(self):
        on_wire = {(svc, m.name) for svc, sd in self.services.items() for m in sd.methods}
        in_table = {(svc, m) for svc, methods in POLICY.items() for m in methods}
        self.assertEqual(len(self.services), 9, sorted(self.services))
        self.assertEqual(on_wire - in_table, set(), "methods without a policy row")
        self.assertEqual(in_table - on_wire, set(), "policy rows of unknown methods")
        self.assertEqual(len(on_wire), N_METHODS)
        rows = {(c.service, c.method) for c in self.cases()}
        self.assertEqual(rows, on_wire, "methods without a request")

    def test_matrix(self):
        cases = self.cases()
        self.assertEqual({(c.service, c.method) for c in cases},
                         {(s, m) for s, ms in POLICY.items() for m in ms})
        results = collections.OrderedDict()
        for case in cases:
            for col in case.columns():
                results[(case.label, col)] = self.cell(case, col)
        bad = {}
        for case in cases:
            for col in case.columns():
                code, details = results[(case.label, col)]
                exp = case.expected(col)
                with self.subTest(method=case.label, caller=col):
                    ok = code in exp if isinstance(exp, tuple) else code == exp
                    if ok and exp == C.UNIMPLEMENTED:
                        ok = "is not implemented yet" in details
                    if ok and col == GHOST:
                        # no existence oracle: P (exists) and the missing
                        # project answer alike, but for the project id
                        _, on_p = results[(case.label, OTHER)]
                        ok = details.replace(self.gone, "{p}") == on_p.replace(self.p, "{p}")
                        if not ok:
                            details = "message differs: %r vs %r" % (details, on_p)
                    if not ok:
                        bad[(case.label, col)] = (exp, code, details)
                    self.assertTrue(ok, "%s as %s: expected %s, got %s: %s" % (
                        case.label, col, names(exp), code.name, details))
        if bad:
            self.print_matrix(results, cases, bad)

    def test_operator_api_key(self):
        """A ROLE_OPERATOR API key on P answers like the operator column, and
        is denied on Q."""
        by_label = {c.label: c for c in self.cases()}
        rows = ["Vm.GetVm", "Identity.GetProject", "Identity.GetQuota", "Vm.StartVm",
                "Storage.CreateVolume", "Vm.UpdateVm", "Identity.ListApiKeys",
                "Identity.UpdateProject", "Backup.CreateRepository",
                "Identity.CreateRoleBinding"]
        for label in rows:
            case = by_label[label]
            for project, exp in ((self.p, case.expected(OPR)), (self.q, C.PERMISSION_DENIED)):
                request = case.build(Ctx(self, project, OPR))
                code, details = self.invoke(case.service, case.method, request, self.key_secret)
                with self.subTest(method=label, project=project):
                    self.assertEqual(code, exp, details)
                    if exp == C.UNIMPLEMENTED:
                        self.assertIn("is not implemented yet", details)
                    if project == self.q:
                        self.assertIn("projects/" + self.q, details)
        who = Api(self.ch, self.key_secret).WhoAmI(ip.WhoAmIRequest()).principal
        self.assertEqual(who.kind, ip.Principal.KIND_API_KEY)
        self.assertEqual([(b.name, b.role) for b in who.role_bindings],
                         [("projects/" + self.p, OPERATOR)])


if __name__ == "__main__":
    unittest.main()
