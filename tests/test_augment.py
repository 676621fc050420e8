"""Batched AutoAugment / RandAugment against torchvision's per-image implementations, the official codes' magnitudes,
the per-sample draws, and the methods' strong views."""

import math

import pytest
import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

import lnlkit
from lnlkit.train.augment import (
    CIFAR10_POLICIES,
    Augment,
    AutoAugment,
    Compose,
    RandAugment,
    StrongAugment,
    apply_op,
    comining_strong_view,
    op_magnitude,
    sop_strong_view,
)
from tests.methodtest import method_context

NEAREST = v2.InterpolationMode.NEAREST
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
MEAN, STD = torch.tensor([0.4914, 0.4822, 0.4465]), torch.tensor([0.2023, 0.1994, 0.2010])


def _images(n=6, c=3, size=32, seed=0) -> torch.Tensor:
    """uint8 images with structure at several scales (smooth blobs plus pixel noise), (n, c, size, size)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.nn.functional.interpolate(
        torch.rand(n, c, 6, 6, generator=g), size=size, mode="bilinear", align_corners=False
    )
    x = 0.8 * coarse + 0.2 * torch.rand(n, c, size, size, generator=g)
    return (x * 230 + 10).round().to(torch.uint8)


def _tv_op(name: str, img: torch.Tensor, v: float, fill=None, interpolation=NEAREST) -> torch.Tensor:
    """torchvision's per-image op, with the same magnitude conventions as ``apply_op`` (the calls torchvision's
    AutoAugment makes)."""
    if name == "ShearX":
        return TF.affine(
            img,
            angle=0.0,
            translate=[0, 0],
            scale=1.0,
            shear=[math.degrees(math.atan(v)), 0.0],
            interpolation=interpolation,
            fill=fill,
            center=[0, 0],
        )
    if name == "ShearY":
        return TF.affine(
            img,
            angle=0.0,
            translate=[0, 0],
            scale=1.0,
            shear=[0.0, math.degrees(math.atan(v))],
            interpolation=interpolation,
            fill=fill,
            center=[0, 0],
        )
    if name == "TranslateX":
        return TF.affine(
            img, angle=0.0, translate=[v, 0], scale=1.0, shear=[0.0, 0.0], interpolation=interpolation, fill=fill
        )
    if name == "TranslateY":
        return TF.affine(
            img, angle=0.0, translate=[0, v], scale=1.0, shear=[0.0, 0.0], interpolation=interpolation, fill=fill
        )
    if name == "Rotate":
        return TF.rotate(img, v, interpolation=interpolation, fill=fill)
    return {
        "Brightness": lambda: TF.adjust_brightness(img, v),
        "Color": lambda: TF.adjust_saturation(img, v),
        "Contrast": lambda: TF.adjust_contrast(img, v),
        "Sharpness": lambda: TF.adjust_sharpness(img, v),
        "Posterize": lambda: TF.posterize(img, int(v)),
        "Solarize": lambda: TF.solarize(img, v),
        "AutoContrast": lambda: TF.autocontrast(img),
        "Equalize": lambda: TF.equalize(img),
        "Invert": lambda: TF.invert(img),
    }[name]()


def _ours(name, img, values, fill=None, interpolation="nearest") -> torch.Tensor:
    f = None if fill is None else torch.tensor(fill) / 255.0
    out = apply_op(name, img.float() / 255.0, torch.tensor(values, dtype=torch.float64), f, interpolation)
    return (out * 255.0).round()


def _close(ours: torch.Tensor, ref: torch.Tensor, geometric: bool) -> None:
    diff = (ours - ref.float()).abs()
    if geometric:  # nearest-neighbour sampling: a source position may round to the neighbouring pixel
        assert float((diff > 1).float().mean()) <= 0.02, float((diff > 1).float().mean())
    assert float(diff.mean()) <= 1.0, float(diff.mean())


# ------------------------------------------------------------------------------------------- ops vs torchvision
OP_CASES = {
    "ShearX": [0.3, -0.2, 0.1],
    "ShearY": [0.27, -0.3, 0.03],
    "TranslateX": [14.0, -9.0, 3.0],
    "TranslateY": [14.0, -5.0, 1.0],
    "Rotate": [30.0, -13.3, 6.0],
    "Brightness": [0.1, 1.5, 1.9],
    "Color": [0.1, 1.18, 1.9],
    "Contrast": [0.2, 0.55, 1.8],
    "Sharpness": [0.1, 0.28, 1.9],
    "Posterize": [2.0, 4.0, 7.0],
    "Solarize": [198.33, 113.0, 28.3],
    "AutoContrast": [0.0, 0.0, 0.0],
    "Equalize": [0.0, 0.0, 0.0],
    "Invert": [0.0, 0.0, 0.0],
}


@pytest.mark.parametrize("name", list(OP_CASES))
def test_op_matches_torchvision_per_image(name):
    img = _images(6)
    values = OP_CASES[name] * 2  # each magnitude on two images, all in one batched call
    ref = torch.stack([_tv_op(name, im, v) for im, v in zip(img, values)])
    _close(_ours(name, img, values), ref, name in GEOMETRIC)


@pytest.mark.parametrize("name", GEOMETRIC)
def test_geometric_fill_matches_torchvision(name):
    img = _images(3)
    values = OP_CASES[name]
    ref = torch.stack([_tv_op(name, im, v, fill=[128.0, 128.0, 128.0]) for im, v in zip(img, values)])
    ours = _ours(name, img, values, fill=(128.0, 128.0, 128.0))
    _close(ours, ref, True)
    moved_in = (_ours(name, img, values) == 0).all(1)  # black with fill 0: the pixels that came from outside
    assert bool(moved_in.any()) and bool((ours.permute(0, 2, 3, 1)[moved_in] == 128).all())


@pytest.mark.parametrize("name", ["ShearX", "ShearY"])
def test_bicubic_shear_matches_pil(name):
    # randaugment==1.0.2 (official Co-mining) shears with PIL's bicubic and grey fill; torchvision has no bicubic
    # affine for tensors, so PIL is the reference here
    from PIL import Image

    img = _images(3)
    values = OP_CASES[name]
    ref = []
    for im, v in zip(img, values):
        coeffs = (1, v, 0, 0, 1, 0) if name == "ShearX" else (1, 0, 0, v, 1, 0)
        pil = Image.fromarray(im.permute(1, 2, 0).numpy()).transform(
            (32, 32), Image.AFFINE, coeffs, Image.BICUBIC, fillcolor=(128, 128, 128)
        )
        ref.append(torch.from_numpy(__import__("numpy").asarray(pil).copy()).permute(2, 0, 1))
    ours = _ours(name, img, values, fill=(128.0,) * 3, interpolation="bicubic")
    _close(ours, torch.stack(ref), False)  # torch's cubic kernel (a = -0.75) is not PIL's affine one (a = -1)
    assert float((ours - torch.stack(ref).float()).abs().max()) <= 8


@pytest.mark.parametrize("name", ["Color", "Contrast", "Equalize", "Rotate", "Posterize", "Solarize"])
def test_ops_on_one_channel_images(name):
    img = _images(3, c=1, size=8)
    values = OP_CASES[name]
    ref = torch.stack([_tv_op(name, im, v) for im, v in zip(img, values)])
    ours = _ours(name, img, values)
    _close(ours, ref, name in GEOMETRIC)
    if name == "Color":  # a grey image's grey version is itself: Color is the identity on one channel
        assert torch.equal(ours, img.float())


@pytest.mark.parametrize("name,values", [("Solarize", [128.0, 205.0, 52.0]), ("Posterize", [2.0, 5.0, 8.0])])
def test_level_ops_on_every_level(name, values):
    # every one of the 256 levels, at integer thresholds: the boundary level itself decides
    img = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16).expand(3, 3, 16, 16).contiguous()
    ref = torch.stack([_tv_op(name, im, v) for im, v in zip(img, values)])
    assert torch.equal(_ours(name, img, values), ref.float())


def test_cutout_op_is_the_square_of_the_pip_package():
    x = torch.full((400, 3, 16, 16), 0.5)
    side = torch.tensor([7.0, 20.0, 2.0, 11.0]).repeat(100)
    out = apply_op("Cutout", x, side, torch.tensor([125.0, 122.0, 113.0]) / 255, generator=torch.Generator())
    cut = out[:, 0] != 0.5
    rows, cols = cut.any(2).sum(1), cut.any(1).sum(1)
    even = (side.long() // 2) * 2  # [c - s//2, c + s//2): an even side, clipped at the borders
    assert bool((rows <= even).all()) and bool((cols <= even).all())
    assert bool((rows == even)[side == 7.0].any()) and int(rows[side == 20.0].max()) == 16
    assert torch.allclose(out[:, 1][cut], torch.tensor(122.0 / 255))


def test_apply_op_rejects_unknown_names():
    with pytest.raises(ValueError):
        apply_op("Blur", torch.zeros(1, 3, 4, 4), torch.zeros(1))
    with pytest.raises(ValueError):
        apply_op("Rotate", torch.zeros(1, 3, 4, 4), torch.zeros(1), interpolation="lanczos")


# ------------------------------------------------------------------------------------ magnitudes and tables
def test_torchvision_variant_uses_torchvisions_table_and_bins():
    tv = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    ours = CIFAR10_POLICIES["torchvision"]
    assert [[(n, p) for n, p, _ in sub] for sub in ours] == [[(n, p) for n, p, _ in sub] for sub in tv._policies]
    for sub_ours, sub_tv in zip(ours, tv._policies):
        for (name, _, level), (_, _, tv_level) in zip(sub_ours, sub_tv):
            fn, signed = tv._AUGMENTATION_SPACE[name]
            bins = fn(10, 32, 32)
            mag, our_signed = op_magnitude("torchvision", name, level, 32, 32)
            if bins is None:
                assert mag == 0.0 and not our_signed
                continue
            assert level == tv_level and our_signed == signed
            expected = float(bins[level])
            if name in ("Brightness", "Color", "Contrast", "Sharpness"):
                assert mag == pytest.approx(expected)  # the factor is 1 ± this
            elif name == "Solarize":
                assert mag == pytest.approx(255.0 * expected, abs=1e-4)
            elif name.startswith("Translate"):
                assert mag == int(expected)
            else:
                assert mag == pytest.approx(expected, abs=1e-6)
    ra = v2.RandAugment()
    assert set(RandAugment(MEAN, STD).names) == set(ra._AUGMENTATION_SPACE)
    assert op_magnitude("torchvision", "Posterize", 9, 32, 32, 31)[0] == float(
        ra._AUGMENTATION_SPACE["Posterize"][0](31, 32, 32)[9]
    )


def test_fastaa_variant_follows_the_prune4rel_archive():
    # the TF reference magnitudes the official Prune4ReL/SOP archive keeps (level l of 10)
    assert op_magnitude("fastaa", "Rotate", 2, 32, 32) == (6.0, True)  # int(2 · 30 / 10)
    assert op_magnitude("fastaa", "TranslateX", 9, 32, 32) == (9.0, True)  # TranslateXAbs: l pixels
    assert op_magnitude("fastaa", "ShearY", 8, 32, 32)[0] == pytest.approx(0.24)
    assert op_magnitude("fastaa", "Posterize", 7, 32, 32) == (2.0, False)  # Posterize2: 4 - int(2.8)
    assert op_magnitude("fastaa", "Solarize", 2, 32, 32) == (205.0, False)  # 256 - int(51.2)
    assert op_magnitude("fastaa", "Solarize", 8, 32, 32) == (52.0, False)
    assert op_magnitude("fastaa", "Contrast", 6, 32, 32)[0] == pytest.approx(1.18)  # 0.1 + 0.18 · 6, no sign
    assert op_magnitude("fastaa", "Sharpness", 1, 32, 32) == (pytest.approx(0.28), False)
    table = CIFAR10_POLICIES["fastaa"]
    assert table[13] == (("Brightness", 0.9, 6), ("Color", 0.2, 6))  # the archive's entry (paper: Color level 8)
    assert table[16] == (("Equalize", 0.2, 8), ("Equalize", 0.6, 4))


def test_deepvoltaire_variant_follows_the_pip_package():
    # randaugment==1.0.2 (official Co-mining): 10 bins, grey fill, unsigned Rotate, Solarize over linspace(256, 0)
    assert op_magnitude("deepvoltaire", "Rotate", 2, 32, 32) == (pytest.approx(20.0 / 3), False)
    assert op_magnitude("deepvoltaire", "Solarize", 2, 32, 32)[0] == pytest.approx(256 - 2 * 256 / 9)
    assert op_magnitude("deepvoltaire", "TranslateY", 9, 32, 32)[0] == pytest.approx(150 / 331 * 32)  # not truncated
    assert op_magnitude("deepvoltaire", "Posterize", 7, 32, 32)[0] == 5.0  # round(linspace(8, 4, 10))[7]
    assert op_magnitude("deepvoltaire", "Cutout", 3, 32, 32)[0] == 7.0  # round(linspace(0, 20, 10))[3]
    assert CIFAR10_POLICIES["deepvoltaire"][16] == (("Equalize", 0.2, 8), ("Equalize", 0.8, 4))
    aa = AutoAugment(MEAN, STD, variant="deepvoltaire")
    assert torch.equal(aa.fill * 255, torch.full((3,), 128.0)) and aa.interpolations["ShearX"] == "pil_bicubic"
    ra = RandAugment(MEAN, STD, variant="deepvoltaire")
    assert len(ra.names) == 15 and {"Cutout", "Invert"} <= set(ra.names) and "Identity" not in ra.names
    assert ra.levels == tuple(range(1, 10)) and ra.apply_prob == 0.5


# ------------------------------------------------------------------------ policies vs torchvision, forced draws
def test_autoaugment_sub_policies_match_torchvision_per_image():
    tv = v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)
    aa = AutoAugment(MEAN, STD, variant="torchvision")
    n = 50
    img = _images(n, seed=1)
    g = torch.Generator().manual_seed(3)
    sub = torch.arange(n) % 25
    applied = torch.rand(n, 2, generator=g) < 0.8
    negative = torch.rand(n, 2, generator=g) < 0.5
    ours = (aa.apply(img.float() / 255, sub, applied, negative) * 255).round()
    ref = []
    for i in range(n):
        out = img[i]
        for slot, (name, _, level) in enumerate(tv._policies[int(sub[i])]):
            if not applied[i, slot]:
                continue
            fn, signed = tv._AUGMENTATION_SPACE[name]
            bins = fn(10, 32, 32)
            mag = 0.0 if bins is None else float(bins[level]) * (-1 if signed and negative[i, slot] else 1)
            out = tv._apply_image_or_video_transform(out, name, mag, interpolation=NEAREST, fill=tv._fill)
        ref.append(out)
    _close(ours, torch.stack(ref), True)


def test_randaugment_ops_match_torchvision_per_image():
    tv = v2.RandAugment(num_ops=2, magnitude=9)
    ra = RandAugment(MEAN, STD, num_ops=2, magnitude=9)
    n = 56
    img = _images(n, seed=2)
    g = torch.Generator().manual_seed(4)
    ops = torch.stack([torch.arange(n) % 14, torch.randint(0, 14, (n,), generator=g)], 1)
    levels = torch.zeros(n, 2, dtype=torch.long)
    negative = torch.rand(n, 2, generator=g) < 0.5
    ours = (ra.apply(img.float() / 255, ops, levels, torch.ones(n, 2, dtype=torch.bool), negative) * 255).round()
    ref = []
    for i in range(n):
        out = img[i]
        for k in range(2):
            name = ra.names[int(ops[i, k])]
            fn, signed = tv._AUGMENTATION_SPACE[name]
            bins = fn(31, 32, 32)
            mag = 0.0 if bins is None else float(bins[9]) * (-1 if signed and negative[i, k] else 1)
            out = tv._apply_image_or_video_transform(out, name, mag, interpolation=NEAREST, fill=tv._fill)
        ref.append(out)
    _close(ours, torch.stack(ref), True)


def test_fastaa_sub_policy_applies_the_archive_magnitudes():
    # sub-policy 5 of the archive: ShearY level 7 (0.21), Posterize2 level 7 (2 bits), both forced on
    aa = AutoAugment(MEAN, STD, variant="fastaa")
    img = _images(2)
    out = (
        aa.apply(
            img.float() / 255,
            torch.tensor([5, 5]),
            torch.ones(2, 2, dtype=torch.bool),
            torch.tensor([[False, False], [True, False]]),
        )
        * 255
    ).round()
    ref = torch.stack(
        [TF.posterize(_tv_op("ShearY", img[0], 0.21), 2), TF.posterize(_tv_op("ShearY", img[1], -0.21), 2)]
    )
    _close(out, ref, True)
    assert bool((out % 64 == 0).all())  # two bits kept


# ----------------------------------------------------------------------------------------- per-sample draws
def _record(policy, x, seed):
    seen = {}
    real = policy.apply

    def spy(px, *args, **kwargs):
        seen["args"] = args[:4] if isinstance(policy, RandAugment) else args[:3]
        return real(px, *args, **kwargs)

    policy.apply = spy
    policy(x, torch.Generator().manual_seed(seed))
    policy.apply = real
    return seen["args"]


def test_autoaugment_draws_a_sub_policy_per_image_and_respects_the_probabilities():
    aa = AutoAugment(MEAN, STD, variant="torchvision")
    n = 20000
    x = torch.zeros(n, 3, 4, 4)
    sub, applied, negative = _record(aa, x, 0)
    counts = torch.bincount(sub, minlength=25).double()
    assert float((counts - n / 25).abs().max()) <= 5 * math.sqrt(n / 25)  # uniform over the 25 sub-policies
    p = aa.prob[sub]  # (n, 2): each op's own probability
    for k in range(25):
        for slot in range(2):
            m = sub == k
            rate, pk = float(applied[m, slot].double().mean()), float(aa.prob[k, slot])
            assert abs(rate - pk) <= 5 * math.sqrt(max(pk * (1 - pk), 0.01) / int(m.sum())) + 1e-9, (k, slot, rate)
    assert abs(float(negative.double().mean()) - 0.5) < 0.02
    assert float(applied.double().sum()) == pytest.approx(float(p.sum()), rel=0.03)


def test_autoaugment_batch_images_get_different_sub_policies():
    aa = AutoAugment(MEAN, STD, variant="torchvision")
    img = _images(1).expand(256, -1, -1, -1)
    x = (img.float() / 255 - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1)
    out = aa(x, torch.Generator().manual_seed(0))
    distinct = torch.unique(out.reshape(256, -1).round(decimals=4), dim=0).shape[0]
    assert distinct >= 24  # one shared sub-policy gives at most 2 ops x 2 signs = 9 outcomes
    sub = _record(aa, x, 0)[0]
    assert len(torch.unique(sub)) == 25


def test_randaugment_draws_ops_per_image():
    ra = RandAugment(MEAN, STD, variant="deepvoltaire")
    n = 20000
    ops, levels, applied, _ = _record(ra, torch.zeros(n, 3, 4, 4), 1)
    assert float((torch.bincount(ops.reshape(-1), minlength=15).double() - 2 * n / 15).abs().max()) <= 5 * math.sqrt(
        2 * n / 15
    )
    assert abs(float(applied.double().mean()) - 0.5) < 0.02  # each op with probability 0.5
    assert levels.min() == 0 and levels.max() == 8  # magnitude indices 1..9


def test_policies_are_reproducible_and_stay_images():
    x = (torch.rand(64, 3, 16, 16, generator=torch.Generator().manual_seed(0)) - MEAN.view(1, 3, 1, 1)) / STD.view(
        1, 3, 1, 1
    )
    for pol in (
        AutoAugment(MEAN, STD),
        AutoAugment(MEAN, STD, variant="fastaa"),
        AutoAugment(MEAN, STD, variant="deepvoltaire"),
        RandAugment(MEAN, STD),
        RandAugment(MEAN, STD, variant="deepvoltaire"),
    ):
        a, b = pol(x, torch.Generator().manual_seed(1)), pol(x, torch.Generator().manual_seed(1))
        assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, pol(x, torch.Generator().manual_seed(2)))
        back = a * STD.view(1, 3, 1, 1) + MEAN.view(1, 3, 1, 1)
        assert float(back.min()) >= -1e-5 and float(back.max()) <= 1 + 1e-5
    assert RandAugment(MEAN, STD, num_ops=0)(x, torch.Generator()) is x
    for bad in (dict(policy="imagenet"), dict(variant="timm")):
        with pytest.raises(ValueError):
            AutoAugment(MEAN, STD, **bad)
    with pytest.raises(ValueError):
        RandAugment(MEAN, STD, magnitude=31)
    with pytest.raises(ValueError):
        RandAugment(MEAN, STD, num_ops=3, variant="deepvoltaire")


# ------------------------------------------------------------------------------------------ the methods' views
def test_view_builders_follow_the_official_order():
    cm = comining_strong_view("autoaugment", MEAN, STD, 4, True)
    assert isinstance(cm, Compose) and isinstance(cm.steps[0], Augment) and isinstance(cm.steps[1], AutoAugment)
    assert cm.steps[0].cutout_size == 0 and cm.steps[1].variant == "deepvoltaire"  # crop, flip, then the policy
    web = comining_strong_view("randaugment", MEAN, STD, 0, True)
    assert isinstance(web.steps[1], RandAugment) and web.steps[1].variant == "deepvoltaire"
    assert isinstance(comining_strong_view("mild", MEAN, STD, 4, True), StrongAugment)
    sv = sop_strong_view("autoaugment", MEAN, STD, 4, True, 16)
    assert isinstance(sv.steps[0], AutoAugment) and sv.steps[0].variant == "fastaa"  # the policy first
    assert sv.steps[1].order == "flip_crop" and sv.steps[1].cutout_size == 16  # then flip, crop, Cutout 16
    mild = sop_strong_view("mild", MEAN, STD, 4, True, 16)
    assert type(mild) is Augment and mild.cutout_size == 16
    with pytest.raises(ValueError):
        sop_strong_view("randaugment", MEAN, STD, 4, True, 16)


def _policy_step(view):
    return next(s for s in view.steps if isinstance(s, (AutoAugment, RandAugment)))


def _applies_policy_ops(view, x):
    """Behaviour: with the crop/flip/Cutout parts off, the view changes pixel values in ways no crop or flip can
    (the multiset of pixel values of some image changes)."""
    out = view(x, torch.Generator().manual_seed(0))
    sort = lambda t: t.reshape(t.shape[0], -1).sort(1).values  # noqa: E731
    return bool((sort(out) - sort(x)).abs().amax(1).gt(1e-3).any())


def _built_view(method_name, m, ctx, monkeypatch):
    """The strong view the method really uses: Co-mining's second loader view, SOP's ``strong``, Prune4ReL's
    score-pass view (captured from a score pass) after checking its SOP+ learner's consistency view."""
    if method_name == "comining":
        return m.loader.augments[1]
    if method_name == "sop":
        return m.strong
    import lnlkit.methods.prune4rel as p4r

    learner_view = m.learner.strong
    built = []

    def spy(*args, **kwargs):
        built.append(sop_strong_view(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(p4r, "sop_strong_view", spy)
    m.score_pass(ctx, 0, "strong")
    assert len(built) == 1 and repr(built[0]) == repr(learner_view)
    return built[0]


@pytest.mark.parametrize("method", ["comining", "sop", "prune4rel"])
def test_method_strong_view_is_the_policy_pipeline(small_digits, method, monkeypatch):
    noisy = small_digits.with_noise("symmetric:0.4", seed=0)
    # the digits presets keep the mild view (CIFAR-pixel magnitudes on 8x8 digits); the method builds the policy
    # pipeline whenever its config asks for the official view
    assert lnlkit.get_method(method, preset="digits").config.strong_view == "mild"
    m = lnlkit.get_method(method, preset="digits", epochs=1, strong_view="autoaugment")
    ctx = method_context(m, noisy)
    view = _built_view(method, m, ctx, monkeypatch)
    assert isinstance(view, Compose)
    pol = _policy_step(view)
    assert isinstance(pol, AutoAugment) and pol.variant == ("deepvoltaire" if method == "comining" else "fastaa")
    if method == "comining":
        assert view.steps[0].crop_padding == m.config.crop_padding and view.steps.index(pol) == 1
    else:  # AutoAugment, then flip/crop and Cutout
        assert view.steps.index(pol) == 0 and view.steps[1].cutout_size == m.config.strong_cutout > 0
    x = next(iter(ctx.data.iter_split("train", 64)))[1]
    assert _applies_policy_ops(Compose(pol), x)
    mild = lnlkit.get_method(method, preset="digits", epochs=1)
    mctx = method_context(mild, noisy)
    mview = _built_view(method, mild, mctx, monkeypatch)
    assert isinstance(mview, StrongAugment if method == "comining" else Augment) and not isinstance(mview, Compose)
    with pytest.raises(ValueError):
        lnlkit.get_method(method, preset="digits", strong_view="cutmix")


def test_paper_presets_use_the_official_views():
    assert lnlkit.get_method("comining", preset="cifar10nc").config.strong_view == "autoaugment"
    assert lnlkit.get_method("comining", preset="web-bird").config.strong_view == "randaugment"
    assert lnlkit.get_method("sop", preset="cifar10n").config.strong_view == "autoaugment"
    assert lnlkit.get_method("prune4rel", preset="cifar10n-sop").config.strong_view == "autoaugment"


def test_strong_augment_is_batched_and_reproducible():
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    aug = StrongAugment(1, False, magnitude=0.5)
    a = aug(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, aug(x, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(4)))
    assert torch.equal(StrongAugment(0, False, magnitude=0.0)(x, torch.Generator()), x)


@pytest.mark.parametrize("black", [True, False])
def test_comining_strong_view_pads_black_before_the_policy(black):
    # official Co-mining CIFAR: RandomCrop(32, padding=4) pads the PIL image black (pixel 0), flips, then
    # CIFAR10Policy runs on the padded crop; written out in normalised space, black is -mean/std per channel
    raw = _images(n=16, seed=3).float() / 255
    x = (raw - MEAN[:, None, None]) / STD[:, None, None]
    view = comining_strong_view("autoaugment", MEAN, STD, 4, True, black_padding=black)
    out = view(x, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # the crop's offsets (uniform in 0..8, rows then columns), then the flips
    dy, dx = torch.randint(0, 9, (16,), generator=g), torch.randint(0, 9, (16,), generator=g)
    flips = torch.rand(16, generator=g) < 0.5
    fill = -MEAN / STD if black else torch.zeros(3)  # off: the kit's earlier zero, the mean colour
    padded = fill[None, :, None, None].repeat(16, 1, 40, 40)
    padded[:, :, 4:36, 4:36] = x
    crops = torch.stack([padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32] for i in range(16)])
    crops = torch.where(flips[:, None, None, None], crops.flip(3), crops)
    assert (dy != 4).any()  # some crops show the padding
    expect = view.steps[1](crops, g)  # the policy, with the generator where the crop left it
    torch.testing.assert_close(out, expect, rtol=0, atol=1e-6)
    # what the policy is given: the crop alone; its top rows are padding wherever dy < 4, black in pixels when on
    cropped = view.steps[0](x, torch.Generator().manual_seed(5))
    torch.testing.assert_close(cropped, crops, rtol=0, atol=0)
    i = int(torch.nonzero(dy < 4)[0])
    top = cropped[i, :, 0] * STD[:, None] + MEAN[:, None]
    torch.testing.assert_close(top, torch.zeros_like(top) if black else MEAN[:, None].expand_as(top), atol=1e-6, rtol=0)


# PIL, the official pipelines' image library (randaugment==1.0.2 for Co-mining, the Fast-AutoAugment archive for
# SOP/Prune4ReL): ImageEnhance blends in float and stores the result as uint8 by truncation, as does the LUT of
# ImageOps.autocontrast (``int(ix * scale + offset)``)
PIL_ENHANCE = {
    "Brightness": [0.1, 1.5, 1.9],
    "Color": [0.1, 1.18, 1.9],
    "Contrast": [0.2, 0.55, 1.8],
    "Sharpness": [0.1, 0.28, 1.9],
    "AutoContrast": [0.0, 0.0, 0.0],
}


def _pil_op(name, im, v):
    import numpy as np
    from PIL import Image, ImageEnhance, ImageOps

    pil = Image.fromarray(im.permute(1, 2, 0).numpy())
    if name == "AutoContrast":
        out = ImageOps.autocontrast(pil)
    else:
        out = getattr(ImageEnhance, name)(pil).enhance(v)
    return torch.from_numpy(np.asarray(out).copy()).permute(2, 0, 1).float()


def _policy_op(variant, name, img, values, fill=None):
    """One op through a policy's own path (the op, then the policy's requantisation onto the 256 levels)."""
    policy = AutoAugment(MEAN, STD, "cifar10", variant, fill=fill)
    n = len(img)
    out = policy._apply_slot(
        img.float() / 255.0,
        torch.zeros(n, dtype=torch.long),
        torch.tensor(values, dtype=torch.float64),  # PIL's coefficients are doubles
        torch.ones(n, dtype=torch.bool),
        [name],
        torch.Generator().manual_seed(0),
    )
    return (out * 255.0).round()


@pytest.mark.parametrize("variant", ["deepvoltaire", "fastaa"])
@pytest.mark.parametrize("name", list(PIL_ENHANCE))
def test_enhancement_ops_truncate_as_pil(name, variant):
    img = _images(6)
    values = PIL_ENHANCE[name] * 2
    ref = torch.stack([_pil_op(name, im, v) for im, v in zip(img, values)])
    diff = (_policy_op(variant, name, img, values) - ref).abs()
    # rounding instead of truncating moved ~0.4 levels on average; a float32 value next to a level boundary may
    # still land one level off PIL's double arithmetic
    assert float(diff.max()) <= 1 and float(diff.mean()) <= 0.05, (float(diff.mean()), float(diff.max()))


@pytest.mark.parametrize("name", ["ShearX", "ShearY"])
def test_deepvoltaire_bicubic_shear_is_pils_affine_bicubic(name):
    # randaugment==1.0.2 shears with Image.transform(AFFINE, BICUBIC, fillcolor=128): PIL's affine resampler
    # (Geometry.c) uses the cubic convolution kernel with a = -1 and truncates to uint8 (torch's a = -0.75 was up to
    # 13 levels off on noise)
    import numpy as np
    from PIL import Image

    img = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (6, 3, 32, 32), dtype=np.uint8))
    values = [0.3, -0.2, 0.1, 0.27, -0.3, 0.03]
    ref = []
    for im, v in zip(img, values):
        coeffs = (1, v, 0, 0, 1, 0) if name == "ShearX" else (1, 0, 0, v, 1, 0)
        pil = Image.fromarray(im.permute(1, 2, 0).numpy()).transform(
            (32, 32), Image.AFFINE, coeffs, Image.BICUBIC, fillcolor=(128, 128, 128)
        )
        ref.append(torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).float())
    diff = (_policy_op("deepvoltaire", name, img, values) - torch.stack(ref)).abs()
    assert float(diff.max()) <= 1 and float(diff.mean()) <= 0.05, (float(diff.mean()), float(diff.max()))
