"""The cover letter says what the results, the bench and the series say, nothing else."""
import json
from pathlib import Path

import pytest

from gitrepo import base_repo, commit, fresh_range_diff, git
from kxbench import cover, kbuild, rangediff, tree
from kxbench.util import KxError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEMPLATE = "# a comment line, dropped\nThe problem.\n\n{{matrix}}\n\n{{bench}}\n"
# A range-diff as git prints it, with a line shaped like a shortlog's author
# line in a commit message: the shortlog must not read on into it.
RANGE_DIFF = ("1:  1111111 = 1:  2222222 arm64: add b\n"
              "2:  3333333 ! 2:  4444444 arm64: add c, a subject long enough that "
              "format-patch folds it\n"
              "    @@ Metadata\n"
              "     ## Commit message ##\n"
              "    -Because.\n"
              "    +Because, and\n"
              "    +kexec-mmu developers (9):\n"
              "    +  arm64: not a patch of the series\n")


def row(text, *cells):
    """The matrix line whose columns start with CELLS."""
    lines = [ln.split() for ln in text.splitlines() if ln.split()[:len(cells)] == list(cells)]
    assert len(lines) == 1, (cells, text)
    return lines[0]


def test_matrix_counts_what_the_results_say():
    runs = cover.load_results(FIXTURES / "results")
    assert len(runs) == 5          # series-check.json is not a run
    text = cover.matrix(runs)
    assert row(text, "series", "kexec-reboot", "4k-48", "dt-el2", "cortex-a57", "1024",
               "1")[-2:] == ["2/2", "PASS"]
    assert row(text, "series", "kexec-reboot", "4k-48", "dt-el2", "cortex-a57", "1024",
               "4")[-2:] == ["1/1", "PASS"]
    assert row(text, "base", "mmu-state")[-2:] == ["1/1", "PASS"]
    assert "5 results" in text and "4 passed, 1 failed" in text
    assert "2026-01-01T00:00:01Z to 2026-01-03T00:00:05Z" in " ".join(text.split())


def test_a_failed_result_shows_up_as_failed():
    text = cover.matrix(cover.load_results(FIXTURES / "results"))
    assert row(text, "series", "kdump", "64k-52", "uefi", "max")[-2:] == ["0/1", "FAIL"]
    assert ("20260102-000004-kdump-series-64k-52-uefi-max-dddddd: FAIL: the capture kernel "
            "found 3 of 8192 chunks wrong") in text
    assert "No run failed" not in text


def test_runs_that_differ_in_append_gens_or_variant_are_different_cells():
    base = json.loads(sorted((FIXTURES / "results").glob("*kexec-reboot*"))[0].read_text())
    runs = [base, {**base, "append": "rodata=full"}, {**base, "gens": 5},
            {**base, "variant": "server", "status": "FAIL", "verdict": "fail"}]
    text = cover.matrix(runs)
    assert row(text, "series", "kexec-reboot", "4k-48", "dt-el2", "cortex-a57", "1024", "1",
               "32", "MiB", "1", "rodata=full")[-2:] == ["1/1", "PASS"]
    assert row(text, "series", "kexec-reboot", "4k-48", "dt-el2", "cortex-a57", "1024", "1",
               "32", "MiB", "5")[-2:] == ["1/1", "PASS"]
    assert row(text, "series", "kexec-reboot", "4k-48", "dt-el2", "cortex-a57", "1024", "1",
               "32", "MiB", "1", "-", "server")[-2:] == ["0/1", "FAIL"]


def test_no_results_claim_nothing(tmp_path):
    text = cover.matrix(cover.load_results(tmp_path))
    assert "no results" in text and "no test is claimed to have passed" in text


def test_a_broken_result_is_named(tmp_path):
    (tmp_path / "x.json").write_text("{")
    with pytest.raises(KxError, match="x.json"):
        cover.load_results(tmp_path)


def test_a_missing_bench_says_it_was_not_run(tmp_path):
    text = cover.bench(tmp_path / "bench.json")
    assert "was not run" in " ".join(text.split())
    assert not any(ch.isdigit() for ch in text)


def test_bench_figures_come_from_bench_json():
    text = cover.bench(FIXTURES / "bench.json")
    assert "Under dt-el2:" in text
    assert row(text, "1024/32", "overhead", "KiB")[-5:] == \
        ["568", "3792", "612", "1.077", "0.161"]
    # The letter fits 80 columns: the spread goes on a line of its own.
    assert max(len(ln) for ln in text.splitlines()) <= 80
    assert row(text, "4k-48", "series", "rodata=full")[-4:] == ["0", "3", "777", "-"]
    assert "Linear-map leaf entries in 4096 MiB guests" in text
    assert "quick mode" in text and "2026-01-04T00:00:00Z" in text


