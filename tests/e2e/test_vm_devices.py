"""The device side of VmService end to end: CreateVm with disks from existing
volumes and from new ones (`new_volume`) and with NICs on networks,
AttachVolume / DetachVolume / AttachNic / DetachNic on stopped and running
VMs, the rules that bind volumes and networks to their host and to the VM
using them, DeleteVm keeping or deleting volumes, and a create whose domain
definition fails leaving neither the VM nor the volume it was to create.

The real server on its own PostgreSQL database and libvirt's test driver
(`hosts/default`, plus private test:///<file> hosts whose node files can
hold domains NovaCron does not know). The test driver cannot hot-plug: a
device added to a running VM lands in its persistent definition, and the
VM's event says the guest sees it after the next start. NICs need networks,
so these tests also drive NetworkService.CreateNetwork (MODE_ISOLATED)."""
import time
import unittest

import compute
from compute import C, ep, op, rid, unique, vp
from identity import ip, make_project
from test_network import psql
from test_storage import (GIB, LOGICAL, QCOW2, RAW, VS, Case, create_pool, create_volume,
                          delete_pool, delete_volume, domain_xml, events_since, head_sequence,
                          private_host, set_quota, start_server, unpack, usage)
import harness
from novacron.v1 import network_pb2 as np_  # noqa: E402
from novacron.v1 import storage_pb2 as sp  # noqa: E402

S = vp.Vm
MAC_RE = r"^52:54:00(:[0-9a-f]{2}){3}$"


def new_disk(size_gib=1, bus=0, boot_index=0, read_only=False, **new_volume):
    """A VmDisk backed by a volume created with it."""
    return vp.VmDisk(new_volume=vp.VmDiskNewVolume(size_gib=size_gib, **new_volume), bus=bus,
                     boot_index=boot_index, read_only=read_only)


def on_default():
    return vp.VmPlacement(host="hosts/default")


def create_network(cl, project, cidr, host="default", network_id=None):
    """An isolated network on hosts/<host>; returns it once created."""
    o = cl.net.CreateNetwork(np_.CreateNetworkRequest(
        parent="projects/" + project, network_id=network_id or unique("net"),
        network=np_.Network(host="hosts/" + host, mode=np_.Network.MODE_ISOLATED,
                            ipv4_cidr=cidr), request_id=rid())).operation
    return cl.done(o)


def delete_network(cl, name):
    return cl.done(cl.net.DeleteNetwork(np_.DeleteNetworkRequest(name=name,
                                                                  request_id=rid())).operation)


class Base(Case):
    @classmethod
    def setUpClass(cls):
        cls.srv, cls.ch, cls.root_api, cls.root = start_server(cls.__name__)
        cls.project = make_project(cls.root_api, "vd")
        # pool `default` is where new volumes without a pool go (--default-pool)
        cls.default_pool = create_pool(cls.root, pool_id="default").name
        cls.shared_pool = create_pool(cls.root).name

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()
        harness.stop_and_assert(cls.srv)

    def create_vm(self, project=None, **kw):
        """compute.create_vm in this class's project by default."""
        return compute.create_vm(self.root, project or self.project, **kw)

    def create_req(self, project=None, vm_id=None, **kw):
        return vp.CreateVmRequest(parent="projects/" + (project or self.project),
                                  vm_id=vm_id or unique("vm"), vm=compute.vm_spec(**kw),
                                  request_id=rid())

    def verb(self, method, name, **kw):
        req = getattr(vp, method + "Request")(name=name, request_id=rid(), **kw)
        return self.root.done(getattr(self.root.vm, method)(req).operation)

    def vol_name(self, volume_id, project=None):
        return "projects/%s/volumes/%s" % (project or self.project, volume_id)

    def assertAttached(self, volume, vm, target):
        v = self.volume(volume)
        self.assertEqual((v.state, v.attachment.vm, v.attachment.target_device),
                         (VS.STATE_ATTACHED, vm, target), volume)

    def assertFree(self, volume):
        v = self.volume(volume)
        self.assertEqual(v.state, VS.STATE_READY, volume)
        self.assertFalse(v.HasField("attachment"), volume)

    def disks(self, vm):
        return [(d.volume, d.target_device) for d in vm.disks]

    def vm_events(self, seq, name, until):
        return events_since(self.root, seq, until, parent=name.split("/vms/")[0],
                            resources=[name], types=[ep.Event.TYPE_VM_UPDATED])


# ---------------------------------------------------------------- disks


