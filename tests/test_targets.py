"""Remote targets against real OpenSSH servers on 127.0.0.1 (tests/sshd.py): registering with
host-key acceptance, the refusals, the check, the offline setup, and calibrate --target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calibench.cli import main
from calibench.runtime.isa import host_cpu
from calibench.targets.registry import Registry
from tests.sshd import Machines


def _add(machines: Machines, workspace: Path, *extra: str, server: int = 0) -> list[str]:
    return [
        "target", "add", "edge", "--host", "127.0.0.1",
        "--port", str(machines.servers[server].port), "--user", machines.user,
        "--key", str(machines.key), "--workspace", str(workspace), *extra,
    ]  # fmt: skip


def test_an_unknown_host_key_is_shown_and_nothing_stored_until_accepted(
    machines: Machines, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fingerprint = machines.servers[0].host_key
    assert main(_add(machines, tmp_path)) == 8
    err = capsys.readouterr().err
    assert "is not known yet" in err and fingerprint in err and "--accept-host-key" in err
    assert not (tmp_path / "targets.json").exists()

    other = machines.servers[1].host_key
    assert main(_add(machines, tmp_path, "--accept-host-key", other)) == 8
    assert f"presented the host key {fingerprint}" in capsys.readouterr().err
    assert not (tmp_path / "targets.json").exists()

    assert main(_add(machines, tmp_path, "--accept-host-key", fingerprint)) == 0
    assert f"target edge added: {machines.user}@127.0.0.1" in capsys.readouterr().out
    assert Registry(tmp_path).get("edge").host_key == fingerprint


def test_wrong_key_and_refused_user_are_refused_clearly(
    machines: Machines, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    accept = ["--accept-host-key", machines.servers[0].host_key]
    wrong_key = _add(machines, tmp_path, *accept)
    wrong_key[wrong_key.index("--key") + 1] = str(machines.other_key)
    assert main(wrong_key) == 7
    err = capsys.readouterr().err
    assert f"refused the login of user '{machines.user}' with the key {machines.other_key}" in err

    refused_user = _add(machines, tmp_path, *accept)
    refused_user[refused_user.index("--user") + 1] = "root"
    assert main(refused_user) == 7
    assert "refused the login of user 'root'" in capsys.readouterr().err

    no_key = _add(machines, tmp_path, *accept)
    no_key[no_key.index("--key") + 1] = str(tmp_path / "missing_ed25519")
    assert main(no_key) == 7
    assert "the key file" in capsys.readouterr().err
    assert not (tmp_path / "targets.json").exists()


def test_a_changed_host_key_is_refused_with_both_fingerprints(
    machines: Machines, target_workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``loop`` re-registered with loop2's key stands for a reinstalled or spoofed machine."""
    import dataclasses

    registry = Registry(tmp_path)
    loop = Registry(target_workspace).get("loop")
    registry.put(dataclasses.replace(loop, host_key=machines.servers[1].host_key))
    assert main(["target", "check", "loop", "--workspace", str(tmp_path)]) == 8
    err = capsys.readouterr().err
    assert "has CHANGED" in err and "nothing was run" in err
    assert machines.servers[0].host_key in err and machines.servers[1].host_key in err
    runs = [
        "calibrate", "m.onnx", "-d", "d.npz", "--target", "loop", "--workspace", str(tmp_path)
    ]  # fmt: skip
    assert main(runs) == 4 or "has CHANGED" in capsys.readouterr().err