def test_the_leaf_table_of_every_config_comes_from_ptdump_json(tmp_path):
    """./kx bench --ptdump's report, beside bench.json, replaces its leaf table."""
    (tmp_path / "bench.json").write_text((FIXTURES / "bench.json").read_text())
    leaf = {"kernel": "series", "config": "64k-48", "mem": 4096,
            "cmdline": "rodata=on crashkernel=256M", "leaf_pte": 65536, "translations": 2048}
    (tmp_path / "ptdump.json").write_text(json.dumps(
        {"started": "2026-12-01T00:00:00Z", "config": "4k-48", "leaves": [leaf]}))
    text = cover.bench(tmp_path / "bench.json")
    assert row(text, "64k-48", "series", "rodata=on", "crashkernel=256M")[-4:] == \
        ["0", "0", "65536", "2048"]
    assert "2026-12-01T00:00:00Z" in text and "777" not in text


@pytest.fixture
def series(tmp_path, monkeypatch):
    """A tree with kx-base and two commits, exported to patches/ by ./kx export."""
    repo, _ = base_repo(tmp_path, monkeypatch)
    for name, subject in (("b", "arm64: add b"), ("c", "arm64: add c, a subject long "
                                                       "enough that format-patch folds it")):
        commit(repo, f"{name}.c", f"int {name};\n", subject)
    tree.export()
    (tmp_path / "cover-letter.in").write_text(TEMPLATE)
    return tmp_path


def render(series_dir, **kw):
    """Render with the fixture results, the series runs marked as runs of the
    series in build/linux (here: the test's repo) as it is now."""
    results_dir = series_dir / "results"
    if not results_dir.exists():
        results_dir.mkdir()
        current = kbuild.source_tree_id(tree.TREE)
        for path in (FIXTURES / "results").glob("*.json"):
            record = json.loads(path.read_text())
            if record.get("kernel") == "series":
                record["source_tree"] = current
            (results_dir / path.name).write_text(json.dumps(record))
    if "range_diff" not in kw:
        kw["range_diff"] = series_dir / "range-diff.txt"
        if not kw["range_diff"].exists():
            fresh_range_diff(kw["range_diff"], RANGE_DIFF)
    return cover.render(template=series_dir / "cover-letter.in",
                        results_dir=results_dir, bench_json=FIXTURES / "bench.json", **kw)


def test_series_runs_of_another_version_are_left_out_and_counted():
    runs = cover.load_results(FIXTURES / "results")
    mine = [dict(r, source_tree="t1") if r["kernel"] == "series" else r for r in runs]
    mine[0] = dict(mine[0], source_tree="t0:dirty") if mine[0]["kernel"] == "series" \
        else mine[0]
    kept, older = cover.current_series_results(mine, "t1")
    series = [r for r in mine if r["kernel"] == "series"]
    assert older == sum(r["source_tree"] != "t1" for r in series) >= 1
    assert all(r["kernel"] != "series" or r["source_tree"] == "t1" for r in kept)
    assert f"({older} runs of earlier versions or of development trees left out)" in " ".join(
        cover.matrix(kept, older).split())


def test_patch_count_and_shortlog_match_the_series(series):
    text = render(series)
    subjects = ["arm64: add b",
                "arm64: add c, a subject long enough that format-patch folds it"]
    assert f"Subject: [PATCH v3 0/2] {cover.TITLE}\n" in text
    assert [tree.patch_subject(p) for p in tree.series_files()] == subjects
    assert cover.shortlog_subjects(text) == subjects
    assert "2 files changed, 2 insertions(+)" in text
    assert "The problem." in text and "a comment line" not in text
    assert "Results, from" in text and "3792" in text
    assert render(series) == text         # nothing in it but its inputs
    # Every run is in the matrix file the letter points to, not in the letter.
    assert "20260102-000004-kdump" not in text
    full = series / "matrix.txt"
    text = render(series, matrix_file=full)
    assert "20260102-000004-kdump" in full.read_text() and str(full) in " ".join(text.split())
    prose = text.split("kexec-mmu developers (")[0]     # git writes the shortlog on
    assert max(len(ln) for ln in prose.splitlines()) <= 80


def test_a_tree_that_is_not_the_series_is_refused(series):
    (tree.TREE / "d.c").write_text("int d;\n")
    git(tree.TREE, "add", "d.c")
    git(tree.TREE, "commit", "-q", "-m", "arm64: add d, not exported")
    with pytest.raises(KxError, match="./kx export"):
        render(series)


def test_template_placeholders_must_all_be_there(series):
    (series / "cover-letter.in").write_text("{{matrix}} only\n")
    with pytest.raises(KxError, match="bench"):
        render(series)
    (series / "cover-letter.in").write_text(TEMPLATE + "{{typo}}\n")
    with pytest.raises(KxError, match="typo"):
        render(series)


