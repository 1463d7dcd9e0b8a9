"""HostService, VmService and OperationsService end to end: the real server
on its own PostgreSQL database and the libvirt test driver (the embedded
hypervisor, plus private test:///<file> hypervisors registered as extra
hosts), driven by Python grpcio. Every method, every illegal transition,
bad input, quotas, placement, idempotent retries, operations and the
events a watcher sees."""
import os
import subprocess
import threading
import time
import unittest

import grpc

import compute
import harness
from compute import (C, Client, ep, hp, node_xml, op, register_host, rid, unique,
                     unpack, vp)
from harness import Server
from identity import PASSWORD, admin, grant, ip, login, make_project, make_user
from novacron.v1.common_pb2 import Label  # noqa: E402
from google.protobuf import duration_pb2, field_mask_pb2  # noqa: E402

S = vp.Vm


class Base(unittest.TestCase):
    ARGS = ("--rate-limit-rps", "0", "--rate-limit-anonymous-rps", "0",
            "--host-heartbeat-s", "1")

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(*cls.ARGS, name=cls.__name__,
                         database_url=harness.create_database("compute")).start()
        cls.ch = cls.srv.channel()
        cls.root_api = admin(cls.srv, cls.ch)
        cls.root = Client(cls.ch, cls.root_api.token)
        cls.project = make_project(cls.root_api, "cp")

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()
        harness.stop_and_assert(cls.srv)

    def assertCode(self, code, fn, *args, contains=None):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        if contains:
            self.assertIn(contains, cm.exception.details())
        return cm.exception.details()

    def get(self, name):
        return self.root.vm.GetVm(vp.GetVmRequest(name=name)).vm

    def sql(self, statement):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        r = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-d",
                            self.srv.database_url, "-c", statement],
                           capture_output=True, text=True, env=env, timeout=30, check=True)
        return r.stdout.strip()

    def foreign_op(self, verb, target, target_uid=None):
        """An operation another replica is running (its lease keeps this
        server off it); returns its id."""
        return self.sql(
            "INSERT INTO operations (verb, target, target_uid, request, state, claimed_by, "
            "lease_until) VALUES ('novacron.v1.%s', '%s', %s, '\\x', 2, 'elsewhere', "
            "now() + interval '1 hour') RETURNING id" % (
                verb, target, "'%s'" % target_uid if target_uid else "NULL")).splitlines()[0]

    def verb(self, method, name, **kw):
        req = getattr(vp, method + "Request")(name=name, request_id=rid(), **kw)
        return self.root.done(getattr(self.root.vm, method)(req).operation)


