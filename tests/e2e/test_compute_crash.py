"""The crash test: the server is killed with SIGKILL while operations are
queued and running, then started again (as the same replica, and as a
different replica that must wait for the dead one's leases). Afterwards
every operation has ended (SUCCEEDED, FAILED or CANCELLED), every VM is in
a settled state that matches its hypervisor, and no row is lost: each VM
whose CreateVm was accepted exists unless its operation failed."""
import os
import signal
import subprocess
import time
import unittest

import grpc

import harness
from compute import C, Client, create_vm, op, rid, vp
from harness import Server
from identity import admin, make_project

SETTLED = {vp.Vm.STATE_STOPPED, vp.Vm.STATE_RUNNING, vp.Vm.STATE_PAUSED, vp.Vm.STATE_ERROR}


class Crash(unittest.TestCase):
    def start(self, db, replica, *extra):
        srv = Server("--replica-id", replica, "--rate-limit-rps", "0", "--compute-workers", "4",
                     *extra, name="crash-" + replica, database_url=db).start()
        ch = srv.channel()
        return srv, ch, Client(ch, admin(srv, ch).token)

    def settle(self, cl, project, timeout=90):
        """Waits until no operation of `project` is unfinished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ops = cl.ops.ListOperations(op.ListOperationsRequest(
                parent="projects/" + project, filter="done = false", page_size=500)).operations
            if not ops:
                return
            time.sleep(0.2)
        self.fail("operations still unfinished after %d s: %s" % (
            timeout, [(o.verb, o.target, o.state) for o in ops]))

    def burst(self, cl, project, names):
        """Queues work on every VM plus new VMs, without waiting."""
        accepted = []
        for n in names:
            for method in ("StartVm", "PauseVm"):
                try:
                    req = getattr(vp, method + "Request")(name=n, request_id=rid())
                    getattr(cl.vm, method)(req)
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), C.FAILED_PRECONDITION, e.details())
        for i in range(6):
            o, name = create_vm(cl, project, vm_id="late-%d" % i, wait=False, start=True)
            accepted.append((o.name, name))
        return accepted

    def check(self, cl, project, accepted):
        ops = cl.ops.ListOperations(op.ListOperationsRequest(
            parent="projects/" + project, page_size=500)).operations
        self.assertTrue(ops)
        for o in ops:
            self.assertTrue(o.done, (o.verb, o.target))
            self.assertIn(o.state, (op.Operation.STATE_SUCCEEDED, op.Operation.STATE_FAILED,
                                    op.Operation.STATE_CANCELLED))
        by_name = {o.name: o for o in ops}
        vms = {v.name: v for v in cl.vm.ListVms(vp.ListVmsRequest(
            parent="projects/" + project, page_size=500)).vms}
        for opname, vmname in accepted:
            o = by_name[opname]
            if o.state == op.Operation.STATE_SUCCEEDED:
                self.assertIn(vmname, vms, "row lost for %s" % vmname)
            elif vmname in vms:
                self.fail("%s: create %s but the row exists" % (
                    vmname, op.Operation.State.Name(o.state)))
        for v in vms.values():
            self.assertIn(v.state, SETTLED, (v.name, vp.Vm.State.Name(v.state), v.state_message))
            if v.state in (vp.Vm.STATE_RUNNING, vp.Vm.STATE_PAUSED):
                # the domain exists and runs on the hypervisor
                st = cl.vm.GetVmStats(vp.GetVmStatsRequest(name=v.name)).stats
                self.assertEqual(st.vm, v.name)
        return vms

    def test_sigkill_then_same_replica_resumes(self):
        db = harness.create_database("crash")
        srv, ch, cl = self.start(db, "a")
        project = make_project(admin(srv, ch), "crash")
        names = [create_vm(cl, project, vm_id="vm-%d" % i)[1] for i in range(6)]
        accepted = self.burst(cl, project, names)
        srv.signal(signal.SIGKILL)
        srv.wait()
        ch.close()
        srv2, ch2, cl2 = self.start(db, "a")
        try:
            self.settle(cl2, project)
            vms = self.check(cl2, project, accepted)
            self.assertEqual(len(vms), 12)
        finally:
            ch2.close()
            harness.stop_and_assert(srv2)

    def test_sigkill_then_another_replica_takes_over(self):
        db = harness.create_database("crash")
        srv, ch, cl = self.start(db, "a", "--operation-lease-s", "5")
        project = make_project(admin(srv, ch), "crash")
        names = [create_vm(cl, project, vm_id="vm-%d" % i)[1] for i in range(4)]
        accepted = self.burst(cl, project, names)
        srv.signal(signal.SIGKILL)
        srv.wait()
        ch.close()
        t0 = time.monotonic()
        srv2, ch2, cl2 = self.start(db, "b", "--operation-lease-s", "5")
        try:
            self.settle(cl2, project)
            self.check(cl2, project, accepted)
            self.assertLess(time.monotonic() - t0, 60)
        finally:
            ch2.close()
            harness.stop_and_assert(srv2)


class ReplicaIds(unittest.TestCase):
    def count(self, db, replica):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        r = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-d", db, "-c",
                            "SELECT count(*) FROM replicas WHERE id = '%s'" % replica],
                           capture_output=True, text=True, env=env, timeout=30, check=True)
        return int(r.stdout.strip())

    def test_one_live_server_per_replica_id(self):
        """Two live servers with one replica id would resume each other's
        operations: the second is refused; a killed one can be replaced at
        once on this machine; a clean stop gives the id back."""
        db = harness.create_database("replicas")
        first = Server("--replica-id", "twin", name="twin-1", database_url=db).start()
        try:
            second = Server("--replica-id", "twin", name="twin-2", database_url=db)
            with self.assertRaises(harness.ServerError) as ctx:
                second.start()
            self.assertIn("--replica-id twin is in use by a running server", str(ctx.exception))
            self.assertIn("pid %d" % first.proc.pid, str(ctx.exception))
            other = Server("--replica-id", "other", name="other", database_url=db).start()
            harness.stop_and_assert(other)
            self.assertEqual(self.count(db, "other"), 0)
        finally:
            first.kill()
        # killed: its row stays, but its process is gone, so the id is free
        self.assertEqual(self.count(db, "twin"), 1)
        again = Server("--replica-id", "twin", name="twin-3", database_url=db).start()
        harness.stop_and_assert(again)
        self.assertEqual(self.count(db, "twin"), 0)


if __name__ == "__main__":
    unittest.main()
