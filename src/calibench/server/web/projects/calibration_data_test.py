from calibench.server.web.projects.calibration_data import (
    Candidate,
    subset_note,
    subset_samples,
    suggested_dataset,
)


def test_the_form_proposes_another_dataset_than_the_validation_set() -> None:
    val, cal, new, importing, unfit = (
        Candidate(1, True, 200),
        Candidate(2, True, 100),
        Candidate(3, True, 50),
        Candidate(4, False, 0),
        Candidate(5, True, 10),
    )
    everything = [val, cal, new, importing, unfit]
    assert suggested_dataset(1, everything, {5: "does not fit"}) == 3  # newest that fits
    assert suggested_dataset(1, [val, importing], {}) == 1  # nothing else: the project's own


def test_subset_size_in_samples_and_the_warning_below_a_hundred() -> None:
    assert subset_samples("0.5", 1000) == 5
    assert subset_samples("100", 200) == 200
    assert subset_samples("3", 10) == 1  # never zero
    assert subset_samples("abc", 10) is None and subset_samples("0", 10) is None
    assert subset_note("50", 1000) == "= 500 samples of 1000"
    few = subset_note("0.5", 1000)
    assert few.startswith("= 5 samples of 1000. Fewer than 100 samples") and "larger subset" in few
    small = subset_note("100", 30)
    assert small.startswith("= 30 samples of 30. The whole dataset holds fewer than 100")
    assert subset_note("x", 1) == "of 1 sample"
