"""``lnlkit.train.recorder``: what the run recorder writes."""

import numpy as np


def test_recorder_keeps_float32_for_signals_beyond_the_float16_range(tmp_path):
    from lnlkit.noise import inject_noise
    from lnlkit.train.recorder import RunRecorder

    noise = inject_noise(np.array([0, 1, 0, 1]), "symmetric:0.0", num_classes=2, seed=0)
    rec = RunRecorder(tmp_path / "run", noise)
    rec.start({"method": "test"})
    rec.log_epoch({"epoch": 0}, {"loss": np.array([0.5, 1.0, 2.0, 3.0]), "u": np.array([1.0, 7e4, -2e5, 0.0])})
    rec.log_epoch({"epoch": 1}, {"loss": np.array([0.25, 1.0, 2.0, 3.0]), "u": np.array([1.0, 2.0, 3.0, 4.0])})
    rec.flush()
    with np.load(tmp_path / "run" / "signals.npz") as z:
        assert z["loss"].dtype == np.float16  # small values: the compact dtype
        assert np.isfinite(z["u"]).all() and z["u"][0, 2] == -2e5  # not overflowed to -inf
