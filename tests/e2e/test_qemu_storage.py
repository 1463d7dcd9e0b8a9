"""The real-hypervisor stage for storage and networks: a `dir` pool in a
temporary directory, qcow2 and raw volumes (one imported from an image made
with qemu-img) hot-plugged into a running qemu VM and grown while attached,
an isolated network whose static DHCP reservation is handed to a real DHCP
client (dhcp_client.py, in a network namespace plugged into the network's
bridge: a guest without an OS has no DHCP client, and iPXE does not run
under every nested KVM), and failures in the middle of a create that leave
no row and no libvirt object behind.

Runs only in the stage (ctest label `qemu`, NC_QEMU_URI set by
scripts/test)."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import grpc
from google.protobuf import field_mask_pb2

import dhcp_client
import harness
import image_server
from compute import C, Client, hp, np_, op, register_host, rid, sp, unique, vp
from harness import Server
from identity import admin, make_project

URI = os.environ.get("NC_QEMU_URI", "")
MIB = 1 << 20


def virsh(*args, check=True):
    r = subprocess.run(["virsh", "-c", URI] + list(args), capture_output=True, text=True,
                       timeout=60)
    if check and r.returncode != 0:
        raise AssertionError("virsh %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def qemu_img_info(path):
    r = subprocess.run(["qemu-img", "info", "--force-share", "--output=json", path],
                       capture_output=True, text=True, timeout=60, check=True)
    return json.loads(r.stdout)


@unittest.skipUnless(URI, "the real-hypervisor stage is not set up (NC_QEMU_URI)")
class QemuStorage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = harness.create_database("qemust")
        # qemu runs as root in the stage; the directories only need to exist
        cls.dir = tempfile.mkdtemp(prefix="nc-qemu-storage-", dir="/var/tmp")
        os.chmod(cls.dir, 0o755)
        cls.images = os.path.join(cls.dir, "images")
        os.mkdir(cls.images)
        cls.web = image_server.ImageServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.web.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.srv = Server("--replica-id", "qemu-st", "--rate-limit-rps", "0",
                          "--default-host-uri", "", "--storage-image-dirs", self.images,
                          "--default-pool", "qs-default", "--reconcile-interval-s", "1",
                          "--storage-image-urls", self.web.url("/img/"),
                          "--device-detach-timeout-s", "2",
                          name="qemu-storage", database_url=self.db).start()
        self.ch = self.srv.channel()
        self.api = admin(self.srv, self.ch)
        self.cl = Client(self.ch, self.api.token)
        hosts = self.cl.host.ListHosts(hp.ListHostsRequest()).hosts
        if not any(h.uri == URI for h in hosts):
            register_host(self.cl, "qemu", URI)
        self.project = make_project(self.api, "qs")
        self.pools = []

    def tearDown(self):
        try:
            parent = "projects/" + self.project
            for v in self.cl.vm.ListVms(vp.ListVmsRequest(parent=parent)).vms:
                self.cl.wait(self.cl.vm.DeleteVm(vp.DeleteVmRequest(
                    name=v.name, force=True)).operation, timeout=120)
            for v in self.cl.storage.ListVolumes(sp.ListVolumesRequest(parent=parent)).volumes:
                self.cl.wait(self.cl.storage.DeleteVolume(sp.DeleteVolumeRequest(
                    name=v.name)).operation, timeout=120)
            for n in self.cl.net.ListNetworks(np_.ListNetworksRequest(parent=parent)).networks:
                self.cl.wait(self.cl.net.DeleteNetwork(np_.DeleteNetworkRequest(
                    name=n.name)).operation, timeout=120)
            for p in self.pools:
                try:
                    self.cl.wait(self.cl.storage.DeletePool(sp.DeletePoolRequest(
                        name=p, delete_storage=True)).operation, timeout=120)
                except grpc.RpcError:
                    pass
        except (grpc.RpcError, AssertionError) as e:
            print("tearDown: cleaning up failed: %s" % e)
        self.ch.close()
        harness.stop_and_assert(self.srv)

    # ---- helpers ----

    def pool(self, pool_id, path):
        o = self.cl.storage.CreatePool(sp.CreatePoolRequest(
            parent="hosts/qemu", pool_id=pool_id,
            pool=sp.Pool(type=sp.Pool.TYPE_DIR, target_path=path), request_id=rid())).operation
        p = self.cl.done(o, timeout=120)
        self.pools.append(p.name)
        return p

    def volume(self, vol_id, pool, **kw):
        o = self.cl.storage.CreateVolume(sp.CreateVolumeRequest(
            parent="projects/" + self.project, volume_id=vol_id,
            volume=sp.Volume(pool=pool, **kw), request_id=rid())).operation
        return self.cl.done(o, timeout=180)

    def vm_verb(self, method, name, **kw):
        req = getattr(vp, method + "Request")(name=name, request_id=rid(), **kw)
        return self.cl.done(getattr(self.cl.vm, method)(req).operation, timeout=180)

    def blklist(self, uid):
        """{target: source} of the running domain."""
        out = {}
        for line in virsh("domblklist", uid).splitlines()[2:]:
            parts = line.split()
            if len(parts) == 2:
                out[parts[0]] = parts[1]
        return out

    # ---- tests ----

    def test_dir_pool_volumes_hotplug_and_live_grow(self):
        path = os.path.join(self.dir, "pool-a")
        p = self.pool("qs-a", path)
        self.assertEqual(p.state, sp.Pool.STATE_ACTIVE)
        self.assertTrue(os.path.isdir(path), "the pool's directory was built")
        self.assertGreater(p.capacity_bytes, 0)
        self.assertIn("qs-a", virsh("pool-list", "--name"))
        got = self.cl.storage.GetPool(sp.GetPoolRequest(name=p.name)).pool
        self.assertGreater(got.available_bytes, 0)

        q = self.volume("data", p.name, size_bytes=64 * MIB,
                        format=sp.Volume.FORMAT_QCOW2)
        vol_path = os.path.join(path, "%s.data" % self.project)
        info = qemu_img_info(vol_path)
        self.assertEqual(info["format"], "qcow2")
        self.assertEqual(info["virtual-size"], 64 * MIB)

        # an image made with qemu-img, imported and converted to raw
        image = os.path.join(self.images, "base.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", image, "32M"], check=True)
        raw = self.volume("imported", p.name, format=sp.Volume.FORMAT_RAW, source_image=image)
        self.assertEqual(raw.size_bytes, 32 * MIB)
        info = qemu_img_info(os.path.join(path, "%s.imported" % self.project))
        self.assertEqual(info["format"], "raw")
        self.assertEqual(info["virtual-size"], 32 * MIB)
        # outside --storage-image-dirs: refused before anything is made
        with self.assertRaises(grpc.RpcError) as e:
            self.cl.storage.CreateVolume(sp.CreateVolumeRequest(
                parent="projects/" + self.project, volume_id="nope",
                volume=sp.Volume(pool=p.name, source_image="/etc/hostname"), request_id=rid()))
        self.assertEqual(e.exception.code(), C.PERMISSION_DENIED)

        # a running diskless VM gets the qcow2 volume hot-plugged
        o = self.cl.vm.CreateVm(vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id="hot", start=True,
            vm=vp.Vm(vcpus=1, memory_mib=128), request_id=rid())).operation
        vm = self.cl.done(o, timeout=180)
        self.assertEqual(vm.state, vp.Vm.STATE_RUNNING)
        vm = self.vm_verb("AttachVolume", vm.name, disk=vp.VmDisk(volume=q.name))
        self.assertEqual([(d.volume, d.target_device) for d in vm.disks], [(q.name, "vda")])
        self.assertEqual(self.blklist(vm.uid).get("vda"), vol_path,
                         "the disk is in the LIVE definition")
        got = self.cl.storage.GetVolume(sp.GetVolumeRequest(name=q.name)).volume
        self.assertEqual(got.state, sp.Volume.STATE_ATTACHED)
        self.assertEqual(got.attachment.vm, vm.name)
        self.assertEqual(got.attachment.target_device, "vda")

        # grown while attached: the running guest's disk grows (block resize)
        grown = self.cl.done(self.cl.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=q.name, size_bytes=128 * MIB, request_id=rid())).operation, timeout=120)
        self.assertEqual(grown.size_bytes, 128 * MIB)
        cap = [ln for ln in virsh("domblkinfo", vm.uid, "vda").splitlines()
               if ln.startswith("Capacity:")]
        self.assertEqual(int(cap[0].split()[1]), 128 * MIB)
        # shrinking an attached volume is refused
        with self.assertRaises(grpc.RpcError) as e:
            self.cl.storage.ResizeVolume(sp.ResizeVolumeRequest(
                name=q.name, size_bytes=64 * MIB, allow_shrink=True, request_id=rid()))
        self.assertEqual(e.exception.code(), C.FAILED_PRECONDITION)
        # deleting an attached volume is refused
        with self.assertRaises(grpc.RpcError) as e:
            self.cl.storage.DeleteVolume(sp.DeleteVolumeRequest(name=q.name))
        self.assertEqual(e.exception.code(), C.FAILED_PRECONDITION)

        # a guest without an OS does not release a hot-plugged disk: the
        # detach times out and changes nothing, in libvirt or in NovaCron
        o = self.cl.wait(self.cl.vm.DetachVolume(vp.DetachVolumeRequest(
            name=vm.name, volume=q.name, request_id=rid())).operation, timeout=120)
        self.assertEqual(o.state, op.Operation.STATE_FAILED)
        self.assertEqual(o.error.code, grpc.StatusCode.DEADLINE_EXCEEDED.value[0], o.error.message)
        self.assertIn("stays attached", o.error.message)
        self.assertEqual(self.cl.storage.GetVolume(sp.GetVolumeRequest(name=q.name)).volume.state,
                         sp.Volume.STATE_ATTACHED)
        self.assertEqual([d.volume for d in self.cl.vm.GetVm(vp.GetVmRequest(
            name=vm.name)).vm.disks], [q.name])
        self.assertIn(vol_path, virsh("dumpxml", "--inactive", vm.uid))
        self.assertEqual(self.blklist(vm.uid).get("vda"), vol_path)
        # stopped, the detach changes the definition
        self.vm_verb("StopVm", vm.name, force=True)
        vm = self.vm_verb("DetachVolume", vm.name, volume=q.name)
        self.assertEqual(list(vm.disks), [])
        self.assertNotIn(vol_path, virsh("dumpxml", "--inactive", vm.uid))
        self.assertEqual(self.cl.storage.GetVolume(sp.GetVolumeRequest(name=q.name)).volume.state,
                         sp.Volume.STATE_READY)

        # wiped and deleted: the file is gone
        self.cl.done(self.cl.storage.DeleteVolume(sp.DeleteVolumeRequest(
            name=q.name, wipe=True, request_id=rid())).operation, timeout=120)
        self.assertFalse(os.path.exists(vol_path))
        # the pool holds a volume still: refused; then emptied and removed
        with self.assertRaises(grpc.RpcError) as e:
            self.cl.storage.DeletePool(sp.DeletePoolRequest(name=p.name))
        self.assertEqual(e.exception.code(), C.FAILED_PRECONDITION)
        self.cl.done(self.cl.storage.DeleteVolume(sp.DeleteVolumeRequest(
            name=raw.name, request_id=rid())).operation, timeout=120)
        self.cl.done(self.cl.storage.DeletePool(sp.DeletePoolRequest(
            name=p.name, delete_storage=True, request_id=rid())).operation, timeout=120)
        self.pools.remove(p.name)
        self.assertFalse(os.path.exists(path), "delete_storage removed the directory")
        self.assertNotIn("qs-a", virsh("pool-list", "--all", "--name"))

    def test_images_downloaded_from_a_url(self):
        """The bytes travel: an image served over HTTP, uploaded into the
        pool, converted, compared with qemu-img; one with a backing file is
        refused and leaves no file behind."""
        path = os.path.join(self.dir, "pool-url")
        p = self.pool("qs-url", path)
        src = os.path.join(self.images, "web.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", src, "48M"], check=True)
        subprocess.run(["qemu-io", "-c", "write -P 0xab 1M 2M", "-c", "write -P 0x5c 40M 1M", src],
                       check=True, capture_output=True)
        with open(src, "rb") as f:
            self.web.files["/img/web.qcow2"] = f.read()
        url = self.web.url("/img/web.qcow2")
        for fmt, name in ((sp.Volume.FORMAT_QCOW2, "fromweb"), (sp.Volume.FORMAT_RAW, "fromwebraw")):
            v = self.volume(name, p.name, format=fmt, source_image=url)
            self.assertEqual((v.size_bytes, v.source_image), (48 * MIB, url))
            file = os.path.join(path, "%s.%s" % (self.project, name))
            info = qemu_img_info(file)
            self.assertEqual((info["format"], info["virtual-size"]),
                             ("qcow2" if fmt == sp.Volume.FORMAT_QCOW2 else "raw", 48 * MIB))
            r = subprocess.run(["qemu-img", "compare", "--force-share", src, file],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # a qcow2 image whose backing file is a host file: refused
        evil = os.path.join(self.images, "evil.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b",
                        "/etc/hostname", evil], check=True)
        with open(evil, "rb") as f:
            self.web.files["/img/evil.qcow2"] = f.read()
        o = self.cl.wait(self.cl.storage.CreateVolume(sp.CreateVolumeRequest(
            parent="projects/" + self.project, volume_id="evil",
            volume=sp.Volume(pool=p.name, source_image=self.web.url("/img/evil.qcow2")),
            request_id=rid())).operation, timeout=180)
        self.assertEqual(o.state, op.Operation.STATE_FAILED)
        self.assertIn("backing file", o.error.message)
        # formats other than qcow2 and raw (a VMDK can name host files as
        # extents) are refused
        vmdk = os.path.join(self.images, "disk.vmdk")
        subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", vmdk, "16M"], check=True)
        with open(vmdk, "rb") as f:
            self.web.files["/img/disk.vmdk"] = f.read()
        o = self.cl.wait(self.cl.storage.CreateVolume(sp.CreateVolumeRequest(
            parent="projects/" + self.project, volume_id="vmdk",
            volume=sp.Volume(pool=p.name, source_image=self.web.url("/img/disk.vmdk")),
            request_id=rid())).operation, timeout=180)
        self.assertEqual(o.state, op.Operation.STATE_FAILED)
        self.assertIn("only qcow2 and raw", o.error.message)
        self.assertEqual(sorted(os.listdir(path)),
                         sorted("%s.%s" % (self.project, n) for n in ("fromweb", "fromwebraw")))

    def test_user_data_reaches_the_guest_as_a_nocloud_drive(self):
        """cloud-init's NoCloud source: an ISO 9660 volume labelled cidata
        with user-data and meta-data, on a disk of the running domain."""
        path = os.path.join(self.dir, "pool-seed")
        self.pool("qs-default", path)
        user_data = "#cloud-config\nhostname: seeded\nruncmd:\n  - [touch, /run/seeded]\n"
        vm = self.cl.done(self.cl.vm.CreateVm(vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id="seeded", start=True,
            vm=vp.Vm(vcpus=1, memory_mib=128, user_data=user_data),
            request_id=rid())).operation, timeout=180)
        self.assertEqual(vm.state, vp.Vm.STATE_RUNNING)
        drive = os.path.join(path, "%s.seeded.cidata" % self.project)
        self.assertEqual(self.blklist(vm.uid).get("vdz"), drive)
        self.assertIn("<readonly/>", virsh("dumpxml", vm.uid))
        blkid = subprocess.run(["blkid", "-o", "export", drive], capture_output=True,
                               text=True, check=True).stdout
        self.assertIn("LABEL=cidata", blkid)
        self.assertIn("TYPE=iso9660", blkid)

        def member(name):
            return subprocess.run(["bsdtar", "-xOf", drive, name], capture_output=True,
                                  text=True, check=True).stdout
        self.assertEqual(member("user-data"), user_data)
        self.assertEqual(member("meta-data"),
                         "instance-id: %s\nlocal-hostname: seeded\n" % vm.uid)
        # the read-only drive is left out of snapshots (qemu cannot snapshot
        # a raw disk): the VM still takes them
        snap = self.cl.done(self.cl.vm.CreateSnapshot(vp.CreateSnapshotRequest(
            parent=vm.name, snapshot_id="s1", request_id=rid())).operation, timeout=180)
        self.assertTrue(snap.name.endswith("/snapshots/s1"))
        # deleted with the VM
        self.cl.done(self.cl.vm.DeleteVm(vp.DeleteVmRequest(
            name=vm.name, force=True, request_id=rid())).operation, timeout=180)
        self.assertFalse(os.path.exists(drive))

    def test_vm_created_with_a_new_volume_boots_from_it(self):
        p = self.pool("qs-default", os.path.join(self.dir, "pool-default"))
        o = self.cl.vm.CreateVm(vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id="withdisk", start=True,
            vm=vp.Vm(vcpus=1, memory_mib=128, disks=[vp.VmDisk(
                new_volume=vp.VmDiskNewVolume(size_gib=1))]), request_id=rid())).operation
        vm = self.cl.done(o, timeout=180)
        self.assertEqual(vm.state, vp.Vm.STATE_RUNNING)
        vol = "projects/%s/volumes/withdisk-disk0" % self.project
        self.assertEqual(vm.disks[0].volume, vol)
        path = os.path.join(self.dir, "pool-default", "%s.withdisk-disk0" % self.project)
        self.assertEqual(self.blklist(vm.uid).get("vda"), path)
        self.assertEqual(qemu_img_info(path)["virtual-size"], 1 << 30)
        # deleted with its volumes: the file goes too
        self.cl.done(self.cl.vm.DeleteVm(vp.DeleteVmRequest(
            name=vm.name, force=True, delete_volumes=True, request_id=rid())).operation,
            timeout=180)
        self.assertFalse(os.path.exists(path))
        with self.assertRaises(grpc.RpcError) as e:
            self.cl.storage.GetVolume(sp.GetVolumeRequest(name=vol))
        self.assertEqual(e.exception.code(), C.NOT_FOUND)
        self.assertEqual(p.state, sp.Pool.STATE_ACTIVE)

    def test_isolated_network_reservation_reaches_a_dhcp_client(self):
        mac = "52:54:00:4e:43:01"
        o = self.cl.net.CreateNetwork(np_.CreateNetworkRequest(
            parent="projects/" + self.project, network_id="iso",
            network=np_.Network(host="hosts/qemu", mode=np_.Network.MODE_ISOLATED,
                                ipv4_cidr="10.213.77.0/24", dhcp_start="10.213.77.100",
                                dhcp_end="10.213.77.200"),
            reservations=[np_.Network.Reservation(mac=mac, ip="10.213.77.50",
                                                  hostname="pxe")],
            request_id=rid())).operation
        net = self.cl.done(o, timeout=120)
        self.assertEqual(net.state, np_.Network.STATE_ACTIVE)
        lvname = "%s.iso" % self.project
        xml = virsh("net-dumpxml", lvname)
        self.assertIn("10.213.77.50", xml)
        self.assertIn(mac, xml)
        self.assertNotIn("<forward", xml, "isolated: no forwarding")
        # a second reservation, added to the running network (virNetworkUpdate)
        net = self.cl.done(self.cl.net.AddReservation(np_.AddReservationRequest(
            name=net.name, reservation=np_.Network.Reservation(mac="52:54:00:4e:43:02",
                                                               ip="10.213.77.51"),
            request_id=rid())).operation, timeout=120)
        self.assertIn("10.213.77.51", virsh("net-dumpxml", lvname))
        self.assertEqual(len(net.reservations), 2)
        net = self.cl.net.GetNetwork(np_.GetNetworkRequest(name=net.name)).network

        # a running VM with a NIC on the network: plugged into its bridge
        o = self.cl.vm.CreateVm(vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id="onnet", start=True,
            vm=vp.Vm(vcpus=1, memory_mib=128, nics=[vp.VmNic(network=net.name)]),
            request_id=rid())).operation
        vm = self.cl.done(o, timeout=180)
        self.assertTrue(vm.nics[0].mac.startswith("52:54:00:"))
        self.assertIn(lvname, virsh("domiflist", vm.uid))
        self.assertTrue(net.bridge.startswith("ncbr"), net.bridge)
        self.assertIn(net.bridge, virsh("domiflist", vm.uid) + virsh("net-info", lvname))
        # the NIC's host-side device, as libvirt lists it
        devs = [line.split()[0] for line in virsh("domiflist", vm.uid).splitlines()[2:]
                if line.split()]
        self.assertRegex(vm.nics[0].target_device, r"^vnet\d+$")
        self.assertEqual(devs, [vm.nics[0].target_device])
        self.assertEqual(self.cl.vm.GetVm(vp.GetVmRequest(name=vm.name)).vm.nics[0].target_device,
                         vm.nics[0].target_device)
        # a stopped VM whose NIC has the MAC the dynamic client below uses:
        # its address comes from that real lease
        other = "52:54:00:4e:43:77"
        parked = self.cl.done(self.cl.vm.CreateVm(vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id="parked",
            vm=vp.Vm(vcpus=1, memory_mib=128, nics=[vp.VmNic(network=net.name, mac=other)]),
            request_id=rid())).operation, timeout=180)
        self.assertEqual((parked.nics[0].target_device, list(parked.nics[0].ip_addresses)),
                         ("", []))

        # real DHCP clients on the network's bridge: the reserved MAC gets
        # its reserved address, another one an address from the range
        self.assertEqual(dhcp_client.lease(net.bridge, mac), "10.213.77.50")
        dynamic = dhcp_client.lease(net.bridge, other)
        self.assertTrue(100 <= int(dynamic.rsplit(".", 1)[1]) <= 200, dynamic)
        leases = {}
        deadline = time.monotonic() + 30  # libvirt's lease helper runs after the ACK
        while time.monotonic() < deadline and len(leases) < 2:
            leases = {x.mac: x for x in self.cl.net.ListLeases(
                np_.ListLeasesRequest(parent=net.name)).leases}
            if len(leases) < 2:
                time.sleep(0.5)
        self.assertEqual(leases[mac].ip, "10.213.77.50")
        self.assertTrue(leases[mac].reserved)
        self.assertEqual(leases[mac].hostname, "pxe")
        self.assertGreater(leases[mac].expire_time.seconds, time.time())
        self.assertEqual(leases[other].ip, dynamic)
        self.assertFalse(leases[other].reserved)
        # filters and order apply to live leases
        only = self.cl.net.ListLeases(np_.ListLeasesRequest(
            parent=net.name, filter="reserved = true")).leases
        self.assertEqual([x.mac for x in only], [mac])
        ordered = self.cl.net.ListLeases(np_.ListLeasesRequest(
            parent=net.name, order_by="ip desc")).leases
        self.assertEqual([x.ip for x in ordered][0], dynamic)
        # the reconciler records the lease on the VM's NIC
        deadline = time.monotonic() + 30
        ips = []
        while time.monotonic() < deadline and not ips:
            ips = list(self.cl.vm.GetVm(vp.GetVmRequest(name=parked.name)).vm.nics[0].ip_addresses)
            if not ips:
                time.sleep(0.5)
        self.assertEqual(ips, [dynamic])
        self.cl.done(self.cl.vm.DeleteVm(vp.DeleteVmRequest(
            name=parked.name, request_id=rid())).operation, timeout=180)

        # in use: the network cannot go while the VM's NIC is on it
        with self.assertRaises(grpc.RpcError) as e:
            self.cl.net.DeleteNetwork(np_.DeleteNetworkRequest(name=net.name))
        self.assertEqual(e.exception.code(), C.FAILED_PRECONDITION)
        net = self.cl.done(self.cl.net.RemoveReservation(np_.RemoveReservationRequest(
            name=net.name, mac="52:54:00:4e:43:02", request_id=rid())).operation, timeout=120)
        self.assertNotIn("10.213.77.51", virsh("net-dumpxml", lvname))
        self.cl.done(self.cl.vm.DeleteVm(vp.DeleteVmRequest(
            name=vm.name, force=True, request_id=rid())).operation, timeout=180)
        self.cl.done(self.cl.net.DeleteNetwork(np_.DeleteNetworkRequest(
            name=net.name, request_id=rid())).operation, timeout=120)
        self.assertNotIn(lvname, virsh("net-list", "--all", "--name"))

    def test_reservations_reach_dnsmasq_only_with_a_dhcp_range(self):
        """network.proto: without a DHCP range, reservations have no effect."""
        o = self.cl.net.CreateNetwork(np_.CreateNetworkRequest(
            parent="projects/" + self.project, network_id="norange",
            network=np_.Network(host="hosts/qemu", mode=np_.Network.MODE_ISOLATED,
                                ipv4_cidr="10.213.78.0/24"),
            reservations=[np_.Network.Reservation(mac="52:54:00:4e:44:01",
                                                  ip="10.213.78.50")],
            request_id=rid())).operation
        net = self.cl.done(o, timeout=120)
        lvname = "%s.norange" % self.project
        self.assertNotIn("<dhcp", virsh("net-dumpxml", lvname))
        net = self.cl.done(self.cl.net.AddReservation(np_.AddReservationRequest(
            name=net.name, reservation=np_.Network.Reservation(mac="52:54:00:4e:44:02",
                                                               ip="10.213.78.51"),
            request_id=rid())).operation, timeout=120)
        self.assertEqual(len(net.reservations), 2)
        xml = virsh("net-dumpxml", lvname)
        self.assertNotIn("<dhcp", xml)
        self.assertNotIn("52:54:00:4e:44:02", xml)
        # a range turns DHCP on, with every recorded reservation
        net = self.cl.done(self.cl.net.UpdateNetwork(np_.UpdateNetworkRequest(
            network=np_.Network(name=net.name, dhcp_start="10.213.78.100",
                                dhcp_end="10.213.78.150"),
            update_mask=field_mask_pb2.FieldMask(paths=["dhcp_start", "dhcp_end"]),
            request_id=rid())).operation, timeout=120)
        xml = virsh("net-dumpxml", lvname)
        for part in ("10.213.78.100", "52:54:00:4e:44:01", "10.213.78.50", "52:54:00:4e:44:02",
                     "10.213.78.51"):
            self.assertIn(part, xml)
        # and the next reservation goes to the running network at once
        self.cl.done(self.cl.net.AddReservation(np_.AddReservationRequest(
            name=net.name, reservation=np_.Network.Reservation(mac="52:54:00:4e:44:03",
                                                               ip="10.213.78.52"),
            request_id=rid())).operation, timeout=120)
        self.assertIn("10.213.78.52", virsh("net-dumpxml", lvname))
        self.cl.done(self.cl.net.DeleteNetwork(np_.DeleteNetworkRequest(
            name=net.name, request_id=rid())).operation, timeout=120)

    def test_a_bridge_name_taken_on_the_host_is_skipped(self):
        """Bridge names come from a database sequence; a host may already
        have the next one (another installation, a bridge made by hand)."""
        def create(net_id, cidr):
            return self.cl.done(self.cl.net.CreateNetwork(np_.CreateNetworkRequest(
                parent="projects/" + self.project, network_id=net_id,
                network=np_.Network(host="hosts/qemu", mode=np_.Network.MODE_ISOLATED,
                                    ipv4_cidr=cidr), request_id=rid())).operation, timeout=120)
        first = create("first", "10.213.90.0/24")
        taken = "ncbr%d" % (int(first.bridge[4:]) + 1)
        subprocess.run(["ip", "link", "add", taken, "type", "bridge"], check=True)
        try:
            second = create("second", "10.213.91.0/24")
            self.assertEqual(second.state, np_.Network.STATE_ACTIVE)
            self.assertNotEqual(second.bridge, taken)
            self.assertIn(second.bridge, virsh("net-info", "%s.second" % self.project))
        finally:
            subprocess.run(["ip", "link", "del", taken], check=False)

    def test_sigkill_mid_creates_leaves_rows_and_files_paired(self):
        """A server killed while volumes are being made and VMs created with
        new volumes: after its restart every operation ends, every volume
        row has its file and every file of the project has its row."""
        pool_dir = os.path.join(self.dir, "pool-k")
        p = self.pool("qs-k", pool_dir)
        for i in range(6):
            self.cl.storage.CreateVolume(sp.CreateVolumeRequest(
                parent="projects/" + self.project, volume_id="k%d" % i,
                volume=sp.Volume(pool=p.name, size_bytes=256 * MIB,
                                 format=sp.Volume.FORMAT_RAW if i % 2 else sp.Volume.FORMAT_QCOW2),
                request_id=rid()))
        for i in range(2):
            self.cl.vm.CreateVm(vp.CreateVmRequest(
                parent="projects/" + self.project, vm_id="kv%d" % i,
                vm=vp.Vm(vcpus=1, memory_mib=96, disks=[vp.VmDisk(
                    new_volume=vp.VmDiskNewVolume(size_gib=1, pool=p.name))]),
                request_id=rid()))
        time.sleep(0.2)  # some of it started on the hypervisor
        self.srv.signal(signal.SIGKILL)
        self.srv.wait()
        self.ch.close()
        self.srv = Server("--replica-id", "qemu-st", "--rate-limit-rps", "0",
                          "--default-host-uri", "", "--storage-image-dirs", self.images,
                          "--default-pool", "qs-default", name="qemu-storage-2",
                          database_url=self.db).start()
        self.ch = self.srv.channel()
        self.cl = Client(self.ch, admin(self.srv, self.ch).token)
        parent = "projects/" + self.project
        deadline = time.monotonic() + 180
        while self.cl.ops.ListOperations(op.ListOperationsRequest(
                parent=parent, filter="done = false")).operations:
            self.assertLess(time.monotonic(), deadline, "operations did not finish")
            time.sleep(0.5)
        vols = self.cl.storage.ListVolumes(sp.ListVolumesRequest(parent=parent)).volumes
        files = {f for f in os.listdir(pool_dir) if f.startswith(self.project + ".")}
        rows = {"%s.%s" % (self.project, v.name.rsplit("/", 1)[1]) for v in vols}
        self.assertEqual(rows, files, "volume rows and files differ")
        for v in vols:
            self.assertIn(v.state, (sp.Volume.STATE_READY, sp.Volume.STATE_ATTACHED),
                          "%s: %s" % (v.name, v.state_message))
            info = qemu_img_info(os.path.join(pool_dir, "%s.%s" % (
                self.project, v.name.rsplit("/", 1)[1])))
            self.assertEqual(info["virtual-size"], v.size_bytes, v.name)
        for v in self.cl.vm.ListVms(vp.ListVmsRequest(parent=parent)).vms:
            self.assertEqual([d.volume for d in v.disks],
                             ["%s/volumes/%s-disk0" % (parent, v.name.rsplit("/", 1)[1])])
            self.assertIn(v.uid, virsh("list", "--all", "--uuid"))

    def test_failures_mid_create_leave_nothing_behind(self):
        # the pool is defined, then building its directory fails (/proc
        # takes no new directories): no row, no libvirt pool
        o = self.cl.storage.CreatePool(sp.CreatePoolRequest(
            parent="hosts/qemu", pool_id="qs-broken",
            pool=sp.Pool(type=sp.Pool.TYPE_DIR, target_path="/proc/nc-no-such-dir/pool"),
            request_id=rid())).operation
        o = self.cl.wait(o, timeout=120)
        self.assertEqual(o.state, o.STATE_FAILED)
        with self.assertRaises(grpc.RpcError) as e:
            self.cl.storage.GetPool(sp.GetPoolRequest(name="hosts/qemu/pools/qs-broken"))
        self.assertEqual(e.exception.code(), C.NOT_FOUND)
        self.assertNotIn("qs-broken", virsh("pool-list", "--all", "--name"))

        # a network whose libvirt name an unmanaged network already holds:
        # libvirt refuses it, so no row stays, and the other one is untouched
        squat_net = os.path.join(self.dir, "squatter-net.xml")
        with open(squat_net, "w") as f:
            f.write("<network><name>%s.taken</name><bridge name='ncsquat0'/></network>"
                    % self.project)
        virsh("net-define", squat_net)
        try:
            o = self.cl.net.CreateNetwork(np_.CreateNetworkRequest(
                parent="projects/" + self.project, network_id="taken",
                network=np_.Network(host="hosts/qemu", mode=np_.Network.MODE_ISOLATED,
                                    ipv4_cidr="10.213.78.0/24"), request_id=rid())).operation
            o = self.cl.wait(o, timeout=120)
            self.assertEqual(o.state, o.STATE_FAILED)
            with self.assertRaises(grpc.RpcError) as e:
                self.cl.net.GetNetwork(np_.GetNetworkRequest(
                    name="projects/%s/networks/taken" % self.project))
            self.assertEqual(e.exception.code(), C.NOT_FOUND)
            self.assertNotIn("10.213.78", virsh("net-dumpxml", "%s.taken" % self.project))
        finally:
            virsh("net-undefine", "%s.taken" % self.project)

        # a VM whose new volume is made, then whose domain cannot be
        # defined (an unmanaged domain holds its name): no VM row, no volume
        # row, no volume file
        p = self.pool("qs-f", os.path.join(self.dir, "pool-f"))
        squatter = os.path.join(self.dir, "squatter.xml")
        with open(squatter, "w") as f:
            f.write("<domain type='qemu'><name>%s.victim</name><memory unit='MiB'>64</memory>"
                    "<os><type>hvm</type></os></domain>" % self.project)
        virsh("define", squatter)
        try:
            o = self.cl.vm.CreateVm(vp.CreateVmRequest(
                parent="projects/" + self.project, vm_id="victim",
                vm=vp.Vm(vcpus=1, memory_mib=128, disks=[vp.VmDisk(
                    new_volume=vp.VmDiskNewVolume(size_gib=1, pool=p.name))]),
                request_id=rid())).operation
            o = self.cl.wait(o, timeout=180)
            self.assertEqual(o.state, o.STATE_FAILED)
            with self.assertRaises(grpc.RpcError) as e:
                self.cl.vm.GetVm(vp.GetVmRequest(
                    name="projects/%s/vms/victim" % self.project))
            self.assertEqual(e.exception.code(), C.NOT_FOUND)
            with self.assertRaises(grpc.RpcError) as e:
                self.cl.storage.GetVolume(sp.GetVolumeRequest(
                    name="projects/%s/volumes/victim-disk0" % self.project))
            self.assertEqual(e.exception.code(), C.NOT_FOUND)
            self.assertEqual(os.listdir(os.path.join(self.dir, "pool-f")), [])
            self.assertEqual(virsh("vol-list", "qs-f", "--details").count(self.project), 0)
        finally:
            virsh("undefine", "%s.victim" % self.project)


if __name__ == "__main__":
    unittest.main()