def test_both_machines_answer_the_check(
    target_workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["target", "check", "loop", "loop2", "--json", "--workspace", str(target_workspace)]
    assert main(args) == 0
    found = json.loads(capsys.readouterr().out)
    assert [f["target"] for f in found] == ["loop", "loop2"]
    for findings in found:
        assert findings["status"] == "available" and findings["python"].startswith("3.")
        assert findings["cores"] >= 1 and findings["memory_total"] > 0
        assert findings["disk_free"] > 0 and findings["os"]
        # the same classes as runtime.isa gives this machine (an AMD EPYC with VNNI here)
        assert findings["cpu"]["isa"] == host_cpu().isa.value
        assert findings["verdict"]


def test_an_unreachable_target_is_reported_as_such(
    machines: Machines, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from calibench.targets.registry import Target

    Registry(tmp_path).put(Target("gone", "127.0.0.1", "u", 1, str(machines.key), "SHA256:x"))
    assert main(["target", "check", "gone", "--workspace", str(tmp_path)]) == 7
    out = capsys.readouterr().out
    assert "unreachable" in out and "refused" in out


def test_setup_is_reused_while_valid(
    ready_target: Path, machines: Machines, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["target", "setup", "loop", "--workspace", str(ready_target)]) == 0
    err = capsys.readouterr().err
    assert "is installed and up to date: reused" in err
    installed = json.loads(
        (machines.home / ".calibench-target" / "0.1.0" / "installed.json").read_text()
    )
    assert any(name.startswith("calibench-") for name in installed["wheels"])
    assert not any(name.startswith("torch") for name in installed["wheels"])

    # One wheel that differs from the installed one (calibench edited here, say) is reinstalled
    # alone.
    record = machines.home / ".calibench-target" / "0.1.0" / "installed.json"
    mdurl = next(name for name in installed["wheels"] if name.startswith("mdurl-"))
    installed["wheels"][mdurl] = "0" * 64
    record.write_text(json.dumps(installed))
    assert main(["target", "setup", "loop", "--workspace", str(ready_target)]) == 0
    err = capsys.readouterr().err
    assert "1 wheel(s) changed" in err and f"install the changed wheels offline: {mdurl}" in err
    assert main(["target", "setup", "loop", "--workspace", str(ready_target)]) == 0
    assert "up to date: reused" in capsys.readouterr().err


def test_calibrate_on_a_target_brings_the_model_back(
    ready_target: Path,
    machines: Machines,
    tiny_cnn_path: Path,
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output, report = tmp_path / "out" / "tiny-int8.onnx", tmp_path / "out" / "report.json"
    args = [
        "calibrate", str(tiny_cnn_path), "-d", str(tiny_data), "-o", str(output),
        "--report", str(report), "--target", "loop", "--workspace", str(ready_target),
    ]  # fmt: skip
    assert main(args) == 0
    captured = capsys.readouterr()
    assert f"INT8 model written to {output}" in captured.out
    for stage in ("uploading", "statistics", "downloading results", "ran on target loop"):
        assert stage in captured.err
    isa = json.loads(report.read_text())["isa"]
    assert isa["detected"] and isa["target"] == host_cpu().isa.value  # --isa auto, there
    assert main(["layers", str(output), "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert sum(1 for layer in layers if layer["precision"] == "INT8") >= 5
    assert machines.run_folders() == []  # the remote working folder is gone


def test_a_target_behind_a_jump_host(
    machines: Machines, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second server as the bastion: its host key is accepted on its own, then the check
    goes through it."""
    jump, behind = machines.servers[1], machines.servers[0]
    args = _add(machines, tmp_path, "--accept-host-key", behind.host_key)
    args += ["--jump-host", f"{machines.user}@127.0.0.1:{jump.port}"]
    assert main(args) == 8
    err = capsys.readouterr().err
    assert "jump host 127.0.0.1" in err and "--accept-jump-host-key" in err
    assert jump.host_key in err and not (tmp_path / "targets.json").exists()
    assert main([*args, "--accept-jump-host-key", jump.host_key]) == 0
    assert "via " in capsys.readouterr().out
    assert main(["target", "check", "edge", "--json", "--workspace", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "available"


def test_infer_and_compare_on_a_target(
    ready_target: Path,
    tiny_cnn_path: Path,
    tiny_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    common = ["-d", str(tiny_data), "--seconds", "0.3", "--target", "loop"]
    common += ["--workspace", str(ready_target)]
    int8 = tmp_path / "tiny-int8.onnx"
    calibrate = ["calibrate", str(tiny_cnn_path), "-d", str(tiny_data), "-o", str(int8), "-q"]
    assert main(calibrate) == 0  # here, locally
    capsys.readouterr()
    assert main(["infer", str(int8), *common, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["performance"]["throughput"] > 0
    html = tmp_path / "report" / "compare.html"
    assert main(["compare", str(tiny_cnn_path), str(int8), *common, "--html", str(html)]) == 0
    captured = capsys.readouterr()
    assert f"HTML report written to {html}" in captured.out
    assert "comparison on target loop" in captured.err
    assert html.read_text().startswith("<!DOCTYPE html>")
