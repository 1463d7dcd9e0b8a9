"""novactl's compute commands end to end: the real novactl binary against the
real server on the fixture's PostgreSQL, over TLS, logged in as the
bootstrap administrator, in project `default` on the embedded host
`hosts/default` (test:///default). Hosts, a VM's life through `vm
create/start/pause/resume/stop/delete` (each waiting for its operation), an
illegal transition, --no-wait with `op wait/get/list`, list paging, and the
change feed through `events` (a replay after a sequence, and --follow seeing
a state change as it happens); plus the usage errors that need no server."""
import json
import os
import queue
import re
import subprocess
import threading
import time
import unittest

import harness
from harness import BINARY_DIR, Server, cert, stop_and_assert, tmpdir

NOVACTL = os.path.join(BINARY_DIR, "tools", "novactl", "novactl")
NO_LIMITS = ("--rate-limit-anonymous-rps", "0", "--rate-limit-rps", "0")
OP_RE = re.compile(r"^projects/default/operations/[^/\s]+$")


def unique(prefix):
    return "%s-%s" % (prefix, os.urandom(4).hex())


def clean_env(extra=None):
    """The caller's environment without NOVACRON_*/novactl settings, and a
    private HOME so no real credentials file is touched."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("NOVACRON_") and k not in ("NOVACTL_CREDENTIALS", "XDG_CONFIG_HOME")}
    e["HOME"] = tmpdir("home-")
    e.update(extra or {})
    return e


class Cli:
    """novactl against one server with one credentials file."""

    def __init__(self, srv):
        self.creds = os.path.join(tmpdir("creds-"), "novactl", "credentials")
        self.base = [NOVACTL, "--target", srv.addr, "--ca", cert("ca.crt"),
                     "--credentials", self.creds]
        self.env = clean_env()

    def __call__(self, *args, input=None, timeout=180):
        return subprocess.run(self.base + list(args), env=self.env, input=input,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=timeout)

    def ok(self, testcase, *args):
        r = self(*args)
        testcase.assertEqual(r.returncode, 0, "%s: %s" % (" ".join(args), r.stderr))
        return r

    def json(self, testcase, *args):
        return json.loads(self.ok(testcase, *args, "--output", "json").stdout)

    def popen(self, *args):
        return subprocess.Popen(self.base + list(args), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def line_reader(proc):
    """A queue fed with the lines of proc's stdout by a daemon thread."""
    q = queue.Queue()

    def pump():
        for line in proc.stdout:
            q.put(line)
        q.put(None)
    threading.Thread(target=pump, daemon=True).start()
    return q


