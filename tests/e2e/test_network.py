"""NetworkService end to end: the real server on its own PostgreSQL database
and the libvirt test driver (hosts/default is test:///default, which comes
with libvirt's own "default" network on 192.168.122.0/24; private
test:///<file> hypervisors registered as extra hosts have none), driven by
Python grpcio. Every method: each mode, reads with filters and paging,
updates and refused paths, reservations, leases (always empty on the test
driver, which runs no DHCP server), quotas, subnet overlap per host, bad
input naming its field, etags, idempotent retries, permissions, events, a
network in use by a VM, and the restore of the embedded host's networks
after a restart."""
import ipaddress
import os
import subprocess
import threading
import time
import unittest

import grpc

import harness
from compute import C, Client, Stub, ep, node_xml, op, register_host, rid, unique, vp
from harness import Server
from identity import PASSWORD, admin, grant, ip, login, make_project, make_user
from google.protobuf import field_mask_pb2, wrappers_pb2  # noqa: E402
from novacron.v1.common_pb2 import Label  # noqa: E402
from novacron.v1 import network_pb2 as np_  # noqa: E402
from novacron.v1 import network_pb2_grpc as ng  # noqa: E402

N = np_.Network
Mask = field_mask_pb2.FieldMask

# Every test picks its subnets from here, so tests sharing a host never
# overlap by accident (libvirt's own default network is 192.168.122.0/24).
_subnets = ipaddress.ip_network("10.0.0.0/8").subnets(new_prefix=24)
_lock = threading.Lock()


def subnet():
    with _lock:
        return next(_subnets)


class NetClient(Client):
    """The compute services plus NetworkService for one credential."""

    def __init__(self, channel, token):
        super().__init__(channel, token)
        self.net = Stub(channel, ng.NetworkServiceStub, token)


