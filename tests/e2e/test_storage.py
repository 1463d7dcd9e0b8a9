"""StorageService end to end: the real server on its own PostgreSQL database
and libvirt's in-process test driver (the embedded `hosts/default`, plus
private test:///<file> hypervisors registered as extra hosts), driven by
Python grpcio. Pools (validation, the figures libvirt reports, listing,
deletion rules, a failed creation leaving no row), volumes (sizes, formats,
sources, image imports, free space, quotas, resize, clone, delete, listing,
permissions), the events they emit, and a restart of the server that must
bring the pools and volumes of its ephemeral hosts back.

What libvirt holds cannot be read from outside the server process (the test
driver lives inside it), so the hypervisor side is checked through the API:
the test driver counts a raw volume (no <allocation>) as fully allocated,
so a pool's live `allocation_bytes` tells which raw volumes exist on the
host, and a private host's node file can hold pools and volumes that the
server must find under the names it gives them.

The helpers above the test classes are shared with test_vm_devices.py."""
import os
import unittest
import uuid

import grpc

import image_server

import compute
import harness
from compute import C, Stub, ep, hp, node_xml, op, register_host, rid, unique, vp
from harness import Server
from identity import PASSWORD, admin, grant, ip, login, make_project, make_user
from google.protobuf import field_mask_pb2  # noqa: E402
from novacron.v1.common_pb2 import Label  # noqa: E402
from novacron.v1 import network_pb2 as np_  # noqa: E402
from novacron.v1 import network_pb2_grpc as ng  # noqa: E402
from novacron.v1 import storage_pb2 as sp  # noqa: E402
from novacron.v1 import storage_pb2_grpc as sg  # noqa: E402

MIB = 1 << 20
GIB = 1 << 30
POOL_CAPACITY = 100 * GIB  # what the test driver reports for every pool
DIR, LOGICAL, NETFS = sp.Pool.TYPE_DIR, sp.Pool.TYPE_LOGICAL, sp.Pool.TYPE_NETFS
QCOW2, RAW = sp.Volume.FORMAT_QCOW2, sp.Volume.FORMAT_RAW
PS, VS = sp.Pool, sp.Volume
ARGS = ("--rate-limit-rps", "0", "--rate-limit-anonymous-rps", "0")

# ---------------------------------------------------------------- helpers


class Client(compute.Client):
    """compute.Client plus StorageService and NetworkService."""

    def __init__(self, channel, token):
        super().__init__(channel, token)
        self.storage = Stub(channel, sg.StorageServiceStub, token)
        self.net = Stub(channel, ng.NetworkServiceStub, token)

    def wait(self, operation, timeout=60):
        if not isinstance(operation, str) and operation.done:
            return operation  # answered done (nothing to do, validate_only)
        return super().wait(operation, timeout)

    def done(self, operation, timeout=60):
        """Waits and asserts success; returns the unpacked response."""
        o = self.wait(operation, timeout)
        if o.state != op.Operation.STATE_SUCCEEDED:
            raise AssertionError("operation %s %s: %s" % (
                o.verb, op.Operation.State.Name(o.state), o.error.message))
        return unpack(o)

    def failed(self, operation, timeout=60):
        """Waits and asserts failure; returns the finished Operation."""
        o = self.wait(operation, timeout)
        if o.state != op.Operation.STATE_FAILED:
            raise AssertionError("operation %s ended %s, expected STATE_FAILED" % (
                o.verb, op.Operation.State.Name(o.state)))
        return o


KINDS = {"novacron.v1.Vm": vp.Vm, "novacron.v1.VmSnapshot": vp.VmSnapshot,
         "novacron.v1.Host": hp.Host, "novacron.v1.Pool": sp.Pool,
         "novacron.v1.Volume": sp.Volume, "novacron.v1.Network": np_.Network}


def unpack(any_or_operation):
    """The typed message in an Operation's response or in an Any."""
    a = getattr(any_or_operation, "response", any_or_operation)
    msg = KINDS[a.type_url.rsplit("/", 1)[1]]()
    if not a.Unpack(msg):
        raise AssertionError("cannot unpack " + a.type_url)
    return msg


def start_server(name, database_url=None, *extra):
    """(Server, channel, admin Api, admin Client) on a fresh database."""
    srv = Server(*(ARGS + extra), name=name,
                 database_url=database_url or harness.create_database(name[:8])).start()
    ch = srv.channel()
    api = admin(srv, ch)
    return srv, ch, api, Client(ch, api.token)


def private_host(cl, extra_xml="", path=None, cordon=True):
    """Registers a private test:///<file> hypervisor whose node file also
    holds `extra_xml` (domains, pools); returns (host id, node file path).
    Cordoned by default, so that only VMs pinned to it (by placement or by
    their devices) land there."""
    path = path or os.path.join(harness.tmpdir("node-"), "node.xml")
    write_node(path, extra_xml)
    host_id = unique("h")
    register_host(cl, host_id, "test://" + os.path.abspath(path))
    if cordon:
        cl.host.UpdateHost(hp.UpdateHostRequest(
            host=hp.Host(name="hosts/" + host_id, cordoned=True),
            update_mask=field_mask_pb2.FieldMask(paths=["cordoned"])))
    return host_id, path


def write_node(path, extra_xml=""):
    """compute.node_xml's node description with `extra_xml` inside <node>."""
    node_xml(path)
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("</node>", extra_xml + "</node>"))


def domain_xml(name):
    """A test-driver domain for a node file (it runs, unknown to NovaCron)."""
    return ("  <domain type='test'>\n    <name>%s</name>\n    <uuid>%s</uuid>\n"
            "    <memory>65536</memory>\n    <vcpu>1</vcpu>\n"
            "    <os><type>hvm</type></os>\n  </domain>\n" % (name, uuid.uuid4()))


def pool_xml(name, target, pool_uuid=None, raw_volumes=()):
    """A test-driver dir pool for a node file, with raw volumes given as
    (libvirt name, bytes); the test driver counts them fully allocated."""
    vols = "".join("    <volume>\n      <name>%s</name>\n"
                   "      <capacity unit='bytes'>%d</capacity>\n"
                   "      <allocation unit='bytes'>%d</allocation>\n"
                   "      <target><format type='raw'/></target>\n    </volume>\n" % (n, b, b)
                   for n, b in raw_volumes)
    return ("  <pool type='dir'>\n    <name>%s</name>\n    <uuid>%s</uuid>\n"
            "    <target><path>%s</path></target>\n%s  </pool>\n" % (
                name, pool_uuid or uuid.uuid4(), target, vols))


def target_for(pool_id):
    return "/var/lib/nc-e2e/" + pool_id


def create_pool(cl, host="default", pool_id=None, ptype=DIR, wait=True, **fields):
    """CreatePool on hosts/<host> (dir pools under /var/lib/nc-e2e/<id>);
    returns the Pool once the operation succeeded, or the Operation."""
    pool_id = pool_id or unique("pool")
    if ptype in (DIR, NETFS) and "target_path" not in fields:
        fields["target_path"] = target_for(pool_id)
    if ptype == NETFS:
        fields.setdefault("source_host", "nfs.example.org")
        fields.setdefault("source_export", "/srv/vmstore")
    o = cl.storage.CreatePool(sp.CreatePoolRequest(
        parent="hosts/" + host, pool_id=pool_id, pool=sp.Pool(type=ptype, **fields),
        request_id=rid())).operation
    return cl.done(o) if wait else o


def create_volume(cl, project, pool, volume_id=None, size=GIB, wait=True, **fields):
    """CreateVolume in `pool` (a pool name); returns the Volume once the
    operation succeeded, or the Operation."""
    o = cl.storage.CreateVolume(sp.CreateVolumeRequest(
        parent="projects/" + project, volume_id=volume_id or unique("vol"),
        volume=sp.Volume(pool=pool, size_bytes=size, **fields), request_id=rid())).operation
    return cl.done(o) if wait else o


def delete_volume(cl, name, **kw):
    return cl.done(cl.storage.DeleteVolume(sp.DeleteVolumeRequest(
        name=name, request_id=rid(), **kw)).operation)


def delete_pool(cl, name, **kw):
    return cl.done(cl.storage.DeletePool(sp.DeletePoolRequest(
        name=name, request_id=rid(), **kw)).operation)


def set_quota(api, project, **limits):
    api.SetQuota(ip.SetQuotaRequest(
        quota=ip.Quota(name="projects/%s/quota" % project, limits=ip.Quota.Limits(
            **{k: {"value": v} for k, v in limits.items()})),
        update_mask=field_mask_pb2.FieldMask(paths=["limits." + k for k in limits])))


def usage(api, project):
    return api.GetQuota(ip.GetQuotaRequest(name="projects/%s/quota" % project)).quota.usage


