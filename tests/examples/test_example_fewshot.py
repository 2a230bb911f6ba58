import contextlib
import io
import math
import shutil
import statistics

import numpy as np
import pytest
import torch

from learning_diagrams.examples import datasets, fewshot, glyphs

GLUE, EPISODES = 5, 10
ARGV = [
    "--episodes",
    str(EPISODES),
    "--width",
    "16",
    "--pretrain-epochs",
    "1",
    "--glue",
    str(GLUE),
    "--head-steps",
    "100",
    "--fuse",
    "--meta-train",
    "--meta-rounds",
    "1",
    "--meta-epochs",
    "1",
    "--threads",
    "1",
    "--quiet",
    "--log-dir",
    "",
]
MISSING_FONTS = {"fonts-dejavu-core": ("/nonexistent/fonts", ("DejaVuSans.ttf",))}


def fonts_or_skip() -> None:
    try:
        glyphs.font_files()
    except glyphs.FontsMissingError as error:
        pytest.skip(f"the glyph-rendering part needs the fonts: {glyphs.APT_COMMAND}\n{error}")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run with no --data and the fonts made missing: it falls back to the digits, on every machine."""
    svg = tmp_path_factory.mktemp("fewshot") / "fewshot.svg"
    argv = ARGV + (["--draw", str(svg)] if shutil.which("dot") else [])
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setattr(glyphs, "FONT_FILES", MISSING_FONTS)
        result = fewshot.main(argv)
    return result, out.getvalue(), svg


# -- the run --------------------------------------------------------------------------------------


def test_without_the_fonts_it_says_what_to_install_and_falls_back_to_digits(run):
    result, out, _ = run
    assert result["classes"].name == "digits"
    assert glyphs.APT_COMMAND in out and "Falling back to the digits class set." in out


def test_glued_episode_diagram_has_one_frozen_backbone_edge_and_one_head_per_episode(run):
    result = run[0]
    colim, first = result["colimit"], result["episodes"][1][:GLUE]
    d = colim.apex
    assert [m for m in d.maps if (d.graph.src(m), d.graph.tgt(m)) == ("X", "F")] == ["m"]
    assert d.maps["m"].trainable is False
    assert isinstance(d.maps["m"].fn, fewshot.FrozenFeatures)
    assert d.maps["m"].fn.backbone is result["backbones"]["pretrained"]
    assert not any(p.requires_grad for p in d.maps["m"].fn.parameters())
    assert [m for m in d.maps if d.graph.src(m) == "F"] == [f"h_{i}" for i in range(GLUE)]
    assert [p.name for p in d.parallel_pairs()] == [f"x_{i}·m·h_{i} ≤ y_{i}" for i in range(GLUE)]
    # Every square's backbone lands on the one edge m; its data is its episode's support set.
    assert [leg("m") for leg in colim.legs[:GLUE]] == ["m"] * GLUE
    for leg, episode in zip(colim.legs, first):
        support = d.spaces[leg(f"N_{episode.index}")].data
        assert torch.equal(support[0], episode.support[0]) and torch.equal(support[1], episode.support[1])
    assert len(d.compile().trainable_maps()) == GLUE  # the heads, and nothing else


def test_meta_training_glues_task_squares_along_one_trainable_backbone(run):
    result = run[0]
    colim = result["meta_colimit"]
    d = colim.apex
    assert [m for m in d.maps if d.graph.src(m) == "F"] == ["h_t0"]  # 5 meta-train digits: one 5-class task
    assert d.maps["m"].trainable is True
    assert d.maps["m"].fn is result["backbones"]["meta-trained"] is not result["backbones"]["pretrained"]


def test_the_three_methods_beat_chance_and_agree_within_their_intervals(run):
    accuracy = run[0]["accuracy"]
    assert sorted(accuracy) == sorted(
        (b, m, k) for b in ("pretrained", "meta-trained") for m in ("glued heads", "loop", "RFS") for k in (1, 5)
    )
    assert sorted(run[0]["seconds"]) == sorted(accuracy)
    for key, values in accuracy.items():
        assert len(values) == EPISODES
        assert statistics.mean(values) > 35.0, (key, values)  # chance: 20%
    for backbone in ("pretrained", "meta-trained"):
        for k in (1, 5):
            glued = accuracy[(backbone, "glued heads", k)]
            assert glued == pytest.approx(accuracy[(backbone, "loop", k)], abs=1.0)  # same objective and optimiser
            (a, ca), (b, cb) = (fewshot.mean_ci(values) for values in (glued, accuracy[(backbone, "RFS", k)]))
            assert abs(a - b) <= ca + cb, (backbone, k, a, ca, b, cb)


def test_the_tables_print_every_cell(run):
    result, out, _ = run
    for (backbone, method, k), values in result["accuracy"].items():
        label = fewshot.METHODS[method]
        accuracy_row, timing_row = [line for line in out.splitlines() if line.startswith(f"| {backbone:<12} | {label}")]
        mean, ci = fewshot.mean_ci(values)
        assert accuracy_row.split("|")[3 + (1, 5).index(k)].strip() == f"{mean:.2f} ± {ci:.2f}"
        seconds, cell = timing_row.split("|")[3 + 2 * (1, 5).index(k) : 5 + 2 * (1, 5).index(k)]
        assert (seconds.strip(), cell.strip()) == (
            f"{result['seconds'][(backbone, method, k)]:.2f}",
            f"{mean:.2f} ± {ci:.2f}",
        )
    assert "x_train·m·h_train ≤ y_train  (at Y_train, weight 1)" in out
    assert "fused (--fuse)" in out


def test_draw_writes_the_glued_episodes(run):
    svg = run[2]
    if not shutil.which("dot"):
        pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    text = svg.read_text()
    assert "<svg" in text and "h_2" in text and "N_0" in text and "h_3" not in text


# -- the pieces -----------------------------------------------------------------------------------


def test_mean_ci_is_the_mean_and_1_96_sample_std_over_root_n():
    values = [60.0, 80.0, 100.0, 73.0]
    mean, half = fewshot.mean_ci(values)
    assert mean == pytest.approx(78.25)
    assert half == pytest.approx(1.96 * np.std(values, ddof=1) / math.sqrt(4))
    assert fewshot.mean_ci([50.0]) == (50.0, 0.0)


def test_episodes_draw_disjoint_support_and_query_from_the_split_classes():
    classes = fewshot.load_classes("digits")
    test = set(classes.splits["test"])
    episodes = fewshot.sample_episodes(classes, "test", 20, shots=5, queries=15, seed=3)
    for e in episodes:
        assert len(set(e.classes)) == 5 and set(e.classes) <= test
        assert not set(e.support_indices) & set(e.query_indices)
        assert len(set(e.support_indices)) == 25 and len(set(e.query_indices)) == 75
        for (images, labels), indices, per in ((e.support, e.support_indices, 5), (e.query, e.query_indices, 15)):
            assert torch.equal(labels, torch.arange(5).repeat_interleave(per))
            assert torch.equal(images, classes.images[indices])
            # label j is class classes[j]: every image of label j belongs to that class
            assert classes.labels[indices].tolist() == [e.classes[j] for j in labels.tolist()]
    again = fewshot.sample_episodes(classes, "test", 20, shots=5, queries=15, seed=3)
    assert [e.support_indices for e in again] == [e.support_indices for e in episodes]
    assert len({tuple(e.support_indices) for e in episodes}) == 20
    other = fewshot.sample_episodes(classes, "test", 20, shots=5, queries=15, seed=4)
    assert [e.support_indices for e in other] != [e.support_indices for e in episodes]


def test_episodes_need_enough_classes_in_the_split():
    classes = fewshot.load_classes("digits")
    with pytest.raises(ValueError, match="needs 6"):
        fewshot.sample_episodes(classes, "test", 1, ways=6)
    with pytest.raises(ValueError, match="0 classes"):
        fewshot.sample_episodes(classes, "val", 1)


def test_frozen_features_are_computed_once_per_support_set():
    calls = []
    backbone = torch.nn.Linear(4, 3).requires_grad_(False)
    backbone.register_forward_hook(lambda *_: calls.append(1))
    memo = fewshot.FrozenFeatures(backbone)
    x = torch.randn(5, 4)
    assert memo(x) is memo(x) and len(calls) == 1
    x.mul_(2.0)  # changed in place: computed afresh
    assert torch.allclose(memo(x), backbone(x)) and len(calls) == 3
    backbone.requires_grad_(True)  # a backbone that trains is never remembered
    memo(x), memo(x)
    assert len(calls) == 5


def test_resnet12_maps_a_glyph_to_640_features():
    net = fewshot.make_backbone("resnet12")
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 640) and net.features == 640
    assert sum(p.numel() for p in net.parameters()) == 12_423_040


def test_asking_for_glyphs_without_the_fonts_stops_with_the_install_command(monkeypatch, capsys):
    monkeypatch.setattr(glyphs, "FONT_FILES", MISSING_FONTS)
    with pytest.raises(SystemExit) as caught:
        fewshot.main(["--data", "glyphs", "--quiet"])
    assert caught.value.code == 2
    assert glyphs.APT_COMMAND in capsys.readouterr().err


# -- the glyph data set ------------------------------------------------------------------------------


def test_lookalikes_are_one_class_and_every_character_is_in_exactly_one():
    classes = glyphs.character_classes()
    assert len(glyphs.CHARACTERS) == 177 and len(classes) == 143
    assert "AΑА" in classes and "oοо" in classes and "ΓГ" in classes  # Latin A, Greek Alpha, Cyrillic A
    assert "κ" in classes and "к" in classes and "K" + "Κ" in classes and "К" in classes  # only similar: apart
    assert sorted("".join(classes)) == sorted(glyphs.CHARACTERS)


def test_class_split_is_fixed_disjoint_and_by_name():
    names = glyphs.character_classes()
    splits = glyphs.split_classes(names)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [92, 23, 28]
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == list(range(len(names)))
    assert "".join(names[i][0] for i in splits["test"]) == "NPRSTZcelvζηιφψБДЙФЪЫЬбзнщъю"
    backwards = glyphs.split_classes(names[::-1])  # the same names in each part, whatever their order
    assert {k: {names[::-1][i] for i in v} for k, v in backwards.items()} == {
        k: {names[i] for i in v} for k, v in splits.items()
    }


def test_missing_fonts_raise_an_error_that_lists_the_apt_packages(tmp_path):
    with pytest.raises(glyphs.FontsMissingError) as caught:
        glyphs.glyphs(fonts={"fonts-dejavu-core": (str(tmp_path), ("DejaVuSans.ttf",))}, cache=tmp_path)
    assert isinstance(caught.value, datasets.DataMissingError)
    assert "apt-get install fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf fonts-urw-base35" in str(
        caught.value
    )
    assert "fonts-dejavu-core: 1 file(s) missing" in str(caught.value)


def test_rendered_glyphs_keep_case_merge_lookalikes_and_cache(tmp_path, monkeypatch):
    fonts_or_skip()
    folder, names = glyphs.FONT_FILES["fonts-dejavu-core"]
    two = {"fonts-dejavu-core": (folder, names[:2])}
    data = glyphs.glyphs(fonts=two, cache=tmp_path)
    assert data.images.shape == (2 * 143, 28, 28) and data.images.dtype == np.uint8
    assert (data.counts() == 2).all() and data.images.reshape(len(data), -1).max(1).min() > 0
    ink = {c: data.images[data.labels == data.classes.index(c)].astype(float).sum() for c in ("CС", "cс")}
    assert ink["cс"] < 0.7 * ink["CС"]  # one type size: lower case stays smaller than upper case
    [cached] = tmp_path.glob("glyphs-*.npz")
    monkeypatch.setattr(glyphs, "render", lambda *a, **k: pytest.fail("rendered again instead of loading"))
    again = glyphs.glyphs(fonts=two, cache=tmp_path)
    assert np.array_equal(again.images, data.images) and again.classes == data.classes
    images, labels = again.tensors()
    assert images.shape == (286, 1, 28, 28) and float(images.max()) <= 1.0 and labels.dtype == torch.int64


def test_lookalike_groups_render_alike_in_most_fonts_and_near_misses_do_not():
    fonts_or_skip()
    paths = glyphs.font_files()
    singles = [c for c in "AΑАBΒВoοоΓГκкnпKК"]
    data = glyphs.render(paths, singles)
    assert len(data.font_names) == 63 and (data.counts() == 63).all()
    image = {
        (int(f), singles[int(k)]): img.astype(float) / 255 for f, k, img in zip(data.fonts, data.labels, data.images)
    }

    def median_distance(a, b):
        return statistics.median(((image[f, a] - image[f, b]) ** 2).sum() for f in range(63))

    for a, b in ("AΑ", "AА", "BВ", "oο", "oо", "ΓГ"):
        assert median_distance(a, b) < 0.5, (a, b)
    for a, b in ("κк", "nп", "KК"):
        assert median_distance(a, b) > 2.0, (a, b)


def test_the_glyph_command_renders_once_and_the_class_set_splits_92_23_28(tmp_path, monkeypatch, capsys):
    fonts_or_skip()
    monkeypatch.setenv("LEARNING_DIAGRAMS_CACHE", str(tmp_path / "cache"))
    glyphs.main(["--grid", str(tmp_path / "grid.png")])
    out = capsys.readouterr().out
    assert "9009 images of 143 classes in 63 fonts (63 to 63 a class)" in out
    assert out.count("fonts-") == 4 and (tmp_path / "grid.png").stat().st_size > 0
    assert len(list((tmp_path / "cache").glob("glyphs-*.npz"))) == 1
    monkeypatch.setattr(glyphs, "render", lambda *a, **k: pytest.fail("rendered again instead of loading"))
    classes = fewshot.load_classes("glyphs")
    assert classes.images.shape == (143 * 63, 1, 28, 28)
    assert {k: len(v) for k, v in classes.splits.items()} == {"train": 92, "val": 23, "test": 28}
    train = classes.subset("train")
    assert len(train) == 92 * 63 and int(train.tensors[1].max()) == 91