class Disks(Base):
    def test_create_vm_with_existing_and_new_volumes(self):
        project = make_project(self.root_api, "vd")
        data = create_volume(self.root, project, self.shared_pool, "data", GIB)
        vm_id = unique("vm")
        name = "projects/%s/vms/%s" % (project, vm_id)
        disk0, scratch, disk3 = (self.vol_name(i, project) for i in (
            vm_id + "-disk0", "scratch", vm_id + "-disk3"))
        vm, _ = self.create_vm(project, vm_id=vm_id, disks=[
            new_disk(1),
            vp.VmDisk(volume=data.name, read_only=True),
            new_disk(2, volume_id="scratch", pool=self.shared_pool, format=RAW),
            new_disk(1, bus=vp.VmDisk.BUS_SATA, boot_index=1)])
        self.assertEqual((vm.name, vm.host, vm.state), (name, "hosts/default", S.STATE_STOPPED))
        expected = [(disk0, "vda"), (data.name, "vdb"), (scratch, "vdc"), (disk3, "sda")]
        self.assertEqual(self.disks(vm), expected)
        self.assertEqual([d.WhichOneof("source") for d in vm.disks], ["volume"] * 4)
        self.assertEqual([(d.bus, d.read_only, d.boot_index) for d in vm.disks],
                         [(0, False, 0), (0, True, 0), (0, False, 0),
                          (vp.VmDisk.BUS_SATA, False, 1)])
        self.assertEqual(self.disks(self.vm(name)), expected)
        for volume, target in expected:
            self.assertAttached(volume, name, target)
        d0, s, d3 = self.volume(disk0), self.volume(scratch), self.volume(disk3)
        self.assertEqual((d0.pool, d0.format, d0.size_bytes), (self.default_pool, QCOW2, GIB))
        self.assertEqual((s.pool, s.format, s.size_bytes), (self.shared_pool, RAW, 2 * GIB))
        self.assertEqual((d3.pool, d3.size_bytes), (self.default_pool, GIB))
        u = usage(self.root_api, project)
        self.assertEqual((u.vms, u.volume_gib), (1, 5))
        # the domain boots with them
        started = self.verb("StartVm", name)
        self.assertEqual((started.state, self.disks(started)), (S.STATE_RUNNING, expected))
        self.verb("DeleteVm", name, force=True, delete_volumes=True)
        for volume, _ in expected:
            self.assertGone(volume)

    def test_create_vm_disk_errors(self):
        project = make_project(self.root_api, "ve")
        parent = "projects/" + project
        data = create_volume(self.root, project, self.shared_pool, "data")
        held = create_volume(self.root, project, self.shared_pool, "held")
        _, holder = self.create_vm(project, vm_id="holder", disks=[vp.VmDisk(volume=held.name)])
        theirs = create_volume(self.root, make_project(self.root_api, "vo"), self.shared_pool)
        lv = create_pool(self.root, ptype=LOGICAL).name
        cases = [
            ([vp.VmDisk(volume=held.name)], C.FAILED_PRECONDITION, holder),
            ([vp.VmDisk(volume=parent + "/volumes/nope")], C.NOT_FOUND, "nope"),
            ([vp.VmDisk(volume=theirs.name)], C.INVALID_ARGUMENT, "disks[0].volume"),
            ([vp.VmDisk(volume="volumes/x")], C.INVALID_ARGUMENT, "disks[0].volume"),
            ([vp.VmDisk()], C.INVALID_ARGUMENT, "disks[0]"),
            ([vp.VmDisk(volume=data.name), vp.VmDisk(volume=data.name)], C.INVALID_ARGUMENT,
             "twice"),
            ([vp.VmDisk(volume=data.name, bus=7)], C.INVALID_ARGUMENT, "disks[0].bus"),
            ([vp.VmDisk(volume=data.name, boot_index=1), new_disk(1, boot_index=1)],
             C.INVALID_ARGUMENT, "boot_index"),
            ([new_disk(1)] * 17, C.INVALID_ARGUMENT, "disks"),
            ([new_disk(0)], C.INVALID_ARGUMENT, "disks[0].new_volume.size_gib"),
            ([new_disk(-1)], C.INVALID_ARGUMENT, "disks[0].new_volume.size_gib"),
            ([new_disk(65537)], C.INVALID_ARGUMENT, "disks[0].new_volume.size_gib"),
            ([new_disk(1, volume_id="data")], C.ALREADY_EXISTS, data.name),
            ([new_disk(1, volume_id="bad.id")], C.INVALID_ARGUMENT, "volume_id"),
            ([new_disk(1, volume_id="x1"), new_disk(1, volume_id="x1")], C.INVALID_ARGUMENT,
             "x1"),
            ([new_disk(1, format=9)], C.INVALID_ARGUMENT, "format"),
            ([new_disk(1, pool="pools/x")], C.INVALID_ARGUMENT, "disks[0].new_volume.pool"),
            ([new_disk(1, pool=lv, format=QCOW2)], C.INVALID_ARGUMENT, "FORMAT_RAW"),
            ([new_disk(0, source_image="/var/lib/images/base.qcow2")], C.PERMISSION_DENIED,
             "source_image"),
            ([new_disk(0, source_image="https://images.example.org/base.img")],
             C.PERMISSION_DENIED, "--storage-image-urls is empty"),
            ([new_disk(0, source_volume=theirs.name)], C.INVALID_ARGUMENT, "source_volume"),
            ([new_disk(0, source_volume=parent + "/volumes/nope")], C.NOT_FOUND, "nope"),
        ]
        for disks, code, part in cases:
            with self.subTest(disks=[str(d) for d in disks[:2]]):
                self.assertCode(code, self.root.vm.CreateVm,
                                self.create_req(project, disks=disks, placement=on_default()),
                                contains=part)
        # a copy of a volume attached to a running VM would not be consistent
        self.verb("StartVm", holder)
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.CreateVm, self.create_req(
            project, disks=[new_disk(0, source_volume=held.name)]), contains=held.name)
        # the volume quota counts new volumes (data and held hold 2 GiB)
        set_quota(self.root_api, project, volume_gib=3)
        self.assertCode(C.RESOURCE_EXHAUSTED, self.root.vm.CreateVm, self.create_req(
            project, disks=[new_disk(2)], placement=on_default()), contains="volume_gib")
        # and their number: two volumes exist, one more is over a limit of 2
        set_quota(self.root_api, project, volume_gib=100, volumes=2)
        self.assertCode(C.RESOURCE_EXHAUSTED, self.root.vm.CreateVm, self.create_req(
            project, disks=[new_disk(1)], placement=on_default()),
            contains="volumes would be 3 (2 used + 1 requested), the limit is 2")
        set_quota(self.root_api, project, volumes=3)
        self.assertEqual(usage(self.root_api, project).volumes, 2)
        # validate_only checks it all and creates nothing
        vm_id = unique("vm")
        o = self.root.vm.CreateVm(vp.CreateVmRequest(
            parent=parent, vm_id=vm_id, validate_only=True,
            vm=compute.vm_spec(disks=[new_disk(1), vp.VmDisk(volume=data.name)]))).operation
        self.assertEqual((o.done, o.state, o.name), (True, op.Operation.STATE_SUCCEEDED, ""))
        would_be = unpack(o)
        self.assertEqual(would_be.host, "hosts/default")
        self.assertEqual(self.disks(would_be), [
            (self.vol_name(vm_id + "-disk0", project), "vda"), (data.name, "vdb")])
        self.assertGone(self.vol_name(vm_id + "-disk0", project))
        self.assertCode(C.NOT_FOUND, self.vm, "%s/vms/%s" % (parent, vm_id))
        # none of it left a VM, a volume or a reservation behind
        self.assertEqual([v.name for v in self.root.vm.ListVms(vp.ListVmsRequest(
            parent=parent)).vms], [holder])
        self.assertEqual([v.name for v in self.root.storage.ListVolumes(
            sp.ListVolumesRequest(parent=parent)).volumes], [data.name, held.name])
        self.assertFree(data.name)
        self.assertAttached(held.name, holder, "vda")
        self.assertEqual(usage(self.root_api, project).volume_gib, 2)
        self.verb("DeleteVm", holder, force=True, delete_volumes=True)
        delete_volume(self.root, data.name)
        delete_volume(self.root, theirs.name)
        delete_pool(self.root, lv)

    def test_new_volume_in_a_missing_pool_is_not_found(self):
        """VmDiskNewVolume: "The same rules as StorageService.CreateVolume
        apply", and CreateVolume answers NOT_FOUND for the pool."""
        self.assertCode(C.NOT_FOUND, self.root.vm.CreateVm, self.create_req(
            disks=[new_disk(1, pool="hosts/default/pools/nope")]),
            contains="hosts/default/pools/nope")

    def test_new_volume_beyond_the_pool_capacity_is_invalid(self):
        """As CreateVolume: a size beyond the pool's capacity can never fit."""
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.CreateVm, self.create_req(
            disks=[new_disk(101, pool=self.shared_pool)]), contains="disks[0].new_volume")

    def test_devices_pin_the_vm_to_their_host(self):
        host, _ = private_host(self.root)
        far_pool = create_pool(self.root, host).name
        far = create_volume(self.root, self.project, far_pool)
        near = create_volume(self.root, self.project, self.shared_pool)
        # the volume takes the VM to its (cordoned) host
        vm, name = self.create_vm(disks=[vp.VmDisk(volume=far.name)])
        self.assertEqual(vm.host, "hosts/" + host)
        self.assertFalse(vm.placement.host)  # implied by the device, not recorded
        self.verb("DeleteVm", name)
        self.assertFree(far.name)
        for disks, placement, parts in [
                ([vp.VmDisk(volume=far.name)], on_default(), ["placement.host", host]),
                ([vp.VmDisk(volume=far.name), vp.VmDisk(volume=near.name)], None,
                 ["hosts/" + host, "hosts/default"]),
                ([vp.VmDisk(volume=far.name), new_disk(1, pool=self.shared_pool)], None,
                 ["hosts/" + host, "hosts/default"]),
                # new volumes without a pool go to pool `default` of the VM's host
                ([vp.VmDisk(volume=far.name), new_disk(1)], None,
                 ["hosts/%s/pools/default" % host]),
                ([new_disk(1)], vp.VmPlacement(host="hosts/" + host),
                 ["hosts/%s/pools/default" % host])]:
            self.assertCode(C.FAILED_PRECONDITION, self.root.vm.CreateVm,
                            self.create_req(disks=disks, placement=placement), contains=parts)
        self.assertFree(far.name)
        self.assertFree(near.name)
        # with such a pool there, it is used
        there = create_pool(self.root, host, "default").name
        vm, name = self.create_vm(disks=[new_disk(1)],
                                  placement=vp.VmPlacement(host="hosts/" + host))
        self.assertEqual(self.volume(vm.disks[0].volume).pool, there)
        # a volume of another host cannot be attached
        _, here = self.create_vm(placement=on_default())
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.AttachVolume, vp.AttachVolumeRequest(
            name=here, disk=vp.VmDisk(volume=far.name)), contains="hosts/" + host)
        self.assertFree(far.name)
        self.verb("DeleteVm", name, delete_volumes=True)
        self.verb("DeleteVm", here)
        for v in (far, near):
            delete_volume(self.root, v.name)
        delete_pool(self.root, there)
        delete_pool(self.root, far_pool)

    def test_failed_definition_leaves_neither_vm_nor_new_volume(self):
        """Both or neither: the domain name "{project}.{vm}" is taken on the
        host by a domain NovaCron does not manage, so the definition fails;
        the VM row and the volume created for it go, the existing volume
        is released, and the host keeps none of the new volume."""
        project = make_project(self.root_api, "ff")
        vm_id = "clash"
        name = "projects/%s/vms/%s" % (project, vm_id)
        host, _ = private_host(self.root, domain_xml("%s.%s" % (project, vm_id)))
        pool = create_pool(self.root, host).name
        keep = create_volume(self.root, project, pool, "keep", GIB, format=RAW)
        new = self.vol_name(vm_id + "-disk1", project)
        self.assertEqual(self.pool(pool).allocation_bytes, GIB)
        seq = head_sequence(self.root)
        o, _ = compute.create_vm(self.root, project, vm_id=vm_id, wait=False, disks=[
            vp.VmDisk(volume=keep.name), new_disk(2, pool=pool, format=RAW)])
        o = self.root.failed(o)
        self.assertIn("%s.%s" % (project, vm_id), o.error.message)
        self.assertCode(C.NOT_FOUND, self.vm, name)
        self.assertEqual(list(self.root.vm.ListVms(vp.ListVmsRequest(
            parent="projects/" + project)).vms), [])
        self.assertGone(new)
        self.assertFree(keep.name)
        self.assertEqual(self.pool(pool).allocation_bytes, GIB)  # the new raw volume is gone
        u = usage(self.root_api, project)
        self.assertEqual((u.vms, u.volume_gib), (0, 1))
        got = events_since(self.root, seq, lambda e: e.type == ep.Event.TYPE_VM_DELETED,
                           parent="projects/" + project)
        for resource, kinds in ((name, ["TYPE_VM_CREATED", "TYPE_VM_DELETED"]),
                                (new, ["TYPE_RESOURCE_CREATED", "TYPE_RESOURCE_DELETED"])):
            self.assertEqual([ep.Event.Type.Name(e.type) for e in got if e.resource == resource],
                             kinds, resource)
        self.assertEqual(got[-1].vm.name, name)
        released = [unpack(e.other_resource) for e in got if e.resource == keep.name]
        self.assertEqual(released[0].attachment.vm, name)  # keep: reserved for the VM,
        self.assertEqual(released[-1].state, VS.STATE_READY)  # then released
        self.assertFalse(released[-1].HasField("attachment"))
        # both are free for a VM of another name
        vm, other = self.create_vm(project, vm_id="other", disks=[
            vp.VmDisk(volume=keep.name), new_disk(2, volume_id=vm_id + "-disk1", pool=pool,
                                                  format=RAW)])
        self.assertEqual(self.disks(vm), [(keep.name, "vda"), (new, "vdb")])
        self.assertEqual(self.pool(pool).allocation_bytes, 3 * GIB)
        self.verb("DeleteVm", other, delete_volumes=True)
        self.assertEqual(self.pool(pool).allocation_bytes, 0)
        delete_pool(self.root, pool)

    def test_attached_new_volume_is_named_after_its_position(self):
        """VmDiskNewVolume.volume_id: "empty means `{vm}-disk{n}` with n the
        disk's position", as CreateVm names them (disk0, disk1, ...)."""
        vm, name = self.create_vm(disks=[new_disk(1)], placement=on_default())
        vm_id = name.rsplit("/", 1)[1]
        got = self.verb("AttachVolume", name, disk=new_disk(1))
        self.assertEqual(self.disks(got), [(self.vol_name(vm_id + "-disk0"), "vda"),
                                           (self.vol_name(vm_id + "-disk1"), "vdb")])
        self.verb("DeleteVm", name, delete_volumes=True)

    def test_attach_and_detach_on_a_stopped_vm(self):
        vm, name = self.create_vm(disks=[new_disk(1)], placement=on_default())
        vm_id = name.rsplit("/", 1)[1]
        disk0, disk1 = self.vol_name(vm_id + "-disk0"), self.vol_name(vm_id + "-extra")
        x = create_volume(self.root, self.project, self.shared_pool)
        y = create_volume(self.root, self.project, self.shared_pool)
        # a new volume, created in pool `default` of the VM's host
        got = self.verb("AttachVolume", name, disk=new_disk(1, volume_id=vm_id + "-extra"))
        self.assertEqual(self.disks(got), [(disk0, "vda"), (disk1, "vdb")])
        self.assertEqual(got.state, S.STATE_STOPPED)
        self.assertAttached(disk1, name, "vdb")
        self.assertEqual(self.volume(disk1).pool, self.default_pool)
        got = self.verb("AttachVolume", name, disk=vp.VmDisk(volume=x.name, read_only=True))
        self.assertEqual(self.disks(got)[2:], [(x.name, "vdc")])
        self.assertTrue(got.disks[2].read_only)
        self.assertAttached(x.name, name, "vdc")
        got = self.verb("AttachVolume", name, disk=vp.VmDisk(volume=y.name,
                                                             bus=vp.VmDisk.BUS_SATA))
        self.assertEqual(self.disks(got)[3:], [(y.name, "sda")])
        self.assertEqual(self.disks(self.vm(name)), self.disks(got))
        # attached once only
        _, other = self.create_vm(placement=on_default())
        for vm_name in (name, other):
            self.assertCode(C.FAILED_PRECONDITION, self.root.vm.AttachVolume,
                            vp.AttachVolumeRequest(name=vm_name, disk=vp.VmDisk(volume=x.name)),
                            contains=name)
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.AttachVolume,
                        vp.AttachVolumeRequest(name=name), contains="disk")
        got = self.verb("DetachVolume", name, volume=x.name)
        self.assertEqual(self.disks(got), [(disk0, "vda"), (disk1, "vdb"), (y.name, "sda")])
        self.assertFree(x.name)
        self.assertCode(C.NOT_FOUND, self.root.vm.DetachVolume, vp.DetachVolumeRequest(
            name=name, volume=x.name), contains=x.name)
        self.assertCode(C.NOT_FOUND, self.root.vm.DetachVolume, vp.DetachVolumeRequest(
            name=other, volume=y.name), contains=y.name)
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.DetachVolume, vp.DetachVolumeRequest(
            name=name, volume="volumes/x"), contains="volume")
        # the domain boots with what is attached now
        started = self.verb("StartVm", name)
        self.assertEqual((started.state, self.disks(started)), (S.STATE_RUNNING, self.disks(got)))
        self.verb("DeleteVm", name, force=True, delete_volumes=True)
        self.verb("DeleteVm", other)
        for v in (disk0, disk1, y.name):
            self.assertGone(v)
        delete_volume(self.root, x.name)

    def test_attach_and_detach_on_a_running_vm(self):
        vm, name = self.create_vm(start=True, placement=on_default())
        x = create_volume(self.root, self.project, self.shared_pool)
        y = create_volume(self.root, self.project, self.shared_pool)
        seq = head_sequence(self.root)
        got = self.verb("AttachVolume", name, disk=vp.VmDisk(volume=x.name))
        self.assertEqual((got.state, self.disks(got)), (S.STATE_RUNNING, [(x.name, "vda")]))
        self.assertAttached(x.name, name, "vda")
        ev = self.vm_events(seq, name, lambda e: "attached" in e.message)[-1]
        self.assertIn("volume %s attached as vda" % x.name, ev.message)
        self.assertIn("after the next start", ev.message)  # the test driver cannot hot-plug
        self.assertEqual(self.disks(ev.vm), [(x.name, "vda")])
        # SATA is not hot-pluggable: refused while the VM runs or is paused
        for state in ("RUNNING", "PAUSED"):
            self.assertCode(C.FAILED_PRECONDITION, self.root.vm.AttachVolume,
                            vp.AttachVolumeRequest(name=name, disk=vp.VmDisk(
                                volume=y.name, bus=vp.VmDisk.BUS_SATA)), contains="BUS_SATA")
            self.assertFree(y.name)
            if state == "RUNNING":
                self.verb("PauseVm", name)
        self.verb("ResumeVm", name)
        got = self.verb("AttachVolume", name, disk=vp.VmDisk(volume=y.name,
                                                             bus=vp.VmDisk.BUS_SCSI))
        new_id = unique("hot")
        got = self.verb("AttachVolume", name, disk=new_disk(1, volume_id=new_id))
        self.assertEqual(self.disks(got), [(x.name, "vda"), (y.name, "sda"),
                                           (self.vol_name(new_id), "vdb")])
        got = self.verb("DetachVolume", name, volume=x.name)
        self.assertEqual(got.state, S.STATE_RUNNING)
        self.assertEqual(self.disks(got), [(y.name, "sda"), (self.vol_name(new_id), "vdb")])
        self.assertFree(x.name)
        # after a power cycle the definition holds exactly these
        self.verb("StopVm", name, force=True)
        again = self.verb("StartVm", name)
        self.assertEqual(self.disks(again), self.disks(got))
        self.verb("DeleteVm", name, force=True, delete_volumes=True)
        delete_volume(self.root, x.name)

    def test_volume_rules_while_attached(self):
        a = create_volume(self.root, self.project, self.shared_pool, size=GIB)
        _, name = self.create_vm(disks=[vp.VmDisk(volume=a.name)])
        self.assertCode(C.FAILED_PRECONDITION, self.root.storage.DeleteVolume,
                        sp.DeleteVolumeRequest(name=a.name), contains=name)
        self.assertCode(C.FAILED_PRECONDITION, self.root.storage.ResizeVolume,
                        sp.ResizeVolumeRequest(name=a.name, size_bytes=GIB // 2,
                                               allow_shrink=True), contains=name)
        grown = self.root.done(self.root.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=a.name, size_bytes=2 * GIB, request_id=rid())).operation)
        self.assertEqual((grown.size_bytes, grown.state, grown.attachment.vm),
                         (2 * GIB, VS.STATE_ATTACHED, name))
        # copies of a volume of a stopped VM are consistent
        copy = self.root.done(self.root.storage.CloneVolume(sp.CloneVolumeRequest(
            name=a.name, volume_id=unique("copy"), request_id=rid())).operation)
        self.assertEqual((copy.state, copy.size_bytes), (VS.STATE_READY, 2 * GIB))
        self.assertFalse(copy.HasField("attachment"))
        # a VM with devices stays where they are, and is not cloned
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.MigrateVm,
                        vp.MigrateVmRequest(name=name), contains="MigrateVm")
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.CloneVm,
                        vp.CloneVmRequest(name=name, vm_id=unique("c")), contains="CloneVm")
        self.verb("StartVm", name)
        self.assertCode(C.FAILED_PRECONDITION, self.root.storage.CloneVolume,
                        sp.CloneVolumeRequest(name=a.name, volume_id=unique("copy")),
                        contains=name)
        self.assertCode(C.FAILED_PRECONDITION, self.root.storage.CreateVolume,
                        sp.CreateVolumeRequest(parent="projects/" + self.project,
                                               volume_id=unique("copy"),
                                               volume=sp.Volume(pool=self.shared_pool,
                                                                source_volume=a.name)),
                        contains=name)
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.MigrateVm,
                        vp.MigrateVmRequest(name=name, live=True), contains="MigrateVm")
        # growing works while the guest runs
        grown = self.root.done(self.root.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=a.name, size_bytes=3 * GIB, request_id=rid())).operation)
        self.assertEqual((grown.size_bytes, grown.state), (3 * GIB, VS.STATE_ATTACHED))
        self.assertEqual(self.vm(name).state, S.STATE_RUNNING)
        self.assertCode(C.FAILED_PRECONDITION, self.root.storage.DeleteVolume,
                        sp.DeleteVolumeRequest(name=a.name), contains=name)
        self.verb("DeleteVm", name, force=True, delete_volumes=True)
        self.assertGone(a.name)
        delete_volume(self.root, copy.name)

    def test_delete_vm_keeps_or_deletes_its_volumes(self):
        project = make_project(self.root_api, "dv")
        pool = create_pool(self.root).name
        k = create_volume(self.root, project, pool, "k", 2 * GIB, format=RAW)
        _, first = self.create_vm(project, vm_id="first", disks=[
            new_disk(1, pool=pool), vp.VmDisk(volume=k.name)])
        d0 = self.vol_name("first-disk0", project)
        self.assertEqual(usage(self.root_api, project).volume_gib, 3)
        last = self.verb("DeleteVm", first)
        self.assertEqual(last.state, S.STATE_DELETING)
        for v in (d0, k.name):
            self.assertFree(v)
        u = usage(self.root_api, project)
        self.assertEqual((u.vms, u.volume_gib), (0, 3))
        # kept volumes serve the next VM
        vm, second = self.create_vm(project, vm_id="second", disks=[
            vp.VmDisk(volume=k.name), vp.VmDisk(volume=d0)])
        self.assertEqual(self.disks(vm), [(k.name, "vda"), (d0, "vdb")])
        self.assertCode(C.FAILED_PRECONDITION, self.root_api.DeleteProject,
                        ip.DeleteProjectRequest(name="projects/" + project))
        self.assertEqual(self.pool(pool).allocation_bytes, 2 * GIB)
        self.verb("DeleteVm", second, delete_volumes=True)
        for v in (d0, k.name):
            self.assertGone(v)
        self.assertEqual(self.pool(pool).allocation_bytes, 0)  # gone from the host too
        u = usage(self.root_api, project)
        self.assertEqual((u.vms, u.volume_gib), (0, 0))
        self.root_api.DeleteProject(ip.DeleteProjectRequest(name="projects/" + project,
                                                            request_id=rid()))
        delete_pool(self.root, pool)