class Hosts(Base):
    def test_default_host_is_registered_and_ready(self):
        hosts = self.root.host.ListHosts(hp.ListHostsRequest()).hosts
        default = [h for h in hosts if h.name == "hosts/default"]
        self.assertEqual(len(default), 1)
        h = default[0]
        self.assertEqual(h.state, hp.Host.STATE_READY)
        self.assertEqual(h.uri, "test:///default")
        self.assertGreater(h.cpu_count, 0)
        self.assertGreater(h.memory_mib, 0)
        self.assertTrue(h.libvirt_version)
        self.assertTrue(h.HasField("last_heartbeat_time"))

    def test_uri_hidden_from_non_admins(self):
        user = make_user(self.root_api)
        grant(self.root_api, self.project, user, ip.ROLE_VIEWER)
        api, _ = login(self.ch, user, PASSWORD)
        cl = Client(self.ch, api.token)
        h = cl.host.GetHost(hp.GetHostRequest(name="hosts/default")).host
        self.assertEqual(h.uri, "")
        self.assertEqual(h.state, hp.Host.STATE_READY)
        self.assertCode(C.PERMISSION_DENIED, cl.host.UpdateHost, hp.UpdateHostRequest(
            host=hp.Host(name="hosts/default", cordoned=True),
            update_mask=field_mask_pb2.FieldMask(paths=["cordoned"])))

    def test_register_update_deregister(self):
        d = harness.tmpdir("node-")
        uri = node_xml(os.path.join(d, "n.xml"), cpus=8, memory_mib=16384)
        hid = unique("h")
        h = register_host(self.root, hid, uri, labels={"zone": "a"}, description="extra")
        self.assertEqual(h.name, "hosts/" + hid)
        self.assertEqual(h.state, hp.Host.STATE_READY)
        self.assertEqual(h.cpu_count, 8)
        self.assertEqual(h.memory_mib, 16384)
        self.assertEqual(h.vm_count, 0)
        # duplicates: id and URI
        self.assertCode(C.ALREADY_EXISTS, self.root.host.RegisterHost, hp.RegisterHostRequest(
            host_id=hid, host=hp.Host(uri="test:///other.xml")))
        self.assertCode(C.ALREADY_EXISTS, self.root.host.RegisterHost, hp.RegisterHostRequest(
            host_id=unique("h"), host=hp.Host(uri=uri)), contains="hosts/" + hid)
        # update with etag
        u = self.root.host.UpdateHost(hp.UpdateHostRequest(
            host=hp.Host(name=h.name, description="changed", etag=h.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]))).host
        self.assertEqual(u.description, "changed")
        self.assertCode(C.ABORTED, self.root.host.UpdateHost, hp.UpdateHostRequest(
            host=hp.Host(name=h.name, description="x", etag=h.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["description"])))
        self.assertCode(C.INVALID_ARGUMENT, self.root.host.UpdateHost, hp.UpdateHostRequest(
            host=hp.Host(name=h.name, uri="test:///x"),
            update_mask=field_mask_pb2.FieldMask(paths=["uri"])), contains="uri")
        # a host with a VM cannot be deregistered without force
        vm, name = create_vm(self.root, self.project, hid)
        self.assertEqual(vm.host, "hosts/" + hid)
        self.assertCode(C.FAILED_PRECONDITION, self.root.host.DeregisterHost,
                        hp.DeregisterHostRequest(name=h.name), contains="1 NovaCron VM")
        self.verb("DeleteVm", name)
        last = self.root.done(self.root.host.DeregisterHost(hp.DeregisterHostRequest(
            name=h.name, request_id=rid())).operation)
        self.assertEqual(last.state, hp.Host.STATE_DEREGISTERING)
        self.assertCode(C.NOT_FOUND, self.root.host.GetHost, hp.GetHostRequest(name=h.name))

    def test_register_unreachable_uri_leaves_nothing(self):
        hid = unique("h")
        o = self.root.host.RegisterHost(hp.RegisterHostRequest(
            host_id=hid, host=hp.Host(uri="test:///nonexistent/node.xml"),
            request_id=rid())).operation
        o = self.root.wait(o)
        self.assertEqual(o.state, op.Operation.STATE_FAILED)
        self.assertIn("cannot connect", o.error.message)
        self.assertCode(C.NOT_FOUND, self.root.host.GetHost, hp.GetHostRequest(name="hosts/" + hid))

    def test_register_bad_input(self):
        for bad in ("", "http://x", "qemu:///system\n", "qemu:///sys tem", 'test:///"x'):
            self.assertCode(C.INVALID_ARGUMENT, self.root.host.RegisterHost,
                            hp.RegisterHostRequest(host_id=unique("h"), host=hp.Host(uri=bad)))
        for bad in ("", "A", "a/b", "<x>", "x" * 64):
            self.assertCode(C.INVALID_ARGUMENT, self.root.host.RegisterHost,
                            hp.RegisterHostRequest(host_id=bad,
                                                   host=hp.Host(uri="test:///default")))

    def test_drain_cold_migrates_and_restarts(self):
        d = harness.tmpdir("node-")
        src, dst = unique("src"), unique("dst")
        register_host(self.root, src, node_xml(os.path.join(d, "a.xml")))
        register_host(self.root, dst, node_xml(os.path.join(d, "b.xml")))
        _, running = create_vm(self.root, self.project, src, start=True)
        _, stopped = create_vm(self.root, self.project, src)
        h = self.root.done(self.root.host.DrainHost(hp.DrainHostRequest(
            name="hosts/" + src, mode=hp.DrainHostRequest.MODE_COLD_MIGRATE,
            target_hosts=["hosts/" + dst], request_id=rid())).operation)
        self.assertTrue(h.cordoned)
        self.assertEqual(h.vm_count, 0)
        r, s_ = self.get(running), self.get(stopped)
        self.assertEqual((r.host, r.state), ("hosts/" + dst, S.STATE_RUNNING))
        self.assertEqual((s_.host, s_.state), ("hosts/" + dst, S.STATE_STOPPED))
        self.assertCode(C.INVALID_ARGUMENT, self.root.host.DrainHost, hp.DrainHostRequest(
            name="hosts/" + dst, target_hosts=["hosts/" + dst]))
        # destinations are checked: unknown, or cordoned (src is, after its drain)
        self.assertCode(C.NOT_FOUND, self.root.host.DrainHost, hp.DrainHostRequest(
            name="hosts/" + dst, target_hosts=["hosts/nowhere"]))
        self.assertCode(C.FAILED_PRECONDITION, self.root.host.DrainHost, hp.DrainHostRequest(
            name="hosts/" + dst, target_hosts=["hosts/" + src]), contains="cordoned")
        for n in (running, stopped):
            self.verb("DeleteVm", n, force=True)

    def test_drain_takes_each_vm_from_its_own_operations(self):
        d = harness.tmpdir("node-")
        hid = unique("h")
        register_host(self.root, hid, node_xml(os.path.join(d, "n.xml")))
        busy, a = create_vm(self.root, self.project, hid, start=True)
        free, b = create_vm(self.root, self.project, hid, start=True)
        # a's own operation runs (on another replica): the drain leaves a alone
        held = self.foreign_op("VmService.RebootVm", a, busy.uid)
        o = self.root.wait(self.root.host.DrainHost(hp.DrainHostRequest(
            name="hosts/" + hid, mode=hp.DrainHostRequest.MODE_STOP, request_id=rid())).operation)
        self.assertEqual(o.state, op.Operation.STATE_FAILED)
        self.assertIn("1 of 2 VMs could not be moved; first: %s has an operation in progress "
                      "(RebootVm, %s)" % (a, held), o.error.message)
        self.assertEqual((self.get(a).state, self.get(b).state),
                         (S.STATE_RUNNING, S.STATE_STOPPED))
        self.sql("UPDATE operations SET state = 4, ended_at = now() WHERE id = '%s'" % held)
        # while a drain has a VM, the VM's own verbs wait for it
        drain = self.foreign_op("HostService.DrainHost", "hosts/" + hid)
        self.sql("UPDATE vms SET migrating_op = '%s' WHERE id = '%s'" % (drain, free.uid))
        msg = self.assertCode(C.FAILED_PRECONDITION, self.root.vm.StartVm,
                              vp.StartVmRequest(name=b), contains="DrainHost")
        self.assertIn("(DrainHost, operations/%s)" % drain, msg)
        self.sql("UPDATE operations SET state = 4, ended_at = now() WHERE id = '%s'" % drain)
        self.assertEqual(self.verb("StartVm", b).state, S.STATE_RUNNING)
        for n in (a, b):
            self.verb("DeleteVm", n, force=True)

    def test_drain_stops_vms_and_cordons(self):
        d = harness.tmpdir("node-")
        hid = unique("h")
        register_host(self.root, hid, node_xml(os.path.join(d, "n.xml")))
        _, a = create_vm(self.root, self.project, hid, start=True)
        _, b = create_vm(self.root, self.project, hid, start=False)
        h = self.root.done(self.root.host.DrainHost(hp.DrainHostRequest(
            name="hosts/" + hid, mode=hp.DrainHostRequest.MODE_STOP, request_id=rid())).operation)
        self.assertTrue(h.cordoned)
        self.assertEqual(h.state, hp.Host.STATE_READY)
        self.assertEqual(self.get(a).state, S.STATE_STOPPED)
        self.assertEqual(self.get(b).state, S.STATE_STOPPED)
        # cordoned: the scheduler no longer places here unless pinned
        vm, _ = create_vm(self.root, self.project, hid)
        self.assertEqual(vm.host, "hosts/" + hid)  # a pin accepts a cordoned host
        done = self.root.done(self.root.host.DeregisterHost(hp.DeregisterHostRequest(
            name="hosts/" + hid, force=True, request_id=rid())).operation)
        self.assertEqual(done.name, "hosts/" + hid)
        # forced: the VMs stay, in ERROR without a host; StartVm places them again
        orphan = self.get(a)
        self.assertEqual((orphan.state, orphan.host), (S.STATE_ERROR, ""))
        self.assertIn("deregistered", orphan.state_message)
        # it was pinned to the host that is gone: the pin is a hard rule
        o = self.root.wait(self.root.vm.StartVm(vp.StartVmRequest(name=a)).operation)
        self.assertEqual(o.state, op.Operation.STATE_FAILED)
        self.assertIn("placement.host", o.error.message)
        self.assertEqual(self.get(a).state, S.STATE_ERROR)
        self.root.vm.UpdateVm(vp.UpdateVmRequest(
            vm=vp.Vm(name=a), update_mask=field_mask_pb2.FieldMask(paths=["placement"])))
        started = self.verb("StartVm", a)
        self.assertEqual(started.state, S.STATE_RUNNING)
        self.assertEqual(started.host, "hosts/default")
        for n in (a, b, vm.name):
            self.verb("DeleteVm", n, force=True)


