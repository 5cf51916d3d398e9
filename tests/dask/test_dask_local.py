"""``dask_scheduler = "local"``: the LocalCluster the server starts is reachable from
this machine only."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import psutil

from tests.dask.conftest import dask_server_process, wait_connected


def test_the_local_cluster_listens_on_loopback_only(tmp_path: Path) -> None:
    # Given a server with c.BgTasks.dask_scheduler = "local" (on 127.0.0.1 itself)
    with dask_server_process(tmp_path, "local", dask_local_workers=1) as server:
        status = wait_connected(server, timeout=90)
        assert status["dashboard"], status
        # When we list the sockets its processes (scheduler, dashboard, workers) listen on
        tree = [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]
        listening = [(p.pid, c.laddr) for p in tree for c in p.net_connections("inet")
                     if c.status == psutil.CONN_LISTEN]
        # Then none is open to the network (the dashboard used to listen on 0.0.0.0: task
        # names, worker logs and call stacks for anyone who can reach this machine)
        assert listening
        exposed = [(pid, addr) for pid, addr in listening if not ipaddress.ip_address(addr.ip).is_loopback]
        assert not exposed, (exposed, status["dashboard"])
