"""compute.py - the API side of bench/compute.sh (Python grpcio against a
running server). Modes:

  latency ADDR CA PASSWORD HOST N   StartVm and StopVm(force) of one VM on
                                    hosts/HOST through the API, N times each,
                                    timed from the call to the operation
                                    being done (WaitOperation); writes the
                                    domain XML libvirt got, for raw_libvirt
  list ADDR CA PASSWORD N PAGES URI creates N VMs on a test-driver host at URI, then
                                    times PAGES ListVms calls of 100 VMs
                                    (walking the pages with their tokens)
  events ADDR CA PASSWORD N         a WatchEvents subscriber (its own
                                    process) and N state changes (pause and
                                    resume of a running VM, one at a time):
                                    delivery latency from the event's time
                                    (event_time, taken just before commit)
                                    to its arrival

Prints `<what> n=.. mean_ms=.. p50_ms=.. p99_ms=..` lines."""
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples",
                                "python"))
import novacron_stubs  # noqa: E402

novacron_stubs.load()
import grpc  # noqa: E402
from google.protobuf import duration_pb2  # noqa: E402
from novacron.v1 import event_pb2 as ep, event_pb2_grpc as eg  # noqa: E402
from novacron.v1 import identity_pb2 as ip, identity_pb2_grpc as ig  # noqa: E402
from novacron.v1 import operations_pb2 as op, operations_pb2_grpc as og  # noqa: E402
from novacron.v1 import vm_pb2 as vp, vm_pb2_grpc as vg  # noqa: E402


