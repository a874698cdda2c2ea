from calibench.targets.protocol import parse_progress, progress_line


def test_progress_lines_round_trip() -> None:
    assert parse_progress(progress_line("bias correction", 3, 8)) == ("bias correction", 3, 8)
    assert parse_progress("calibench: warning: x") is None
    assert parse_progress('{"other": 1}') is None
