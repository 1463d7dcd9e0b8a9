"""novactl's storage and network commands end to end: the real novactl
binary against the real server on its own database (the embedded host
`hosts/default` on test:///default), over TLS, logged in as the bootstrap
administrator, in project `default`. A dir pool and volumes through `pool
create/get/list/delete` and `volume create/get/list/resize/clone/delete`
(sizes with suffixes, human sizes in tables, --no-wait with `op wait`); a
NAT network through `network create/get/list/update/reserve/unreserve/
leases/delete`; a VM whose disk and NIC use them (`vm create --disk
--nic`), with the deletes refused while in use; the server's errors shown
with their gRPC status names; and the usage errors that need no server."""
import re
import unittest

import harness
from harness import Server, stop_and_assert
from test_novactl_compute import NO_LIMITS, OP_RE, Cli, unique

MIB = 1048576


class NovactlStorage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # its own database: the test hypervisor lives in one server process
        cls.srv = Server(*NO_LIMITS, name="novactl-storage",
                         database_url=harness.create_database("nctls")).start()
        cls.cli = Cli(cls.srv)
        r = cls.cli("login", "admin", "--password-stdin", input=cls.srv.admin_password + "\n")
        if r.returncode != 0:
            cls.srv.stop()
            raise AssertionError("login failed: " + r.stderr)

    @classmethod
    def tearDownClass(cls):
        stop_and_assert(cls.srv)

    def fails(self, code, *args):
        """Runs a command that the server must refuse with `code` (exit 1)."""
        r = self.cli(*args)
        self.assertEqual(r.returncode, 1, "%s: %s%s" % (" ".join(args), r.stdout, r.stderr))
        self.assertRegex(r.stderr, r"^novactl: [a-z -]+: %s\b" % code)
        return r

    def create_pool(self, pool_id):
        pool = self.cli.json(self, "pool", "create", "default/" + pool_id, "--type", "dir",
                             "--target-path", "/var/lib/novacron/test-" + pool_id,
                             "--label", "suite=cli", "--description", "from novactl",
                             "--autostart")
        self.assertEqual((pool["name"], pool["type"], pool["state"]),
                         ("hosts/default/pools/" + pool_id, "TYPE_DIR", "STATE_ACTIVE"))
        self.assertEqual(pool["targetPath"], "/var/lib/novacron/test-" + pool_id)
        self.assertTrue(pool["autostart"])
        self.assertEqual(pool["labels"], [{"key": "suite", "value": "cli"}])
        return pool

    def deleted(self, *args):
        doc = self.cli.json(self, *args)
        self.assertTrue(doc["deleted"], doc)
        return doc["name"]

    # ------------------------------------------------------------ pools, volumes

    def test_pool_and_volumes(self):
        pool_id = unique("cli-pool")
        pool_name = "hosts/default/pools/" + pool_id
        self.create_pool(pool_id)
        self.fails("ALREADY_EXISTS", "pool", "create", "default/" + pool_id, "--type", "dir",
                   "--target-path", "/var/lib/novacron/x")

        # the three ways to name it; capacity in human units
        for args in (("default/" + pool_id,), (pool_id, "--host", "default"), (pool_name,)):
            r = self.cli.ok(self, "pool", "get", *args)
            self.assertRegex(r.stdout, r"(?m)^Name\s+%s$" % re.escape(pool_name))
            self.assertRegex(r.stdout, r"(?m)^Type\s+dir$")
            self.assertRegex(r.stdout, r"(?m)^State\s+active$")
            self.assertRegex(r.stdout, r"(?m)^Capacity\s+\d+(\.\d)? (B|[KMGTPE]iB)$")
        r = self.cli.ok(self, "pool", "list")
        self.assertRegex(r.stdout, re.escape(pool_name) + r"\s+dir\s+active\s")
        pools = self.cli.json(self, "pool", "list", "--host", "default",
                              "--filter", 'labels.suite = "cli"', "--all")["pools"]
        self.assertIn(pool_name, [p["name"] for p in pools])
        self.fails("NOT_FOUND", "pool", "get", "default/no-such-pool")

        # a blank volume, sizes with suffixes, human sizes in tables
        vol = unique("cli-vol")
        name = "projects/default/volumes/" + vol
        v = self.cli.json(self, "volume", "create", vol, "--pool", "default/" + pool_id,
                          "--size", "64MiB", "--label", "tier=db")
        self.assertEqual((v["name"], v["pool"], v["sizeBytes"], v["format"], v["state"]),
                         (name, pool_name, 64 * MIB, "FORMAT_QCOW2", "STATE_READY"))
        r = self.cli.ok(self, "volume", "get", vol)
        self.assertRegex(r.stdout, r"(?m)^Size\s+64 MiB$")
        self.assertRegex(r.stdout, r"(?m)^Format\s+qcow2$")
        self.assertRegex(r.stdout, r"(?m)^Source\s+blank$")
        self.assertRegex(r.stdout, r"(?m)^Attached to\s+-$")
        r = self.cli.ok(self, "volume", "list")
        self.assertRegex(r.stdout, re.escape(name) + r"\s+ready\s+64 MiB\s+qcow2\s+")
        vols = self.cli.json(self, "volume", "list", "--filter", 'labels.tier = "db"')["volumes"]
        self.assertEqual([x["name"] for x in vols], [name])
        self.fails("ALREADY_EXISTS", "volume", "create", vol, "--pool", pool_name, "--size", "1GiB")
        # whole MiB is the server's rule: the message names the field
        r = self.fails("INVALID_ARGUMENT", "volume", "create", unique("odd"), "--pool",
                       pool_name, "--size", "1000")
        self.assertIn("size_bytes", r.stderr)

        # resize: grow, shrink refused, shrink allowed, stale etag
        etag = self.cli.json(self, "volume", "get", vol)["etag"]
        v = self.cli.json(self, "volume", "resize", vol, "--size", "128MiB", "--etag", etag)
        self.assertEqual(v["sizeBytes"], 128 * MIB)
        self.fails("INVALID_ARGUMENT", "volume", "resize", vol, "--size", "96MiB")
        v = self.cli.json(self, "volume", "resize", vol, "--size", "96MiB", "--allow-shrink")
        self.assertEqual(v["sizeBytes"], 96 * MIB)
        self.fails("ABORTED", "volume", "resize", vol, "--size", "1GiB", "--etag", etag)
        r = self.cli.ok(self, "volume", "resize", name, "--size", "1GiB")
        self.assertRegex(r.stdout, r"(?m)^Size\s+1 GiB$")

        # clone and copy
        copy = unique("cli-copy")
        v = self.cli.json(self, "volume", "clone", vol, copy)
        self.assertEqual((v["name"], v["sizeBytes"], v["pool"]),
                         ("projects/default/volumes/" + copy, 1024 * MIB, pool_name))
        from_vol = unique("cli-from")
        v = self.cli.json(self, "volume", "create", from_vol, "--pool", pool_name,
                          "--from-volume", vol, "--size", "2GiB")
        self.assertEqual((v["sourceVolume"], v["sizeBytes"]), (name, 2048 * MIB))
        r = self.cli.ok(self, "volume", "get", from_vol)
        self.assertRegex(r.stdout, r"(?m)^Source\s+volume %s$" % re.escape(name))
        self.fails("NOT_FOUND", "volume", "get", "no-such-volume")

        # the pool cannot go while volumes remain
        self.fails("FAILED_PRECONDITION", "pool", "delete", "default/" + pool_id)

        # --no-wait, then op wait; delete with --wipe; table "Deleted"
        r = self.cli.ok(self, "volume", "delete", from_vol, "--no-wait")
        op = r.stdout.strip()
        self.assertRegex(op, OP_RE)
        done = self.cli.json(self, "op", "wait", op)
        self.assertEqual((done["state"], done["target"]),
                         ("STATE_SUCCEEDED", "projects/default/volumes/" + from_vol))
        self.assertEqual(self.deleted("volume", "delete", copy, "--wipe"),
                         "projects/default/volumes/" + copy)
        r = self.cli.ok(self, "volume", "delete", vol)
        self.assertRegex(r.stdout, r"Deleted\s+" + re.escape(name))
        for gone in (vol, copy, from_vol):
            self.fails("NOT_FOUND", "volume", "get", gone)

        self.fails("ABORTED", "pool", "delete", pool_name, "--etag", "stale")
        self.assertEqual(self.deleted("pool", "delete", pool_id, "--host", "default",
                                      "--delete-storage"), pool_name)
        self.fails("NOT_FOUND", "pool", "get", pool_name)

    # ------------------------------------------------------------ networks

    def test_network(self):
        net = unique("cli-net")
        name = "projects/default/networks/" + net
        n = self.cli.json(self, "network", "create", net, "--host", "default", "--mode", "nat",
                          "--cidr", "10.88.41.0/24", "--dhcp-start", "10.88.41.100",
                          "--dhcp-end", "10.88.41.199", "--mtu", "1450",
                          "--reservation", "52:54:00:bb:00:01=10.88.41.10,web-1",
                          "--reservation", "52:54:00:bb:00:02=10.88.41.11",
                          "--label", "suite=cli")
        self.assertEqual((n["name"], n["host"], n["mode"], n["state"]),
                         (name, "hosts/default", "MODE_NAT", "STATE_ACTIVE"))
        self.assertEqual((n["ipv4Cidr"], n["gateway"], n["mtu"]),
                         ("10.88.41.0/24", "10.88.41.1", 1450))
        self.assertTrue(n["bridge"])
        self.assertEqual(sorted((x["mac"], x["ip"], x["hostname"]) for x in n["reservations"]),
                         [("52:54:00:bb:00:01", "10.88.41.10", "web-1"),
                          ("52:54:00:bb:00:02", "10.88.41.11", "")])
        r = self.cli.ok(self, "network", "get", net)
        self.assertRegex(r.stdout, r"(?m)^Mode\s+nat$")
        self.assertRegex(r.stdout, r"(?m)^DHCP range\s+10\.88\.41\.100 - 10\.88\.41\.199$")
        self.assertRegex(r.stdout, r"(?m)^Reservations\s+.*52:54:00:bb:00:01=10\.88\.41\.10,web-1")
        self.assertRegex(r.stdout, r"(?m)^VLAN\s+-$")
        r = self.cli.ok(self, "network", "list")
        self.assertRegex(r.stdout,
                         re.escape(name) + r"\s+hosts/default\s+nat\s+active\s+10\.88\.41\.0/24")
        nets = self.cli.json(self, "network", "list", "--filter", "mode = MODE_NAT")["networks"]
        self.assertIn(name, [x["name"] for x in nets])
        self.fails("ALREADY_EXISTS", "network", "create", net, "--host", "default", "--mode",
                   "isolated", "--cidr", "10.88.99.0/24")
        r = self.fails("INVALID_ARGUMENT", "network", "create", unique("bad"), "--host", "default",
                       "--mode", "nat", "--cidr", "10.88.98.0/24", "--gateway", "10.1.1.1")
        self.assertIn("gateway", r.stderr)

        # update: the mask follows the flags given
        etag = n["etag"]
        n = self.cli.json(self, "network", "update", net, "--description", "edge", "--mtu", "1400",
                          "--autostart", "--etag", etag)
        self.assertEqual((n["description"], n["mtu"], n["autostart"]), ("edge", 1400, True))
        self.assertEqual(len(n["reservations"]), 2)
        self.fails("ABORTED", "network", "update", net, "--description", "late", "--etag", etag)
        n = self.cli.json(self, "network", "update", net, "--no-autostart", "--dhcp-start",
                          "10.88.41.150")
        self.assertEqual((n["autostart"], n["dhcpStart"], n["description"], n["mtu"]),
                         (False, "10.88.41.150", "edge", 1400))

        # reservations
        n = self.cli.json(self, "network", "reserve", net, "52:54:00:bb:00:03", "10.88.41.12",
                          "db-1")
        self.assertEqual(len(n["reservations"]), 3)
        self.fails("ALREADY_EXISTS", "network", "reserve", net, "52:54:00:bb:00:03", "10.88.41.13")
        n = self.cli.json(self, "network", "unreserve", net, "52:54:00:bb:00:01")
        self.assertEqual(sorted(x["mac"] for x in n["reservations"]),
                         ["52:54:00:bb:00:02", "52:54:00:bb:00:03"])
        self.fails("NOT_FOUND", "network", "unreserve", net, "52:54:00:bb:00:01")

        # leases: read live from the host (the call works; the test driver hands out none)
        leases = self.cli.json(self, "network", "leases", net)
        self.assertIsInstance(leases["leases"], list)
        r = self.cli.ok(self, "network", "leases", name)
        self.assertRegex(r.stdout, r"^MAC\s+IP\s+HOSTNAME\s+RESERVED")
        self.fails("NOT_FOUND", "network", "leases", "no-such-network")

        r = self.cli.ok(self, "network", "delete", net)
        self.assertRegex(r.stdout, r"Deleted\s+" + re.escape(name))
        self.fails("NOT_FOUND", "network", "get", net)

    # ------------------------------------------------------------ a VM using both

    def test_vm_uses_volume_and_network(self):
        pool_id = unique("cli-vmpool")
        self.create_pool(pool_id)
        vol, net, vm = unique("cli-disk"), unique("cli-lan"), unique("cli-vm")
        self.cli.ok(self, "volume", "create", vol, "--pool", "default/" + pool_id, "--size", "1GiB")
        self.cli.ok(self, "network", "create", net, "--host", "default", "--mode", "isolated",
                    "--cidr", "10.88.42.0/24")
        v = self.cli.json(self, "vm", "create", vm, "--vcpus", "1", "--memory-mib", "128",
                          "--disk", vol, "--nic", net)
        self.assertEqual([d["volume"] for d in v["disks"]], ["projects/default/volumes/" + vol])
        self.assertEqual([x["network"] for x in v["nics"]], ["projects/default/networks/" + net])
        volume = self.cli.json(self, "volume", "get", vol)
        self.assertEqual((volume["state"], volume["attachment"]["vm"]),
                         ("STATE_ATTACHED", "projects/default/vms/" + vm))
        r = self.cli.ok(self, "volume", "get", vol)
        self.assertRegex(r.stdout, r"(?m)^Attached to\s+projects/default/vms/%s as \w+$" % vm)
        self.fails("FAILED_PRECONDITION", "volume", "delete", vol)
        self.fails("FAILED_PRECONDITION", "network", "delete", net)
        self.deleted("vm", "delete", vm, "--force")
        self.assertEqual(self.cli.json(self, "volume", "get", vol)["state"], "STATE_READY")
        self.deleted("network", "delete", net)
        self.deleted("volume", "delete", vol)
        self.deleted("pool", "delete", "default/" + pool_id)

    # ------------------------------------------------------------ usage

    def test_usage_errors(self):
        for args in (("pool", "create", "p1", "--type", "dir"),  # a bare id needs --host
                     ("pool", "create", "default/p1"),  # --type is required
                     ("pool", "create", "default/p1", "--type", "zfs"),
                     ("pool", "get", "p1"),
                     ("pool", "get", "a/b/c"),
                     ("volume", "create", "v1"),  # --pool is required
                     ("volume", "create", "v1", "--pool", "default/p1"),  # and --size
                     ("volume", "create", "v1", "--pool", "p1", "--size", "1GiB"),
                     ("volume", "create", "v1", "--pool", "default/p1", "--size", "12XB"),
                     ("volume", "create", "v1", "--pool", "default/p1", "--size", "0"),
                     ("volume", "create", "v1", "--pool", "default/p1", "--size", "-5MiB"),
                     ("volume", "create", "v1", "--pool", "default/p1", "--from-volume", "a",
                      "--from-image", "/srv/a.qcow2"),
                     ("volume", "create", "v1", "--pool", "default/p1", "--size", "1GiB",
                      "--format", "vmdk"),
                     ("volume", "resize", "v1"),
                     ("volume", "clone", "v1"),
                     ("network", "create", "n1", "--mode", "nat"),  # --host is required
                     ("network", "create", "n1", "--host", "default"),  # and --mode
                     ("network", "create", "n1", "--host", "default", "--mode", "mesh"),
                     ("network", "create", "n1", "--host", "default", "--mode", "bridge",
                      "--vlan", "5000"),
                     ("network", "create", "n1", "--host", "default", "--mode", "nat",
                      "--reservation", "52:54:00:00:00:01"),
                     ("network", "update", "n1"),
                     ("network", "update", "n1", "--autostart", "--no-autostart"),
                     ("network", "reserve", "n1", "52:54:00:00:00:01"),
                     ("network", "unreserve", "n1"),
                     ("network", "nope")):
            r = self.cli(*args)
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stderr))
            self.assertIn("novactl:", r.stderr)
        r = self.cli("pool", "create", "default/p1", "--type", "zfs")
        self.assertIn("dir, logical, netfs", r.stderr)  # the choices are listed
        r = self.cli("network", "create", "n1", "--host", "default", "--mode", "mesh")
        self.assertIn("nat, isolated, routed, bridge", r.stderr)
        for words, usage in ((("network", "reserve"), "NETWORK MAC IP [HOSTNAME]"),
                             (("volume", "clone"), "VOLUME NEW_VOLUME"),
                             (("pool", "create"), "POOL")):
            r = self.cli("help", *words)
            self.assertEqual(r.returncode, 0)
            self.assertIn("Usage: novactl %s %s" % (" ".join(words), usage), r.stdout)
        r = self.cli("help")
        for group in ("pool", "volume", "network"):
            self.assertRegex(r.stdout, r"(?m)^  %s\s+Manage" % group)


if __name__ == "__main__":
    unittest.main()