def head_sequence(cl):
    """The event log's current head (the first heartbeat of a stream)."""
    stream = cl.watch(ep.WatchEventsRequest(parent=""), timeout=10)
    try:
        return next(stream).event.sequence
    finally:
        stream.cancel()


def events_since(cl, seq, until, timeout=20, **request):
    """Replays the events after `seq` (heartbeats left out) up to and
    including the first one for which until(event) is true."""
    stream = cl.watch(ep.WatchEventsRequest(after_sequence=seq, **request), timeout=timeout)
    got = []
    try:
        for m in stream:
            if m.event.type == ep.Event.TYPE_HEARTBEAT:
                continue
            got.append(m.event)
            if until(m.event):
                return got
    finally:
        stream.cancel()
    raise AssertionError("stream ended before the awaited event: %s" % got)


class Case(unittest.TestCase):
    """Assertions shared by the storage and VM device tests."""

    def assertCode(self, code, fn, *args, contains=None):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        for part in ([contains] if isinstance(contains, str) else contains or []):
            self.assertIn(part, cm.exception.details())
        return cm.exception.details()

    def volume(self, name, cl=None):
        return (cl or self.root).storage.GetVolume(sp.GetVolumeRequest(name=name)).volume

    def pool(self, name, cl=None):
        return (cl or self.root).storage.GetPool(sp.GetPoolRequest(name=name)).pool

    def vm(self, name):
        return self.root.vm.GetVm(vp.GetVmRequest(name=name)).vm

    def assertGone(self, name):
        getter = self.volume if "/volumes/" in name else self.pool
        self.assertCode(C.NOT_FOUND, getter, name)


class Base(Case):
    """One server with its own database per test class."""

    @classmethod
    def setUpClass(cls):
        cls.srv, cls.ch, cls.root_api, cls.root = start_server(cls.__name__)
        cls.project = make_project(cls.root_api, "st")

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()
        harness.stop_and_assert(cls.srv)


# ---------------------------------------------------------------- pools


