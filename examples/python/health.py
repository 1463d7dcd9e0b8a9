#!/usr/bin/python3
"""health.py - call NovaCron from Python grpcio over TLS.

Checks the server's health (grpc.health.v1.Health/Check), logs in
(IdentityService/Login) when given a user, asks who it is
(IdentityService/WhoAmI), then calls novacron.v1.VmService/ListVms and
prints each answer or status.

    /usr/bin/python3 examples/python/health.py --target localhost:8443 \
        --ca .state/certs/ca.crt [--user admin --password-file .state/admin-password]
        [--cert client.crt --key client.key] [--token TOKEN]

Needs python3-grpcio, python3-protobuf, protobuf-compiler,
protobuf-compiler-grpc and grpc-proto (Debian); the stubs are generated from
proto/ on first use (see novacron_stubs.py). Exits 0 when the server is
SERVING, 1 otherwise.
"""
import argparse
import os
import sys

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import novacron_stubs  # noqa: E402

novacron_stubs.load()
from grpcstubs.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from novacron.v1 import identity_pb2, identity_pb2_grpc  # noqa: E402
from novacron.v1 import vm_pb2, vm_pb2_grpc  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default=os.environ.get("NOVACRON_TARGET", "localhost:8443"),
                   help="host:port of the server (default %(default)s)")
    p.add_argument("--ca", help="PEM CA that signed the server certificate "
                   "(default: the system roots)")
    p.add_argument("--cert", help="PEM client certificate (mTLS)")
    p.add_argument("--key", help="PEM key of the client certificate")
    p.add_argument("--token", default=os.environ.get("NOVACRON_TOKEN"),
                   help="bearer token (access token or API key) sent as "
                   "'authorization: Bearer TOKEN'")
    p.add_argument("--user", help="log in as this user (password from --password-file)")
    p.add_argument("--password-file", help="file holding the password of --user")
    p.add_argument("--project", default="default", help="project whose VMs are listed")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per call")
    a = p.parse_args()
    if bool(a.cert) != bool(a.key):
        p.error("--cert and --key go together")

    creds = grpc.ssl_channel_credentials(
        root_certificates=read(a.ca) if a.ca else None,
        private_key=read(a.key) if a.key else None,
        certificate_chain=read(a.cert) if a.cert else None)
    if bool(a.user) != bool(a.password_file):
        p.error("--user and --password-file go together")

    with grpc.secure_channel(a.target, creds) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        try:
            resp = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=a.timeout)
        except grpc.RpcError as e:
            print("health: %s: %s" % (e.code().name, e.details()))
            return 1
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
        print("health: %s" % status)

        identity = identity_pb2_grpc.IdentityServiceStub(channel)
        token = a.token
        if a.user:
            password = read(a.password_file).decode().strip()
            try:
                login = identity.Login(identity_pb2.LoginRequest(username=a.user,
                                                                 password=password),
                                       timeout=a.timeout)
                token = login.access_token
                print("login: OK, session %s" % login.session)
            except grpc.RpcError as e:
                print("login: %s: %s" % (e.code().name, e.details()))
                return 1
        # every call but health and reflection carries the credential
        md = [("authorization", "Bearer " + token)] if token else []
        try:
            who = identity.WhoAmI(identity_pb2.WhoAmIRequest(), metadata=md,
                                  timeout=a.timeout).principal
            print("novacron.v1.IdentityService/WhoAmI: %s%s" %
                  (who.name, " (system administrator)" if who.system_admin else ""))
        except grpc.RpcError as e:
            print("novacron.v1.IdentityService/WhoAmI: %s: %s" % (e.code().name, e.details()))

        vms = vm_pb2_grpc.VmServiceStub(channel)
        req = vm_pb2.ListVmsRequest(parent="projects/" + a.project, page_size=10)
        try:
            resp = vms.ListVms(req, metadata=md, timeout=a.timeout)
            print("novacron.v1.VmService/ListVms: OK, %d VM(s)" % len(resp.vms))
            for vm in resp.vms:
                print("  %s" % vm.name)
        except grpc.RpcError as e:
            print("novacron.v1.VmService/ListVms: %s: %s" % (e.code().name, e.details()))
        return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
