"""Start-up cost: importing the package, its models or its CLI must not pull in torchvision's model zoo and ops, nor
timm (Inception-ResNet-v2's library, about 3 s to import)."""

import subprocess
import sys


def test_import_lnlkit_and_its_cli_do_not_import_torchvision():
    code = (
        "import sys, lnlkit, lnlkit.cli, lnlkit.reproduce, lnlkit.plots, lnlkit.models, lnlkit.methods; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torchvision', 'timm')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"torchvision or timm imported at start-up: {out}"


def test_resnet50_still_builds_with_the_lazy_import():
    from lnlkit.models import build_model

    net = build_model("resnet50_tv", 3)
    assert net.fc.out_features == 3 and net.embed.__self__ is net


def test_inception_resnet_v2_builds_with_the_lazy_import():
    from lnlkit.models import build_model

    net = build_model("inception_resnet_v2", 3)
    assert net.fc.out_features == 3 and net.feature_dim == 1536