class Pools(Base):
    def test_dir_pool_lifecycle(self):
        pool_id = unique("pool")
        name = "hosts/default/pools/" + pool_id
        req = sp.CreatePoolRequest(parent="hosts/default", pool_id=pool_id, request_id=rid(),
                                   pool=sp.Pool(type=DIR, target_path=target_for(pool_id),
                                                autostart=True, description="e2e pool",
                                                labels=[Label(key="suite", value="storage")]))
        o = self.root.storage.CreatePool(req).operation
        self.assertEqual(o.verb, "novacron.v1.StorageService.CreatePool")
        self.assertEqual(o.target, name)
        self.assertEqual(self.root.storage.CreatePool(req).operation.name, o.name)  # a retry
        p = self.root.done(o)
        self.assertEqual((p.name, p.type, p.target_path, p.state, p.state_message),
                         (name, DIR, target_for(pool_id), PS.STATE_ACTIVE, ""))
        self.assertEqual(len(p.uid), 36)
        self.assertTrue(p.autostart)
        self.assertEqual((p.capacity_bytes, p.allocation_bytes, p.available_bytes),
                         (POOL_CAPACITY, 0, POOL_CAPACITY))
        self.assertEqual(p.description, "e2e pool")
        self.assertEqual([(l.key, l.value) for l in p.labels], [("suite", "storage")])
        self.assertTrue(p.etag)
        self.assertTrue(p.HasField("create_time"))
        g = self.pool(name)
        self.assertEqual((g.uid, g.state, g.etag, g.capacity_bytes), (p.uid, p.state, p.etag,
                                                                     POOL_CAPACITY))
        self.assertCode(C.ALREADY_EXISTS, self.root.storage.CreatePool, sp.CreatePoolRequest(
            parent="hosts/default", pool_id=pool_id,
            pool=sp.Pool(type=DIR, target_path="/var/lib/nc-e2e/elsewhere")), contains=name)
        # the live figures: a raw volume is fully allocated on the test driver
        v = create_volume(self.root, self.project, name, size=3 * GIB, format=RAW)
        g = self.pool(name)
        self.assertEqual((g.allocation_bytes, g.available_bytes),
                         (3 * GIB, POOL_CAPACITY - 3 * GIB))
        self.assertEqual(g.etag, p.etag)  # figures are no modification
        self.assertCode(C.FAILED_PRECONDITION, self.root.storage.DeletePool,
                        sp.DeletePoolRequest(name=name), contains="1 volume")
        self.assertEqual(self.pool(name).state, PS.STATE_ACTIVE)
        delete_volume(self.root, v.name)
        self.assertEqual(self.pool(name).allocation_bytes, 0)
        self.assertCode(C.ABORTED, self.root.storage.DeletePool, sp.DeletePoolRequest(
            name=name, etag="v999999"), contains="stale")
        last = delete_pool(self.root, name, etag=g.etag, delete_storage=True)
        self.assertEqual((last.name, last.uid, last.state), (name, p.uid, PS.STATE_DELETING))
        self.assertGone(name)
        # libvirt let go of the name and the directory: both can be used again
        again = create_pool(self.root, pool_id=pool_id)
        self.assertEqual(again.state, PS.STATE_ACTIVE)
        self.assertNotEqual(again.uid, p.uid)
        delete_pool(self.root, again.name)

    def test_pool_events(self):
        seq = head_sequence(self.root)
        p = create_pool(self.root)
        last = delete_pool(self.root, p.name)
        got = events_since(self.root, seq, lambda e: e.type == ep.Event.TYPE_RESOURCE_DELETED,
                           parent="", resources=[p.name], resource_types=["novacron.v1.Pool"])
        for e in got:
            self.assertEqual((e.resource, e.resource_type, e.project),
                             (p.name, "novacron.v1.Pool", ""))
            self.assertEqual(e.WhichOneof("payload"), "other_resource")
            self.assertEqual(e.other_resource.type_url, "type.googleapis.com/novacron.v1.Pool")
        states = [(ep.Event.Type.Name(e.type), unpack(e.other_resource).state) for e in got]
        # created (CREATING), made ACTIVE by its operation, ..., deleted (as last seen)
        self.assertEqual(states[:2], [("TYPE_RESOURCE_CREATED", PS.STATE_CREATING),
                                      ("TYPE_RESOURCE_UPDATED", PS.STATE_ACTIVE)])
        self.assertEqual(states[-1], ("TYPE_RESOURCE_DELETED", PS.STATE_DELETING))
        self.assertEqual((got[0].message, got[0].principal), ("created", "users/admin"))
        self.assertEqual(got[1].message, "state CREATING -> ACTIVE")
        self.assertTrue(got[1].source_operation)
        self.assertEqual(unpack(got[-1].other_resource).uid, last.uid)
        # DeletePool's move to STATE_DELETING is a recorded change (the etag
        # changes with it), so the change feed carries it like every other
        self.assertEqual(states, [("TYPE_RESOURCE_CREATED", PS.STATE_CREATING),
                                  ("TYPE_RESOURCE_UPDATED", PS.STATE_ACTIVE),
                                  ("TYPE_RESOURCE_UPDATED", PS.STATE_DELETING),
                                  ("TYPE_RESOURCE_DELETED", PS.STATE_DELETING)])

    def test_create_pool_bad_requests(self):
        def pool_names():
            return sorted(p.name for p in self.root.storage.ListPools(
                sp.ListPoolsRequest(parent="hosts/-", page_size=500)).pools)
        before = pool_names()
        ok_dir = sp.Pool(type=DIR, target_path="/var/lib/nc-e2e/bad")
        cases = [
            ("nope", "good", ok_dir, C.INVALID_ARGUMENT, "parent"),
            ("hosts/nowhere", "good", ok_dir, C.NOT_FOUND, "hosts/nowhere"),
            ("hosts/default", "", ok_dir, C.INVALID_ARGUMENT, "pool_id"),
            ("hosts/default", "Pool", ok_dir, C.INVALID_ARGUMENT, "pool_id"),
            ("hosts/default", "a/b", ok_dir, C.INVALID_ARGUMENT, "pool_id"),
            ("hosts/default", "a.b", ok_dir, C.INVALID_ARGUMENT, "pool_id"),
            ("hosts/default", "9a", ok_dir, C.INVALID_ARGUMENT, "pool_id"),
            ("hosts/default", "ends-", ok_dir, C.INVALID_ARGUMENT, "pool_id"),
            ("hosts/default", "x" * 64, ok_dir, C.INVALID_ARGUMENT, "pool_id"),
            ("hosts/default", "good", sp.Pool(target_path="/x"), C.INVALID_ARGUMENT,
             "pool.type"),
            ("hosts/default", "good", sp.Pool(type=DIR), C.INVALID_ARGUMENT,
             "pool.target_path"),
            ("hosts/default", "good", sp.Pool(type=DIR, target_path="var/x"),
             C.INVALID_ARGUMENT, "pool.target_path"),
            ("hosts/default", "good", sp.Pool(type=DIR, target_path="/var/./x"),
             C.INVALID_ARGUMENT, "pool.target_path"),
            ("hosts/default", "good", sp.Pool(type=DIR, target_path="/var/../etc"),
             C.INVALID_ARGUMENT, "pool.target_path"),
            ("hosts/default", "good", sp.Pool(type=DIR, target_path="/var/lib/.."),
             C.INVALID_ARGUMENT, "pool.target_path"),
            ("hosts/default", "good", sp.Pool(type=DIR, target_path="/var//x"),
             C.INVALID_ARGUMENT, "pool.target_path"),
            ("hosts/default", "good", sp.Pool(type=DIR, target_path="/x",
                                              source_devices=["/dev/sdb"]),
             C.INVALID_ARGUMENT, "pool.source_devices"),
            ("hosts/default", "good", sp.Pool(type=DIR, target_path="/x", source_host="nfs"),
             C.INVALID_ARGUMENT, "pool.source_host"),
            ("hosts/default", "good", sp.Pool(type=NETFS, target_path="/x",
                                              source_export="/srv"),
             C.INVALID_ARGUMENT, "pool.source_host"),
            ("hosts/default", "good", sp.Pool(type=NETFS, target_path="/x",
                                              source_host="a b", source_export="/srv"),
             C.INVALID_ARGUMENT, "pool.source_host"),
            ("hosts/default", "good", sp.Pool(type=NETFS, target_path="/x", source_host="nfs"),
             C.INVALID_ARGUMENT, "pool.source_export"),
            ("hosts/default", "good", sp.Pool(type=NETFS, target_path="/x", source_host="nfs",
                                              source_export="srv/x"),
             C.INVALID_ARGUMENT, "pool.source_export"),
            ("hosts/default", "good", sp.Pool(type=NETFS, source_host="nfs",
                                              source_export="/srv"),
             C.INVALID_ARGUMENT, "pool.target_path"),
            ("hosts/default", "good", sp.Pool(type=LOGICAL, target_path="/dev/other"),
             C.INVALID_ARGUMENT, "pool.target_path"),
            ("hosts/default", "good", sp.Pool(type=LOGICAL, source_devices=["/tmp/disk"]),
             C.INVALID_ARGUMENT, "pool.source_devices[0]"),
            ("hosts/default", "good", sp.Pool(type=LOGICAL,
                                              source_devices=["/dev/sdb", "/dev/../etc/x"]),
             C.INVALID_ARGUMENT, "pool.source_devices[1]"),
            ("hosts/default", "good", sp.Pool(type=LOGICAL, source_host="nfs"),
             C.INVALID_ARGUMENT, "pool.source_host"),
            ("hosts/default", "good", sp.Pool(type=DIR, target_path="/x",
                                              description="d" * 1025),
             C.INVALID_ARGUMENT, "pool.description"),
        ]
        for parent, pool_id, pool, code, field in cases:
            with self.subTest(parent=parent, pool_id=pool_id, pool=str(pool)):
                self.assertCode(code, self.root.storage.CreatePool, sp.CreatePoolRequest(
                    parent=parent, pool_id=pool_id, pool=pool, request_id=rid()),
                    contains=field)
        self.assertCode(C.INVALID_ARGUMENT, self.root.storage.CreatePool, sp.CreatePoolRequest(
            parent="hosts/default", pool_id="good", pool=ok_dir, request_id="not-a-uuid"),
            contains="request_id")
        # pools are for system administrators; anyone signed in reads them
        user = make_user(self.root_api)
        grant(self.root_api, self.project, user, ip.ROLE_OPERATOR)
        operator = Client(self.ch, login(self.ch, user, PASSWORD)[0].token)
        self.assertCode(C.PERMISSION_DENIED, operator.storage.CreatePool, sp.CreatePoolRequest(
            parent="hosts/default", pool_id="good", pool=ok_dir))
        p = create_pool(self.root)
        self.assertEqual(self.pool(p.name, operator).uid, p.uid)
        self.assertIn(p.name, [x.name for x in operator.storage.ListPools(
            sp.ListPoolsRequest(parent="hosts/default")).pools])
        self.assertCode(C.PERMISSION_DENIED, operator.storage.DeletePool,
                        sp.DeletePoolRequest(name=p.name))
        with self.assertRaises(grpc.RpcError) as cm:  # no credential at all
            sg.StorageServiceStub(self.ch).GetPool(sp.GetPoolRequest(name=p.name), timeout=10)
        self.assertEqual(cm.exception.code(), C.UNAUTHENTICATED)
        self.assertCode(C.INVALID_ARGUMENT, self.pool, "hosts/default/pool/x")
        self.assertCode(C.NOT_FOUND, self.pool, "hosts/default/pools/nope")
        delete_pool(self.root, p.name)
        self.assertEqual(pool_names(), before)  # no refused request left a row

    def test_logical_and_netfs_pools(self):
        lv = create_pool(self.root, ptype=LOGICAL, source_devices=["/dev/vdb", "/dev/vdc"])
        lv_id = lv.name.rsplit("/", 1)[1]
        self.assertEqual((lv.state, lv.target_path), (PS.STATE_ACTIVE, "/dev/" + lv_id))
        self.assertEqual(list(lv.source_devices), ["/dev/vdb", "/dev/vdc"])
        self.assertEqual((lv.source_host, lv.source_export), ("", ""))
        # volumes of a logical pool are raw, and only raw
        v = create_volume(self.root, self.project, lv.name)
        self.assertEqual(v.format, RAW)
        self.assertCode(C.INVALID_ARGUMENT, self.root.storage.CreateVolume,
                        sp.CreateVolumeRequest(parent="projects/" + self.project,
                                               volume_id=unique("q"),
                                               volume=sp.Volume(pool=lv.name, size_bytes=GIB,
                                                                format=QCOW2)),
                        contains="FORMAT_RAW")
        nfs = create_pool(self.root, ptype=NETFS, source_host="nfs.example.org",
                          source_export="/srv/vmstore")
        self.assertEqual((nfs.state, nfs.type, nfs.source_host, nfs.source_export),
                         (PS.STATE_ACTIVE, NETFS, "nfs.example.org", "/srv/vmstore"))
        self.assertEqual(list(nfs.source_devices), [])
        listed = [p.name for p in self.root.storage.ListPools(sp.ListPoolsRequest(
            parent="hosts/default", filter="type = TYPE_NETFS")).pools]
        self.assertIn(nfs.name, listed)
        self.assertNotIn(lv.name, listed)
        delete_volume(self.root, v.name)
        delete_pool(self.root, lv.name)
        delete_pool(self.root, nfs.name)

    def test_failed_create_leaves_no_row(self):
        # the test driver's own pool already uses /default-pool
        o = self.root.failed(create_pool(self.root, target_path="/default-pool", wait=False))
        self.assertIn("/default-pool", o.error.message)
        self.assertGone(o.target)
        # a private host whose libvirt already has a pool of that name
        host, _ = private_host(self.root, pool_xml("taken", "/srv/taken"))
        o = self.root.failed(create_pool(self.root, host, "taken", wait=False))
        self.assertIn("taken", o.error.message)
        self.assertGone("hosts/%s/pools/taken" % host)
        listed = self.root.storage.ListPools(sp.ListPoolsRequest(parent="hosts/" + host))
        self.assertEqual((list(listed.pools), listed.total_size), ([], 0))
        # and nothing of it blocks a correct pool
        p = create_pool(self.root, host, "fine")
        self.assertEqual(p.state, PS.STATE_ACTIVE)
        delete_pool(self.root, p.name)

    def test_list_pools(self):
        host, _ = private_host(self.root)
        a = create_pool(self.root, host, "a-pool", labels=[Label(key="tier", value="gold")])
        b = create_pool(self.root, host, "b-pool", ptype=NETFS, autostart=True)
        c = create_pool(self.root, host, "c-pool", labels=[Label(key="tier", value="gold")],
                        autostart=True)
        names = [a.name, b.name, c.name]
        # a raw volume in b: its figures are recorded when read live
        v = create_volume(self.root, self.project, b.name, size=2 * GIB, format=RAW)
        self.assertEqual(self.pool(b.name).available_bytes, POOL_CAPACITY - 2 * GIB)

        def lst(**kw):
            r = self.root.storage.ListPools(sp.ListPoolsRequest(parent="hosts/" + host, **kw))
            return [p.name for p in r.pools], r.total_size, r.next_page_token
        self.assertEqual(lst(), (names, 3, ""))
        page1, total, token = lst(page_size=2)
        self.assertEqual((page1, total), (names[:2], 3))
        self.assertEqual(lst(page_size=2, page_token=token), (names[2:], 3, ""))
        self.assertEqual(lst(order_by="name desc")[0], names[::-1])
        self.assertEqual(lst(filter='labels.tier = "gold"')[0], [a.name, c.name])
        self.assertEqual(lst(filter="type = TYPE_NETFS")[0], [b.name])
        self.assertEqual(lst(filter="autostart = true")[0], [b.name, c.name])
        self.assertEqual(lst(filter="state = STATE_ACTIVE AND available_bytes < %d" %
                             POOL_CAPACITY)[0], [b.name])
        self.assertEqual(lst(order_by="available_bytes")[0][0], b.name)
        self.assertEqual(lst(order_by="create_time desc")[0], names[::-1])
        everywhere = self.root.storage.ListPools(sp.ListPoolsRequest(
            parent="hosts/-", filter='labels.tier = "gold"', page_size=500)).pools
        self.assertEqual([p.name for p in everywhere], [a.name, c.name])
        for bad in ("color = 1", "type = DIR", "available_bytes ~ 3"):
            self.assertCode(C.INVALID_ARGUMENT, self.root.storage.ListPools,
                            sp.ListPoolsRequest(parent="hosts/" + host, filter=bad))
        self.assertCode(C.INVALID_ARGUMENT, self.root.storage.ListPools,
                        sp.ListPoolsRequest(parent="hosts/" + host, order_by="type"))
        for parent in ("", "hosts", "hosts/A", "projects/x"):
            self.assertCode(C.INVALID_ARGUMENT, self.root.storage.ListPools,
                            sp.ListPoolsRequest(parent=parent))
        delete_volume(self.root, v.name)
        for n in names:
            delete_pool(self.root, n)