def psql(url, sql):
    """Runs one statement on a test database (for states no API sets)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                   check=True, env=env, stdout=subprocess.DEVNULL, timeout=30)


def unpack(operation):
    msg = N()
    if not operation.response.Unpack(msg):
        raise AssertionError("not a Network: " + operation.response.type_url)
    return msg


def nat(cidr=None, host="hosts/default", **kw):
    cidr = kw.pop("ipv4_cidr", None) or cidr or subnet()
    return N(host=host, mode=N.MODE_NAT, ipv4_cidr=str(cidr), **kw)


class Base(unittest.TestCase):
    ARGS = ("--rate-limit-rps", "0", "--rate-limit-anonymous-rps", "0",
            "--host-heartbeat-s", "1")

    @classmethod
    def setUpClass(cls):
        cls.db = harness.create_database("net")
        cls.srv = Server(*cls.ARGS, name=cls.__name__, database_url=cls.db).start()
        cls.ch = cls.srv.channel()
        cls.root_api = admin(cls.srv, cls.ch)
        cls.root = NetClient(cls.ch, cls.root_api.token)
        cls.project = make_project(cls.root_api, "np")

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

    def create(self, network, net_id=None, project=None, reservations=(), wait=True, cl=None):
        """Creates a network; returns (Network, name) once its operation
        succeeded, or (Operation, name) with wait=False."""
        cl = cl or self.root
        net_id = net_id or unique("n")
        project = project or self.project
        o = cl.net.CreateNetwork(np_.CreateNetworkRequest(
            parent="projects/" + project, network_id=net_id, network=network,
            reservations=list(reservations), request_id=rid())).operation
        name = "projects/%s/networks/%s" % (project, net_id)
        if not wait:
            return o, name
        return self.done(o), name

    def done(self, operation):
        """Waits for a NetworkService operation, asserts success and
        returns its Network."""
        o = self.root.wait(operation)
        if o.state != op.Operation.STATE_SUCCEEDED:
            raise AssertionError("operation %s %s: %s" % (
                o.verb, op.Operation.State.Name(o.state), o.error.message))
        return unpack(o)

    def get(self, name):
        return self.root.net.GetNetwork(np_.GetNetworkRequest(name=name)).network

    def delete(self, name, **kw):
        return self.done(self.root.net.DeleteNetwork(
            np_.DeleteNetworkRequest(name=name, request_id=rid(), **kw)).operation)

    def update(self, network, paths, **kw):
        return self.done(self.root.net.UpdateNetwork(np_.UpdateNetworkRequest(
            network=network, update_mask=Mask(paths=paths), request_id=rid(), **kw)).operation)

    def add(self, name, mac, addr, hostname="", **kw):
        return self.done(self.root.net.AddReservation(np_.AddReservationRequest(
            name=name, reservation=N.Reservation(mac=mac, ip=addr, hostname=hostname),
            request_id=rid(), **kw)).operation)


class Create(Base):
    def test_nat_with_dhcp_ipv6_and_reservations(self):
        cidr = subnet()
        hosts = list(cidr.hosts())
        res = [N.Reservation(mac="52:54:00:AA:00:01", ip=str(hosts[9]), hostname="web-1"),
               N.Reservation(mac="52:54:00:aa:00:02", ip=str(hosts[10]))]
        n, name = self.create(nat(cidr, ipv6_cidr="fd00:%x::/64" % cidr.network_address.packed[2],
                                  dhcp_start=str(hosts[99]), dhcp_end=str(hosts[199]), mtu=1400,
                                  autostart=True, description="web tier",
                                  labels=[Label(key="tier", value="web")]),
                              reservations=res)
        self.assertEqual(n.name, name)
        self.assertEqual(len(n.uid), 36)
        self.assertEqual(n.state, N.STATE_ACTIVE)
        self.assertEqual(n.mode, N.MODE_NAT)
        self.assertEqual(n.host, "hosts/default")
        self.assertRegex(n.bridge, r"^ncbr[0-9]+$")
        self.assertEqual(n.ipv4_cidr, str(cidr))
        self.assertEqual(n.gateway, str(hosts[0]))  # the first usable address
        self.assertTrue(n.ipv6_cidr.endswith("::/64"))
        self.assertEqual((n.dhcp_start, n.dhcp_end), (str(hosts[99]), str(hosts[199])))
        self.assertEqual((n.mtu, n.autostart, n.description), (1400, True, "web tier"))
        self.assertEqual([(l.key, l.value) for l in n.labels], [("tier", "web")])
        self.assertFalse(n.HasField("vlan_id"))
        # reservations: ordered by address, MACs lower-cased
        got = self.get(name)
        self.assertEqual([(r.mac, r.ip, r.hostname) for r in got.reservations],
                         [("52:54:00:aa:00:01", str(hosts[9]), "web-1"),
                          ("52:54:00:aa:00:02", str(hosts[10]), "")])
        self.assertEqual(got.etag, n.etag)
        self.assertTrue(got.HasField("create_time") and got.HasField("update_time"))
        self.delete(name)
        self.assertCode(C.NOT_FOUND, self.root.net.GetNetwork, np_.GetNetworkRequest(name=name))

    def test_isolated_routed_and_bridge(self):
        cidr = subnet()
        gw = str(cidr.network_address + 100)
        iso, a = self.create(N(host="hosts/default", mode=N.MODE_ISOLATED, ipv4_cidr=str(cidr),
                               gateway=gw))
        self.assertEqual((iso.state, iso.gateway), (N.STATE_ACTIVE, gw))
        routed, b = self.create(N(host="hosts/default", mode=N.MODE_ROUTED,
                                  ipv4_cidr=str(subnet())))
        self.assertEqual(routed.mode, N.MODE_ROUTED)
        self.assertNotEqual(routed.bridge, iso.bridge)
        br, c = self.create(N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0"))
        self.assertEqual((br.state, br.bridge, br.ipv4_cidr, br.gateway),
                         (N.STATE_ACTIVE, "br0", "", ""))
        # a second network may join the same host bridge
        br2, d = self.create(N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0"))
        for name in (a, b, c, d):
            self.delete(name)

    def test_duplicate_and_idempotent_create(self):
        net_id = unique("n")
        req = np_.CreateNetworkRequest(parent="projects/" + self.project, network_id=net_id,
                                       network=nat(), request_id=rid())
        first = self.root.net.CreateNetwork(req).operation
        again = self.root.net.CreateNetwork(req).operation
        self.assertEqual(first.name, again.name)
        self.assertEqual(first.verb, "novacron.v1.NetworkService.CreateNetwork")
        self.assertTrue(first.name.startswith("projects/%s/operations/" % self.project))
        n = self.done(first)
        self.assertCode(C.ALREADY_EXISTS, self.root.net.CreateNetwork, np_.CreateNetworkRequest(
            parent="projects/" + self.project, network_id=net_id, network=nat()),
            contains=n.name)
        req.network.description = "changed"
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.CreateNetwork, req, contains="request_id")
        self.delete(n.name)

    def test_unknown_host_and_project(self):
        self.assertCode(C.NOT_FOUND, self.root.net.CreateNetwork, np_.CreateNetworkRequest(
            parent="projects/" + self.project, network_id="n", network=nat(host="hosts/nowhere")),
            contains="hosts/nowhere")
        self.assertCode(C.NOT_FOUND, self.root.net.CreateNetwork, np_.CreateNetworkRequest(
            parent="projects/nope-" + unique("p"), network_id="n", network=nat()))

    def test_host_must_be_ready(self):
        d = harness.tmpdir("node-")
        hid = unique("h")
        register_host(self.root, hid, node_xml(os.path.join(d, "n.xml")))
        # a host that is not READY (as a drain in progress leaves it; the
        # heartbeat does not touch that state)
        psql(self.db, "UPDATE hosts SET state = 5 WHERE host_id = '%s'" % hid)
        self.assertCode(C.FAILED_PRECONDITION, self.root.net.CreateNetwork,
                        np_.CreateNetworkRequest(parent="projects/" + self.project,
                                                 network_id=unique("n"),
                                                 network=nat(host="hosts/" + hid)),
                        contains="hosts/%s is STATE_DRAINING" % hid)
        psql(self.db, "UPDATE hosts SET state = 2 WHERE host_id = '%s'" % hid)
        n, name = self.create(nat(host="hosts/" + hid))
        self.assertEqual(n.host, "hosts/" + hid)
        self.delete(name)


class Validation(Base):
    def bad(self, code, contains, network=None, reservations=(), net_id="ok", **fields):
        if network is None:
            network = nat(**fields)
        return self.assertCode(code, self.root.net.CreateNetwork, np_.CreateNetworkRequest(
            parent="projects/" + self.project, network_id=net_id, network=network,
            reservations=list(reservations)), contains=contains)

    def test_ids_and_names(self):
        for bad in ("", "A", "a/b", "a.b", "<x>", "x&y", "a'b", '"q"', "1net", "x" * 64,
                    "../etc"):
            self.bad(C.INVALID_ARGUMENT, "network_id", net_id=bad)
        for parent in ("", "projects/", "projects/a/b", "hosts/default"):
            self.assertCode(C.INVALID_ARGUMENT, self.root.net.CreateNetwork,
                            np_.CreateNetworkRequest(parent=parent, network_id="ok",
                                                     network=nat()), contains="parent")
        for name in ("networks/x", "projects/p/vms/x", "projects/p/networks/A"):
            self.assertCode(C.INVALID_ARGUMENT, self.root.net.GetNetwork,
                            np_.GetNetworkRequest(name=name), contains="name")
        self.assertCode(C.NOT_FOUND, self.root.net.GetNetwork, np_.GetNetworkRequest(
            name="projects/%s/networks/nope" % self.project))
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.CreateNetwork, np_.CreateNetworkRequest(
            parent="projects/" + self.project, network_id="ok"), contains="network")
        self.bad(C.INVALID_ARGUMENT, "network.host", network=N(mode=N.MODE_NAT,
                                                                ipv4_cidr=str(subnet())))
        self.bad(C.INVALID_ARGUMENT, "network.host", host="default")
        self.bad(C.INVALID_ARGUMENT, "network.mode", network=N(host="hosts/default",
                                                                ipv4_cidr=str(subnet())))
        self.bad(C.INVALID_ARGUMENT, "network.description", description="a\x01b")
        self.bad(C.INVALID_ARGUMENT, "network.description", description="x" * 1025)
        self.bad(C.INVALID_ARGUMENT, "labels", labels=[Label(key="Bad Key", value="v")])

    def test_subnets(self):
        for bad in ("10.1.2.0", "10.1.2.0/", "10.1.2/24", "10.1.2.0/x", "256.1.2.0/24",
                    "10.01.2.0/24", "fd00::/64", " 10.1.2.0/24", "10.1.2.0/24<"):
            self.bad(C.INVALID_ARGUMENT, "network.ipv4_cidr", ipv4_cidr=bad)
        for bad in ("10.0.0.0/7", "10.1.2.0/31", "10.1.2.0/32", "0.0.0.0/0"):
            self.bad(C.INVALID_ARGUMENT, "prefix length must be 8 to 30", ipv4_cidr=bad)
        self.bad(C.INVALID_ARGUMENT, "host bits", ipv4_cidr="10.1.2.5/24")
        self.bad(C.INVALID_ARGUMENT, "network.ipv4_cidr: required",
                 network=N(host="hosts/default", mode=N.MODE_ROUTED))
        for bad in ("fd00:1::/48", "fd00:1::/128"):
            self.bad(C.INVALID_ARGUMENT, "must be 64", ipv6_cidr=bad)
        for bad in ("fd00:1::", "10.0.0.0/64", "fd00::g/64", "fd00:1::1/64"):
            self.bad(C.INVALID_ARGUMENT, "network.ipv6_cidr", ipv6_cidr=bad)

    def test_gateway_and_dhcp_range(self):
        cidr = subnet()
        h = list(cidr.hosts())
        net = str(cidr.network_address)
        bcast = str(cidr.broadcast_address)
        self.bad(C.INVALID_ARGUMENT, "network.gateway: 172.16.0.1 is outside",
                 ipv4_cidr=str(cidr), gateway="172.16.0.1")
        self.bad(C.INVALID_ARGUMENT, "network address", ipv4_cidr=str(cidr), gateway=net)
        self.bad(C.INVALID_ARGUMENT, "broadcast address", ipv4_cidr=str(cidr), gateway=bcast)
        self.bad(C.INVALID_ARGUMENT, "network.gateway", ipv4_cidr=str(cidr), gateway="x")
        self.bad(C.INVALID_ARGUMENT, "set both", ipv4_cidr=str(cidr), dhcp_start=str(h[10]))
        self.bad(C.INVALID_ARGUMENT, "set both", ipv4_cidr=str(cidr), dhcp_end=str(h[10]))
        self.bad(C.INVALID_ARGUMENT, "network.dhcp_start", ipv4_cidr=str(cidr),
                 dhcp_start="172.16.0.10", dhcp_end=str(h[10]))
        self.bad(C.INVALID_ARGUMENT, "network.dhcp_end", ipv4_cidr=str(cidr),
                 dhcp_start=str(h[10]), dhcp_end=bcast)
        self.bad(C.INVALID_ARGUMENT, "network.dhcp_end: %s is below" % h[10], ipv4_cidr=str(cidr),
                 dhcp_start=str(h[20]), dhcp_end=str(h[10]))
        self.bad(C.INVALID_ARGUMENT, "contains the gateway", ipv4_cidr=str(cidr),
                 dhcp_start=str(h[0]), dhcp_end=str(h[50]))
        self.bad(C.INVALID_ARGUMENT, "contains the gateway", ipv4_cidr=str(cidr),
                 gateway=str(h[30]), dhcp_start=str(h[10]), dhcp_end=str(h[50]))

    def test_mode_specific_fields(self):
        for field, value in (("ipv4_cidr", "10.9.9.0/24"), ("gateway", "10.9.9.1"),
                             ("ipv6_cidr", "fd00:9::/64"), ("dhcp_start", "10.9.9.10"),
                             ("dhcp_end", "10.9.9.20")):
            self.bad(C.INVALID_ARGUMENT, "network.%s: must be empty for MODE_BRIDGE" % field,
                     network=N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0",
                               **{field: value}))
        self.bad(C.INVALID_ARGUMENT, "network.bridge: required",
                 network=N(host="hosts/default", mode=N.MODE_BRIDGE))
        for bad in ("br0/x", "<br>", "br 0", "a" * 16, "..", "br'0", "-br"):
            self.bad(C.INVALID_ARGUMENT, "network.bridge",
                     network=N(host="hosts/default", mode=N.MODE_BRIDGE, bridge=bad))
        self.bad(C.INVALID_ARGUMENT, "bridge of a NovaCron network",
                 network=N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="ncbr1"))
        self.bad(C.INVALID_ARGUMENT, "reservations",
                 network=N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0"),
                 reservations=[N.Reservation(mac="52:54:00:00:00:01", ip="10.9.9.9")])
        # VLAN tags: only MODE_BRIDGE, and only on Open vSwitch, which
        # NovaCron does not manage: always refused, naming the field
        self.bad(C.INVALID_ARGUMENT, "network.vlan_id: VLAN tags are only for MODE_BRIDGE",
                 vlan_id=wrappers_pb2.Int32Value(value=10))
        self.bad(C.INVALID_ARGUMENT, "Open vSwitch",
                 network=N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0",
                           vlan_id=wrappers_pb2.Int32Value(value=10)))
        for tag in (0, 4095, -1):
            self.bad(C.INVALID_ARGUMENT, "network.vlan_id: must be 1 to 4094",
                     network=N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0",
                               vlan_id=wrappers_pb2.Int32Value(value=tag)))
        for mtu in (575, 9001, -1):
            self.bad(C.INVALID_ARGUMENT, "network.mtu", mtu=mtu)
        self.bad(C.INVALID_ARGUMENT, "network.mtu: MODE_BRIDGE",
                 network=N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0", mtu=9000))

    def test_initial_reservations(self):
        cidr = subnet()
        h = list(cidr.hosts())

        def r(mac="52:54:00:00:00:01", addr=None, hostname=""):
            return N.Reservation(mac=mac, ip=str(h[10]) if addr is None else addr,
                                 hostname=hostname)
        for bad_mac in ("", "52:54:00:00:00", "52-54-00-00-00-01", "zz:54:00:00:00:01",
                        "01:00:5e:00:00:01", "00:00:00:00:00:00", "52:54:00:00:00:01<"):
            self.bad(C.INVALID_ARGUMENT, "reservations[0].mac", ipv4_cidr=str(cidr),
                     reservations=[r(mac=bad_mac)])
        for bad_ip, why in (("", "required"), ("x", "IPv4"), ("172.16.0.1", "outside"),
                            (str(cidr.network_address), "network address"),
                            (str(cidr.broadcast_address), "broadcast"),
                            (str(h[0]), "gateway")):
            self.bad(C.INVALID_ARGUMENT, "reservations[0].ip", ipv4_cidr=str(cidr),
                     reservations=[r(addr=bad_ip)])
            self.bad(C.INVALID_ARGUMENT, why, ipv4_cidr=str(cidr), reservations=[r(addr=bad_ip)])
        for bad_host in ("Web", "web_1", "-web", "web-", "x" * 64, "a.b"):
            self.bad(C.INVALID_ARGUMENT, "reservations[0].hostname", ipv4_cidr=str(cidr),
                     reservations=[r(hostname=bad_host)])
        self.bad(C.INVALID_ARGUMENT, "reservations[1].mac", ipv4_cidr=str(cidr),
                 reservations=[r(), r(mac="52:54:00:00:00:01", addr=str(h[11]))])
        self.bad(C.INVALID_ARGUMENT, "reservations[1].ip", ipv4_cidr=str(cidr),
                 reservations=[r(), r(mac="52:54:00:00:00:02")])
        self.bad(C.INVALID_ARGUMENT, "reservations[1].hostname", ipv4_cidr=str(cidr),
                 reservations=[r(hostname="a"), r(mac="52:54:00:00:00:02", addr=str(h[11]),
                                                  hostname="a")])

    def test_nothing_half_created(self):
        # refused requests leave no row behind
        nets = self.root.net.ListNetworks(np_.ListNetworksRequest(
            parent="projects/" + self.project)).networks
        self.assertEqual([n.name for n in nets if n.name.endswith("/ok")], [])


class Overlap(Base):
    def test_same_host_refused_other_host_fine(self):
        cidr = subnet()
        first, a = self.create(nat(cidr))
        for other in (cidr, ipaddress.ip_network(str(cidr.network_address) + "/25"),
                      cidr.supernet(new_prefix=16)):
            msg = self.assertCode(C.FAILED_PRECONDITION, self.root.net.CreateNetwork,
                                  np_.CreateNetworkRequest(parent="projects/" + self.project,
                                                           network_id=unique("n"),
                                                           network=nat(other)),
                                  contains="network.ipv4_cidr")
            self.assertIn(a, msg)  # the caller's own project: the network is named
        # an IPv6 /64 overlaps too
        _, b = self.create(nat(ipv6_cidr="fd00:77::/64"))
        self.assertCode(C.FAILED_PRECONDITION, self.root.net.CreateNetwork,
                        np_.CreateNetworkRequest(parent="projects/" + self.project,
                                                 network_id=unique("n"),
                                                 network=nat(ipv6_cidr="fd00:77::/64")),
                        contains="network.ipv6_cidr")
        # another project's network is not named to a caller without a role there
        other = make_project(self.root_api, "ov")
        user = make_user(self.root_api)
        grant(self.root_api, other, user, ip.ROLE_OPERATOR)
        cl = NetClient(self.ch, login(self.ch, user, PASSWORD)[0].token)
        msg = self.assertCode(C.FAILED_PRECONDITION, cl.net.CreateNetwork,
                              np_.CreateNetworkRequest(parent="projects/" + other,
                                                       network_id="x", network=nat(cidr)))
        self.assertIn("another project", msg)
        self.assertNotIn(a, msg)
        # the same subnet on another host is fine
        d = harness.tmpdir("node-")
        hid = unique("h")
        register_host(self.root, hid, node_xml(os.path.join(d, "n.xml")))
        n2, c = self.create(nat(cidr, host="hosts/" + hid))
        self.assertEqual((n2.state, n2.host), (N.STATE_ACTIVE, "hosts/" + hid))
        # the embedded host's own libvirt network is on 192.168.122.0/24: the
        # operation fails there and leaves no row, but a private host has none
        o, name = self.create(nat("192.168.122.0/24"), wait=False)
        o = self.root.wait(o)
        self.assertEqual(o.state, op.Operation.STATE_FAILED)
        self.assertEqual(o.error.code, grpc.StatusCode.FAILED_PRECONDITION.value[0])
        self.assertIn('libvirt network "default"', o.error.message)
        self.assertIn("192.168.122.0/24", o.error.message)
        self.assertCode(C.NOT_FOUND, self.root.net.GetNetwork, np_.GetNetworkRequest(name=name))
        o, name = self.create(nat("192.168.122.128/25"), wait=False)
        self.assertEqual(self.root.wait(o).state, op.Operation.STATE_FAILED)
        n3, e = self.create(nat("192.168.122.0/24", host="hosts/" + hid))
        self.assertEqual(n3.state, N.STATE_ACTIVE)
        for name in (a, b, c, e):
            self.delete(name)
        # deleted: the subnet is free again
        _, f = self.create(nat(cidr))
        self.delete(f)

    def test_concurrent_creates_on_one_host(self):
        cidr = subnet()
        results = []

        def go():
            try:
                o, _ = self.create(nat(cidr), wait=False)
                results.append(self.root.wait(o).state)
            except grpc.RpcError as e:
                results.append(e.code())
        threads = [threading.Thread(target=go) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results.count(op.Operation.STATE_SUCCEEDED), 1, results)
        self.assertEqual(results.count(C.FAILED_PRECONDITION), 3, results)
        nets = self.root.net.ListNetworks(np_.ListNetworksRequest(
            parent="projects/" + self.project)).networks
        for n in nets:
            if n.ipv4_cidr == str(cidr):
                self.delete(n.name)


class ListAndGet(Base):
    def test_filter_order_paging(self):
        project = make_project(self.root_api, "l")
        names = []
        for i in range(5):
            mode = N.MODE_NAT if i % 2 == 0 else N.MODE_ISOLATED
            _, name = self.create(N(host="hosts/default", mode=mode, ipv4_cidr=str(subnet()),
                                    autostart=i == 0,
                                    labels=[Label(key="parity", value=str(i % 2))]),
                                  net_id="net-%d" % i, project=project)
            names.append(name)
        _, br = self.create(N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0"),
                            net_id="net-9", project=project)
        names.append(br)
        seen, token = [], ""
        while True:
            page = self.root.net.ListNetworks(np_.ListNetworksRequest(
                parent="projects/" + project, page_size=4, page_token=token))
            self.assertEqual(page.total_size, 6)
            seen += [n.name for n in page.networks]
            token = page.next_page_token
            if not token:
                break
        self.assertEqual(seen, sorted(names))

        def names_of(**kw):
            return [n.name for n in self.root.net.ListNetworks(np_.ListNetworksRequest(
                parent="projects/" + project, **kw)).networks]
        self.assertEqual(names_of(filter="mode = MODE_NAT"), [names[0], names[2], names[4]])
        self.assertEqual(names_of(filter='labels.parity = "1" AND mode = MODE_ISOLATED'),
                         [names[1], names[3]])
        self.assertEqual(names_of(filter="autostart = true"), [names[0]])
        self.assertEqual(len(names_of(filter='state = STATE_ACTIVE AND host = "hosts/default"')),
                         6)
        self.assertEqual(names_of(filter='host = "hosts/def*" AND mode = MODE_BRIDGE'), [br])
        self.assertEqual(names_of(order_by="name desc"), sorted(names, reverse=True))
        self.assertEqual(names_of(order_by="create_time"), names)
        for bad in ("cidr = 1", "mode = NAT", "state = ACTIVE", "name ~ x", "mode = MODE_NAT OR "
                    "autostart = true"):
            self.assertCode(C.INVALID_ARGUMENT, self.root.net.ListNetworks,
                            np_.ListNetworksRequest(parent="projects/" + project, filter=bad),
                            contains="filter")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.ListNetworks,
                        np_.ListNetworksRequest(parent="projects/" + project, order_by="mode"))
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.ListNetworks,
                        np_.ListNetworksRequest(parent="projects/-"), contains="parent")
        for name in names:
            self.delete(name)


class Update(Base):
    def test_metadata_and_host_fields(self):
        cidr = subnet()
        h = list(cidr.hosts())
        n, name = self.create(nat(cidr, dhcp_start=str(h[99]), dhcp_end=str(h[199])))
        up = self.update(N(name=name, description="new", etag=n.etag,
                           labels=[Label(key="env", value="prod")]), ["description", "labels"])
        self.assertEqual((up.description, [(l.key, l.value) for l in up.labels]),
                         ("new", [("env", "prod")]))
        self.assertNotEqual(up.etag, n.etag)
        # the stale etag is refused
        self.assertCode(C.ABORTED, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name=name, description="x", etag=n.etag),
            update_mask=Mask(paths=["description"])), contains="etag")
        up2 = self.update(N(name=name, autostart=True, mtu=1450), ["autostart", "mtu"])
        self.assertEqual((up2.autostart, up2.mtu, up2.state), (True, 1450, N.STATE_ACTIVE))
        self.assertEqual(up2.description, "new")  # not in the mask: kept
        up3 = self.update(N(name=name, dhcp_start=str(h[49]), dhcp_end=str(h[149])),
                          ["dhcp_start", "dhcp_end"])
        self.assertEqual((up3.dhcp_start, up3.dhcp_end), (str(h[49]), str(h[149])))
        # one end at a time: checked against the other end as stored
        up4 = self.update(N(name=name, dhcp_end=str(h[249])), ["dhcp_end"])
        self.assertEqual((up4.dhcp_start, up4.dhcp_end), (str(h[49]), str(h[249])))
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name=name, dhcp_start=str(h[250])), update_mask=Mask(paths=["dhcp_start"])),
            contains="below")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name=name, dhcp_start=str(h[0])), update_mask=Mask(paths=["dhcp_start"])),
            contains="gateway")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name=name, dhcp_start="172.16.0.1"),
            update_mask=Mask(paths=["dhcp_start"])), contains="outside")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name=name), update_mask=Mask(paths=["dhcp_start"])), contains="set both")
        # both cleared: DHCP off
        off = self.update(N(name=name), ["dhcp_start", "dhcp_end"])
        self.assertEqual((off.dhcp_start, off.dhcp_end), ("", ""))
        # every change moved the etag on
        self.assertNotEqual(self.get(name).etag, up3.etag)
        self.delete(name)

    def test_refused_paths_and_values(self):
        n, name = self.create(nat())
        for path in ("ipv4_cidr", "gateway", "mode", "host", "bridge", "vlan_id", "ipv6_cidr",
                     "reservations", "name", "state", "etag", "labels.x"):
            self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork,
                            np_.UpdateNetworkRequest(network=N(name=name),
                                                     update_mask=Mask(paths=[path])),
                            contains="update_mask")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name=name)), contains="update_mask")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            update_mask=Mask(paths=["description"])), contains="network")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name=name, mtu=100), update_mask=Mask(paths=["mtu"])),
            contains="network.mtu")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name=name, description="\x02"), update_mask=Mask(paths=["description"])),
            contains="network.description")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name=name, dhcp_start="nope"), update_mask=Mask(paths=["dhcp_start"])),
            contains="network.dhcp_start")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name="projects/x/vms/y", description="d"),
            update_mask=Mask(paths=["description"])), contains="network.name")
        self.assertCode(C.NOT_FOUND, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name="projects/%s/networks/nope" % self.project, description="d"),
            update_mask=Mask(paths=["description"])))
        # no DHCP range on a bridged network
        _, br = self.create(N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0"))
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name=br, dhcp_start="10.0.0.1", dhcp_end="10.0.0.9"),
            update_mask=Mask(paths=["dhcp_start", "dhcp_end"])), contains="MODE_BRIDGE")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.UpdateNetwork, np_.UpdateNetworkRequest(
            network=N(name=br, mtu=1500), update_mask=Mask(paths=["mtu"])),
            contains="network.mtu")
        self.assertTrue(self.update(N(name=br, autostart=True), ["autostart"]).autostart)
        # a retried update returns the first operation
        req = np_.UpdateNetworkRequest(network=N(name=name, description="once"),
                                       update_mask=Mask(paths=["description"]), request_id=rid())
        first = self.root.net.UpdateNetwork(req).operation
        self.assertEqual(self.root.net.UpdateNetwork(req).operation.name, first.name)
        self.done(first)
        for x in (name, br):
            self.delete(x)

    def test_delete_etag_and_one_operation_at_a_time(self):
        n, name = self.create(nat())
        self.assertCode(C.ABORTED, self.root.net.DeleteNetwork,
                        np_.DeleteNetworkRequest(name=name, etag="v999"), contains="etag")
        # a second change while one is queued or running is refused, naming it
        first = self.root.net.UpdateNetwork(np_.UpdateNetworkRequest(
            network=N(name=name, autostart=True), update_mask=Mask(paths=["autostart"]))).operation
        try:
            second = self.root.net.DeleteNetwork(np_.DeleteNetworkRequest(name=name)).operation
        except grpc.RpcError as e:
            self.assertEqual(e.code(), C.FAILED_PRECONDITION)
            self.assertIn("in progress", e.details())
            self.root.wait(first)
            second = self.root.net.DeleteNetwork(np_.DeleteNetworkRequest(name=name)).operation
        self.done(second)
        self.assertCode(C.NOT_FOUND, self.root.net.GetNetwork, np_.GetNetworkRequest(name=name))
        self.assertCode(C.NOT_FOUND, self.root.net.DeleteNetwork,
                        np_.DeleteNetworkRequest(name=name))


class Reservations(Base):
    def test_add_remove_duplicates(self):
        cidr = subnet()
        h = list(cidr.hosts())
        n, name = self.create(nat(cidr, dhcp_start=str(h[99]), dhcp_end=str(h[199])))
        up = self.add(name, "52:54:00:12:34:56", str(h[9]), "db-1", etag=n.etag)
        self.assertEqual([(r.mac, r.ip, r.hostname) for r in up.reservations],
                         [("52:54:00:12:34:56", str(h[9]), "db-1")])
        self.assertNotEqual(up.etag, n.etag)
        self.assertCode(C.ABORTED, self.root.net.AddReservation, np_.AddReservationRequest(
            name=name, reservation=N.Reservation(mac="52:54:00:12:34:57", ip=str(h[10])),
            etag=n.etag))
        # an address inside the DHCP range is fine, and upper case MACs too
        up = self.add(name, "52:54:00:AB:CD:EF", str(h[120]))
        self.assertIn("52:54:00:ab:cd:ef", [r.mac for r in up.reservations])
        for res, what in ((N.Reservation(mac="52:54:00:12:34:56", ip=str(h[11])), "mac"),
                          (N.Reservation(mac="52:54:00:12:34:99", ip=str(h[9])), "ip"),
                          (N.Reservation(mac="52:54:00:12:34:99", ip=str(h[11]),
                                         hostname="db-1"), "hostname")):
            self.assertCode(C.ALREADY_EXISTS, self.root.net.AddReservation,
                            np_.AddReservationRequest(name=name, reservation=res),
                            contains="reservation." + what)
        for res, contains in ((N.Reservation(mac="52:54:00:00:00:09", ip=str(h[0])), "gateway"),
                              (N.Reservation(mac="52:54:00:00:00:09", ip="172.16.0.1"), "outside"),
                              (N.Reservation(mac="52:54:00:00:00:09",
                                             ip=str(cidr.broadcast_address)), "broadcast"),
                              (N.Reservation(mac="52:54:00:00:00:09", ip=str(h[12]),
                                             hostname="Bad"), "reservation.hostname"),
                              (N.Reservation(mac="52:54:00:00:00:0", ip=str(h[12])),
                               "reservation.mac"),
                              (N.Reservation(mac="52:54:00:00:00:09"), "reservation.ip"),
                              (N.Reservation(ip=str(h[12])), "reservation.mac")):
            self.assertCode(C.INVALID_ARGUMENT, self.root.net.AddReservation,
                            np_.AddReservationRequest(name=name, reservation=res),
                            contains=contains)
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.AddReservation,
                        np_.AddReservationRequest(name=name), contains="reservation")
        gone = self.done(self.root.net.RemoveReservation(
            np_.RemoveReservationRequest(name=name, mac="52:54:00:12:34:56",
                                         request_id=rid())).operation)
        self.assertEqual([r.mac for r in gone.reservations], ["52:54:00:ab:cd:ef"])
        self.assertCode(C.NOT_FOUND, self.root.net.RemoveReservation,
                        np_.RemoveReservationRequest(name=name, mac="52:54:00:12:34:56"),
                        contains="52:54:00:12:34:56")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.RemoveReservation,
                        np_.RemoveReservationRequest(name=name, mac="nope"), contains="mac")
        self.assertCode(C.ABORTED, self.root.net.RemoveReservation,
                        np_.RemoveReservationRequest(name=name, mac="52:54:00:ab:cd:ef",
                                                     etag=n.etag))
        # the freed address and MAC can be reserved again
        self.add(name, "52:54:00:12:34:56", str(h[9]), "db-1")
        self.assertCode(C.NOT_FOUND, self.root.net.AddReservation, np_.AddReservationRequest(
            name="projects/%s/networks/nope" % self.project,
            reservation=N.Reservation(mac="52:54:00:00:00:01", ip="10.0.0.1")))
        self.delete(name)

    def test_bridge_has_none(self):
        _, br = self.create(N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0"))
        self.assertCode(C.FAILED_PRECONDITION, self.root.net.AddReservation,
                        np_.AddReservationRequest(name=br, reservation=N.Reservation(
                            mac="52:54:00:00:00:01", ip="10.0.0.5")), contains="MODE_BRIDGE")
        self.assertCode(C.NOT_FOUND, self.root.net.RemoveReservation,
                        np_.RemoveReservationRequest(name=br, mac="52:54:00:00:00:01"))
        self.delete(br)


class Leases(Base):
    def test_empty_on_the_test_driver_and_syntax(self):
        cidr = subnet()
        h = list(cidr.hosts())
        _, name = self.create(nat(cidr, dhcp_start=str(h[9]), dhcp_end=str(h[19])),
                              reservations=[N.Reservation(mac="52:54:00:00:00:01", ip=str(h[5]))])
        resp = self.root.net.ListLeases(np_.ListLeasesRequest(parent=name))
        self.assertEqual((list(resp.leases), resp.total_size, resp.next_page_token), ([], 0, ""))
        for good in ('mac = "52:54:00:00:00:01"', 'ip = "%s" AND reserved = true' % h[5],
                     'hostname = "a \\"b\\""', "reserved = false", "  "):
            self.root.net.ListLeases(np_.ListLeasesRequest(parent=name, filter=good))
        for order in ("ip", "mac desc", "expire_time", "ip asc"):
            self.root.net.ListLeases(np_.ListLeasesRequest(parent=name, order_by=order))
        for bad in ("host = \"x\"", "mac != \"x\"", "mac = x", "reserved = yes",
                    'mac = "x" OR ip = "y"', 'mac = "x" and ip = "y"', 'mac = "x', "(mac = \"x\")",
                    'mac = "a\\nb"', 'mac = "x" AND '):
            self.assertCode(C.INVALID_ARGUMENT, self.root.net.ListLeases,
                            np_.ListLeasesRequest(parent=name, filter=bad), contains="filter")
        for bad in ("hostname", "ip up", "name"):
            self.assertCode(C.INVALID_ARGUMENT, self.root.net.ListLeases,
                            np_.ListLeasesRequest(parent=name, order_by=bad), contains="order_by")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.ListLeases,
                        np_.ListLeasesRequest(parent=name, page_token="x"), contains="page_token")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.ListLeases,
                        np_.ListLeasesRequest(parent=name, page_size=-1), contains="page_size")
        self.assertCode(C.INVALID_ARGUMENT, self.root.net.ListLeases,
                        np_.ListLeasesRequest(parent="projects/x"), contains="parent")
        self.assertCode(C.NOT_FOUND, self.root.net.ListLeases, np_.ListLeasesRequest(
            parent="projects/%s/networks/nope" % self.project))
        _, br = self.create(N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0"))
        self.assertCode(C.FAILED_PRECONDITION, self.root.net.ListLeases,
                        np_.ListLeasesRequest(parent=br), contains="MODE_BRIDGE")
        for x in (name, br):
            self.delete(x)


class Quotas(Base):
    def test_network_quota(self):
        project = make_project(self.root_api, "q")
        self.root_api.SetQuota(ip.SetQuotaRequest(
            quota=ip.Quota(name="projects/%s/quota" % project,
                           limits=ip.Quota.Limits(networks={"value": 2})),
            update_mask=field_mask_pb2.FieldMask(paths=["limits.networks"])))
        _, a = self.create(nat(), project=project)
        _, b = self.create(N(host="hosts/default", mode=N.MODE_BRIDGE, bridge="br0"),
                           project=project)
        msg = self.assertCode(C.RESOURCE_EXHAUSTED, self.root.net.CreateNetwork,
                              np_.CreateNetworkRequest(parent="projects/" + project,
                                                       network_id="third", network=nat()))
        self.assertIn("networks", msg)
        self.assertIn("the limit is 2", msg)
        self.delete(a)
        _, c = self.create(nat(), project=project)
        for x in (b, c):
            self.delete(x)


class Permissions(Base):
    def test_viewer_reads_outsider_denied(self):
        n, name = self.create(nat())
        viewer = make_user(self.root_api)
        grant(self.root_api, self.project, viewer, ip.ROLE_VIEWER)
        cl = NetClient(self.ch, login(self.ch, viewer, PASSWORD)[0].token)
        self.assertEqual(cl.net.GetNetwork(np_.GetNetworkRequest(name=name)).network.name, name)
        self.assertIn(name, [x.name for x in cl.net.ListNetworks(np_.ListNetworksRequest(
            parent="projects/" + self.project)).networks])
        cl.net.ListLeases(np_.ListLeasesRequest(parent=name))
        for method, req in (
                ("CreateNetwork", np_.CreateNetworkRequest(parent="projects/" + self.project,
                                                           network_id="v", network=nat())),
                ("UpdateNetwork", np_.UpdateNetworkRequest(network=N(name=name, description="x"),
                                                           update_mask=Mask(
                                                               paths=["description"]))),
                ("DeleteNetwork", np_.DeleteNetworkRequest(name=name)),
                ("AddReservation", np_.AddReservationRequest(name=name, reservation=N.Reservation(
                    mac="52:54:00:00:00:01", ip="10.0.0.1"))),
                ("RemoveReservation", np_.RemoveReservationRequest(name=name,
                                                                   mac="52:54:00:00:00:01"))):
            self.assertCode(C.PERMISSION_DENIED, getattr(cl.net, method), req)
        outsider = make_user(self.root_api)
        other = NetClient(self.ch, login(self.ch, outsider, PASSWORD)[0].token)
        missing = "projects/%s/networks/nope" % self.project
        m1 = self.assertCode(C.PERMISSION_DENIED, other.net.GetNetwork,
                             np_.GetNetworkRequest(name=name))
        m2 = self.assertCode(C.PERMISSION_DENIED, other.net.GetNetwork,
                             np_.GetNetworkRequest(name=missing))
        self.assertEqual(m1.replace(name, "X"), m2.replace(missing, "X"))
        for n_ in (name, missing):
            self.assertCode(C.PERMISSION_DENIED, other.net.ListLeases,
                            np_.ListLeasesRequest(parent=n_))
            self.assertCode(C.PERMISSION_DENIED, other.net.DeleteNetwork,
                            np_.DeleteNetworkRequest(name=n_))
        self.assertCode(C.PERMISSION_DENIED, other.net.ListNetworks,
                        np_.ListNetworksRequest(parent="projects/" + self.project))
        self.delete(name)


class Events(Base):
    def test_watcher_sees_resource_events(self):
        project = make_project(self.root_api, "ev")
        stream = self.root.watch(ep.WatchEventsRequest(parent="projects/" + project), timeout=60)
        self.assertEqual(next(stream).event.type, ep.Event.TYPE_HEARTBEAT)
        got = []
        done = threading.Event()

        def reader():
            try:
                for m in stream:
                    got.append(m.event)
                    if (m.event.type == ep.Event.TYPE_OPERATION_DONE and
                            m.event.operation.verb.endswith("DeleteNetwork")):
                        done.set()
                        return
            except grpc.RpcError:
                pass
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        n, name = self.create(nat(), project=project)
        self.add(name, "52:54:00:00:00:01", str(ipaddress.ip_network(n.ipv4_cidr)[5]))
        self.delete(name)
        self.assertTrue(done.wait(20), [ep.Event.Type.Name(e.type) for e in got])
        stream.cancel()
        res = [e for e in got if e.resource == name]
        self.assertEqual([ep.Event.Type.Name(e.type) for e in res],
                         ["TYPE_RESOURCE_CREATED", "TYPE_RESOURCE_UPDATED",
                          "TYPE_RESOURCE_UPDATED", "TYPE_RESOURCE_UPDATED",
                          "TYPE_RESOURCE_DELETED"])
        created = res[0]
        self.assertEqual(created.resource_type, "novacron.v1.Network")
        self.assertEqual(created.project, "projects/" + project)
        self.assertEqual(created.principal, "users/admin")
        self.assertTrue(created.other_resource.type_url.endswith("/novacron.v1.Network"))
        payload = N()
        self.assertTrue(created.other_resource.Unpack(payload))
        self.assertEqual((payload.name, payload.state), (name, N.STATE_CREATING))
        self.assertEqual(res[1].message, "state CREATING -> ACTIVE")
        self.assertTrue(res[1].source_operation.startswith("projects/%s/operations/" % project))
        self.assertIn("reservation 52:54:00:00:00:01", res[2].message)
        self.assertEqual(res[3].message, "state ACTIVE -> DELETING")
        self.assertEqual(res[4].message, "deleted")
        seqs = [e.sequence for e in got]
        self.assertEqual(seqs, sorted(seqs))


class InUse(Base):
    def test_a_vm_nic_blocks_delete_and_defers_restarts(self):
        cidr = subnet()
        h = list(cidr.hosts())
        n, name = self.create(nat(cidr, dhcp_start=str(h[9]), dhcp_end=str(h[19])))
        o = self.root.vm.CreateVm(vp.CreateVmRequest(
            parent="projects/" + self.project, vm_id=unique("vm"),
            vm=vp.Vm(vcpus=1, memory_mib=128, nics=[vp.VmNic(network=name)]), start=True,
            request_id=rid())).operation
        self.root.done(o)
        vm_name = o.target
        msg = self.assertCode(C.FAILED_PRECONDITION, self.root.net.DeleteNetwork,
                              np_.DeleteNetworkRequest(name=name), contains="in use")
        self.assertIn(vm_name, msg)
        self.assertEqual(self.get(name).state, N.STATE_ACTIVE)  # nothing changed
        # a running guest is connected: the new MTU waits for the next
        # restart of the network instead of cutting the guest off, and the
        # network says so
        up = self.update(N(name=name, mtu=1400), ["mtu"])
        self.assertEqual((up.mtu, up.state), (1400, N.STATE_ACTIVE))
        self.assertIn("mtu changes when the network restarts", up.state_message)
        self.assertIn("1 running VM is connected", up.state_message)
        # metadata changes keep the note
        self.assertIn("restarts", self.update(N(name=name, description="d"),
                                              ["description"]).state_message)
        self.root.done(self.root.vm.StopVm(vp.StopVmRequest(name=vm_name, force=True,
                                                            request_id=rid())).operation)
        # with the guest stopped, a change restarts the network at once
        up = self.update(N(name=name, dhcp_start=str(h[29]), dhcp_end=str(h[39])),
                         ["dhcp_start", "dhcp_end"])
        self.assertEqual((up.dhcp_start, up.state_message), (str(h[29]), ""))
        self.root.done(self.root.vm.DeleteVm(vp.DeleteVmRequest(name=vm_name,
                                                                request_id=rid())).operation)
        self.delete(name)


class Restart(Base):
    def test_networks_survive_a_restart_of_the_embedded_host(self):
        cidr = subnet()
        h = list(cidr.hosts())
        n, name = self.create(nat(cidr, dhcp_start=str(h[9]), dhcp_end=str(h[19])),
                              reservations=[N.Reservation(mac="52:54:00:00:00:07", ip=str(h[6]))])
        type(self).ch.close()
        harness.stop_and_assert(self.srv)
        srv = Server(*self.ARGS, name="restart", database_url=self.db).start()
        type(self).srv = srv
        type(self).ch = srv.channel()
        type(self).root = NetClient(self.ch, admin(srv, self.ch).token)
        time.sleep(3)  # a few heartbeats: a missing network would turn ERROR
        after = self.get(name)
        self.assertEqual((after.state, after.state_message), (N.STATE_ACTIVE, ""))
        self.assertEqual(after.etag, n.etag)  # restored, not changed
        # the network is back on the host: its leases can be read, and
        # reservations change through libvirt again
        self.root.net.ListLeases(np_.ListLeasesRequest(parent=name))
        self.add(name, "52:54:00:00:00:08", str(h[7]))
        self.assertNotIn("cannot restore", srv.log())
        self.delete(name)


if __name__ == "__main__":
    unittest.main()