class NovactlCompute(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # its own database: the test hypervisor lives in one server process
        cls.srv = Server(*NO_LIMITS, name="novactl-compute",
                         database_url=harness.create_database("nctl")).start()
        cls.cli = Cli(cls.srv)
        r = cls.cli("login", "admin", "--password-stdin", input=cls.srv.admin_password + "\n")
        if r.returncode != 0:
            cls.srv.stop()
            raise AssertionError("login failed: " + r.stderr)

    @classmethod
    def tearDownClass(cls):
        stop_and_assert(cls.srv)

    def create_vm(self, vm_id, *flags):
        vm = self.cli.json(self, "vm", "create", vm_id, "--vcpus", "1", "--memory-mib", "128",
                           *flags)
        self.assertEqual(vm["name"], "projects/default/vms/" + vm_id)
        return vm

    def delete_vm(self, vm_id):
        r = self.cli("vm", "delete", vm_id, "--force", "--output", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout),
                         {"name": "projects/default/vms/" + vm_id, "deleted": True})
        r = self.cli("vm", "get", vm_id)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)

    def head_sequence(self):
        """The newest event sequence, from the first heartbeat of a watch."""
        lines = self.cli.ok(self, "events", "--heartbeats", "--json").stdout.splitlines()
        self.assertEqual(len(lines), 1, lines)
        beat = json.loads(lines[0])
        self.assertEqual(beat["type"], "TYPE_HEARTBEAT")
        return beat["sequence"]

    # ------------------------------------------------------------------ hosts

    def test_hosts(self):
        deadline = time.monotonic() + 30
        while True:
            host = self.cli.json(self, "host", "get", "default")
            if host["state"] == "STATE_READY" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual((host["name"], host["state"], host["uri"]),
                         ("hosts/default", "STATE_READY", "test:///default"))
        names = [h["name"] for h in self.cli.json(self, "host", "list", "--all")["hosts"]]
        self.assertIn("hosts/default", names)
        r = self.cli.ok(self, "host", "list")
        self.assertRegex(r.stdout, r"hosts/default\s+ready")
        r = self.cli.ok(self, "host", "get", "hosts/default")
        self.assertRegex(r.stdout, r"URI\s+test:///default")
        r = self.cli("host", "get", "no-such-host")
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)

    # ------------------------------------------------------------------ VMs

    def test_vm_lifecycle(self):
        vm_id = unique("cli-vm")
        name = "projects/default/vms/" + vm_id
        # validate-only creates nothing
        vm = self.cli.json(self, "vm", "create", vm_id, "--vcpus", "1", "--memory-mib", "128",
                           "--validate-only")
        self.assertEqual(vm["vcpus"], 1)
        self.assertEqual(self.cli("vm", "get", vm_id).returncode, 1)

        vm = self.create_vm(vm_id, "--label", "team=cli", "--description", "from novactl")
        self.assertEqual((vm["state"], vm["vcpus"], vm["memoryMib"], vm["host"]),
                         ("STATE_STOPPED", 1, 128, "hosts/default"))
        self.assertEqual(vm["labels"], [{"key": "team", "value": "cli"}])
        r = self.cli.ok(self, "vm", "get", vm_id)
        self.assertRegex(r.stdout, r"State\s+stopped")
        self.assertRegex(r.stdout, r"Labels\s+team=cli")
        r = self.cli("vm", "create", vm_id, "--vcpus", "1", "--memory-mib", "128")
        self.assertEqual(r.returncode, 1)
        self.assertIn("ALREADY_EXISTS", r.stderr)

        # an illegal transition: refused before any operation, naming the state
        r = self.cli("vm", "pause", vm_id)
        self.assertEqual(r.returncode, 1)
        self.assertIn("FAILED_PRECONDITION", r.stderr)
        self.assertIn("STOPPED", r.stderr)

        # each power command waits for its operation and shows the VM
        for cmd, state in (("start", "STATE_RUNNING"), ("pause", "STATE_PAUSED"),
                           ("resume", "STATE_RUNNING"), ("stop", "STATE_STOPPED")):
            vm = self.cli.json(self, "vm", cmd, vm_id)
            self.assertEqual((vm["name"], vm["state"]), (name, state), cmd)
            self.assertEqual(self.cli.json(self, "vm", "get", name)["state"], state)
        r = self.cli.ok(self, "vm", "start", vm_id)
        self.assertRegex(r.stdout, r"State\s+running")

        # --no-wait prints the operation; op wait/get/list follow it
        r = self.cli.ok(self, "vm", "stop", vm_id, "--force", "--no-wait")
        op_name = r.stdout.strip()
        self.assertRegex(op_name, OP_RE)
        op = self.cli.json(self, "op", "wait", op_name)
        self.assertEqual((op["name"], op["state"], op["done"]), (op_name, "STATE_SUCCEEDED", True))
        self.assertEqual(op["verb"], "novacron.v1.VmService.StopVm")
        self.assertEqual(op["target"], name)
        self.assertEqual(op["response"]["@type"], "type.googleapis.com/novacron.v1.Vm")
        self.assertEqual(op["response"]["state"], "STATE_STOPPED")
        op = self.cli.json(self, "op", "get", op_name.rsplit("/", 1)[1])  # the id in --project
        self.assertEqual(op["name"], op_name)
        r = self.cli.ok(self, "op", "get", op_name)
        self.assertRegex(r.stdout, r"State\s+succeeded")
        ops = self.cli.json(self, "op", "list", "--page-size", "500")["operations"]
        self.assertIn(op_name, [o["name"] for o in ops])
        r = self.cli.ok(self, "op", "list")
        self.assertIn("StopVm", r.stdout)
        op = self.cli.json(self, "op", "cancel", op_name)  # done: it keeps its result
        self.assertEqual(op["state"], "STATE_SUCCEEDED")

        r = self.cli.ok(self, "vm", "delete", vm_id)
        self.assertRegex(r.stdout, r"Deleted\s+" + re.escape(name))
        r = self.cli("vm", "get", vm_id)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)

    def test_vm_list_paging(self):
        suite = unique("page")
        ids = ["%s-%d" % (suite, i) for i in range(3)]
        for vm_id in ids:
            self.create_vm(vm_id, "--label", "suite=" + suite)
        flt = 'labels.suite = "%s"' % suite
        page = self.cli.json(self, "vm", "list", "--filter", flt, "--page-size", "2")
        self.assertEqual([v["name"] for v in page["vms"]],
                         ["projects/default/vms/" + i for i in ids[:2]])
        self.assertTrue(page["nextPageToken"])
        self.assertEqual(page["totalSize"], 3)
        page = self.cli.json(self, "vm", "list", "--filter", flt, "--page-size", "2",
                             "--page-token", page["nextPageToken"])
        self.assertEqual([v["name"] for v in page["vms"]], ["projects/default/vms/" + ids[2]])
        page = self.cli.json(self, "vm", "list", "--filter", flt, "--page-size", "2", "--all")
        self.assertEqual(len(page["vms"]), 3)
        r = self.cli.ok(self, "vm", "list", "--filter", flt, "--page-size", "2")
        self.assertIn("more results", r.stderr)
        self.assertRegex(r.stdout, re.escape(ids[0]) + r"\s+stopped")
        for vm_id in ids:
            self.delete_vm(vm_id)

    # ------------------------------------------------------------------ events

    def test_events_replay_and_follow(self):
        vm_id = unique("cli-ev")
        name = "projects/default/vms/" + vm_id
        self.create_vm(vm_id)
        head = self.head_sequence()
        self.cli.ok(self, "vm", "start", vm_id)

        # replay: the state changes of the start, after the head seen before it
        lines = self.cli.ok(self, "events", "--after", str(head), "--type", "vm-state-changed",
                            "--resource", vm_id, "--json").stdout.splitlines()
        events = [json.loads(line) for line in lines]
        self.assertTrue(events, "no events after %d" % head)
        for e in events:
            self.assertEqual((e["type"], e["resource"], e["project"]),
                             ("TYPE_VM_STATE_CHANGED", name, "projects/default"))
            self.assertGreater(e["sequence"], head)
        self.assertEqual(events[-1]["vm"]["state"], "STATE_RUNNING")
        self.assertEqual([e["sequence"] for e in events], sorted(e["sequence"] for e in events))
        r = self.cli.ok(self, "events", "--after", str(head), "--type", "VM_STATE_CHANGED",
                        "--resource", name)
        self.assertRegex(r.stdout, r"(?m)^\d+\s+\S+\s+VM_STATE_CHANGED\s+" + re.escape(name))

        # --follow: sees the pause as it happens (one JSON document per line)
        proc = self.cli.popen("events", "--follow", "--heartbeats", "--json", "--type",
                              "vm-state-changed", "--resource", vm_id)
        try:
            q = line_reader(proc)
            first = json.loads(q.get(timeout=30))
            self.assertEqual(first["type"], "TYPE_HEARTBEAT")  # subscribed
            self.cli.ok(self, "vm", "pause", vm_id)
            deadline = time.monotonic() + 60
            seen = None
            while time.monotonic() < deadline:
                line = q.get(timeout=max(0.1, deadline - time.monotonic()))
                if line is None:
                    self.fail("events --follow ended: %s" % proc.stderr.read())
                e = json.loads(line)
                if e["type"] == "TYPE_VM_STATE_CHANGED" and e["vm"]["state"] == "STATE_PAUSED":
                    seen = e
                    break
            self.assertIsNotNone(seen, "no PAUSED event within 60 s")
            self.assertEqual(seen["resource"], name)
            self.assertIsNone(proc.poll())  # still following
        finally:
            proc.terminate()
            proc.wait(10)
            proc.stdout.close()
            proc.stderr.close()

        # a sequence past the head: OUT_OF_RANGE, exit 1
        r = self.cli("events", "--after", str(head + 10 ** 9))
        self.assertEqual(r.returncode, 1)
        self.assertIn("OUT_OF_RANGE", r.stderr)
        self.delete_vm(vm_id)

    # ------------------------------------------------------------------ usage

    def test_usage_errors(self):
        for args in (("vm", "create", "x"),  # --vcpus and --memory-mib are required
                     ("vm", "create", "x", "--vcpus", "0", "--memory-mib", "128"),
                     ("vm", "stop", "x", "--force", "--stop-timeout", "5s"),
                     ("vm", "start", "x", "--wait-timeout", "soon"),
                     ("vm", "resize", "x"),
                     ("vm", "attach-volume", "x", "v", "--bus", "floppy"),
                     ("vm", "snapshot", "get", "x"),
                     ("vm", "snapshot", "nope"),
                     ("host", "register", "h1"),  # --uri is required
                     ("host", "drain", "h1", "--mode", "teleport"),
                     ("events", "--type", "bogus"),
                     ("events", "--after", "-1"),
                     ("op", "get")):
            r = self.cli(*args)
            self.assertEqual(r.returncode, 2, "%s: %s" % (args, r.stderr))
            self.assertIn("novactl:", r.stderr)
        r = self.cli("events", "--type", "bogus")
        self.assertIn("vm-state-changed", r.stderr)  # the choices are listed
        r = self.cli("help", "vm", "snapshot", "create")
        self.assertEqual(r.returncode, 0)
        self.assertIn("Usage: novactl vm snapshot create VM SNAPSHOT", r.stdout)


if __name__ == "__main__":
    unittest.main()
