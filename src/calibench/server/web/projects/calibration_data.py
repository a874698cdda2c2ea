"""The Optimize INT8 page's advice on calibration data: which dataset it proposes, how many
samples a Subset Size takes, and when that is too few.

Calibrating on the very samples accuracy is then measured on flatters the INT8 model, so the
page proposes another ready dataset that fits the model when there is one (the newest: most
often the one just imported for it). Ranges estimated from a handful of samples are noisy: a
10-sample calibration of the Fashion-MNIST CNN lost 2.9 points, so below ``FEW_SAMPLES`` the
page warns."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from calibench.config import Subset
from calibench.errors import ConfigError
from calibench.words import plural

FEW_SAMPLES = 100
"""Below this many calibration samples the page warns."""
TIP = (
    "A subset of 3–5 % of the validation set, typically 300–1000 images, is usually enough; "
    "more samples take longer and rarely change the ranges."
)


@dataclass(frozen=True)
class Candidate:
    """A dataset as the choice needs it."""

    id: int
    ready: bool
    samples: int


def suggested_dataset(
    validation_id: int, datasets: Iterable[Candidate], unfit: Mapping[int, str]
) -> int:
    """The dataset the form starts on: the newest ready one that fits the model and is not
    the project's own (its validation set); that one when there is no other."""
    others = [d for d in datasets if d.ready and d.id != validation_id and d.id not in unfit]
    return max(others, key=lambda d: d.id).id if others else validation_id


def subset_samples(percent: str | float, available: int) -> int | None:
    """How many samples ``percent`` % of ``available`` takes (the calibration's own rule);
    None when the text is not a valid Subset Size."""
    try:
        return Subset.parse(f"{float(percent):g}%").size(available)
    except (ConfigError, ValueError, OverflowError):
        return None


def subset_note(percent: str | float, available: int) -> str:
    """The words beside Subset Size (the page's script writes the same as it is typed)."""
    taken = subset_samples(percent, available)
    if taken is None:
        return f"of {plural(available, 'sample')}"
    text = f"= {plural(taken, 'sample')} of {available}"
    if taken < FEW_SAMPLES <= available:
        text += (
            f". Fewer than {FEW_SAMPLES} samples give noisy ranges and can cost accuracy: "
            "take a larger subset"
        )
    elif taken < FEW_SAMPLES:
        text += (
            f". The whole dataset holds fewer than {FEW_SAMPLES} samples: ranges from so few "
            "can cost accuracy; import a larger calibration dataset if you can"
        )
    return text