# ---------------------------------------------------------------- volumes


class Volumes(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.p1 = create_pool(cls.root).name
        cls.p2 = create_pool(cls.root).name

    def test_volume_lifecycle(self):
        vol_id = unique("vol")
        name = "projects/%s/volumes/%s" % (self.project, vol_id)
        req = sp.CreateVolumeRequest(
            parent="projects/" + self.project, volume_id=vol_id, request_id=rid(),
            volume=sp.Volume(pool=self.p1, size_bytes=GIB, description="data disk",
                             labels=[Label(key="tier", value="db")]))
        o = self.root.storage.CreateVolume(req).operation
        self.assertEqual((o.verb, o.target), ("novacron.v1.StorageService.CreateVolume", name))
        self.assertEqual(self.root.storage.CreateVolume(req).operation.name, o.name)  # a retry
        v = self.root.done(o)
        self.assertEqual((v.name, v.pool, v.format, v.size_bytes, v.state, v.state_message),
                         (name, self.p1, QCOW2, GIB, VS.STATE_READY, ""))
        self.assertEqual(v.allocation_bytes, 0)  # thin qcow2
        self.assertEqual(len(v.uid), 36)
        self.assertEqual(v.WhichOneof("source"), None)
        self.assertFalse(v.HasField("attachment"))
        self.assertEqual((v.description, [(l.key, l.value) for l in v.labels]),
                         ("data disk", [("tier", "db")]))
        self.assertTrue(v.etag and v.HasField("create_time") and v.HasField("update_time"))
        self.assertEqual(self.volume(name), v)
        self.assertCode(C.ALREADY_EXISTS, self.root.storage.CreateVolume, sp.CreateVolumeRequest(
            parent="projects/" + self.project, volume_id=vol_id,
            volume=sp.Volume(pool=self.p2, size_bytes=GIB)), contains=name)
        # resize: grow, equal (nothing to do), shrink (only when allowed)
        grown = self.root.done(self.root.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=name, size_bytes=3 * GIB, etag=v.etag, request_id=rid())).operation)
        self.assertEqual((grown.size_bytes, grown.state), (3 * GIB, VS.STATE_READY))
        self.assertNotEqual(grown.etag, v.etag)
        same = self.root.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=name, size_bytes=3 * GIB)).operation
        self.assertTrue(same.done)
        self.assertEqual(same.state, op.Operation.STATE_SUCCEEDED)
        self.assertEqual(unpack(same).size_bytes, 3 * GIB)
        self.assertCode(C.INVALID_ARGUMENT, self.root.storage.ResizeVolume,
                        sp.ResizeVolumeRequest(name=name, size_bytes=2 * GIB),
                        contains="allow_shrink")
        self.assertCode(C.ABORTED, self.root.storage.ResizeVolume, sp.ResizeVolumeRequest(
            name=name, size_bytes=4 * GIB, etag=v.etag))
        for bad in (0, -MIB, GIB + 1, 65537 * GIB):
            self.assertCode(C.INVALID_ARGUMENT, self.root.storage.ResizeVolume,
                            sp.ResizeVolumeRequest(name=name, size_bytes=bad),
                            contains="size_bytes")
        shrunk = self.root.done(self.root.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=name, size_bytes=512 * MIB, allow_shrink=True, request_id=rid())).operation)
        self.assertEqual(shrunk.size_bytes, 512 * MIB)
        self.assertEqual(self.volume(name).size_bytes, 512 * MIB)
        # delete: a stale etag is refused; the response is the volume as last seen
        self.assertCode(C.ABORTED, self.root.storage.DeleteVolume,
                        sp.DeleteVolumeRequest(name=name, etag=grown.etag), contains="stale")
        last = delete_volume(self.root, name, etag=shrunk.etag, wipe=True)
        self.assertEqual((last.name, last.uid, last.state), (name, v.uid, VS.STATE_DELETING))
        self.assertGone(name)
        self.assertCode(C.NOT_FOUND, self.root.storage.DeleteVolume,
                        sp.DeleteVolumeRequest(name=name))
        self.assertCode(C.NOT_FOUND, self.root.storage.ResizeVolume,
                        sp.ResizeVolumeRequest(name=name, size_bytes=GIB))

    def test_raw_volumes_on_the_host(self):
        """What libvirt holds, seen through the pool's live figures."""
        p = create_pool(self.root).name
        v = create_volume(self.root, self.project, p, size=2 * GIB, format=RAW)
        self.assertEqual((v.format, v.allocation_bytes), (RAW, 2 * GIB))
        self.assertEqual(self.pool(p).allocation_bytes, 2 * GIB)
        self.root.done(self.root.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=v.name, size_bytes=5 * GIB, request_id=rid())).operation)
        self.assertEqual(self.pool(p).allocation_bytes, 5 * GIB)
        c = self.root.done(self.root.storage.CloneVolume(sp.CloneVolumeRequest(
            name=v.name, volume_id=unique("copy"), request_id=rid())).operation)
        self.assertEqual(c.size_bytes, 5 * GIB)
        delete_volume(self.root, v.name)
        delete_volume(self.root, c.name)
        self.assertEqual(self.pool(p).allocation_bytes, 0)
        delete_pool(self.root, p)

    def test_libvirt_volume_names_are_per_project(self):
        """Two projects may use one volume id in one pool: their volumes are
        distinct on the host ("{project}.{volume}"), and deleting one keeps
        the other."""
        p = create_pool(self.root).name
        other = make_project(self.root_api, "st2")
        a = create_volume(self.root, self.project, p, "shared-id", size=GIB, format=RAW)
        b = create_volume(self.root, other, p, "shared-id", size=2 * GIB, format=RAW)
        self.assertNotEqual(a.uid, b.uid)
        self.assertEqual(self.pool(p).allocation_bytes, 3 * GIB)
        delete_volume(self.root, a.name)
        self.assertEqual(self.pool(p).allocation_bytes, 2 * GIB)
        self.assertEqual(self.volume(b.name).state, VS.STATE_READY)
        delete_volume(self.root, b.name)
        self.assertEqual(self.pool(p).allocation_bytes, 0)
        delete_pool(self.root, p)

    def test_create_volume_bad_requests(self):
        parent = "projects/" + self.project

        def create(volume_id="good", **fields):
            fields.setdefault("pool", self.p1)
            return lambda: self.root.storage.CreateVolume(sp.CreateVolumeRequest(
                parent=parent, volume_id=volume_id, volume=sp.Volume(**fields),
                request_id=rid()))
        for bad in ("", "Vol", "a/b", "a<b", "a&b", "a.b", "a_b", "9a", "a-", "v" * 64):
            with self.subTest(volume_id=bad):
                self.assertCode(C.INVALID_ARGUMENT, create(bad, size_bytes=GIB),
                                contains="volume_id")
        other = make_project(self.root_api, "st3")
        theirs = create_volume(self.root, other, self.p1)
        cases = [
            (dict(size_bytes=GIB, pool=""), C.INVALID_ARGUMENT, "volume.pool"),
            (dict(size_bytes=GIB, pool="pools/x"), C.INVALID_ARGUMENT, "volume.pool"),
            (dict(size_bytes=GIB, pool="hosts/default/pools/nope"), C.NOT_FOUND,
             "hosts/default/pools/nope"),
            (dict(size_bytes=GIB, pool="hosts/nowhere/pools/x"), C.NOT_FOUND, "nowhere"),
            (dict(size_bytes=0), C.INVALID_ARGUMENT, "size_bytes"),
            (dict(size_bytes=-GIB), C.INVALID_ARGUMENT, "size_bytes"),
            (dict(size_bytes=GIB + 4096), C.INVALID_ARGUMENT, "size_bytes"),
            (dict(size_bytes=65536 * GIB + MIB), C.INVALID_ARGUMENT, "size_bytes"),
            (dict(size_bytes=GIB, format=7), C.INVALID_ARGUMENT, "volume.format"),
            (dict(size_bytes=GIB, description="d" * 1025), C.INVALID_ARGUMENT,
             "volume.description"),
            # images: only from the server's image directories (none by default)
            (dict(source_image="/var/lib/images/base.qcow2"), C.PERMISSION_DENIED,
             "volume.source_image"),
            (dict(source_image="images/base.qcow2"), C.INVALID_ARGUMENT,
             "volume.source_image"),
            (dict(source_image="https://images.example.org/base.qcow2"), C.PERMISSION_DENIED,
             "--storage-image-urls is empty"),
            (dict(source_volume=parent + "/volumes/nope"), C.NOT_FOUND, "nope"),
            (dict(source_volume="volumes/x"), C.INVALID_ARGUMENT, "source_volume"),
            (dict(source_volume=theirs.name), C.INVALID_ARGUMENT, "source_volume"),
        ]
        for fields, code, part in cases:
            with self.subTest(fields=fields):
                self.assertCode(code, create(**fields), contains=part)
        self.assertCode(C.INVALID_ARGUMENT, self.root.storage.CreateVolume,
                        sp.CreateVolumeRequest(parent="nope", volume_id="good",
                                               volume=sp.Volume(pool=self.p1, size_bytes=GIB)),
                        contains="parent")
        self.assertCode(C.INVALID_ARGUMENT, self.root.storage.CreateVolume,
                        sp.CreateVolumeRequest(parent=parent, volume_id="good"),
                        contains="volume")
        self.assertCode(C.INVALID_ARGUMENT, self.root.storage.CreateVolume,
                        sp.CreateVolumeRequest(parent=parent, volume_id="good", request_id="x",
                                               volume=sp.Volume(pool=self.p1, size_bytes=GIB)),
                        contains="request_id")
        self.assertGone(parent + "/volumes/good")  # no refused request left a row
        delete_volume(self.root, theirs.name)

    def test_free_space_is_checked_at_once(self):
        """A raw volume takes its whole size from the pool: the next
        CreateVolume that does not fit any more is refused right away."""
        p = create_pool(self.root).name
        big = create_volume(self.root, self.project, p, size=60 * GIB, format=RAW)
        self.assertCode(C.RESOURCE_EXHAUSTED, self.root.storage.CreateVolume,
                        sp.CreateVolumeRequest(parent="projects/" + self.project,
                                               volume_id=unique("more"),
                                               volume=sp.Volume(pool=p, size_bytes=50 * GIB)),
                        contains=p)
        # the space comes back with the delete, not at the next refresh:
        # ListPools (recorded figures, never read live) shows it at once
        delete_volume(self.root, big.name)
        listed = [x for x in self.root.storage.ListPools(sp.ListPoolsRequest(
            parent="hosts/default")).pools if x.name == p]
        self.assertEqual(listed[0].available_bytes, POOL_CAPACITY)
        again = create_volume(self.root, self.project, p, size=60 * GIB, format=RAW)
        delete_volume(self.root, again.name)
        delete_pool(self.root, p)

    def test_size_against_capacity_and_free_space(self):
        p = create_pool(self.root).name

        def create(size, **fields):
            return lambda: self.root.storage.CreateVolume(sp.CreateVolumeRequest(
                parent="projects/" + self.project, volume_id=unique("v"),
                volume=sp.Volume(pool=p, size_bytes=size, **fields)))

        def resize(name, size):
            return lambda: self.root.storage.ResizeVolume(sp.ResizeVolumeRequest(
                name=name, size_bytes=size))
        self.assertCode(C.INVALID_ARGUMENT, create(POOL_CAPACITY + GIB), contains="capacity")
        whole = create_volume(self.root, self.project, p, size=POOL_CAPACITY)  # thin: fits
        big = create_volume(self.root, self.project, p, size=60 * GIB, format=RAW)
        self.assertEqual(self.pool(p).available_bytes, 40 * GIB)  # read live, recorded
        self.assertCode(C.RESOURCE_EXHAUSTED, create(50 * GIB), contains=p)
        mid = create_volume(self.root, self.project, p, size=30 * GIB, format=RAW)
        self.assertEqual(self.pool(p).available_bytes, 10 * GIB)
        self.assertCode(C.RESOURCE_EXHAUSTED, resize(big.name, 75 * GIB), contains=p)
        self.assertCode(C.INVALID_ARGUMENT, resize(big.name, POOL_CAPACITY + GIB),
                        contains="capacity")
        self.assertEqual(self.volume(big.name).size_bytes, 60 * GIB)
        grown = self.root.done(self.root.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=big.name, size_bytes=70 * GIB, request_id=rid())).operation)
        self.assertEqual(grown.size_bytes, 70 * GIB)
        self.assertEqual(self.pool(p).available_bytes, 0)
        for v in (whole, big, mid):
            delete_volume(self.root, v.name)
        self.assertEqual(self.pool(p).available_bytes, POOL_CAPACITY)
        delete_pool(self.root, p)

    def test_volume_quota_and_project_deletion(self):
        project = make_project(self.root_api, "q")
        set_quota(self.root_api, project, volume_gib=4)
        a = create_volume(self.root, project, self.p1, size=GIB)
        b = create_volume(self.root, project, self.p1, size=1536 * MIB)  # counts 2 GiB
        self.assertEqual(usage(self.root_api, project).volume_gib, 3)
        c = create_volume(self.root, project, self.p2, size=MIB)  # counts 1 GiB
        self.assertEqual(usage(self.root_api, project).volume_gib, 4)
        msg = self.assertCode(C.RESOURCE_EXHAUSTED, self.root.storage.CreateVolume,
                              sp.CreateVolumeRequest(parent="projects/" + project,
                                                     volume_id="over",
                                                     volume=sp.Volume(pool=self.p1,
                                                                      size_bytes=MIB)))
        self.assertIn("volume_gib", msg)
        # growing within the whole GiB already counted is free; beyond is not
        self.root.done(self.root.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=b.name, size_bytes=2 * GIB, request_id=rid())).operation)
        self.assertCode(C.RESOURCE_EXHAUSTED, self.root.storage.ResizeVolume,
                        sp.ResizeVolumeRequest(name=a.name, size_bytes=GIB + MIB),
                        contains="volume_gib")
        self.assertCode(C.RESOURCE_EXHAUSTED, self.root.storage.CloneVolume,
                        sp.CloneVolumeRequest(name=a.name, volume_id="copy"),
                        contains="volume_gib")
        self.assertEqual(usage(self.root_api, project).volume_gib, 4)
        # the number of volumes has its own limit; clones count too
        set_quota(self.root_api, project, volume_gib=100, volumes=3)
        self.assertEqual(usage(self.root_api, project).volumes, 3)
        self.assertCode(C.RESOURCE_EXHAUSTED, self.root.storage.CreateVolume,
                        sp.CreateVolumeRequest(parent="projects/" + project, volume_id="fourth",
                                               volume=sp.Volume(pool=self.p1, size_bytes=MIB)),
                        contains="volumes would be 4 (3 used + 1 requested), the limit is 3")
        self.assertCode(C.RESOURCE_EXHAUSTED, self.root.storage.CloneVolume,
                        sp.CloneVolumeRequest(name=a.name, volume_id="copy"),
                        contains="volumes would be 4")
        # growing adds no volume
        self.root.done(self.root.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=a.name, size_bytes=2 * GIB, request_id=rid())).operation)
        # a project that still holds volumes cannot be deleted
        self.assertCode(C.FAILED_PRECONDITION, self.root_api.DeleteProject,
                        ip.DeleteProjectRequest(name="projects/" + project))
        for v in (a, b, c):
            delete_volume(self.root, v.name)
        self.assertEqual(usage(self.root_api, project).volume_gib, 0)
        self.root_api.DeleteProject(ip.DeleteProjectRequest(name="projects/" + project,
                                                            request_id=rid()))

    def test_clone_and_copy(self):
        src = create_volume(self.root, self.project, self.p1, size=2 * GIB,
                            labels=[Label(key="app", value="db")], description="source")
        # CloneVolume: the source's pool and labels unless given
        c1 = self.root.done(self.root.storage.CloneVolume(sp.CloneVolumeRequest(
            name=src.name, volume_id=unique("c"), request_id=rid())).operation)
        self.assertTrue(c1.name.startswith("projects/%s/volumes/c-" % self.project))
        self.assertEqual((c1.pool, c1.size_bytes, c1.state), (self.p1, 2 * GIB, VS.STATE_READY))
        self.assertEqual([(l.key, l.value) for l in c1.labels], [("app", "db")])
        self.assertEqual(c1.source_volume, src.name)
        self.assertNotEqual(c1.uid, src.uid)
        c2 = self.root.done(self.root.storage.CloneVolume(sp.CloneVolumeRequest(
            name=src.name, volume_id=unique("c"), pool=self.p2,
            labels=[Label(key="app", value="copy")], request_id=rid())).operation)
        self.assertEqual((c2.pool, [(l.key, l.value) for l in c2.labels]),
                         (self.p2, [("app", "copy")]))
        self.assertCode(C.ALREADY_EXISTS, self.root.storage.CloneVolume, sp.CloneVolumeRequest(
            name=src.name, volume_id=c1.name.rsplit("/", 1)[1]))
        self.assertCode(C.INVALID_ARGUMENT, self.root.storage.CloneVolume, sp.CloneVolumeRequest(
            name=src.name, volume_id="bad.id"), contains="volume_id")
        self.assertCode(C.NOT_FOUND, self.root.storage.CloneVolume, sp.CloneVolumeRequest(
            name="projects/%s/volumes/nope" % self.project, volume_id=unique("c")))
        self.assertCode(C.NOT_FOUND, self.root.storage.CloneVolume, sp.CloneVolumeRequest(
            name=src.name, volume_id=unique("c"), pool="hosts/default/pools/nope"))
        # CreateVolume from a volume: size 0 takes the source's, larger grows
        c3 = create_volume(self.root, self.project, self.p1, size=0, source_volume=src.name)
        self.assertEqual((c3.size_bytes, c3.source_volume), (2 * GIB, src.name))
        c4 = create_volume(self.root, self.project, self.p2, size=3 * GIB,
                           source_volume=src.name)
        self.assertEqual(c4.size_bytes, 3 * GIB)
        self.assertCode(C.INVALID_ARGUMENT, self.root.storage.CreateVolume,
                        sp.CreateVolumeRequest(parent="projects/" + self.project,
                                               volume_id=unique("c"),
                                               volume=sp.Volume(pool=self.p1, size_bytes=GIB,
                                                                source_volume=src.name)),
                        contains="size_bytes")
        for v in (c1, c2, c3, c4, src):
            delete_volume(self.root, v.name)

    def test_list_volumes(self):
        project = make_project(self.root_api, "l")
        a = create_volume(self.root, project, self.p1, "a", GIB,
                          labels=[Label(key="tier", value="db")])
        b = create_volume(self.root, project, self.p1, "b", 2 * GIB, format=RAW,
                          labels=[Label(key="tier", value="web")])
        c = create_volume(self.root, project, self.p1, "c", 3 * GIB,
                          labels=[Label(key="tier", value="db")])
        d = create_volume(self.root, project, self.p2, "d", GIB)
        names = [a.name, b.name, c.name, d.name]

        def lst(**kw):
            r = self.root.storage.ListVolumes(sp.ListVolumesRequest(parent="projects/" + project,
                                                                    **kw))
            return [v.name for v in r.volumes], r.total_size
        self.assertEqual(lst(), (names, 4))
        seen, token = [], ""
        while True:
            r = self.root.storage.ListVolumes(sp.ListVolumesRequest(
                parent="projects/" + project, page_size=3, page_token=token))
            self.assertEqual(r.total_size, 4)
            seen += [v.name for v in r.volumes]
            token = r.next_page_token
            if not token:
                break
        self.assertEqual(seen, names)
        self.assertEqual(lst(filter='labels.tier = "db"'), ([a.name, c.name], 2))
        self.assertEqual(lst(filter="format = FORMAT_RAW")[0], [b.name])
        self.assertEqual(lst(filter='pool = "%s"' % self.p2)[0], [d.name])
        self.assertEqual(lst(filter="size_bytes > %d" % GIB)[0], [b.name, c.name])
        self.assertEqual(lst(filter="state = STATE_READY AND format = FORMAT_QCOW2")[0],
                         [a.name, c.name, d.name])
        self.assertEqual(lst(order_by="size_bytes desc")[0][:2], [c.name, b.name])
        self.assertEqual(lst(order_by="name desc")[0], names[::-1])
        for bad in ("color = 1", "state = READY", "size_bytes ~ 1"):
            self.assertCode(C.INVALID_ARGUMENT, self.root.storage.ListVolumes,
                            sp.ListVolumesRequest(parent="projects/" + project, filter=bad))
        self.assertCode(C.INVALID_ARGUMENT, self.root.storage.ListVolumes,
                        sp.ListVolumesRequest(parent="projects/" + project, order_by="pool"))
        self.assertCode(C.INVALID_ARGUMENT, self.root.storage.ListVolumes,
                        sp.ListVolumesRequest(parent="hosts/default"))
        for v in (a, b, c, d):
            delete_volume(self.root, v.name)

    def test_list_volumes_by_attachment(self):
        project = make_project(self.root_api, "la")
        free = create_volume(self.root, project, self.p1, "free")
        used = create_volume(self.root, project, self.p1, "used")
        _, vm = compute.create_vm(self.root, project, disks=[vp.VmDisk(volume=used.name)])

        def lst(flt):
            return [v.name for v in self.root.storage.ListVolumes(sp.ListVolumesRequest(
                parent="projects/" + project, filter=flt)).volumes]
        self.assertEqual(lst('attachment.vm = "%s"' % vm), [used.name])
        self.assertEqual(lst('attachment.vm = ""'), [free.name])
        self.assertEqual(lst("state = STATE_ATTACHED"), [used.name])
        self.root.done(self.root.vm.DeleteVm(vp.DeleteVmRequest(
            name=vm, delete_volumes=True, request_id=rid())).operation)
        delete_volume(self.root, free.name)

    def test_permissions(self):
        mine = create_volume(self.root, self.project, self.p1)
        viewer_id, operator_id, outsider_id = (make_user(self.root_api) for _ in range(3))
        grant(self.root_api, self.project, viewer_id, ip.ROLE_VIEWER)
        grant(self.root_api, self.project, operator_id, ip.ROLE_OPERATOR)
        viewer, operator, outsider = (Client(self.ch, login(self.ch, u, PASSWORD)[0].token)
                                      for u in (viewer_id, operator_id, outsider_id))
        parent = "projects/" + self.project
        self.assertEqual(self.volume(mine.name, viewer).uid, mine.uid)
        self.assertIn(mine.name, [v.name for v in viewer.storage.ListVolumes(
            sp.ListVolumesRequest(parent=parent, page_size=500)).volumes])
        self.assertCode(C.PERMISSION_DENIED, viewer.storage.CreateVolume, sp.CreateVolumeRequest(
            parent=parent, volume_id=unique("v"), volume=sp.Volume(pool=self.p1,
                                                                   size_bytes=GIB)))
        for method, req in (("ResizeVolume", sp.ResizeVolumeRequest(name=mine.name,
                                                                   size_bytes=2 * GIB)),
                            ("CloneVolume", sp.CloneVolumeRequest(name=mine.name,
                                                                  volume_id=unique("c"))),
                            ("DeleteVolume", sp.DeleteVolumeRequest(name=mine.name))):
            self.assertCode(C.PERMISSION_DENIED, getattr(viewer.storage, method), req)
        v = create_volume(operator, self.project, self.p1)
        operator.done(operator.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=v.name, size_bytes=2 * GIB, request_id=rid())).operation)
        delete_volume(operator, v.name)
        # an outsider learns nothing, whether or not the volume exists
        nope = parent + "/volumes/nope"
        m1 = self.assertCode(C.PERMISSION_DENIED, self.volume, mine.name, outsider)
        m2 = self.assertCode(C.PERMISSION_DENIED, self.volume, nope, outsider)
        self.assertEqual(m1.replace(mine.name, "X"), m2.replace(nope, "X"))
        self.assertCode(C.PERMISSION_DENIED, outsider.storage.ListVolumes,
                        sp.ListVolumesRequest(parent=parent))
        self.assertEqual(self.pool(self.p1, outsider).name, self.p1)  # pools are readable
        delete_volume(self.root, mine.name)

    def test_volume_events(self):
        seq = head_sequence(self.root)
        v = create_volume(self.root, self.project, self.p1)
        self.root.done(self.root.storage.ResizeVolume(sp.ResizeVolumeRequest(
            name=v.name, size_bytes=2 * GIB, request_id=rid())).operation)
        delete_volume(self.root, v.name)
        got = events_since(self.root, seq, lambda e: e.type == ep.Event.TYPE_RESOURCE_DELETED,
                           parent="projects/" + self.project,
                           resource_types=["novacron.v1.Volume"])
        for e in got:
            self.assertEqual((e.resource, e.resource_type, e.project),
                             (v.name, "novacron.v1.Volume", "projects/" + self.project))
            self.assertEqual(e.other_resource.type_url, "type.googleapis.com/novacron.v1.Volume")
            self.assertEqual(e.principal, "users/admin")
        seen = [(ep.Event.Type.Name(e.type), unpack(e.other_resource).state,
                 unpack(e.other_resource).size_bytes) for e in got]
        self.assertEqual(seen, [("TYPE_RESOURCE_CREATED", VS.STATE_CREATING, GIB),
                                ("TYPE_RESOURCE_UPDATED", VS.STATE_READY, GIB),
                                ("TYPE_RESOURCE_UPDATED", VS.STATE_READY, 2 * GIB),
                                ("TYPE_RESOURCE_UPDATED", VS.STATE_DELETING, 2 * GIB),
                                ("TYPE_RESOURCE_DELETED", VS.STATE_DELETING, 2 * GIB)])
        self.assertEqual(got[1].message, "state CREATING -> READY")
        self.assertEqual(got[3].message, "state READY -> DELETING")
        self.assertTrue(got[1].source_operation.startswith("projects/%s/operations/" %
                                                           self.project))