def create_vm(cl, project, host=None, **kw):  # noqa: F811 (adds a host pin)
    """compute.create_vm, pinned to hosts/<host> when given."""
    if host:
        kw["placement"] = vp.VmPlacement(host="hosts/" + host)
    return compute.create_vm(cl, project, **kw)


class Lifecycle(Base):
    def test_full_lifecycle(self):
        vm, name = create_vm(self.root, self.project, labels=[Label(key="app", value="web")],
                             description="web server")
        self.assertEqual(vm.name, name)
        self.assertEqual(vm.state, S.STATE_STOPPED)
        self.assertEqual(vm.host, "hosts/default")
        self.assertEqual(vm.max_vcpus, 1)
        self.assertEqual(vm.max_memory_mib, 128)
        self.assertEqual(len(vm.uid), 36)
        self.assertEqual(self.verb("StartVm", name).state, S.STATE_RUNNING)
        self.assertEqual(self.verb("PauseVm", name).state, S.STATE_PAUSED)
        self.assertEqual(self.verb("ResumeVm", name).state, S.STATE_RUNNING)
        self.assertEqual(self.verb("RebootVm", name).state, S.STATE_RUNNING)
        self.assertEqual(self.verb("RebootVm", name, force=True).state, S.STATE_RUNNING)
        self.assertEqual(self.verb("StopVm", name).state, S.STATE_STOPPED)
        self.assertEqual(self.verb("StartVm", name).state, S.STATE_RUNNING)
        self.assertEqual(self.verb("StopVm", name, force=True).state, S.STATE_STOPPED)
        last = self.verb("DeleteVm", name)
        self.assertEqual(last.state, S.STATE_DELETING)
        self.assertCode(C.NOT_FOUND, self.root.vm.GetVm, vp.GetVmRequest(name=name))

    def test_create_started_and_force_delete(self):
        vm, name = create_vm(self.root, self.project, start=True)
        self.assertEqual(vm.state, S.STATE_RUNNING)
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.DeleteVm,
                        vp.DeleteVmRequest(name=name), contains="STATE_RUNNING")
        self.verb("DeleteVm", name, force=True)
        self.assertCode(C.NOT_FOUND, self.root.vm.GetVm, vp.GetVmRequest(name=name))

    def test_illegal_transitions_name_the_state(self):
        _, name = create_vm(self.root, self.project)
        cases = [("PauseVm", {}), ("ResumeVm", {}), ("RebootVm", {}), ("StopVm", {}),
                 ("ResizeVm", {"vcpus": 1, "live": True})]
        for method, kw in cases:
            req = getattr(vp, method + "Request")(name=name, **kw)
            msg = self.assertCode(C.FAILED_PRECONDITION, getattr(self.root.vm, method), req)
            self.assertIn("STATE_STOPPED", msg, method)
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.GetVmStats,
                        vp.GetVmStatsRequest(name=name), contains="STATE_STOPPED")
        self.verb("StartVm", name)
        for method, kw in [("StartVm", {}), ("ResumeVm", {}), ("CloneVm", {"vm_id": "c1"}),
                           ("ResizeVm", {"vcpus": 1}), ("DeleteVm", {})]:
            req = getattr(vp, method + "Request")(name=name, **kw)
            msg = self.assertCode(C.FAILED_PRECONDITION, getattr(self.root.vm, method), req)
            self.assertIn("STATE_RUNNING", msg, method)
        self.verb("PauseVm", name)
        for method in ("PauseVm", "RebootVm", "StartVm", "StopVm"):
            req = getattr(vp, method + "Request")(name=name)
            self.assertCode(C.FAILED_PRECONDITION, getattr(self.root.vm, method), req,
                            contains="STATE_PAUSED")
        self.verb("StopVm", name, force=True)  # force accepts PAUSED
        self.verb("DeleteVm", name)

    def test_stats_of_a_running_vm(self):
        _, name = create_vm(self.root, self.project, start=True, vcpus=2, max_vcpus=4)
        st = self.root.vm.GetVmStats(vp.GetVmStatsRequest(name=name)).stats
        self.assertEqual(st.vm, name)
        self.assertEqual(st.vcpus_online, 2)
        self.assertTrue(st.HasField("sample_time"))
        self.verb("DeleteVm", name, force=True)

    def test_resize_stopped_and_live(self):
        _, name = create_vm(self.root, self.project, vcpus=1, memory_mib=256)
        vm = self.verb("ResizeVm", name, vcpus=2, memory_mib=512, max_vcpus=4,
                       max_memory_mib=1024)
        self.assertEqual((vm.vcpus, vm.memory_mib, vm.max_vcpus, vm.max_memory_mib),
                         (2, 512, 4, 1024))
        self.verb("StartVm", name)
        vm = self.verb("ResizeVm", name, vcpus=3, live=True)
        self.assertEqual(vm.vcpus, 3)
        self.assertEqual(vm.state, S.STATE_RUNNING)
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.ResizeVm,
                        vp.ResizeVmRequest(name=name, vcpus=8, live=True), contains="max_vcpus")
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.ResizeVm,
                        vp.ResizeVmRequest(name=name), contains="at least one")
        self.verb("DeleteVm", name, force=True)

    def test_clone(self):
        src, name = create_vm(self.root, self.project, labels=[Label(key="a", value="b")])
        clone_id = unique("clone")
        clone = self.verb("CloneVm", name, vm_id=clone_id)
        self.assertEqual(clone.name, "projects/%s/vms/%s" % (self.project, clone_id))
        self.assertNotEqual(clone.uid, src.uid)
        self.assertEqual(clone.state, S.STATE_STOPPED)
        self.assertEqual([(l.key, l.value) for l in clone.labels], [("a", "b")])
        self.assertCode(C.ALREADY_EXISTS, self.root.vm.CloneVm,
                        vp.CloneVmRequest(name=name, vm_id=clone_id))
        self.verb("DeleteVm", clone.name)
        self.verb("DeleteVm", name)

    def test_update_metadata_with_etag(self):
        vm, name = create_vm(self.root, self.project)
        up = self.root.vm.UpdateVm(vp.UpdateVmRequest(
            vm=vp.Vm(name=name, description="new", etag=vm.etag,
                     labels=[Label(key="tier", value="db")]),
            update_mask=field_mask_pb2.FieldMask(paths=["description", "labels"]))).vm
        self.assertEqual(up.description, "new")
        self.assertNotEqual(up.etag, vm.etag)
        self.assertCode(C.ABORTED, self.root.vm.UpdateVm, vp.UpdateVmRequest(
            vm=vp.Vm(name=name, description="x", etag=vm.etag),
            update_mask=field_mask_pb2.FieldMask(paths=["description"])))
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.UpdateVm, vp.UpdateVmRequest(
            vm=vp.Vm(name=name, vcpus=4), update_mask=field_mask_pb2.FieldMask(paths=["vcpus"])),
            contains="vcpus")
        self.assertCode(C.ABORTED, self.root.vm.DeleteVm,
                        vp.DeleteVmRequest(name=name, etag=vm.etag))
        self.verb("DeleteVm", name, etag=up.etag)

    def test_snapshots(self):
        _, name = create_vm(self.root, self.project, vcpus=1)
        snap = self.root.done(self.root.vm.CreateSnapshot(vp.CreateSnapshotRequest(
            parent=name, snapshot_id="s1", snapshot=vp.VmSnapshot(description="first"),
            request_id=rid())).operation)
        self.assertEqual(snap.name, name + "/snapshots/s1")
        self.assertEqual(snap.state, vp.VmSnapshot.STATE_READY)
        self.assertEqual(snap.vm_state, S.STATE_STOPPED)
        self.assertEqual(snap.parent_snapshot, "")
        self.verb("ResizeVm", name, vcpus=2)
        s2 = self.root.done(self.root.vm.CreateSnapshot(vp.CreateSnapshotRequest(
            parent=name, snapshot_id="s2", request_id=rid())).operation)
        self.assertEqual(s2.parent_snapshot, snap.name)
        snaps = self.root.vm.ListSnapshots(vp.ListSnapshotsRequest(parent=name))
        self.assertEqual([s.name for s in snaps.snapshots], [snap.name, s2.name])
        self.assertEqual(snaps.total_size, 2)
        self.assertCode(C.ALREADY_EXISTS, self.root.vm.CreateSnapshot,
                        vp.CreateSnapshotRequest(parent=name, snapshot_id="s1"))
        vm = self.root.done(self.root.vm.RevertSnapshot(vp.RevertSnapshotRequest(
            name=snap.name, request_id=rid())).operation)
        self.assertEqual(vm.vcpus, 1)
        self.assertEqual(vm.state, S.STATE_STOPPED)
        got = self.root.vm.GetSnapshot(vp.GetSnapshotRequest(name=s2.name)).snapshot
        self.assertCode(C.ABORTED, self.root.vm.DeleteSnapshot,
                        vp.DeleteSnapshotRequest(name=snap.name, etag="v999"))
        gone = self.root.done(self.root.vm.DeleteSnapshot(vp.DeleteSnapshotRequest(
            name=snap.name, request_id=rid())).operation)
        self.assertEqual(gone.name, snap.name)
        # the child moved up to the deleted snapshot's parent
        self.assertEqual(self.root.vm.GetSnapshot(vp.GetSnapshotRequest(
            name=got.name)).snapshot.parent_snapshot, "")
        self.assertCode(C.NOT_FOUND, self.root.vm.GetSnapshot,
                        vp.GetSnapshotRequest(name=snap.name))
        self.verb("DeleteVm", name)


