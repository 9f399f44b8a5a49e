"""Where a run was computed: the CPU's model, not only its architecture."""

from __future__ import annotations

import platform

from lsexp.running import sweep


def test_cpu_name_comes_from_cpuinfo_when_platform_gives_none(tmp_path, monkeypatch):
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: GenuineIntel\n"
        "model name\t: Intel(R) Xeon(R) Processor @ 2.60GHz\nflags\t\t: fpu\n\n"
        "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor @ 2.60GHz\n"
    )
    assert sweep.cpu_name(str(cpuinfo)) == "Intel(R) Xeon(R) Processor @ 2.60GHz"
    # No /proc/cpuinfo (macOS, Windows) or no model line (some ARM kernels): the machine.
    assert sweep.cpu_name(str(tmp_path / "absent")) == "x86_64"
    (tmp_path / "arm").write_text("processor\t: 0\nBogoMIPS\t: 48.00\n")
    assert sweep.cpu_name(str(tmp_path / "arm")) == "x86_64"
    monkeypatch.setattr(platform, "processor", lambda: "arm")
    assert sweep.cpu_name(str(cpuinfo)) == "arm"


def test_provenance_names_the_cpu_model(monkeypatch):
    import torch

    monkeypatch.setattr(sweep, "cpu_name", lambda: "Some CPU @ 3GHz")
    assert sweep.provenance(torch.device("cpu"))["device_name"] == "Some CPU @ 3GHz"
