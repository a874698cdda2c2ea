from calibench.progress import split_detail, with_detail


def test_a_detail_travels_with_its_stage_and_comes_back_apart() -> None:
    assert split_detail(with_detail("accuracy-aware", "drop 0.41")) == (
        "accuracy-aware",
        "drop 0.41",
    )
    assert with_detail("statistics", "") == "statistics"
    assert split_detail("statistics") == ("statistics", "")
