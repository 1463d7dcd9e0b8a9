"""A minimal DHCPv4 client (RFC 2131: DISCOVER, OFFER, REQUEST, ACK) for the
real-hypervisor stage: it asks a libvirt network's dnsmasq for a lease from
a network namespace plugged into the network's bridge, so the lease path
(dnsmasq, libvirt's lease helper, virNetworkGetDHCPLeases, ListLeases) is
exercised by a real DHCP exchange without booting a guest OS.

    lease(bridge, mac) -> the IPv4 address dnsmasq acknowledged

Needs root (ip netns, veth). Also runnable as
`python3 dhcp_client.py IFACE MAC` inside the namespace (what lease() does).
"""
import os
import random
import socket
import struct
import subprocess
import sys
import time

MAGIC = b"\x63\x82\x53\x63"


def _packet(kind, xid, mac, requested=None, server=None):
    chaddr = bytes.fromhex(mac.replace(":", ""))
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4,
                       b"\0" * 4, b"\0" * 4, b"\0" * 4, chaddr + b"\0" * 10, b"\0" * 64,
                       b"\0" * 128)
    opts = bytes([53, 1, kind, 61, 7, 1]) + chaddr + bytes([55, 3, 1, 3, 6])
    if requested:
        opts += bytes([50, 4]) + socket.inet_aton(requested)
    if server:
        opts += bytes([54, 4]) + socket.inet_aton(server)
    return head + MAGIC + opts + b"\xff"


def _options(data):
    out, i = {}, 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        out[data[i]] = data[i + 2:i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    return out


def _exchange(sock, pkt, xid, want, deadline):
    """Sends pkt (again every second) until a reply of type `want` for xid."""
    while time.monotonic() < deadline:
        sock.sendto(pkt, ("255.255.255.255", 67))
        end = min(deadline, time.monotonic() + 1.0)
        while time.monotonic() < end:
            sock.settimeout(max(0.05, end - time.monotonic()))
            try:
                data, _ = sock.recvfrom(4096)
            except socket.timeout:
                break
            if len(data) < 240 or data[0] != 2 or struct.unpack("!I", data[4:8])[0] != xid:
                continue
            opts = _options(data)
            if opts.get(53, b"\0")[0] == want:
                return socket.inet_ntoa(data[16:20]), opts
            if opts.get(53, b"\0")[0] == 6:  # NAK
                raise RuntimeError("DHCP NAK")
    raise TimeoutError("no DHCP reply of type %d" % want)


def request(iface, mac, timeout=30):
    """Runs DISCOVER/REQUEST on iface (inside the namespace); returns the IP."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    s.bind(("0.0.0.0", 68))
    xid = random.getrandbits(32)
    deadline = time.monotonic() + timeout
    offered, opts = _exchange(s, _packet(1, xid, mac), xid, 2, deadline)
    server = socket.inet_ntoa(opts[54]) if 54 in opts else None
    acked, _ = _exchange(s, _packet(3, xid, mac, offered, server), xid, 5, deadline)
    s.close()
    return acked


def _ip(*args):
    subprocess.run(["ip"] + list(args), check=True, capture_output=True, timeout=30)


def lease(bridge, mac, timeout=30):
    """Plugs a namespace into `bridge` with `mac` and gets a lease there."""
    tag = "%x" % (os.getpid() & 0xffff)
    ns, host_end, ns_end = "ncdhcp" + tag, "ncdh" + tag, "ncdc" + tag
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _ip("link", "set", ns_end, "netns", ns)
        _ip("link", "set", host_end, "master", bridge, "up")
        _ip("-n", ns, "link", "set", ns_end, "address", mac, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                            ns_end, mac, str(timeout)], capture_output=True, text=True,
                           timeout=timeout + 30)
        if r.returncode != 0:
            raise AssertionError("DHCP client failed: %s" % r.stderr.strip())
        return r.stdout.strip()
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    print(request(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 30))
