"""make check's record of its run and its closing table (kxbench/checkrun.py)."""
import json

from kxbench import checkrun, matrix


def write_result(results, name, started, **fields):
    record = {"scenario": "kexec-reboot", "kernel": "series", "config": "4k-48",
              "profile": "dt-el2", "cpu": "cortex-a57", "mem": 1024, "smp": 1,
              "payload_mib": 32, "append": "", "variant": "", "timeout": None,
              "status": "PASS", "duration_s": 61.0, "started": started, **fields}
    (results / f"{name}.json").write_text(json.dumps(record))


def test_the_summary_has_stages_kernels_cells_and_the_next_seed(tmp_path, monkeypatch):
    monkeypatch.setattr(matrix, "SEED_FILE", tmp_path / "seed")
    monkeypatch.delenv("KX_MATRIX_SEED", raising=False)
    (tmp_path / "seed").write_text("5\n")
    stages, builds, results = tmp_path / "stages", tmp_path / "builds.jsonl", tmp_path / "res"
    results.mkdir()
    t0 = 1796342400     # 2026-12-04T00:00:00Z
    stages.write_text(f"seed 4\nsetup start {t0}\nsetup end {t0 + 1500} 0\n"
                      f"scenarios start {t0 + 1500}\nscenarios end {t0 + 3900} 1\n")
    builds.write_text(json.dumps({"kernel": "series", "config": "4k-48", "variant": "",
                                  "seconds": 270, "ccache_hits": 10, "ccache_misses": 1900})
                      + "\n" + json.dumps({"kernel": "base", "config": "4k-48", "variant": "",
                                           "seconds": 80, "ccache_hits": 1900,
                                           "ccache_misses": 0}) + "\n")
    write_result(results, "a", "2026-12-04T00:30:00Z")                       # a fixed cell
    write_result(results, "b", "2026-12-04T00:31:00Z", status="FAIL",
                 timeout=1)                                                  # a test's own
    write_result(results, "c", "2026-12-04T00:10:00Z", status="FAIL")       # before the stage
    (results / "series-check.json").write_text("{}")
    seed, rows = checkrun.rows(stages, builds, results, now=t0 + 4000)
    assert seed == 4
    assert ("stage", "setup", "25:00", "ok") in rows
    assert ("stage", "scenarios", "40:00", "FAILED (exit 1)") in rows
    assert ("stage", "all", "1:05:00", "") in rows
    assert ("kernel", "series 4k-48", "4:30", "compiled 1900 objects, 10 from ccache") in rows
    assert ("kernel", "base 4k-48", "1:20", "from ccache (1900 objects)") in rows
    cells = [r for r in rows if r[0] == "cell"]
    assert ("cell", "series-4k-48-dt-el2-kexec-reboot", "1:01", "PASS") in cells
    assert [r for r in rows if r[0] == "test run"] == [
        ("test run", "series-4k-48-dt-el2-kexec-reboot-cortex-a57 (timeout 1 s)", "1:01", "FAIL")]
    planned = matrix.seed_cells(4)
    assert len(cells) == len(planned)
    assert sum(r[3] == "NO RESULT" for r in cells) == len(planned) - 1
    assert ("cells", f"{len(planned)} of seed 4", "",
            f"1 PASS, {len(planned) - 1} NO RESULT") in rows
    assert ("next", "seed 5", "", f"{len(matrix.seed_cells(5))} cells on "
            f"{len(matrix.kernels(5))} kernels") in rows
    assert [r[1] for r in rows if r[0] == "next kernel"] == [
        checkrun.build_name(*b) for b in matrix.kernels(5)]
    assert [r[1] for r in rows if r[0] == "next cell"] == list(map(str, matrix.seed_cells(5)))
    text = checkrun.table(seed, rows)
    assert text.startswith("make check summary: seed 4 (KX_MATRIX_SEED=4 reproduces it)")


def test_a_build_says_whether_it_compiled_and_what_ccache_gave():
    assert checkrun.how_built({"ccache_hits": 0, "ccache_misses": 0}).startswith("up to date")
    assert checkrun.how_built({}) == "built (ccache not read)"
    assert checkrun.clock(59.6) == "1:00" and checkrun.clock(3725) == "1:02:05"


def test_no_recorded_run_still_shows_the_next_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("KX_MATRIX_SEED", "7")
    seed, rows = checkrun.rows(tmp_path / "none", tmp_path / "none", tmp_path / "none")
    assert seed is None and rows and all(r[0].startswith("next") for r in rows)
    assert "no run recorded" in checkrun.table(seed, rows)


def test_make_setup_builds_exactly_the_kernels_of_the_next_seed(tmp_path, monkeypatch, capsys):
    """./kx setup --sample: every kernel ./kx matrix --kernels lists, in its
    order, each timed and recorded with what ccache gave; the seed stays."""
    from kxbench import cli
    monkeypatch.setattr(matrix, "SEED_FILE", tmp_path / "seed")
    monkeypatch.delenv("KX_MATRIX_SEED", raising=False)
    (tmp_path / "seed").write_text("6\n")
    monkeypatch.setattr(checkrun, "CHECK", tmp_path)
    monkeypatch.setattr(checkrun, "BUILDS", tmp_path / "builds.jsonl")
    monkeypatch.setattr(cli.deps, "ensure_host_packages", lambda: None)
    monkeypatch.setattr(cli.userland, "prepare", lambda: {})
    built, counts = [], iter([(0, 0), (5, 100), (5, 100), (5, 100)] + [(5, 100)] * 20)
    monkeypatch.setattr(checkrun, "ccache_counts", lambda: next(counts))
    monkeypatch.setattr(checkrun.kbuild, "build",
                        lambda kernel, config, variant="": built.append((kernel, config, variant)))
    assert cli.main(["setup", "--sample"]) == 0
    assert built == matrix.kernels(6)
    records = checkrun.read_builds(tmp_path / "builds.jsonl")
    assert [(r["kernel"], r["config"], r["variant"]) for r in records] == built
    assert records[0]["ccache_misses"] == 100 and records[1]["ccache_misses"] == 0
    out = capsys.readouterr().out
    assert "kernels of seed 6" in out and "series 4k-48: 0:00, compiled 100 objects, 5 from" in out
    assert matrix.peek_seed() == 6