class Validation(Base):
    def bad(self, code, contains, **vm):
        spec = dict(vcpus=1, memory_mib=128)
        spec.update(vm)
        return self.assertCode(code, self.root.vm.CreateVm, vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id=unique("v"), vm=vp.Vm(**spec)),
            contains=contains)

    def test_sizes(self):
        self.bad(C.INVALID_ARGUMENT, "vm.vcpus", vcpus=0)
        self.bad(C.INVALID_ARGUMENT, "vm.vcpus", vcpus=100000)
        self.bad(C.INVALID_ARGUMENT, "vm.memory_mib", memory_mib=10)
        self.bad(C.INVALID_ARGUMENT, "vm.memory_mib", memory_mib=1 << 40)
        self.bad(C.INVALID_ARGUMENT, "vm.max_vcpus", vcpus=4, max_vcpus=2)
        self.bad(C.INVALID_ARGUMENT, "vm.max_memory_mib", memory_mib=512, max_memory_mib=256)

    def test_names_and_text(self):
        for bad in ("", "A", "a/b", "a.b", "<x>", "x&y", "web-", "1web", "x" * 64):
            self.assertCode(C.INVALID_ARGUMENT, self.root.vm.CreateVm, vp.CreateVmRequest(
                parent="projects/" + self.project, vm_id=bad, vm=vp.Vm(vcpus=1, memory_mib=128)),
                contains="vm_id")
        self.bad(C.INVALID_ARGUMENT, "description", description="a\x01b")
        self.bad(C.INVALID_ARGUMENT, "description", description="x" * 1025)
        self.bad(C.INVALID_ARGUMENT, "machine_type", machine_type="<q35>")
        self.bad(C.INVALID_ARGUMENT, "labels", labels=[Label(key="Bad Key", value="v")])
        for parent in ("", "projects/", "projects/a/b", "hosts/default"):
            self.assertCode(C.INVALID_ARGUMENT, self.root.vm.CreateVm, vp.CreateVmRequest(
                parent=parent, vm_id="ok", vm=vp.Vm(vcpus=1, memory_mib=128)))
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.GetVm, vp.GetVmRequest(name="vms/x"))
        self.assertCode(C.NOT_FOUND, self.root.vm.GetVm, vp.GetVmRequest(
            name="projects/%s/vms/nope" % self.project))

    def test_devices_and_placement_references(self):
        self.bad(C.NOT_FOUND, "volume", disks=[vp.VmDisk(
            volume="projects/%s/volumes/nope" % self.project)])
        self.bad(C.INVALID_ARGUMENT, "VM's project", disks=[vp.VmDisk(
            volume="projects/other/volumes/v")])
        self.bad(C.INVALID_ARGUMENT, "disks[0]", disks=[vp.VmDisk()])
        self.bad(C.NOT_FOUND, "network", nics=[vp.VmNic(
            network="projects/%s/networks/n" % self.project)])
        self.bad(C.INVALID_ARGUMENT, "mac", nics=[vp.VmNic(
            network="projects/%s/networks/n" % self.project, mac="01:00:5e:00:00:01")])
        self.bad(C.INVALID_ARGUMENT, "placement.host", placement=vp.VmPlacement(host="default"))
        self.bad(C.FAILED_PRECONDITION, "hosts/vanished",
                 placement=vp.VmPlacement(host="hosts/vanished"))

    def test_duplicate_and_idempotent_create(self):
        vm_id = unique("v")
        req = vp.CreateVmRequest(parent="projects/" + self.project, vm_id=vm_id,
                                 vm=vp.Vm(vcpus=1, memory_mib=128), request_id=rid())
        first = self.root.vm.CreateVm(req).operation
        again = self.root.vm.CreateVm(req).operation
        self.assertEqual(first.name, again.name)
        self.root.done(first)
        self.assertCode(C.ALREADY_EXISTS, self.root.vm.CreateVm, vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id=vm_id, vm=vp.Vm(vcpus=1, memory_mib=128)))
        req.vm.vcpus = 2
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.CreateVm, req, contains="request_id")
        vms = self.root.vm.ListVms(vp.ListVmsRequest(
            parent="projects/" + self.project, filter='name = "projects/%s/vms/%s"' % (
                self.project, vm_id))).vms
        self.assertEqual(len(vms), 1)

    def test_validate_only_creates_nothing(self):
        vm_id = unique("v")
        o = self.root.vm.CreateVm(vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id=vm_id, vm=vp.Vm(vcpus=1, memory_mib=128),
            validate_only=True)).operation
        self.assertTrue(o.done)
        self.assertEqual(o.name, "")
        self.assertEqual(unpack(o).host, "hosts/default")
        self.assertCode(C.NOT_FOUND, self.root.vm.GetVm, vp.GetVmRequest(
            name="projects/%s/vms/%s" % (self.project, vm_id)))