# ---------------------------------------------------------------- NICs


class Nics(Base):
    def nics(self, vm):
        return [(n.network, n.mac) for n in vm.nics]

    def test_create_vm_with_nics(self):
        project = make_project(self.root_api, "nc")
        net = create_network(self.root, project, "10.71.1.0/24")
        self.assertEqual((net.host, net.state), ("hosts/default", np_.Network.STATE_ACTIVE))
        mac = "52:54:00:aa:00:01"
        vm, name = self.create_vm(project, nics=[
            vp.VmNic(network=net.name),
            vp.VmNic(network=net.name, mac=mac, model=vp.VmNic.MODEL_E1000, boot_index=1)])
        self.assertEqual(vm.host, "hosts/default")  # the network's host
        self.assertRegex(vm.nics[0].mac, MAC_RE)
        self.assertNotEqual(vm.nics[0].mac, mac)
        self.assertEqual([n.network for n in vm.nics], [net.name, net.name])
        self.assertEqual((vm.nics[1].mac, vm.nics[1].model, vm.nics[1].boot_index),
                         (mac, vp.VmNic.MODEL_E1000, 1))
        self.assertEqual(self.nics(self.vm(name)), self.nics(vm))
        self.assertEqual(usage(self.root_api, project).networks, 1)
        started = self.verb("StartVm", name)
        self.assertEqual((started.state, self.nics(started)), (S.STATE_RUNNING, self.nics(vm)))
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.MigrateVm,
                        vp.MigrateVmRequest(name=name), contains="MigrateVm")
        # the network is in use
        self.assertCode(C.FAILED_PRECONDITION, self.root.net.DeleteNetwork,
                        np_.DeleteNetworkRequest(name=net.name), contains=name.rsplit("/", 1)[1])
        self.verb("DeleteVm", name, force=True)
        delete_network(self.root, net.name)
        self.assertEqual(usage(self.root_api, project).networks, 0)

    def test_attach_and_detach_nics(self):
        net = create_network(self.root, self.project, "10.71.2.0/24")
        _, name = self.create_vm(placement=on_default())
        got = self.verb("AttachNic", name, nic=vp.VmNic(network=net.name))
        self.assertEqual(len(got.nics), 1)
        first = got.nics[0].mac
        self.assertRegex(first, MAC_RE)
        m = "52:54:00:aa:00:02"
        got = self.verb("AttachNic", name, nic=vp.VmNic(network=net.name, mac=m,
                                                        model=vp.VmNic.MODEL_E1000))
        self.assertEqual(self.nics(got), [(net.name, first), (net.name, m)])
        self.assertCode(C.ALREADY_EXISTS, self.root.vm.AttachNic, vp.AttachNicRequest(
            name=name, nic=vp.VmNic(network=net.name, mac=m)), contains=m)
        for bad, part in (("52:54:00:AA:00:03", "mac"), ("01:00:5e:00:00:01", "mac"),
                          ("52:54:00:aa:00", "mac")):
            self.assertCode(C.INVALID_ARGUMENT, self.root.vm.AttachNic, vp.AttachNicRequest(
                name=name, nic=vp.VmNic(network=net.name, mac=bad)), contains=part)
        self.assertCode(C.NOT_FOUND, self.root.vm.AttachNic, vp.AttachNicRequest(
            name=name, nic=vp.VmNic(network="projects/%s/networks/nope" % self.project)),
            contains="nope")
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.AttachNic, vp.AttachNicRequest(
            name=name, nic=vp.VmNic()), contains="network")
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.AttachNic,
                        vp.AttachNicRequest(name=name), contains="nic")
        # on a running VM (the test driver keeps it for the next start)
        self.verb("StartVm", name)
        seq = head_sequence(self.root)
        hot = "52:54:00:aa:00:03"
        got = self.verb("AttachNic", name, nic=vp.VmNic(network=net.name, mac=hot))
        self.assertEqual((got.state, self.nics(got)[2:]), (S.STATE_RUNNING, [(net.name, hot)]))
        ev = self.vm_events(seq, name, lambda e: hot in e.message)[-1]
        self.assertIn("after the next start", ev.message)
        got = self.verb("DetachNic", name, mac=m)
        self.assertEqual((got.state, self.nics(got)),
                         (S.STATE_RUNNING, [(net.name, first), (net.name, hot)]))
        self.assertCode(C.NOT_FOUND, self.root.vm.DetachNic, vp.DetachNicRequest(
            name=name, mac=m), contains=m)
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.DetachNic, vp.DetachNicRequest(
            name=name, mac="nope"), contains="mac")
        # the MAC is free again
        got = self.verb("AttachNic", name, nic=vp.VmNic(network=net.name, mac=m))
        self.assertEqual(self.nics(got)[2:], [(net.name, m)])
        self.verb("StopVm", name, force=True)
        again = self.verb("StartVm", name)
        self.assertEqual(self.nics(again), self.nics(got))
        self.verb("DeleteVm", name, force=True)
        delete_network(self.root, net.name)

    def test_networks_pin_the_vm_and_errors(self):
        project = make_project(self.root_api, "np")
        parent = "projects/" + project
        host, _ = private_host(self.root)
        far = create_network(self.root, project, "10.71.3.0/24", host=host)
        near = create_network(self.root, project, "10.71.4.0/24")
        theirs = create_network(self.root, make_project(self.root_api, "nt"), "10.71.5.0/24")
        vol = create_volume(self.root, project, self.shared_pool)
        vm, name = self.create_vm(project, nics=[vp.VmNic(network=far.name)])
        self.assertEqual(vm.host, "hosts/" + host)
        m = "52:54:00:aa:00:04"
        cases = [
            ([vp.VmNic(network=far.name)], [], on_default(), C.FAILED_PRECONDITION,
             ["placement.host", host]),
            ([vp.VmNic(network=far.name)], [vp.VmDisk(volume=vol.name)], None,
             C.FAILED_PRECONDITION, ["hosts/" + host, "hosts/default"]),
            ([vp.VmNic(network=far.name), vp.VmNic(network=near.name)], [], None,
             C.FAILED_PRECONDITION, ["hosts/" + host, "hosts/default"]),
            ([vp.VmNic(network=theirs.name)], [], None, C.INVALID_ARGUMENT,
             ["nics[0].network"]),
            ([vp.VmNic(network=parent + "/networks/nope")], [], None, C.NOT_FOUND, ["nope"]),
            ([vp.VmNic(network="networks/x")], [], None, C.INVALID_ARGUMENT,
             ["nics[0].network"]),
            ([vp.VmNic(network=near.name, mac=m), vp.VmNic(network=near.name, mac=m)], [],
             None, C.ALREADY_EXISTS, [m]),
            ([vp.VmNic(network=near.name, mac="52:54:00:AA:00:04")], [], None,
             C.INVALID_ARGUMENT, ["nics[0].mac"]),
            ([vp.VmNic(network=near.name, model=5)], [], None, C.INVALID_ARGUMENT,
             ["nics[0].model"]),
            ([vp.VmNic(network=near.name)] * 9, [], None, C.INVALID_ARGUMENT, ["nics"]),
        ]
        for nics, disks, placement, code, parts in cases:
            with self.subTest(nics=[str(n) for n in nics[:2]]):
                self.assertCode(code, self.root.vm.CreateVm, self.create_req(
                    project, nics=nics, disks=disks, placement=placement), contains=parts)
        # a NIC on another host's network cannot be attached
        _, here = self.create_vm(project, placement=on_default())
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.AttachNic, vp.AttachNicRequest(
            name=here, nic=vp.VmNic(network=far.name)), contains="hosts/" + host)
        self.assertEqual(len(self.vm(here).nics), 0)
        u = usage(self.root_api, project)
        self.assertEqual((u.vms, u.networks), (2, 2))
        for n in (name, here):
            self.verb("DeleteVm", n)
        for net in (far, near, theirs):
            delete_network(self.root, net.name)
        delete_volume(self.root, vol.name)


