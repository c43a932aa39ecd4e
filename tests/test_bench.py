import json

from helpers import bench


def test_benchmark_prints_one_json_line_with_the_ratios(capsys):
    out = bench.main(["--width", "4", "--batch-size", "32", "--images", "128", "--epochs", "1",
                      "--workers", "0", "--device", "cpu", "--json"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == out
    for key in ("fit_ips", "bare_ips", "conventional_ips", "conventional_same_precision_ips"):
        assert out[key] > 0
    assert abs(out["fit_over_bare"] - out["fit_ips"] / out["bare_ips"]) < 1e-2
    assert abs(out["fit_over_conventional"] - out["fit_ips"] / out["conventional_ips"]) < 1e-2
    assert abs(out["fit_over_conventional_same_precision"]
               - out["fit_ips"] / out["conventional_same_precision_ips"]) < 1e-2
    assert (out["arch"], out["width"], out["batch_size"]) == ("resnet18", 4, 32)