class Quotas(Base):
    def test_vm_and_vcpu_quota(self):
        project = make_project(self.root_api, "q")
        self.root_api.SetQuota(ip.SetQuotaRequest(
            quota=ip.Quota(name="projects/%s/quota" % project, limits=ip.Quota.Limits(
                vms={"value": 2}, vcpus={"value": 4})),
            update_mask=field_mask_pb2.FieldMask(paths=["limits.vms", "limits.vcpus"])))
        create_vm(self.root, project, vcpus=2)
        msg = self.assertCode(C.RESOURCE_EXHAUSTED, self.root.vm.CreateVm, vp.CreateVmRequest(
            parent="projects/" + project, vm_id="big", vm=vp.Vm(vcpus=3, memory_mib=128)))
        self.assertIn("vcpus", msg)
        _, name = create_vm(self.root, project, vcpus=1)
        self.assertCode(C.RESOURCE_EXHAUSTED, self.root.vm.CreateVm, vp.CreateVmRequest(
            parent="projects/" + project, vm_id="third", vm=vp.Vm(vcpus=1, memory_mib=64)),
            contains="vms")
        q = self.root_api.GetQuota(ip.GetQuotaRequest(name="projects/%s/quota" % project)).quota
        self.assertEqual((q.usage.vms, q.usage.vcpus, q.usage.memory_mib), (2, 3, 256))
        # a project that still holds VMs cannot be deleted
        self.assertCode(C.FAILED_PRECONDITION, self.root_api.DeleteProject,
                        ip.DeleteProjectRequest(name="projects/" + project),
                        contains="still holds resources")
        # resizing above the quota is refused too
        self.assertCode(C.RESOURCE_EXHAUSTED, self.root.vm.ResizeVm,
                        vp.ResizeVmRequest(name=name, vcpus=3))


