"""A schedule's frozen inputs travel base64 in the JSON body of ``POST schedules``, so
the body must fit the server's ``max_body_size``: over it, the kernel says so (the
server's own message) instead of "no server" after a dropped connection."""

from __future__ import annotations

import sys
from typing import Any

import cloudpickle
import pytest

from bgtasks_ext.kernel.client import ServerError, connect
from bgtasks_ext.kinds.code import CodeJob
from tests.kernel.conftest import start_server_kernel, stop_server_kernel
from tests.server_process import ServerProcess


def _job(size: int) -> bytes:
    return cloudpickle.dumps(CodeJob(mode="cell", source="n = len(data)", inputs={"data": b"x" * size},
                                     outputs=["n"]))


def test_inputs_over_the_body_limit_are_refused_with_the_servers_message(tmp_path: Any) -> None:
    with ServerProcess(tmp_path, tmp_path / "tasks.sqlite",
                       server_config={"max_body_size": 2 << 20}) as server:
        client = connect(server.url, server.token)
        try:
            # When a schedule's inputs, in base64, would be over the limit
            with pytest.raises(ServerError) as info:
                client.create_schedule(kind="code", every=60, payload=_job(1800 << 10),
                                       python=sys.executable)
            # Then the server's 413 names the payload and the limit, and nothing is stored
            assert info.value.status == 413 and info.value.field == "payload"
            assert "max_body_size" in str(info.value)
            assert client.list_schedules() == []
            # And inputs that fit in base64 are taken
            made = client.create_schedule(kind="code", every=60, payload=_job(1200 << 10),
                                          python=sys.executable)
            assert client.get_schedule(made["id"])["every"] == 60
            client.delete_schedule(made["id"])
        finally:
            client.close()
        # And a %%bgtask --every cell with such inputs fails naming them
        kernel = start_server_kernel(server)
        try:
            kernel.execute_ok("%load_ext bgtasks_ext\ndata = b'x' * (1800 << 10)")
            result = kernel.execute("%%bgtask --every 60\nn = len(data)")
            assert result.reply is not None and result.reply["ename"] == "UsageError"
            err = "".join(o["text"] for o in result.outputs if o.get("name") == "stderr")
            assert "the cell's inputs: the request is" in err and "max_body_size" in err, err
            assert server.call("GET", "schedules").json()["schedules"] == []
        finally:
            stop_server_kernel(server, kernel)
