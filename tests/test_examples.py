from learning_diagrams.examples import distillation


def test_distillation_demo_runs_and_reports_three_accuracies(capsys, tmp_path):
    results = distillation.main(["--epochs", "2", "--seed", "0", "--quiet", "--log-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert set(results) == {"teacher", "student", "distilled student"}
    assert all(0.0 <= value <= 100.0 for value in results.values())
    assert "x·student·soft ≤ x·teacher·soft  (at G, weight 0.25)" in out
    assert "x·student·hard ≤ y" in out and (tmp_path / "losses.png").exists()
    assert results["teacher"] > 20.0  # far above chance (10%) after two epochs