class Placement(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = harness.tmpdir("nodes-")
        cls.small = unique("small")
        cls.big = unique("big")
        register_host(cls.root, cls.small, node_xml(os.path.join(d, "s.xml"), 2, 2048),
                      labels={"disk": "hdd"})
        register_host(cls.root, cls.big, node_xml(os.path.join(d, "b.xml"), 16, 65536),
                      labels={"disk": "ssd"})
        # the embedded host takes no part in these tests
        cls.root.host.UpdateHost(hp.UpdateHostRequest(
            host=hp.Host(name="hosts/default", cordoned=True),
            update_mask=field_mask_pb2.FieldMask(paths=["cordoned"])))

    def test_spread_prefers_the_emptiest_host(self):
        vm, name = create_vm(self.root, self.project, memory_mib=512)
        self.assertEqual(vm.host, "hosts/" + self.big)
        self.verb("DeleteVm", name)

    def test_selector_pin_and_capacity(self):
        vm, a = create_vm(self.root, self.project, memory_mib=1024, placement=vp.VmPlacement(
            host_selector=[Label(key="disk", value="hdd")]))
        self.assertEqual(vm.host, "hosts/" + self.small)
        # the small host has 2048 MiB: a second 1536 MiB VM does not fit there
        msg = self.assertCode(C.RESOURCE_EXHAUSTED, self.root.vm.CreateVm, vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id=unique("v"),
            vm=vp.Vm(vcpus=1, memory_mib=1536, placement=vp.VmPlacement(
                host_selector=[Label(key="disk", value="hdd")]))))
        self.assertIn("no host has room", msg)
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.CreateVm, vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id=unique("v"),
            vm=vp.Vm(vcpus=1, memory_mib=64, placement=vp.VmPlacement(
                host_selector=[Label(key="disk", value="nvme")]))))
        self.verb("DeleteVm", a)

    def test_anti_affinity_and_affinity(self):
        lab = [Label(key="role", value=unique("db"))]
        rule = vp.VmPlacement(anti_affinity=lab)
        v1, a = create_vm(self.root, self.project, labels=lab, placement=rule)
        v2, b = create_vm(self.root, self.project, labels=lab, placement=rule)
        self.assertNotEqual(v1.host, v2.host)
        # a third cannot go anywhere (two usable hosts, both taken)
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.CreateVm, vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id=unique("v"),
            vm=vp.Vm(vcpus=1, memory_mib=64, labels=lab, placement=rule)))
        v3, c = create_vm(self.root, self.project, placement=vp.VmPlacement(affinity=lab,
                          host_selector=[Label(key="disk", value="hdd")]))
        self.assertEqual(v3.host, "hosts/" + self.small)
        for n in (a, b, c):
            self.verb("DeleteVm", n)

    def test_migrate_offline_between_hosts(self):
        vm, name = create_vm(self.root, self.project, memory_mib=256)
        self.assertEqual(vm.host, "hosts/" + self.big)
        moved = self.verb("MigrateVm", name, target_host="hosts/" + self.small)
        self.assertEqual(moved.host, "hosts/" + self.small)
        self.assertEqual(moved.state, S.STATE_STOPPED)
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.MigrateVm, vp.MigrateVmRequest(
            name=name, target_host="hosts/" + self.small), contains="already")
        self.assertCode(C.NOT_FOUND, self.root.vm.MigrateVm, vp.MigrateVmRequest(
            name=name, target_host="hosts/nope"))
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.MigrateVm, vp.MigrateVmRequest(
            name=name, target_host="hosts/default"), contains="cordoned")
        # the scheduler's choice: the only other usable host
        back = self.verb("MigrateVm", name)
        self.assertEqual(back.host, "hosts/" + self.big)
        self.verb("DeleteVm", name)

    def test_a_move_in_progress_holds_its_room(self):
        """A VM being migrated counts on its destination while the operation
        moving it runs: a second move (or a create) cannot take that room."""
        held, _ = create_vm(self.root, self.project, memory_mib=1200)
        other, oname = create_vm(self.root, self.project, memory_mib=1200)
        self.assertEqual((held.host, other.host), ("hosts/" + self.big,) * 2)
        # `held` is being moved to `small` (2048 MiB) by an operation another
        # replica runs (its lease keeps this server off it)
        op_id = self.foreign_op("VmService.MigrateVm", held.name)
        self.sql("UPDATE vms SET migrating_to = (SELECT id FROM hosts WHERE host_id = '%s'), "
                 "migrating_op = '%s' WHERE id = '%s'" % (self.small, op_id, held.uid))
        self.assertCode(C.RESOURCE_EXHAUSTED, self.root.vm.MigrateVm, vp.MigrateVmRequest(
            name=oname, target_host="hosts/" + self.small), contains="1200 MiB")
        self.assertCode(C.RESOURCE_EXHAUSTED, self.root.vm.CreateVm, vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id=unique("v"), vm=vp.Vm(
                vcpus=1, memory_mib=1200,
                placement=vp.VmPlacement(host_selector=[Label(key="disk", value="hdd")]))))
        # the move ends (its operation no longer runs): the room is free again
        self.sql("UPDATE operations SET state = 4, ended_at = now() WHERE id = '%s'" % op_id)
        moved = self.verb("MigrateVm", oname, target_host="hosts/" + self.small)
        self.assertEqual(moved.host, "hosts/" + self.small)
        for n in (held.name, oname):
            self.verb("DeleteVm", n)