# ---------------------------------------------------------------- images


class Images(Case):
    """Imports from --storage-image-dirs: a private host whose node file has
    a pool over /srv/images holding a raw 3 GiB image `base.img` (the
    test driver finds volumes by path in the pools it knows)."""
    IMAGE = "/srv/images/base.img"

    @classmethod
    def setUpClass(cls):
        cls.srv, cls.ch, cls.root_api, cls.root = start_server(
            "Images", None, "--storage-image-dirs", "/srv/images,/srv/more/")
        cls.project = make_project(cls.root_api, "im")
        cls.host, _ = private_host(cls.root, pool_xml("images", "/srv/images",
                                                      raw_volumes=[("base.img", 3 * GIB)]))
        cls.dest = create_pool(cls.root, cls.host).name

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()
        harness.stop_and_assert(cls.srv)

    def test_import_an_image(self):
        v = create_volume(self.root, self.project, self.dest, size=0, source_image=self.IMAGE)
        self.assertEqual((v.size_bytes, v.format, v.source_image, v.state),
                         (3 * GIB, QCOW2, self.IMAGE, VS.STATE_READY))
        self.assertEqual(usage(self.root_api, self.project).volume_gib, 3)
        grown = create_volume(self.root, self.project, self.dest, size=5 * GIB, format=RAW,
                              source_image=self.IMAGE)
        self.assertEqual((grown.size_bytes, grown.format), (5 * GIB, RAW))
        self.assertEqual(self.pool(self.dest).allocation_bytes, 5 * GIB)
        # a VM's new disk from the image lands in a pool of the image's host
        vm, name = compute.create_vm(self.root, self.project, disks=[vp.VmDisk(
            new_volume=vp.VmDiskNewVolume(source_image=self.IMAGE, pool=self.dest))])
        self.assertEqual(vm.host, "hosts/" + self.host)
        disk = self.volume(vm.disks[0].volume)
        self.assertEqual((disk.size_bytes, disk.source_image, disk.state),
                         (3 * GIB, self.IMAGE, VS.STATE_ATTACHED))
        self.root.done(self.root.vm.DeleteVm(vp.DeleteVmRequest(
            name=name, delete_volumes=True, request_id=rid())).operation)
        for x in (v, grown):
            delete_volume(self.root, x.name)
        self.assertEqual(usage(self.root_api, self.project).volume_gib, 0)

    def test_image_paths(self):
        def create(image):
            return lambda: self.root.storage.CreateVolume(sp.CreateVolumeRequest(
                parent="projects/" + self.project, volume_id=unique("img"),
                volume=sp.Volume(pool=self.dest, source_image=image)))
        for image in ("/srv/other/base.img", "/srv/imagesx/base.img", "/srv/image/base.img",
                      "/srv/images", "/base.img"):
            self.assertCode(C.PERMISSION_DENIED, create(image), contains="volume.source_image")
        for image in ("/srv/images/../secret.img", "/srv/images/./base.img", "base.img",
                      "/srv/images//base.img"):
            self.assertCode(C.INVALID_ARGUMENT, create(image), contains="volume.source_image")
        # an allowed directory without that image: the creation fails, and
        # leaves no volume behind
        for image in ("/srv/images/missing.img", "/srv/more/base.img"):
            o = self.root.failed(create_volume(self.root, self.project, self.dest, size=0,
                                               source_image=image, wait=False))
            self.assertIn(image, o.error.message)
            self.assertGone(o.target)
        self.assertEqual(usage(self.root_api, self.project).volume_gib, 0)

    def test_import_counts_against_the_quota(self):
        """The image's size is only known once imported; the project must not
        end up over its volume_gib limit either way."""
        project = make_project(self.root_api, "iq")
        set_quota(self.root_api, project, volume_gib=2)
        try:
            o = create_volume(self.root, project, self.dest, size=0, source_image=self.IMAGE,
                              wait=False)
        except grpc.RpcError as e:
            self.assertEqual(e.code(), C.RESOURCE_EXHAUSTED, e.details())
        else:
            o = self.root.wait(o)
            self.assertEqual(o.state, op.Operation.STATE_FAILED, "a 3 GiB import was accepted "
                             "into a project limited to 2 GiB")
            self.assertIn("volume_gib", o.error.message)
            self.assertGone(o.target)
        self.assertLessEqual(usage(self.root_api, project).volume_gib, 2)


