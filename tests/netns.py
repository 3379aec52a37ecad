"""Hosts on one machine for the tests: network namespaces (`ip netns`) joined by veth pairs, a
star around the first host. Each host has its own network stack: a process started in one reaches
another only over the veth, and a host cut off (its link down) reaches nobody."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path


def netns_missing() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"gs-probe-{os.getpid()}"
    try:
        made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    except FileNotFoundError:
        return "`ip` is not installed (apt-get install iproute2)"
    if made.returncode != 0:
        return f"`ip netns add` is refused here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


class Hosts:
    """hosts[0] is the centre (the hub); host i > 0 has address 10.201.i.2 and reaches the centre
    at 10.201.i.1 over its own veth pair."""

    def __init__(self, names: list[str]):
        tag = f"{os.getpid() % 100000}"
        self.names = names
        self.ns = {name: f"gs-{name}-{tag}" for name in names}
        centre = self.ns[names[0]]
        try:
            for ns in self.ns.values():
                _ip("netns", "add", ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            for i, name in enumerate(names[1:], start=1):
                ns = self.ns[name]
                _ip("-n", centre, "link", "add", f"h{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("-n", centre, "addr", "add", f"10.201.{i}.1/24", "dev", f"h{i}")
                _ip("-n", ns, "addr", "add", f"10.201.{i}.2/24", "dev", "eth0")
                _ip("-n", centre, "link", "set", f"h{i}", "up")
                _ip("-n", ns, "link", "set", "eth0", "up")
        except Exception:
            self.close()
            raise

    def hub_address(self, name: str) -> str:
        """The centre's address as host `name` reaches it."""
        return f"10.201.{self.names.index(name)}.1"

    def command(self, name: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns[name], *argv]

    def wait_for_process(self, name: str, cmdline: str, seconds: float) -> None:
        """Wait until a process whose command line holds `cmdline` runs on host `name`."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            pids = subprocess.run(["ip", "netns", "pids", self.ns[name]], capture_output=True, text=True).stdout
            for pid in pids.split():
                try:
                    if cmdline in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                        return
                except OSError:
                    continue
            time.sleep(0.05)
        raise AssertionError(f"no {cmdline!r} on {name} after {seconds:g}s")

    def cut(self, name: str) -> None:
        _ip("-n", self.ns[name], "link", "set", "eth0", "down")

    def mend(self, name: str) -> None:
        _ip("-n", self.ns[name], "link", "set", "eth0", "up")

    def close(self) -> None:
        for ns in self.ns.values():  # the veth pairs go with their namespaces
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