class Operations(Base):
    def test_get_list_wait_cancel(self):
        o, name = create_vm(self.root, self.project, wait=False)
        self.assertTrue(o.name.startswith("projects/%s/operations/" % self.project))
        self.assertEqual(o.verb, "novacron.v1.VmService.CreateVm")
        self.assertEqual(o.target, name)
        self.assertEqual(o.principal, "users/admin")
        done = self.root.wait(o)
        self.assertEqual(done.state, op.Operation.STATE_SUCCEEDED)
        self.assertEqual(done.progress_percent, 100)
        self.assertTrue(done.HasField("end_time"))
        got = self.root.ops.GetOperation(op.GetOperationRequest(name=o.name)).operation
        self.assertEqual(got.name, o.name)
        self.assertTrue(got.done)
        # cancelling a finished operation keeps its result
        c = self.root.ops.CancelOperation(op.CancelOperationRequest(name=o.name,
                                                                    request_id=rid())).operation
        self.assertEqual(c.state, op.Operation.STATE_SUCCEEDED)
        ops = self.root.ops.ListOperations(op.ListOperationsRequest(
            parent="projects/" + self.project,
            filter='verb = "novacron.v1.VmService.CreateVm" AND done = true')).operations
        self.assertIn(o.name, [x.name for x in ops])
        self.assertCode(C.INVALID_ARGUMENT, self.root.ops.GetOperation,
                        op.GetOperationRequest(name="operations/not-a-uuid"))
        self.assertCode(C.NOT_FOUND, self.root.ops.GetOperation, op.GetOperationRequest(
            name="projects/%s/operations/00000000-0000-0000-0000-000000000000" % self.project))
        self.verb("DeleteVm", name)

    def test_wait_honours_the_timeout_and_deadline(self):
        _, name = create_vm(self.root, self.project, start=True)
        # a graceful stop that the test driver completes at once: still, the
        # wait itself must return by the requested timeout when not done
        t0 = time.monotonic()
        o = self.root.ops.WaitOperation(op.WaitOperationRequest(
            name=self.root.vm.RebootVm(vp.RebootVmRequest(name=name)).operation.name,
            timeout=duration_pb2.Duration(nanos=1000000)), timeout=10).operation
        self.assertLess(time.monotonic() - t0, 5)
        self.root.wait(o)
        self.verb("DeleteVm", name, force=True)

    def test_one_operation_at_a_time(self):
        _, name = create_vm(self.root, self.project)
        first = self.root.vm.StartVm(vp.StartVmRequest(name=name)).operation
        second = None
        try:
            # refused while the start is queued or running (the VM is STARTING)
            second = self.root.vm.PauseVm(vp.PauseVmRequest(name=name)).operation
        except grpc.RpcError as e:
            self.assertEqual(e.code(), C.FAILED_PRECONDITION)
            self.assertTrue("in progress" in e.details() or "STATE_STARTING" in e.details(),
                            e.details())
        self.root.wait(first)
        if second:  # the start was already done: the pause was accepted
            self.root.wait(second)
        self.verb("DeleteVm", name, force=True)