def qcow2_header(backing_offset=0, incompatible=0, extensions=()):
    """The first 64 KiB of a version-3 qcow2 image (header, extensions),
    enough for the import's checks; the rest of the image is zeros."""
    h = bytearray(65536)
    h[0:4] = b"QFI\xfb"
    h[4:8] = (3).to_bytes(4, "big")
    h[8:16] = backing_offset.to_bytes(8, "big")
    h[20:24] = (16).to_bytes(4, "big")  # cluster bits
    h[24:32] = (64 * MIB).to_bytes(8, "big")  # virtual size
    h[72:80] = incompatible.to_bytes(8, "big")
    h[96:100] = (4).to_bytes(4, "big")  # refcount order
    h[100:104] = (104).to_bytes(4, "big")  # header length
    off = 104
    for kind, data in extensions:
        h[off:off + 4] = kind.to_bytes(4, "big")
        h[off + 4:off + 8] = len(data).to_bytes(4, "big")
        h[off + 8:off + 8 + len(data)] = data
        off += 8 + (len(data) + 7) // 8 * 8
    return bytes(h)


class UrlImports(Case):
    """Imports from --storage-image-urls, served by a local HTTP server.
    The test driver cannot take the bytes (no virStorageVolUpload): it
    counts them and makes the volume blank at the download's length; the
    qemu stage checks real content."""

    @classmethod
    def setUpClass(cls):
        cls.web = image_server.ImageServer().start()
        cls.web.files["/ok/disk.img"] = os.urandom(3 * MIB)
        cls.web.files["/ok/odd.img"] = os.urandom(MIB + 5)
        # qcow2 headers naming host files: a backing file, an external data
        # file by feature bit and by header extension
        cls.web.files["/ok/backing.qcow2"] = qcow2_header(backing_offset=512)
        cls.web.files["/ok/datafile-bit.qcow2"] = qcow2_header(incompatible=4)
        cls.web.files["/ok/datafile-ext.qcow2"] = qcow2_header(
            extensions=[(0x44415441, b"/etc/shadow")])
        cls.web.files["/ok/clean.qcow2"] = qcow2_header(extensions=[(0x6803f857, b"x" * 48)])
        cls.srv, cls.ch, cls.root_api, cls.root = start_server(
            "UrlImports", None, "--storage-image-urls",
            cls.web.url("/ok/") + ",http://127.0.0.1:1/cloud/,https://images.example.org/cloud/")
        cls.project = make_project(cls.root_api, "ui")
        cls.dest = create_pool(cls.root).name

    @classmethod
    def tearDownClass(cls):
        cls.ch.close()
        harness.stop_and_assert(cls.srv)
        cls.web.stop()

    def create(self, image, **kw):
        return self.root.storage.CreateVolume(sp.CreateVolumeRequest(
            parent="projects/" + self.project, volume_id=unique("url"),
            volume=sp.Volume(pool=self.dest, source_image=image, **kw), request_id=rid()))

    def test_download_an_image(self):
        url = self.web.url("/ok/disk.img")
        v = self.root.done(self.create(url).operation)
        self.assertEqual((v.size_bytes, v.format, v.source_image, v.state),
                         (3 * MIB, QCOW2, url, VS.STATE_READY))
        self.assertIn("/ok/disk.img", self.web.requests)
        # a length that is not whole MiB: the volume takes whole MiB
        odd = self.root.done(self.create(self.web.url("/ok/odd.img"), format=RAW).operation)
        self.assertEqual((odd.size_bytes, odd.format), (2 * MIB, RAW))
        # a larger size grows it; a VM's new disk can come from a URL too
        big = self.root.done(self.create(url, size_bytes=GIB).operation)
        self.assertEqual(big.size_bytes, GIB)
        vm, name = compute.create_vm(self.root, self.project, disks=[vp.VmDisk(
            new_volume=vp.VmDiskNewVolume(source_image=url, pool=self.dest))])
        disk = self.volume(vm.disks[0].volume)
        self.assertEqual((disk.size_bytes, disk.source_image), (3 * MIB, url))
        self.root.done(self.root.vm.DeleteVm(vp.DeleteVmRequest(
            name=name, delete_volumes=True, request_id=rid())).operation)
        # a qcow2 header with harmless extensions passes the checks
        clean = self.root.done(self.create(self.web.url("/ok/clean.qcow2")).operation)
        for x in (v, odd, big, clean):
            delete_volume(self.root, x.name)

    def test_refused_urls_are_never_fetched(self):
        before = len(self.web.requests)
        port = self.web.port
        for image in ("http://127.0.0.1:%d/other/disk.img" % port,
                      "http://127.0.0.1:%d/okay/disk.img" % port,
                      "http://127.0.0.1:%d/ok/../secret.img" % port,   # resolves to /secret.img
                      "http://localhost:%d/ok/disk.img" % port,
                      "https://127.0.0.1:%d/ok/disk.img" % port,
                      "https://images.example.org/cloudy/x.img"):
            self.assertCode(C.PERMISSION_DENIED, self.create, image,
                            contains=["volume.source_image", "--storage-image-urls"])
        for image, part in (("http://u:pw@127.0.0.1:%d/ok/disk.img" % port, "credentials"),
                            ("http://127.0.0.1:%d/ok/disk.img#x" % port, "fragment"),
                            ("http://127.0.0.1:%d/ok/a b.img" % port, "encoded"),
                            ("http://127.0.0.1:%d/ok/%%2e%%2e/secret.img" % port, "encoded"),
                            ("http://", "URL"), ("http://127.0.0.1:99999/ok/x", "URL")):
            self.assertCode(C.INVALID_ARGUMENT, self.create, image,
                            contains=["volume.source_image", part])
        self.assertEqual(len(self.web.requests), before)

    def test_failed_downloads_leave_nothing(self):
        cases = (("/ok/missing.img", C.NOT_FOUND, "HTTP 404"),
                 ("/ok/redirect", C.FAILED_PRECONDITION, "redirect"),
                 ("/ok/chunked", C.FAILED_PRECONDITION, "Content-Length"),
                 ("/ok/huge", C.RESOURCE_EXHAUSTED, "available"))
        cases += (("/ok/backing.qcow2", C.INVALID_ARGUMENT, "backing file"),
                  ("/ok/datafile-bit.qcow2", C.INVALID_ARGUMENT, "external data file"),
                  ("/ok/datafile-ext.qcow2", C.INVALID_ARGUMENT, "names an external data file"))
        for path, code, part in cases:
            with self.subTest(path=path):
                o = self.root.failed(self.create(self.web.url(path)).operation)
                self.assertEqual(o.error.code, code.value[0], o.error.message)
                self.assertIn(part, o.error.message)
                self.assertGone(o.target)
        # nobody listens there: the download fails, the volume is not made
        o = self.root.failed(self.create("http://127.0.0.1:1/cloud/x.img").operation)
        self.assertEqual(o.error.code, C.FAILED_PRECONDITION.value[0], o.error.message)
        self.assertIn("127.0.0.1:1", o.error.message)
        self.assertGone(o.target)
        self.assertEqual(usage(self.root_api, self.project).volumes, 0)

    def test_url_imports_are_off_by_default_and_checked_at_start(self):
        srv, ch, api, root = start_server("NoUrls")
        try:
            project = make_project(api, "nu")
            pool = create_pool(root).name
            with self.assertRaises(grpc.RpcError) as e:
                root.storage.CreateVolume(sp.CreateVolumeRequest(
                    parent="projects/" + project, volume_id="x",
                    volume=sp.Volume(pool=pool, source_image=self.web.url("/ok/disk.img"))))
            self.assertEqual(e.exception.code(), C.PERMISSION_DENIED)
            self.assertIn("URL imports are disabled", e.exception.details())
        finally:
            ch.close()
            harness.stop_and_assert(srv)
        for bad in ("ftp://mirror.example/", "https://u:p@mirror.example/"):
            srv = Server(*(ARGS + ("--storage-image-urls", bad)), name="badurls")
            with self.assertRaises(harness.ServerError) as ctx:
                srv.start()
            self.assertIn("--storage-image-urls", str(ctx.exception))