def test_tree_never_applies_the_cover_letter_and_export_keeps_it(series):
    letter = tree.PATCHES / "0000-cover-letter.patch"
    letter.write_text(render(series))
    before = letter.read_bytes()
    names = tree.export()
    assert letter.read_bytes() == before
    assert len(names) == 2 and "0000-cover-letter.patch" not in names
    assert [p.name for p in tree.series_files()] == names
    # git am of a mail without a diff fails: applying the cover letter would stop here.
    tree.ensure_tree(force=True)
    assert git(tree.TREE, "log", "--format=%s", f"{tree.BASE_TAG}..HEAD").splitlines() == [
        "arm64: add c, a subject long enough that format-patch folds it", "arm64: add b"]


def test_the_range_diff_against_v1_ends_the_letter_after_the_diffstat(series):
    text = render(series)
    before, sep, after = text.partition(f"\n\nRange-diff against v{rangediff.PREVIOUS}:\n")
    assert before.endswith(" 2 files changed, 2 insertions(+)\n create mode 100644 b.c\n"
                           " create mode 100644 c.c")
    assert after.startswith(RANGE_DIFF + "-- \n")
    assert cover.shortlog_subjects(text) == [tree.patch_subject(p) for p in tree.series_files()]


def test_a_missing_or_stale_range_diff_is_refused(series):
    with pytest.raises(KxError, match="there is no .*run ./kx series range-diff"):
        render(series, range_diff=series / "none.txt")
    made = fresh_range_diff(series / "range-diff.txt", RANGE_DIFF)
    commit(tree.TREE, "d.c", "int d;\n", "arm64: add d")
    tree.export()
    with pytest.raises(KxError, match="stale.*patches/.*run ./kx series range-diff"):
        render(series, range_diff=made)
    fresh_range_diff(made, RANGE_DIFF)
    assert f"Range-diff against v{rangediff.PREVIOUS}:" in render(series, range_diff=made)
    (tree.TREE / "d.c").write_text("int d = 1;\n")      # committed, not exported
    git(tree.TREE, "commit", "-q", "-a", "--amend", "--no-edit")
    with pytest.raises(KxError, match="stale.*tree.*./kx export.*./kx series range-diff"):
        render(series, range_diff=made)


def test_a_changes_block_of_the_template_passes_through_unchanged(series):
    changes = ("Changes in v2:\n"
               "- 0006 copies the linear map with the largest blocks; a 1 GiB\n"
               "  guest takes 4 table pages (v1: 512).  Two spaces stay.\n"
               "- new: 0013, selftests {for} kexec_load()\n"
               "    indented, a very long line that nobody wraps: " + "x" * 80 + "\n")
    (series / "cover-letter.in").write_text(TEMPLATE.replace("The problem.\n",
                                                             "The problem.\n\n" + changes))
    assert "\n\n" + changes + "\n" in render(series)


def test_subject_prefixes_carry_the_version_and_strip_either_way(tmp_path):
    assert tree.SERIES_VERSION == 3
    assert tree.subject_prefix(0, 13) == "[PATCH v3 0/13]"
    assert tree.subject_prefix(3, 13) == "[PATCH v3 3/13]"
    assert tree.subject_prefix(3, 12, version=1) == "[PATCH 3/12]"
    for k, prefix in enumerate(("[PATCH]", "[PATCH 3/12]", "[PATCH v3 3/13]",
                                "[PATCH RFC v2 3/13]")):
        mail = tmp_path / f"{k}.patch"
        mail.write_text(f"From: x <x@y>\nSubject: {prefix} arm64: add b\n\nBody.\n")
        assert tree.patch_subject(mail) == "arm64: add b"


def run_record(kernel, scenario, config="4k-48", status="PASS", started="2026-12-04T00:00:00Z",
               **kw):
    return {"kernel": kernel, "scenario": scenario, "config": config, "profile": "dt-el2",
            "cpu": "cortex-a57", "mem": 1024, "smp": 1, "payload_mib": 32, "gens": 1,
            "append": "", "variant": "", "verdict": "pass" if status == "PASS" else "fail",
            "status": status, "started": started, "run": f"{started}-{scenario}",
            "reasons": [] if status == "PASS" else [f"{scenario} broke"], **kw}


