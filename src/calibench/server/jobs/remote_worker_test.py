from pathlib import Path

from calibench.server.jobs.remote_worker import lay_out
from calibench.server.workspace import Workspace


def test_inputs_appear_where_the_description_names_them(tmp_path: Path) -> None:
    uploaded = tmp_path / "in"
    (uploaded / "0").mkdir(parents=True)
    (uploaded / "0" / "model.onnx").write_bytes(b"graph")
    (uploaded / "0" / "model.onnx.data").write_bytes(b"weights")
    (uploaded / "1" / "ds-1").mkdir(parents=True)
    (uploaded / "1" / "ds-1" / "a.png").write_bytes(b"png")
    ws = Workspace(tmp_path / "ws")
    lay_out(ws, "models/3/model.onnx", uploaded / "0" / "model.onnx")
    lay_out(ws, "datasets/ds-1", uploaded / "1" / "ds-1")
    lay_out(ws, "datasets/ds-1", uploaded / "1" / "ds-1")  # the same dataset in two roles
    assert ws.path("models/3/model.onnx").read_bytes() == b"graph"
    assert ws.path("models/3/model.onnx.data").read_bytes() == b"weights"  # its external data
    assert ws.path("datasets/ds-1/a.png").read_bytes() == b"png"