def stats(what, xs):
    xs = sorted(xs)
    n = len(xs)
    print("%s n=%d mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f" % (
        what, n, sum(xs) / n, xs[n // 2], xs[min(n - 1, n * 99 // 100)], xs[-1]), flush=True)


class Api:
    def __init__(self, addr, ca, password):
        creds = grpc.ssl_channel_credentials(open(ca, "rb").read())
        self.ch = grpc.secure_channel(addr, creds)
        tok = ig.IdentityServiceStub(self.ch).Login(
            ip.LoginRequest(username="admin", password=password)).access_token
        self.md = [("authorization", "Bearer " + tok)]
        self.vm = vg.VmServiceStub(self.ch)
        self.ops = og.OperationsServiceStub(self.ch)
        self.events = eg.EventServiceStub(self.ch)

    def wait(self, o):
        while not o.done:
            o = self.ops.WaitOperation(op.WaitOperationRequest(
                name=o.name, timeout=duration_pb2.Duration(seconds=30)), metadata=self.md,
                timeout=40).operation
        if o.state != op.Operation.STATE_SUCCEEDED:
            raise SystemExit("%s failed: %s" % (o.verb, o.error.message))
        return o

    def call(self, method, req):
        return getattr(self.vm, method)(req, metadata=self.md, timeout=60)

    def create(self, vm_id, host=None, wait=True, project="default"):
        pl = vp.VmPlacement(host="hosts/" + host) if host else None
        o = self.call("CreateVm", vp.CreateVmRequest(
            parent="projects/" + project, vm_id=vm_id, request_id=str(uuid.uuid4()),
            vm=vp.Vm(vcpus=1, memory_mib=128, placement=pl))).operation
        return self.wait(o) if wait else o


def latency(api, host, n):
    name = "projects/default/vms/lat-%s" % uuid.uuid4().hex[:8]
    api.create(name.rsplit("/", 1)[1], host=host)
    starts, stops = [], []
    for _ in range(n):
        t0 = time.monotonic()
        api.wait(api.call("StartVm", vp.StartVmRequest(name=name)).operation)
        starts.append((time.monotonic() - t0) * 1000)
        t0 = time.monotonic()
        api.wait(api.call("StopVm", vp.StopVmRequest(name=name, force=True)).operation)
        stops.append((time.monotonic() - t0) * 1000)
    stats("api start", starts)
    stats("api stop", stops)
    vm = api.vm.GetVm(vp.GetVmRequest(name=name), metadata=api.md).vm
    print("uid %s" % vm.uid)
    api.wait(api.call("DeleteVm", vp.DeleteVmRequest(name=name)).operation)


def listing(api, n, pages, uri):
    from novacron.v1 import host_pb2 as hp, host_pb2_grpc as hg
    api.wait(hg.HostServiceStub(api.ch).RegisterHost(hp.RegisterHostRequest(
        host_id="bulk", host=hp.Host(uri=uri), request_id=str(uuid.uuid4())),
        metadata=api.md).operation)
    have = api.vm.ListVms(vp.ListVmsRequest(parent="projects/default", page_size=1),
                          metadata=api.md).total_size
    t0 = time.monotonic()
    pending = []
    lock = threading.Lock()
    todo = list(range(have, n))

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                i = todo.pop()
            o = api.create("l%05d" % i, host="bulk", wait=False)
            with lock:
                pending.append(o)
    ts = [threading.Thread(target=worker) for _ in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for o in pending:
        api.wait(o)
    if pending:
        print("created %d VMs in %.1f s (%.0f/s)" % (
            len(pending), time.monotonic() - t0, len(pending) / (time.monotonic() - t0)))
    xs, token = [], ""
    for _ in range(pages):
        t0 = time.monotonic()
        r = api.vm.ListVms(vp.ListVmsRequest(parent="projects/default", page_size=100,
                                             page_token=token), metadata=api.md)
        xs.append((time.monotonic() - t0) * 1000)
        assert len(r.vms) == 100 or not r.next_page_token, len(r.vms)
        token = r.next_page_token
    stats("ListVms(page_size=100, total=%d)" % r.total_size, xs)


def events_reader(api, name, n, ready_file):
    """Runs in its own process, so the subscriber does not share a Python
    interpreter (and its GIL) with the client making the changes."""
    stream = api.events.WatchEvents(ep.WatchEventsRequest(
        parent="projects/default", types=[ep.Event.TYPE_VM_STATE_CHANGED],
        resources=[name]), metadata=api.md)
    next(stream)
    open(ready_file, "w").close()
    lat = []
    for m in stream:
        now = time.time()
        t = m.event.event_time.seconds + m.event.event_time.nanos / 1e9
        lat.append((now - t) * 1000)
        if len(lat) == n:
            break
    stream.cancel()
    stats("event delivery", lat)


def events(api, n, addr, ca, pw):
    import subprocess
    import tempfile
    name = "projects/default/vms/ev-%s" % uuid.uuid4().hex[:8]
    api.create(name.rsplit("/", 1)[1])
    api.wait(api.call("StartVm", vp.StartVmRequest(name=name)).operation)
    ready = os.path.join(tempfile.mkdtemp(), "ready")
    reader = subprocess.Popen([sys.executable, os.path.abspath(__file__), "events-reader", addr,
                               ca, pw, name, str(n), ready])
    while not os.path.exists(ready):
        time.sleep(0.05)
    for i in range(n):
        method = "PauseVm" if i % 2 == 0 else "ResumeVm"
        req = getattr(vp, method + "Request")(name=name)
        api.wait(api.call(method, req).operation)
        time.sleep(0.005)  # one change at a time: latency, not a queue
    reader.wait(60)
    api.wait(api.call("StopVm", vp.StopVmRequest(name=name, force=True)).operation)
    api.wait(api.call("DeleteVm", vp.DeleteVmRequest(name=name)).operation)


def main():
    mode, addr, ca, pw = sys.argv[1:5]
    api = Api(addr, ca, pw)
    if mode == "latency":
        latency(api, sys.argv[5], int(sys.argv[6]))
    elif mode == "list":
        listing(api, int(sys.argv[5]), int(sys.argv[6]), sys.argv[7])
    elif mode == "events":
        events(api, int(sys.argv[5]), addr, ca, pw)
    elif mode == "events-reader":
        events_reader(api, sys.argv[5], int(sys.argv[6]), sys.argv[7])
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
