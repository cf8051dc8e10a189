"""A sweep in TensorBoard's HParams tab, read back through TensorBoard's own hparams plugin
(tensorboard.plugins.hparams.hparams_plugin over a MultiplexerDataProvider, the code behind
`tensorboard --logdir <sweep>`): the experiment lists the swept keys with their values and the
nats metrics, and there is one session per point with its values, its status and the nats of its
eval.json. A failed point is a failed session."""
import csv
import json

import pytest

from conftest import TINY_SWEEP, vae_tch, write_synthetic

pytest.importorskip("tensorboard.plugins.hparams.hparams_plugin")
werkzeug_test = pytest.importorskip("werkzeug.test")


def hparams_api(logdir):
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import hparams_plugin
    from werkzeug.wrappers import Response

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    context = base_plugin.TBContext(logdir=str(logdir), multiplexer=mux, data_provider=provider)
    apps = hparams_plugin.HParamsPlugin(context).get_plugin_apps()

    def post(route, body):
        client = werkzeug_test.Client(apps[route], Response)
        r = client.post(route, json=body, headers={"X-XSRF-Protected": "1"})
        assert r.status_code == 200, r.get_data(as_text=True)
        return json.loads(r.get_data(as_text=True))

    return post




def test_the_hparams_plugin_shows_every_point_with_its_values_and_nats(tmp_path):
    write_synthetic(tmp_path / "data", n_train=24, n_test=8)
    (tmp_path / "s.toml").write_text(TINY_SWEEP)
    vae_tch("sweep", "run", "s.toml", "--out", "s", "--data-dir", "data", "--device", "cpu",
            "--epochs", "1", "--no-export", "-q", cwd=tmp_path)
    # One point fails when the report runs again: its session says so.
    failed = tmp_path / "s/points/r_loss_factor=100,seed=2"
    (failed / "FAILED").write_text("a test's failure\n")
    (failed / "checkpoint/state.toml").write_text(
        (failed / "checkpoint/state.toml").read_text().replace("epoch = 1", "epoch = 0"))
    vae_tch("sweep", "report", "s", cwd=tmp_path)

    post = hparams_api(tmp_path / "s")
    experiment = post("/experiment", {"experimentName": ""})
    infos = {h["name"]: h for h in experiment["hparamInfos"]}
    assert set(infos) == {"train.r_loss_factor", "train.seed"}
    assert infos["train.r_loss_factor"]["type"] == "DATA_TYPE_FLOAT64"
    assert infos["train.r_loss_factor"]["domainDiscrete"] == [100, 1000]
    assert infos["train.seed"]["domainDiscrete"] == [1, 2]
    tags = [m["name"]["tag"] for m in experiment["metricInfos"]]
    assert tags == ["eval/neg_elbo_nats", "eval/iwae_nll_nats", "epoch/test_loss"]

    groups = post("/session_groups", {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
        "colParams": [], "startIndex": 0, "sliceSize": 100})
    sessions = {s["name"]: (g["hparams"], s) for g in groups["sessionGroups"] for s in g["sessions"]}
    assert len(sessions) == 4, list(sessions)
    with open(tmp_path / "s/summary.csv") as f:
        summary = {r["point"]: r for r in csv.DictReader(f)}
    for point, row in summary.items():
        hparams, session = sessions[f"points/{point}/tensorboard"]
        assert hparams == {"train.r_loss_factor": float(row["train.r_loss_factor"]),
                           "train.seed": float(row["train.seed"])}
        values = {m["name"]["tag"]: m["value"] for m in session["metricValues"]}
        if row["status"] == "failed":
            assert session["status"] == "STATUS_FAILURE"
            assert "eval/neg_elbo_nats" not in values
            continue
        assert session["status"] == "STATUS_SUCCESS"
        assert values["eval/neg_elbo_nats"] == pytest.approx(float(row["neg_elbo_nats"]), rel=1e-6)
        assert values["eval/iwae_nll_nats"] == pytest.approx(float(row["iwae_nll_nats"]), rel=1e-6)
        assert values["epoch/test_loss"] == pytest.approx(float(row["test_loss"]), rel=1e-6)
    assert sum(row["status"] == "failed" for row in summary.values()) == 1
