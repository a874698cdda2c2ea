import socket

import pytest

from calibench.calibration.distributed.backend import _reachable
from calibench.errors import TargetError


def test_a_closed_port_is_refused_at_once_in_words() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once the socket closes: nothing listens there
    with pytest.raises(TargetError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        _reachable(f"127.0.0.1:{port}")
    with pytest.raises(TargetError, match="auto or HOST:PORT"):
        _reachable("headnode")


def test_a_listening_port_passes() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert _reachable(f"127.0.0.1:{s.getsockname()[1]}") == ("127.0.0.1", s.getsockname()[1])
