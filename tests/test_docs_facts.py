"""The docs say what the code does (issue 23, item 8): each test checks the code's behaviour against a value written
out from the official definition, then that the doc describing it says the same (and no longer the old claim)."""

import re
from pathlib import Path

import lnlkit

ROOT = Path(__file__).resolve().parent.parent


def _text(rel: str) -> str:
    return re.sub(r"\s+", " ", (ROOT / rel).read_text())  # line breaks inside a sentence do not matter


def test_promix_beta_ramp_is_fixed_not_relative_to_the_run():
    # official Train_promix.py: the ramp of β spans 2 * warmup_ep = 100 epochs whatever the run length
    for epochs in (600, 300):
        m = lnlkit.get_method("promix", preset="cifar10-sym50", epochs=epochs)
        assert m.unlabelled_ramp_length() == 100.0
        assert m.unlabelled_weight(99) > 0.0 and m.unlabelled_weight(100) == 0.0
    doc = _text("docs/methods/promix.md")
    assert "β switch-off relative to the run length" not in doc
    assert "does not follow the run length" in doc
    readme = _text("README.md")
    assert "β ramp (over `2·rampup_length` epochs, then 0) follow the run length" not in readme


def test_comining_web_randaugment_doc_says_uniform_magnitude_and_probability():
    from lnlkit.train.augment import comining_strong_view

    view = comining_strong_view("randaugment", [0.5] * 3, [0.25] * 3, 0, True)
    policy = view.steps[-1]
    # randaugment==1.0.2's RandAugment(): 2 ops, each magnitude uniform in 1..9, each applied with p 0.5
    assert policy.levels == tuple(range(1, 10)) and policy.apply_prob == 0.5 and policy.num_ops == 2
    doc = _text("docs/methods/comining.md")
    assert not re.search(r"RandAugment\S* (is )?\(?2 ops,? (at )?magnitude 9", doc)
    assert "magnitude uniform in 1..9 and applied with probability 0.5" in doc


def test_prune4rel_preset_docs_and_score_pass_name_autoaugment():
    from lnlkit.methods.prune4rel import Prune4ReL
    from lnlkit.presets.prune4rel import PRESETS

    for name, build in PRESETS.items():
        if build().strong_view == "autoaugment":
            assert "without AutoAugment" not in build.__doc__, name
    assert "AutoAugment" in Prune4ReL.score_pass.__doc__