# ---------------------------------------------------------------- restart


class Restart(Case):
    def test_pools_and_volumes_survive_a_restart(self):
        db = harness.create_database("strst")
        srv, ch, api, self.root = start_server("restart", db)
        try:
            project = make_project(api, "r")
            keep = create_pool(self.root).name
            boot = create_volume(self.root, project, keep, "boot", GIB)
            data = create_volume(self.root, project, keep, "data", 2 * GIB, format=RAW)
            _, stopped_name = compute.create_vm(
                self.root, project, vm_id="stopped", disks=[vp.VmDisk(volume=boot.name)])
            _, running_name = compute.create_vm(
                self.root, project, vm_id="running", start=True,
                disks=[vp.VmDisk(new_volume=vp.VmDiskNewVolume(size_gib=1, pool=keep))])
            self.assertEqual(self.pool(keep).allocation_bytes, 2 * GIB)
            # a private host: its node file is read again when the server starts
            host, node = private_host(self.root)
            named = create_pool(self.root, host, "named", target_path="/srv/named")
            v = create_volume(self.root, project, named.name, "v", GIB, format=RAW)
            self.assertEqual(self.pool(named.name).allocation_bytes, GIB)
        finally:
            ch.close()
            harness.stop_and_assert(srv)
        # the host keeps the pool, with the volume under the name NovaCron
        # gives it: the restore must find it there instead of making another
        write_node(node, pool_xml("named", "/srv/named", named.uid,
                                  [("%s.v" % project, GIB)]))
        srv, ch, api, self.root = start_server("restart", db)
        try:
            for before in (boot, data):
                after = self.volume(before.name)
                self.assertEqual((after.uid, after.size_bytes, after.format, after.pool),
                                 (before.uid, before.size_bytes, before.format, keep))
            self.assertEqual(self.volume(boot.name).state, VS.STATE_ATTACHED)
            self.assertEqual(self.volume(boot.name).attachment.vm, stopped_name)
            self.assertEqual(self.volume(data.name).state, VS.STATE_READY)
            # the VMs have their disks again
            self.assertEqual(self.vm(running_name).state, vp.Vm.STATE_RUNNING)
            self.assertEqual(self.vm(stopped_name).state, vp.Vm.STATE_STOPPED)
            # the volumes are on the host again: a copy of the stopped VM's
            # disk reads the source there
            copy = self.root.done(self.root.storage.CloneVolume(sp.CloneVolumeRequest(
                name=boot.name, volume_id="boot-copy", request_id=rid())).operation)
            self.assertEqual(copy.size_bytes, GIB)
            started = self.root.done(self.root.vm.StartVm(vp.StartVmRequest(
                name=stopped_name, request_id=rid())).operation)
            self.assertEqual(started.state, vp.Vm.STATE_RUNNING)
            self.assertEqual([(d.volume, d.target_device) for d in started.disks],
                             [(boot.name, "vda")])
            attached = self.root.done(self.root.vm.AttachVolume(vp.AttachVolumeRequest(
                name=stopped_name, disk=vp.VmDisk(volume=data.name),
                request_id=rid())).operation)
            self.assertEqual([d.volume for d in attached.disks], [boot.name, data.name])
            # the pools are back as they were, with their raw GiBs
            p = self.pool(keep)
            self.assertEqual((p.state, p.state_message, p.capacity_bytes, p.allocation_bytes),
                             (PS.STATE_ACTIVE, "", POOL_CAPACITY, 2 * GIB))
            # the private host's pool: one raw GiB, so the volume was found
            n = self.pool(named.name)
            self.assertEqual((n.state, n.allocation_bytes), (PS.STATE_ACTIVE, GIB))
            self.assertEqual(self.volume(v.name).state, VS.STATE_READY)
            delete_volume(self.root, v.name)
            self.assertEqual(self.pool(named.name).allocation_bytes, 0)
        finally:
            ch.close()
            harness.stop_and_assert(srv)


if __name__ == "__main__":
    unittest.main()
