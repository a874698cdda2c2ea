from datetime import datetime, timezone

from calibench.server.web.present import breakable, preprocessing, took, when

NOW = datetime(2026, 11, 30, 14, 0, 0, tzinfo=timezone.utc)


def test_times_read_as_people_say_them() -> None:
    assert when("2026-11-30T13:55:30+00:00", NOW) == "30 Nov 2026, 13:55:30 UTC (4 min ago)"
    assert when("2026-11-30T13:59:59", NOW).endswith("UTC (just now)")  # SQLite: no zone
    assert when("2026-11-30T11:00:00+00:00", NOW).endswith("(3 hours ago)")
    assert when(None) == "—" and when("not a time") == "—"
    assert when("2026-11-28T10:00:00+00:00", NOW) == "28 Nov 2026, 10:00:00 UTC"


def test_durations() -> None:
    start = "2026-11-30T13:00:00+00:00"
    assert took(start, "2026-11-30T13:00:12.345+00:00") == "12.3 s"
    assert took(start, "2026-11-30T13:04:05+00:00") == "4 min 05 s"
    assert took(start, "2026-11-30T15:02:00+00:00") == "2 h 02 min"
    assert took(start, None) == "—"


def test_names_break_at_their_separators_and_stay_escaped() -> None:
    assert str(breakable("/features/conv.0/Conv")) == ("/<wbr>features/<wbr>conv.<wbr>0/<wbr>Conv")
    assert str(breakable("a<b>_c")) == "a&lt;b&gt;_<wbr>c"
    assert str(breakable("plain")) == "plain"


def test_the_preprocessing_used_in_words() -> None:
    fashion = {"resize": [28, 28], "crop": None, "scale": 1 / 255, "mean": [0.0], "std": [1.0],
               "color": "GRAY", "layout": "NCHW", "channels": 1}  # fmt: skip
    assert (
        preprocessing(fashion) == "resize to 28×28, grayscale, pixels × 1/255, no mean or std, NCHW"
    )
    imagenet = {**fashion, "resize": 256, "crop": [224, 224], "color": "RGB",
                "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}  # fmt: skip
    assert preprocessing(imagenet) == (
        "resize the short side to 256, centre crop 224×224, RGB, pixels × 1/255, "
        "mean 0.485, 0.456, 0.406, std 0.229, 0.224, 0.225, NCHW"
    )
    assert preprocessing(None).startswith("none")
