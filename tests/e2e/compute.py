"""Helpers for tests of the compute services (hosts, VMs, operations,
events): stubs that carry a bearer credential, waiting for operations,
unpacking their responses, and libvirt test-driver hosts.

Every test that creates compute resources uses its own database
(harness.create_database()): the embedded test hypervisor lives inside one
server process, so two servers must never share VMs on it."""
import os
import time

import grpc

import harness
from identity import Api, admin, rid, unique  # noqa: F401 (re-exported)

harness.stubs()
from google.protobuf import duration_pb2  # noqa: E402
from novacron.v1 import event_pb2 as ep  # noqa: E402
from novacron.v1 import event_pb2_grpc as eg  # noqa: E402
from novacron.v1 import host_pb2 as hp  # noqa: E402
from novacron.v1 import host_pb2_grpc as hg  # noqa: E402
from novacron.v1 import network_pb2 as np_  # noqa: E402
from novacron.v1 import network_pb2_grpc as ng  # noqa: E402
from novacron.v1 import operations_pb2 as op  # noqa: E402
from novacron.v1 import operations_pb2_grpc as og  # noqa: E402
from novacron.v1 import storage_pb2 as sp  # noqa: E402
from novacron.v1 import storage_pb2_grpc as sg  # noqa: E402
from novacron.v1 import vm_pb2 as vp  # noqa: E402
from novacron.v1 import vm_pb2_grpc as vg  # noqa: E402

TIMEOUT = 30
C = grpc.StatusCode


class Stub:
    """Any service stub whose calls carry `authorization: Bearer <token>`."""

    def __init__(self, channel, stub_cls, token):
        self.stub = stub_cls(channel)
        self.token = token

    def __getattr__(self, name):
        method = getattr(self.stub, name)

        def call(request, timeout=TIMEOUT):
            return method(request, metadata=[("authorization", "Bearer " + self.token)],
                          timeout=timeout)
        return call


class Client:
    """The compute services (and storage, networks) for one credential."""

    def __init__(self, channel, token):
        self.token = token
        self.vm = Stub(channel, vg.VmServiceStub, token)
        self.host = Stub(channel, hg.HostServiceStub, token)
        self.ops = Stub(channel, og.OperationsServiceStub, token)
        self.storage = Stub(channel, sg.StorageServiceStub, token)
        self.net = Stub(channel, ng.NetworkServiceStub, token)
        self.events = eg.EventServiceStub(channel)

    def watch(self, req, timeout=60):
        return self.events.WatchEvents(req, metadata=[("authorization", "Bearer " + self.token)],
                                       timeout=timeout)

    def wait(self, operation, timeout=60):
        """Waits for an Operation (or its name) to be done; returns it."""
        name = operation if isinstance(operation, str) else operation.name
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("operation %s not done within %d s" % (name, timeout))
            o = self.ops.WaitOperation(op.WaitOperationRequest(
                name=name, timeout=duration_pb2.Duration(seconds=int(min(left, 20)) or 1)),
                timeout=min(left, 20) + 5).operation
            if o.done:
                return o

    def done(self, operation, timeout=60):
        """Waits and asserts success; returns the unpacked response."""
        o = self.wait(operation, timeout)
        if o.state != op.Operation.STATE_SUCCEEDED:
            raise AssertionError("operation %s %s: %s" % (
                o.verb, op.Operation.State.Name(o.state), o.error.message))
        return unpack(o)


def unpack(operation):
    """The typed message in Operation.response."""
    url = operation.response.type_url
    kinds = {"novacron.v1.Vm": vp.Vm, "novacron.v1.VmSnapshot": vp.VmSnapshot,
             "novacron.v1.Host": hp.Host, "novacron.v1.Pool": sp.Pool,
             "novacron.v1.Volume": sp.Volume, "novacron.v1.Network": np_.Network}
    msg = kinds[url.rsplit("/", 1)[1]]()
    operation.response.Unpack(msg)
    return msg


def vm_spec(vcpus=1, memory_mib=128, **kw):
    return vp.Vm(vcpus=vcpus, memory_mib=memory_mib, **kw)


def create_vm(cl, project, vm_id=None, start=False, wait=True, **kw):
    """Creates a VM; returns (Vm, vm name) after its operation succeeded."""
    vm_id = vm_id or unique("vm")
    o = cl.vm.CreateVm(vp.CreateVmRequest(parent="projects/" + project, vm_id=vm_id,
                                          vm=vm_spec(**kw), start=start,
                                          request_id=rid())).operation
    name = "projects/%s/vms/%s" % (project, vm_id)
    if not wait:
        return o, name
    return cl.done(o), name


def node_xml(path, cpus=4, memory_mib=4096):
    """A libvirt test-driver node description: `test://<path>` is then a
    private hypervisor with that many CPUs and that much memory."""
    with open(path, "w") as f:
        f.write("<node>\n  <cpu>\n    <mhz>2000</mhz>\n    <model>x86_64</model>\n"
                "    <nodes>1</nodes>\n    <sockets>1</sockets>\n    <cores>%d</cores>\n"
                "    <threads>1</threads>\n    <active>%d</active>\n  </cpu>\n"
                "  <memory>%d</memory>\n</node>\n" % (cpus, cpus, memory_mib * 1024))
    return "test://" + os.path.abspath(path)


def register_host(cl, host_id, uri, labels=None, **kw):
    from novacron.v1.common_pb2 import Label
    h = hp.Host(uri=uri, labels=[Label(key=k, value=v) for k, v in (labels or {}).items()], **kw)
    o = cl.host.RegisterHost(hp.RegisterHostRequest(host_id=host_id, host=h,
                                                    request_id=rid())).operation
    return cl.done(o)