def test_the_letter_sums_up_per_scenario_and_config_and_names_each_peer_failure():
    runs = [run_record("series", "kdump"), run_record("series", "kdump", "64k-48"),
            run_record("series", "kdump", "64k-48", "FAIL", "2026-12-03T00:00:00Z"),
            run_record("series", "hibernate", "64k-48", "FAIL"),
            run_record("base", "mmu-state", status="FAIL"),
            run_record("series", "kexec-reboot", status="TIMEOUT", timeout=1),
            run_record("series", "kexec-reboot", status="FAIL", append="kx.warn=1")]
    text = cover.summary(runs, 2, "docs/series/matrix-v3.txt")
    lines = text.splitlines()
    head = lines.index("scenario   4k-48  64k-48")
    assert lines[head + 1:head + 3] == ["hibernate  -      0/1", "kdump      1/1    1/1"]
    assert "2 of the 3 cells run on this version of the series passed" in " ".join(text.split())
    assert "hibernate 64k-48 dt-el2: FAIL: hibernate broke" in text
    assert "base mmu-state 4k-48 dt-el2: FAIL: mmu-state broke" in text
    # kdump on 64k-48 failed on 2026-12-03 and passed on 2026-12-04: both said.
    assert "failed in an earlier run and passed in their newest:\n  kdump 64k-48 dt-el2" in text
    assert "2 runs failed on purpose" in text and "kexec-reboot" not in text.split("scenario")[1]
    assert "2 runs of earlier versions" in text and "docs/series/matrix-v3.txt" in text
    assert cover.summary([], 0).startswith("Results: build/results/ holds no results")


def test_development_runs_are_left_out():
    runs = [run_record("series", "kdump", source_tree="t1"), run_record("tree", "kdump")]
    kept, older = cover.current_series_results(runs, "t1")
    assert [r["kernel"] for r in kept] == ["series"] and older == 1


def test_each_series_letter_reports_its_own_kernels_only():
    """The v6.12 letter counts the v6.12 series and its base, not the v5.10
    runs; the v5.10 letter never counts the v6.12 runs."""
    runs = [{"kernel": k, "source_tree": "t"} for k in
            ("series", "base", "upstream", "series-6.12", "base-6.12", "tree")]
    try:
        with tree.using("v6.12"):
            cover.select()
            assert cover.TITLE == cover.TITLES["v6.12"]
            assert cover.COVER == tree.SERIESES["v6.12"].patches / "0000-cover-letter.patch"
            kept, left = cover.current_series_results(runs, "t")
            assert [r["kernel"] for r in kept] == ["series-6.12", "base-6.12"] and left == 4
    finally:
        cover.select()
    kept, left = cover.current_series_results(runs, "t")
    assert [r["kernel"] for r in kept] == ["series", "base", "upstream"] and left == 3


def test_each_letter_gives_its_own_kernels_bench_rows(tmp_path):
    """The v6.12 letter shows v6.12 and its series with their ratio, the
    v5.10 letter the v5.10 kernels with theirs, from one bench run."""
    report = json.loads((FIXTURES / "bench.json").read_text())
    report["kernels"] += ["base-6.12", "series-6.12"]
    for r in report["rows"]:
        r["base-6.12"] = {"median": 4000, "min": 3900, "max": 4100, "n": 3}
        r["series-6.12"] = {"median": 800, "min": 800, "max": 800, "n": 3}
        r["series-6.12_vs_base-6.12"] = 0.2
    report["leaves"].append({"kernel": "series-6.12", "config": "4k-48", "mem": 4096,
                             "cmdline": "rodata=on crashkernel=256M", "leaf_pmd": 2040,
                             "leaf_pte": 1536, "translations": 2100})
    (tmp_path / "bench.json").write_text(json.dumps(report))
    try:
        with tree.using("v6.12"):
            cover.select()
            text = cover.bench(tmp_path / "bench.json")
    finally:
        cover.select()
    assert row(text, "1024/32", "overhead", "KiB")[-3:] == ["4000", "800", "0.2"]
    assert row(text, "3900..4100") == ["3900..4100"]     # the series' runs agree
    assert "the series over v6.12" in " ".join(text.split())
    assert row(text, "4k-48", "series", "rodata=on", "crashkernel=256M")[-1] == "2100"
    assert row(text, "RAM/load", "metric") == ["RAM/load", "metric", "v6.12", "series",
                                               "/base"]
    assert "upstream" not in text
    assert max(len(ln) for ln in text.splitlines()) <= 80
    text = cover.bench(tmp_path / "bench.json")
    assert "6.12" not in text


def test_the_leaf_table_names_the_ram_of_each_row_when_sizes_differ(tmp_path):
    (tmp_path / "bench.json").write_text((FIXTURES / "bench.json").read_text())
    leaves = [{"kernel": "series", "config": "4k-48", "mem": mem, "cmdline": "rodata=full",
               "leaf_pte": 7, "translations": 7} for mem in (1024, 4096)]
    (tmp_path / "ptdump.json").write_text(json.dumps(
        {"started": "2026-12-01T00:00:00Z", "config": "4k-48", "leaves": leaves}))
    text = cover.bench(tmp_path / "bench.json")
    assert "MiB guests" not in text
    assert row(text, "4k-48", "series", "1024", "rodata=full")[-4:] == ["0", "0", "7", "7"]
    assert row(text, "4k-48", "series", "4096", "rodata=full")[-4:] == ["0", "0", "7", "7"]
