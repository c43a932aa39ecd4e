import json

import pytest
import torch

from helpers.core.errors import ParameterError
from helpers.tools import bench


def test_benchmark_prints_one_json_line_with_median_ratios_and_their_spread(capsys):
    out = bench.main(
        [
            "--width",
            "4",
            "--batch-size",
            "32",
            "--images",
            "64",
            "--rounds",
            "3",
            "--workers",
            "0",
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--json",
        ]
    )
    printed = capsys.readouterr().out.strip().splitlines()
    assert json.loads(printed[-1]) == out
    assert (out["arch"], out["width"], out["batch_size"], out["rounds"]) == ("resnet18", 4, 32, 3)
    for key in ("fit", "bare", "conventional", "conventional_same_precision"):
        speeds = out["rounds_ips"][key]
        assert len(speeds) == 3 and min(speeds) > 0
        assert out[f"{key}_ips"] == pytest.approx(
            sorted(speeds)[1], abs=0.051
        )  # of three rounds, the middle
    assert out["fit_fp32_is_fit"] and out["fit_fp32_ips"] == out["fit_ips"]  # fp32 asked: one loop
    for key, other in (("fit_over_bare", "bare"), ("fit_over_conventional", "conventional")):
        # each round's ratio: its two loops side by side; the speeds printed are rounded to 0.1,
        # so each ratio lies between these bounds, and so does each of the three ratios in sorted
        # order
        pairs = list(zip(out["rounds_ips"]["fit"], out["rounds_ips"][other], strict=True))
        lowest = sorted((f - 0.05) / (o + 0.05) for f, o in pairs)
        highest = sorted((f + 0.05) / (o - 0.05) for f, o in pairs)
        found = [out[f"{key}_range"][0], out[key], out[f"{key}_range"][1]]  # min, median, max
        for value, low, high in zip(found, lowest, highest, strict=True):
            assert low - 5e-4 <= value <= high + 5e-4  # the ratio itself is rounded to 0.001


def test_rounds_interleave_the_loops_after_one_warm_up_each():
    calls = []

    def loop(name):
        def call():
            calls.append(name)
            return 10

        return call

    speeds = bench.interleaved({"a": loop("a"), "b": loop("b")}, torch.device("cpu"), rounds=3)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert [len(v) for v in speeds.values()] == [3, 3]


def test_ratio_summary_is_the_median_of_per_round_ratios():
    assert bench.ratio_summary([100, 90, 120], [100, 100, 100]) == {
        "median": 1.0,
        "min": 0.9,
        "max": 1.2,
    }


def test_zero_rounds_are_refused():
    with pytest.raises(ParameterError, match="rounds must be at least 1"):
        bench.run(rounds=0)
