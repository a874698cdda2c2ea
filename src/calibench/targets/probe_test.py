from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from calibench.targets import probe


def test_the_probe_runs_alone_on_a_bare_python(tmp_path: Path) -> None:
    """Sent as source to ``python3 -``: it may import nothing of calibench."""
    source = Path(probe.__file__).read_text()
    assert "from calibench" not in source and "import calibench" not in source
    done = subprocess.run(
        [sys.executable, "-I", "-", "0.0.0"],
        input=source,
        capture_output=True,
        text=True,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    )
    found = json.loads(done.stdout)
    assert found["cores"] >= 1 and found["disk_free"] > 0 and found["busy"] == []
    assert found["python_tag"] == f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert found["setup"] == {"folder": str(tmp_path / ".calibench-target" / "0.0.0")}