class ConfigDrive(Base):
    """Vm.user_data: a cloud-init NoCloud drive written into --default-pool
    on the VM's host (the qemu stage reads it back; the test driver keeps
    no data)."""

    USER_DATA = "#cloud-config\nhostname: seeded\n"

    def test_config_drive_lifecycle(self):
        host, _ = private_host(self.root)
        pool = create_pool(self.root, host, pool_id="default").name
        vm, name = self.create_vm(user_data=self.USER_DATA, start=True,
                                  placement=vp.VmPlacement(host="hosts/" + host))
        self.assertEqual((vm.state, vm.user_data, vm.host),
                         (S.STATE_RUNNING, self.USER_DATA, "hosts/" + host))
        self.assertEqual(len(vm.disks), 0)  # the drive is not a volume
        # it lives in the pool of the VM's host: the VM cannot leave it
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.MigrateVm,
                        vp.MigrateVmRequest(name=name), contains="config drive")
        self.verb("StopVm", name, force=True)
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.CloneVm,
                        vp.CloneVmRequest(name=name, vm_id=unique("c")), contains="config drive")
        # and the pool cannot go while it holds the drive
        self.assertCode(C.FAILED_PRECONDITION, self.root.storage.DeletePool,
                        sp.DeletePoolRequest(name=pool),
                        contains=["config drive", name.split("/", 1)[1]])
        self.assertEqual(self.verb("StartVm", name).state, S.STATE_RUNNING)
        self.verb("DeleteVm", name, force=True)
        delete_pool(self.root, pool)

    def test_a_host_without_the_default_pool_is_refused(self):
        host, _ = private_host(self.root)
        self.assertCode(C.FAILED_PRECONDITION, self.root.vm.CreateVm, self.create_req(
            user_data=self.USER_DATA, placement=vp.VmPlacement(host="hosts/" + host)),
            contains=["user_data", "hosts/%s/pools/default" % host, "--default-pool"])
        # without user data no drive is needed
        _, name = self.create_vm(placement=vp.VmPlacement(host="hosts/" + host))
        self.verb("DeleteVm", name, force=True)
        self.assertCode(C.INVALID_ARGUMENT, self.root.vm.CreateVm, self.create_req(
            user_data="x" * (64 * 1024 + 1)), contains="user_data")


