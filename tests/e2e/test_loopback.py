"""Every server a test run starts listens on loopback only: the stack's (tests/harness/stack.py: PostgreSQL,
RabbitMQ with its Erlang port mapper and distribution port, the SMTP sink, the Google stand-in) and the
services a test starts. A socket on 0.0.0.0 or :: would put a test broker or database on the network."""

import glob
import json
import os

import pytest

from harness import wait_for

STACK_DIR = os.environ.get("TEST_STACK_DIR")


def listening_inodes():
    """{socket inode: (address, port)} of every TCP socket in LISTEN state, IPv4 and IPv6."""
    out = {}
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            with open(name) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if state != "0A":
                continue
            addr, port = local.split(":")
            assert len(addr) == width
            out[inode] = (decode_addr(addr), int(port, 16))
    return out


def decode_addr(hexaddr):
    """/proc/net/tcp's address (32-bit words in host order, little-endian here) as text."""
    words = [bytes.fromhex(hexaddr[i:i + 8])[::-1] for i in range(0, len(hexaddr), 8)]
    raw = b"".join(words)
    if len(raw) == 4:
        return ".".join(str(b) for b in raw)
    return ":".join(raw[i:i + 2].hex() for i in range(0, 16, 2))


def is_loopback(addr):
    return addr.startswith("127.") or addr == "0000:0000:0000:0000:0000:0000:0000:0001" or \
        addr.startswith("0000:0000:0000:0000:0000:ffff:7f")


def children():
    """{pid: [child pids]} of every process."""
    out = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                text = f.read()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        out.setdefault(ppid, []).append(int(stat.split("/")[2]))
    return out


def tree(roots):
    kids = children()
    seen, todo = set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += kids.get(pid, [])
    return seen


def epmd_daemons(port):
    """The Erlang port mapper RabbitMQ started: a daemon, outside the broker's process tree."""
    found = []
    for p in glob.glob("/proc/[0-9]*"):
        try:
            with open(os.path.join(p, "comm")) as f:
                comm = f.read().strip()
            with open(os.path.join(p, "environ"), "rb") as f:
                env = f.read()
        except OSError:
            continue
        if comm == "epmd" and f"ERL_EPMD_PORT={port}".encode() in env.split(b"\0"):
            found.append(int(os.path.basename(p)))
    return found


def sockets_of(pids, listening):
    """(pid, comm, address, port) of each listening socket the processes hold."""
    out = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = target[8:-1]
                if inode in listening:
                    out.append((pid, comm, *listening[inode]))
    return out


@pytest.mark.skipif(not STACK_DIR, reason="needs the servers of tests/harness/stack.py (TEST_STACK_DIR)")
def test_every_started_server_listens_on_loopback_only(stack):
    with open(os.path.join(STACK_DIR, "pids.json")) as f:
        started = json.load(f)
    roots = [info["pid"] for info in started.values()]
    s = stack()
    gw = s.service("oauth-gateway")
    sched = s.service("scheduler-worker")
    mailer = s.service("mailer-worker")
    roots += [svc.proc.pid for svc in (gw, sched, mailer)]
    pids = tree(roots)
    rabbit = started.get("rabbitmq")
    if rabbit is not None:
        epmd = epmd_daemons(rabbit["epmd_port"])
        assert epmd, "the broker's port mapper was not found"
        pids |= set(epmd)

    found = []
    wait_for(lambda: found.extend(sockets_of(pids, listening_inodes())) or found, 10, what="listening sockets")
    comms = {comm for _, comm, _, _ in found}
    # The broker (beam.smp) holds AMQP, management and distribution; epmd its own port.
    if rabbit is not None:
        assert {"beam.smp", "epmd"} <= comms, found
        ports = {port for _, comm, _, port in found if comm == "beam.smp"}
        assert len(ports) >= 3, f"AMQP, management and the distribution port expected: {found}"
    exposed = [s for s in found if not is_loopback(s[2])]
    assert not exposed, f"listening off loopback: {exposed}"