class Permissions(Base):
    def test_viewer_reads_operator_acts(self):
        _, name = create_vm(self.root, self.project)
        viewer = make_user(self.root_api)
        grant(self.root_api, self.project, viewer, ip.ROLE_VIEWER)
        cl = Client(self.ch, login(self.ch, viewer, PASSWORD)[0].token)
        self.assertEqual(cl.vm.GetVm(vp.GetVmRequest(name=name)).vm.name, name)
        self.assertCode(C.PERMISSION_DENIED, cl.vm.StartVm, vp.StartVmRequest(name=name))
        outsider = make_user(self.root_api)
        other = Client(self.ch, login(self.ch, outsider, PASSWORD)[0].token)
        m1 = self.assertCode(C.PERMISSION_DENIED, other.vm.GetVm, vp.GetVmRequest(name=name))
        m2 = self.assertCode(C.PERMISSION_DENIED, other.vm.GetVm, vp.GetVmRequest(
            name="projects/%s/vms/nope" % self.project))
        self.assertEqual(m1.replace(name, "X"), m2.replace("projects/%s/vms/nope" % self.project,
                                                           "X"))
        # ListVms over every project shows only the caller's
        mine = cl.vm.ListVms(vp.ListVmsRequest(parent="projects/-")).vms
        self.assertTrue(all(v.name.startswith("projects/%s/" % self.project) for v in mine))
        self.assertEqual(len(other.vm.ListVms(vp.ListVmsRequest(parent="projects/-")).vms), 0)
        self.verb("DeleteVm", name)


class ListAndEvents(Base):
    def test_list_paging_filters_order(self):
        project = make_project(self.root_api, "l")
        names = []
        for i in range(7):
            _, n = create_vm(self.root, project, vm_id="vm-%d" % i,
                             labels=[Label(key="parity", value=str(i % 2))])
            names.append(n)
        seen, token = [], ""
        while True:
            page = self.root.vm.ListVms(vp.ListVmsRequest(parent="projects/" + project,
                                                          page_size=3, page_token=token))
            self.assertEqual(page.total_size, 7)
            seen += [v.name for v in page.vms]
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(seen, sorted(names))
        odd = self.root.vm.ListVms(vp.ListVmsRequest(parent="projects/" + project,
                                                     filter='labels.parity = "1"')).vms
        self.assertEqual(len(odd), 3)
        st = self.root.vm.ListVms(vp.ListVmsRequest(
            parent="projects/" + project,
            filter='state = STATE_STOPPED AND host = "hosts/default" AND vcpus >= 1')).vms
        self.assertEqual(len(st), 7)
        desc = self.root.vm.ListVms(vp.ListVmsRequest(parent="projects/" + project,
                                                      order_by="name desc")).vms
        self.assertEqual([v.name for v in desc], sorted(names, reverse=True))
        for bad in ("cpu = 1", "state = RUNNING", "name ~ x"):
            self.assertCode(C.INVALID_ARGUMENT, self.root.vm.ListVms,
                            vp.ListVmsRequest(parent="projects/" + project, filter=bad))

    def test_watcher_sees_vm_and_operation_events(self):
        project = make_project(self.root_api, "ev")
        stream = self.root.watch(ep.WatchEventsRequest(parent="projects/" + project), timeout=60)
        first = next(stream).event
        self.assertEqual(first.type, ep.Event.TYPE_HEARTBEAT)
        got = []
        done = threading.Event()

        def reader():
            try:
                for m in stream:
                    got.append(m.event)
                    if (m.event.type == ep.Event.TYPE_OPERATION_DONE and
                            m.event.operation.verb.endswith("CreateVm")):
                        done.set()
                        return
            except grpc.RpcError:
                pass
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        _, name = create_vm(self.root, project, start=True)
        self.assertTrue(done.wait(20), [ep.Event.Type.Name(e.type) for e in got])
        stream.cancel()
        types = [e.type for e in got]
        self.assertIn(ep.Event.TYPE_VM_CREATED, types)
        self.assertIn(ep.Event.TYPE_OPERATION_CREATED, types)
        self.assertIn(ep.Event.TYPE_OPERATION_PROGRESS, types)
        running = [e for e in got if e.type == ep.Event.TYPE_VM_STATE_CHANGED and
                   e.vm.state == S.STATE_RUNNING]
        self.assertEqual(len(running), 1)
        self.assertTrue(running[0].source_operation.startswith("projects/%s/operations/" % project))
        self.assertEqual(running[0].message, "state PENDING -> RUNNING")
        seqs = [e.sequence for e in got]
        self.assertEqual(seqs, sorted(seqs))
        created = [e for e in got if e.type == ep.Event.TYPE_VM_CREATED][0]
        self.assertEqual(created.resource, name)
        self.assertEqual(created.project, "projects/" + project)
        self.assertEqual(created.principal, "users/admin")


if __name__ == "__main__":
    unittest.main()