class NicState(Base):
    """VmNic.target_device and ip_addresses: what the host shows, recorded
    by the operations that change the VM's power and by the reconciler."""

    @classmethod
    def setUpClass(cls):
        cls.srv, cls.ch, cls.root_api, cls.root = start_server(
            cls.__name__, None, "--reconcile-interval-s", "1")
        cls.project = make_project(cls.root_api, "ns")

    def targets(self, vm):
        return [n.target_device for n in vm.nics]

    def wait_targets(self, name, want):
        deadline = time.monotonic() + 15
        while self.targets(self.vm(name)) != want and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.targets(self.vm(name)), want)

    def test_devices_follow_the_power_state(self):
        net = create_network(self.root, self.project, "10.71.9.0/24")
        # output-only fields in a request are ignored
        vm, name = self.create_vm(nics=[
            vp.VmNic(network=net.name, target_device="vnet99", ip_addresses=["10.71.9.50"]),
            vp.VmNic(network=net.name)])
        self.assertEqual(self.targets(vm), ["", ""])
        self.assertEqual([list(n.ip_addresses) for n in vm.nics], [[], []])
        started = self.verb("StartVm", name)
        t = self.targets(started)
        self.assertTrue(all(x.startswith("testnet") for x in t), t)
        self.assertEqual(len(set(t)), 2, t)
        got = self.vm(name)
        self.assertEqual(self.targets(got), t)
        # the test driver runs no DHCP server: no lease, no address
        self.assertEqual([list(n.ip_addresses) for n in got.nics], [[], []])
        listed = [v for v in self.root.vm.ListVms(vp.ListVmsRequest(
            parent="projects/" + self.project)).vms if v.name == name]
        self.assertEqual(self.targets(listed[0]), t)
        # a stale record is put right by the reconciler, without a new etag
        psql(self.srv.database_url, "UPDATE vm_nics SET target_device = 'stale'")
        self.assertEqual(self.targets(self.vm(name)), ["stale", "stale"])
        self.wait_targets(name, t)
        self.assertEqual(self.vm(name).etag, got.etag)
        self.assertEqual(self.targets(self.verb("PauseVm", name)), t)
        self.assertEqual(self.targets(self.verb("StopVm", name, force=True)), ["", ""])
        # CreateVm with start records them too
        self.verb("DeleteVm", name, force=True)
        started = self.create_vm(nics=[vp.VmNic(network=net.name)], start=True)[0]
        self.assertEqual(started.state, S.STATE_RUNNING)
        self.assertRegex(started.nics[0].target_device, r"^testnet\d+$")
        self.verb("DeleteVm", started.name, force=True)
        delete_network(self.root, net.name)


if __name__ == "__main__":
    unittest.main()
