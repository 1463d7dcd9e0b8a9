"""The real-hypervisor stage: a real qemu VM (small and diskless) driven
through NovaCron by the Python client, against libvirtd's qemu:///system
(started by scripts/lib/libvirtd.sh; without KVM qemu runs under TCG).

Also checks what only a real, persistent hypervisor can show: drift made
behind NovaCron's back (virsh destroy) is picked up from libvirt's events,
a domain NovaCron does not know is left alone, and a server killed with
SIGKILL in the middle of operations leaves, after its restart, exactly one
domain per VM row and no row without its domain.

Runs only in the stage (ctest label `qemu`, NC_QEMU_URI set by
scripts/test)."""
import os
import signal
import subprocess
import time
import unittest

import grpc

import harness
from compute import C, Client, ep, hp, op, register_host, rid, unique, vp
from harness import Server
from identity import admin, make_project

URI = os.environ.get("NC_QEMU_URI", "")
NS = "https://novacron.dev/xmlns/vm/1"


def virsh(*args, check=True):
    r = subprocess.run(["virsh", "-c", URI] + list(args), capture_output=True, text=True,
                       timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("virsh %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def novacron_domains():
    """{uuid: name} of the domains on the hypervisor that carry NovaCron's
    metadata."""
    out = {}
    for name in virsh("list", "--all", "--name").split():
        if virsh("metadata", name, NS, check=False).strip():
            out[virsh("domuuid", name).strip()] = name
    return out


@unittest.skipUnless(URI, "the real-hypervisor stage is not set up (NC_QEMU_URI)")
class Qemu(unittest.TestCase):
    def start(self, db, replica="qemu-a"):
        srv = Server("--replica-id", replica, "--rate-limit-rps", "0", "--default-host-uri", "",
                     "--host-heartbeat-s", "2", name="qemu-" + replica, database_url=db).start()
        ch = srv.channel()
        return srv, ch, Client(ch, admin(srv, ch).token)

    @classmethod
    def setUpClass(cls):
        cls.db = harness.create_database("qemu")

    def setUp(self):
        self.srv, self.ch, self.cl = self.start(self.db)
        self.api = admin(self.srv, self.ch)
        hosts = self.cl.host.ListHosts(hp.ListHostsRequest()).hosts
        if not any(h.uri == URI for h in hosts):
            h = register_host(self.cl, "qemu", URI)
            self.assertEqual(h.hypervisor_type, "QEMU")
        self.project = make_project(self.api, "qemu")

    def tearDown(self):
        # leave no domain behind, whatever the test did
        if self.srv.alive():
            try:
                for v in self.cl.vm.ListVms(vp.ListVmsRequest(
                        parent="projects/" + self.project)).vms:
                    self.cl.wait(self.cl.vm.DeleteVm(vp.DeleteVmRequest(
                        name=v.name, force=True)).operation, timeout=120)
            except (grpc.RpcError, AssertionError) as e:
                print("tearDown: cleaning up failed: %s" % e)
        self.ch.close()
        if self.srv.alive():
            harness.stop_and_assert(self.srv)

    def verb(self, method, name, **kw):
        req = getattr(vp, method + "Request")(name=name, request_id=rid(), **kw)
        return self.cl.done(getattr(self.cl.vm, method)(req).operation, timeout=120)

    def domstate(self, vm):
        return virsh("domstate", vm.uid).strip()

    def test_lifecycle_on_qemu(self):
        o = self.cl.vm.CreateVm(vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id="tiny",
            vm=vp.Vm(vcpus=1, memory_mib=128, max_vcpus=2, description="diskless"),
            request_id=rid())).operation
        vm = self.cl.done(o, timeout=120)
        name = vm.name
        self.assertEqual(vm.host, "hosts/qemu")
        self.assertEqual(self.domstate(vm), "shut off")
        self.assertIn(NS, virsh("dumpxml", vm.uid))
        t0 = time.monotonic()
        self.assertEqual(self.verb("StartVm", name).state, vp.Vm.STATE_RUNNING)
        started_s = time.monotonic() - t0
        self.assertEqual(self.domstate(vm), "running")
        st = self.cl.vm.GetVmStats(vp.GetVmStatsRequest(name=name)).stats
        self.assertEqual(st.vcpus_online, 1)
        self.assertGreater(st.cpu_time_ns, 0)
        self.assertEqual(self.verb("PauseVm", name).state, vp.Vm.STATE_PAUSED)
        self.assertEqual(self.domstate(vm), "paused")
        self.assertEqual(self.verb("ResumeVm", name).state, vp.Vm.STATE_RUNNING)
        self.assertEqual(self.domstate(vm), "running")
        resized = self.verb("ResizeVm", name, vcpus=2, live=True)
        self.assertEqual(resized.vcpus, 2)
        snap = self.cl.done(self.cl.vm.CreateSnapshot(vp.CreateSnapshotRequest(
            parent=name, snapshot_id="s1", request_id=rid())).operation, timeout=120)
        self.assertEqual(snap.state, vp.VmSnapshot.STATE_READY)
        self.assertIn(snap.uid, virsh("snapshot-list", vm.uid, "--name"))
        # a graceful stop of a guest without an OS times out; force it
        self.assertEqual(self.verb("StopVm", name, force=True).state, vp.Vm.STATE_STOPPED)
        self.assertEqual(self.domstate(vm), "shut off")
        snap2 = self.cl.done(self.cl.vm.CreateSnapshot(vp.CreateSnapshotRequest(
            parent=name, snapshot_id="s2", request_id=rid())).operation, timeout=120)
        self.assertEqual(snap2.parent_snapshot, snap.name)
        self.cl.done(self.cl.vm.DeleteSnapshot(vp.DeleteSnapshotRequest(
            name=snap2.name, request_id=rid())).operation, timeout=120)
        self.verb("DeleteVm", name)
        self.assertNotIn(vm.uid, novacron_domains())
        self.assertLess(started_s, 30)

    def test_lifecycle_through_the_c_sdk(self):
        prog = os.environ.get("NC_VM_LIFECYCLE")
        self.assertTrue(prog and os.path.exists(prog), "NC_VM_LIFECYCLE: the example is built")
        env = dict(os.environ, NOVACRON_PASSWORD=self.srv.admin_password)
        r = subprocess.run([prog, self.srv.addr, harness.cert("ca.crt"), self.project, "qemu",
                            "sdk-tiny"], capture_output=True, text=True, timeout=300, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        name = "projects/%s/vms/sdk-tiny" % self.project
        for line in ("create    %s on hosts/qemu: STATE_STOPPED" % name,
                     "start     %s on hosts/qemu: STATE_RUNNING" % name,
                     "pause     %s on hosts/qemu: STATE_PAUSED" % name,
                     "resume    %s on hosts/qemu: STATE_RUNNING" % name,
                     "snapshot  %s/snapshots/before-stop: READY" % name,
                     "stop      %s on hosts/qemu: STATE_STOPPED" % name,
                     "delete    %s on hosts/qemu: STATE_DELETING" % name):
            self.assertIn(line, r.stdout)
        with self.assertRaises(grpc.RpcError) as cm:
            self.cl.vm.GetVm(vp.GetVmRequest(name=name))
        self.assertEqual(cm.exception.code(), C.NOT_FOUND)
        self.assertFalse([n for n in novacron_domains().values() if n == self.project + ".sdk-tiny"])

    def test_graceful_stop_times_out_then_forces(self):
        vm = self.cl.done(self.cl.vm.CreateVm(vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id="stubborn", start=True,
            vm=vp.Vm(vcpus=1, memory_mib=128), request_id=rid())).operation, timeout=120)
        o = self.cl.wait(self.cl.vm.StopVm(vp.StopVmRequest(
            name=vm.name, timeout={"seconds": 1}, request_id=rid())).operation, timeout=60)
        self.assertEqual(o.state, op.Operation.STATE_FAILED)
        self.assertEqual(o.error.code, grpc.StatusCode.DEADLINE_EXCEEDED.value[0])
        self.assertEqual(self.cl.vm.GetVm(vp.GetVmRequest(name=vm.name)).vm.state,
                         vp.Vm.STATE_RUNNING)
        # a graceful stop waiting for the guest can be cancelled
        o = self.cl.vm.StopVm(vp.StopVmRequest(name=vm.name, timeout={"seconds": 60},
                                               request_id=rid())).operation
        time.sleep(1.5)
        # many clients waiting on it do not starve the other calls: the
        # server lets only half its handler threads block in WaitOperation
        import threading
        waiters = [threading.Thread(target=lambda: self.cl.ops.WaitOperation(
            op.WaitOperationRequest(name=o.name, timeout={"seconds": 20}), timeout=30))
            for _ in range(24)]
        for t in waiters:
            t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        self.cl.vm.GetVm(vp.GetVmRequest(name=vm.name))
        self.assertLess(time.monotonic() - t0, 3.0, "GetVm waited behind WaitOperation calls")
        self.cl.ops.CancelOperation(op.CancelOperationRequest(name=o.name, request_id=rid()))
        for t in waiters:
            t.join(30)
        o = self.cl.wait(o, timeout=30)
        self.assertEqual(o.state, op.Operation.STATE_CANCELLED)
        self.assertTrue(o.cancel_requested)
        self.assertEqual(self.cl.vm.GetVm(vp.GetVmRequest(name=vm.name)).vm.state,
                         vp.Vm.STATE_RUNNING)
        # a forced stop overtakes a graceful one that is waiting for the guest
        slow = self.cl.vm.StopVm(vp.StopVmRequest(name=vm.name, timeout={"seconds": 60},
                                                  request_id=rid())).operation
        time.sleep(1)
        self.assertEqual(self.verb("StopVm", vm.name, force=True).state, vp.Vm.STATE_STOPPED)
        self.assertEqual(self.cl.wait(slow, timeout=30).state, op.Operation.STATE_CANCELLED)
        self.assertEqual(self.domstate(vm), "shut off")
        self.verb("StartVm", vm.name)
        self.assertEqual(self.verb("StopVm", vm.name, timeout={"seconds": 1},
                                   force_on_timeout=True).state, vp.Vm.STATE_STOPPED)
        self.verb("DeleteVm", vm.name)

    def test_drift_is_reconciled_and_unmanaged_domains_left_alone(self):
        vm = self.cl.done(self.cl.vm.CreateVm(vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id="drift", start=True,
            vm=vp.Vm(vcpus=1, memory_mib=128), request_id=rid())).operation, timeout=120)
        stream = self.cl.watch(ep.WatchEventsRequest(parent="projects/" + self.project,
                                                     types=[ep.Event.TYPE_VM_STATE_CHANGED]))
        next(stream)  # heartbeat
        virsh("destroy", vm.uid)  # behind NovaCron's back
        # (the create's own RUNNING change may still arrive first: it
        # committed before the watch began but after the head it reported)
        ev = next(stream).event
        while ev.vm.state == vp.Vm.STATE_RUNNING and ev.principal:
            ev = next(stream).event
        stream.cancel()
        self.assertEqual(ev.resource, vm.name)
        self.assertEqual(ev.vm.state, vp.Vm.STATE_STOPPED)
        self.assertEqual(ev.principal, "")
        got = self.cl.vm.GetVm(vp.GetVmRequest(name=vm.name)).vm
        self.assertEqual(got.state, vp.Vm.STATE_STOPPED)
        self.assertIn("outside NovaCron", got.state_message)
        # an unmanaged domain survives reconciliation untouched
        xml = os.path.join(harness.tmpdir("unmanaged-"), "d.xml")
        other = unique("unmanaged")
        with open(xml, "w") as f:
            f.write("<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory>"
                    "<os><type arch='x86_64'>hvm</type></os></domain>" % other)
        virsh("define", xml)
        try:
            self.verb("StartVm", vm.name)
            self.verb("DeleteVm", vm.name, force=True)
            self.assertIn(other, virsh("list", "--all", "--name"))
        finally:
            virsh("undefine", other, check=False)

    def test_sigkill_mid_operations_leaves_no_orphans(self):
        names = []
        for i in range(3):
            o = self.cl.vm.CreateVm(vp.CreateVmRequest(
                parent="projects/" + self.project, vm_id="k%d" % i,
                vm=vp.Vm(vcpus=1, memory_mib=96), request_id=rid())).operation
            names.append(self.cl.done(o, timeout=120).name)
        for n in names:
            self.cl.vm.StartVm(vp.StartVmRequest(name=n, request_id=rid()))
        for i in range(3, 5):
            self.cl.vm.CreateVm(vp.CreateVmRequest(
                parent="projects/" + self.project, vm_id="k%d" % i, start=True,
                vm=vp.Vm(vcpus=1, memory_mib=96), request_id=rid()))
        time.sleep(0.3)  # some work started on the hypervisor
        self.srv.signal(signal.SIGKILL)
        self.srv.wait()
        self.ch.close()
        self.srv, self.ch, self.cl = self.start(self.db)
        deadline = time.monotonic() + 120
        while self.cl.ops.ListOperations(op.ListOperationsRequest(
                parent="projects/" + self.project, filter="done = false")).operations:
            self.assertLess(time.monotonic(), deadline, "operations did not finish")
            time.sleep(0.5)
        vms = self.cl.vm.ListVms(vp.ListVmsRequest(parent="projects/" + self.project)).vms
        doms = novacron_domains()
        for v in vms:
            self.assertIn(v.uid, doms, "row without domain: %s" % v.name)
            want = {vp.Vm.STATE_RUNNING: "running", vp.Vm.STATE_STOPPED: "shut off"}
            self.assertIn(v.state, want, "%s %s: %s" % (v.name, vp.Vm.State.Name(v.state),
                                                        v.state_message))
            self.assertEqual(virsh("domstate", v.uid).strip(), want[v.state], v.name)
        mine = {v.uid for v in vms}
        ours = {u for u, n in doms.items() if n.startswith(self.project + ".")}
        self.assertEqual(ours, mine, "domains without rows")
        for v in vms:
            self.verb("DeleteVm", v.name, force=True)
        self.assertFalse({u for u, n in novacron_domains().items()
                          if n.startswith(self.project + ".")})


if __name__ == "__main__":
    unittest.main()
