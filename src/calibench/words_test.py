from calibench.words import plural


def test_plural_agrees_with_the_count() -> None:
    assert plural(1, "layer") == "1 layer"
    assert plural(0, "layer") == "0 layers"
    assert plural(8, "layer") == "8 layers"
    assert plural(2, "process", "processes") == "2 processes"
