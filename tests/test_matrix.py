"""The kexec matrix and its rotating sample (kxbench/matrix.py)."""
import pytest

from kxbench import matrix


def test_the_matrix_covers_every_config_profile_and_variant():
    cells = matrix.cells()
    edge, check = set(matrix.edge_cells()), set(matrix.check_cells())
    v612 = set(matrix.v612_cells())
    assert len(cells) == len(set(cells)) == 303 + len(edge) + len(check) + len(v612)
    odd = set(matrix.odd_path_cells())
    kunit = set(matrix.kunit_cells())
    minimal = [c for c in cells
               if not c.cpu and not c.variant and c not in odd | kunit | edge | check | v612]
    for config in matrix.CONFIGS:
        for profile in matrix.PROFILES:
            mine = [c for c in minimal if (c.config, c.profile) == (config, profile)]
            ptwalk = {"ptwalk"} if profile in matrix.PTWALK_PROFILES else set()
            bad = {"bad-crashkernel", "crash-shrink"} if profile == "dt-el2" else set()
            assert {c.scenario for c in mine} == set(matrix.SCENARIOS) | ptwalk | bad
            high_low = {c.append for c in mine if c.scenario == "kdump" and c.append}
            assert high_low == ({matrix.HIGH_LOW, matrix.HIGH_LOW + " kx.kexec=file"}
                                if profile == "dt-el2" else
                                {matrix.HIGH_LOW} if profile in matrix.HIGH_LOW_PROFILES
                                else set())
            assert any(c.payload_mib == 256 for c in mine)
            assert any(c.smp == 4 for c in mine)


def test_the_edge_cells_cover_each_granule():
    edge = matrix.edge_cells()
    region = {(c.config, c.append) for c in edge if c.scenario == "crash-region-load"}
    assert {("4k-48", ""), ("4k-48", "rodata=full"), ("64k-48", "")} <= region
    nomap = {c.config for c in edge if c.scenario == "hibernate"}
    assert nomap == {"4k-48", "16k-47", "64k-48"}
    assert any(c.scenario == "kdump" and c.mem and c.append.endswith(",high") for c in edge)
    assert any(c.scenario == "kdump" and "kx.ram=above-4g" in c.append for c in edge)


def test_the_server_cells_run_each_scenario_on_each_cpu_path():
    server = [c for c in matrix.cells() if c.variant == "server"]
    assert {c.config for c in server} == {"4k-48"}
    paths = {(c.cpu, c.profile, c.append) for c in server}
    for path in (("max", "dt-el2", ""), ("max", "uefi", ""), ("cortex-a57", "dt-el2", ""),
                 ("max", "dt-el2", "kpti=1"), ("cortex-a57", "dt-el2", "debug_pagealloc=on")):
        assert path in paths
        assert {c.scenario for c in server if (c.cpu, c.profile, c.append) == path} >= \
            set(matrix.SERVER_SCENARIOS)
    kvm = {(c.cpu, c.profile) for c in server if c.append == "kx.kvm=1"}
    assert {("max", "dt-el2"), ("cortex-a57", "dt-el2")} <= kvm
    assert ("cortex-a57", "dt-el1", "") in paths    # KVM cannot initialise: kvm=none
    no_lva = [c for c in matrix.cells() if (c.config, c.cpu) == ("64k-52", "cortex-a57")]
    assert {c.scenario for c in no_lva} == set(matrix.SERVER_SCENARIOS)
    assert {c.profile for c in no_lva} == {"dt-el2", "uefi"}


def test_the_odd_path_cells_cover_eight_cpus_a_large_payload_and_both_kaslr_states():
    odd = matrix.odd_path_cells()
    assert {c.scenario for c in odd if c.smp == 8} == {"kexec-reboot", "kdump"}
    assert {(c.scenario, c.profile) for c in odd if c.payload_mib == 512} >= \
        {("kexec-reboot", "dt-el2"), ("kexec-reboot", "uefi"), ("kexec-file", "dt-el2")}
    assert {c.append for c in odd if "kaslr" in c.append} == {"nokaslr", "kx.kaslr=on"}
    assert set(odd) <= set(matrix.cells())


def test_the_debug_cells_run_every_scenario_the_issue_names_on_4k_and_64k():
    debug = matrix.debug_cells()
    assert set(debug) <= set(matrix.cells())
    for config in ("4k-48", "64k-48"):
        for profile in ("dt-el2", "uefi"):
            want = {"kexec-reboot", "kexec-file", "kexec-chain", "kdump", "hibernate",
                    "selftests"}
            assert {c.scenario for c in debug if (c.config, c.profile) == (config, profile)} \
                == want
    assert {c.variant for c in debug} == {"debug"}


@pytest.mark.parametrize("start", [0, 1, 5, 7, 11, 12, 13, 1000, 12345])
def test_any_twelve_consecutive_seeds_run_every_cell(start):
    """The coverage claim of make check: whichever seed a run of twelve
    starts at, every cell of the matrix (debug, KUnit and server cells
    included) and every fixed cell runs in one of them."""
    assert matrix.PERIOD == 12
    ran = set()
    for seed in range(start, start + 12):
        ran |= set(matrix.sample(seed))
        ran |= set(matrix.seed_cells(seed))
    every = set(matrix.cells()) | set(matrix.fixed_cells())
    assert not every - ran, sorted(map(str, every - ran))
    for kind in (matrix.debug_cells(), matrix.kunit_cells(), matrix.server_cells(),
                 matrix.odd_path_cells(), matrix.edge_cells(), matrix.check_cells()):
        assert kind and set(kind) <= ran


def test_a_cell_runs_only_where_its_kernel_is_built_and_a_fixed_one_wherever_it_is():
    for seed in range(2 * matrix.PERIOD):
        built = matrix.builds(seed)
        mine = matrix.seed_cells(seed)
        assert all(matrix.build_of(c) in built for c in mine)
        assert [c for c in matrix.fixed_cells() if matrix.build_of(c) in built] == \
            matrix.fixed(seed) == [c for c in mine if c in set(matrix.fixed_cells())]
        assert len(mine) == len(set(mine))
    # Only the fixed cells run more than once in a period.
    runs = [c for seed in range(matrix.PERIOD) for c in matrix.sample(seed)]
    fixed = set(matrix.fixed_cells())
    assert sorted(map(str, (c for c in runs if c not in fixed))) == \
        sorted(map(str, (c for c in matrix.cells() if c not in fixed)))


def test_a_seed_builds_one_debug_kernel_and_few_configs_beyond_4k_48_and_64k_48():
    for seed in range(2 * matrix.PERIOD):
        kernels = matrix.kernels(seed)
        core = len(matrix.CORE_BUILDS)
        assert kernels[:core] == list(matrix.CORE_BUILDS) and len(set(kernels)) == len(kernels)
        assert set(kernels) <= set(matrix.builds(seed))
        assert not [k for k in kernels if k[0] == "upstream"]
        # At most one KASAN kernel: the debug config of the seed's parity,
        # when the schedule gave the seed any of its cells.
        debug = [k for k in kernels if k[2] == "debug"]
        mine = {c.config for c in matrix.seed_cells(seed) if c.variant == "debug"}
        assert debug == [("series", c, "debug") for c in mine]
        assert mine <= {matrix.debug_config(seed)}
        assert len(kernels) <= len(matrix.CORE_BUILDS) + 3
    assert matrix.debug_config(0) != matrix.debug_config(1)


def test_the_kernels_of_a_seed_cover_its_cells_and_the_scenario_tests(monkeypatch):
    """make setup builds ./kx matrix --kernels: every cell the seed's
    scenario tests run (those tests/test_scenarios.py collects, also any it
    adds of its own) must find its kernel there, not build it mid-run."""
    import importlib
    import sys
    for seed in range(matrix.PERIOD):
        kernels = set(matrix.kernels(seed))
        assert {matrix.build_of(c) for c in matrix.seed_cells(seed)} <= kernels
        assert set(matrix.TEST_BUILDS) <= kernels
        monkeypatch.setenv("KX_MATRIX_SEED", str(seed))
        scenarios = importlib.reload(sys.modules["test_scenarios"]) \
            if "test_scenarios" in sys.modules else importlib.import_module("test_scenarios")
        assert scenarios.SEED == seed
        assert {matrix.build_of(c) for c in scenarios.CELLS + scenarios.SAMPLE} <= kernels
        assert set(scenarios.CELLS + scenarios.SAMPLE) == set(matrix.seed_cells(seed))
    assert matrix.build_of(matrix.Cell("kunit", "16k-47", "dt-el2")) == \
        ("series", "16k-47", "kunit")
    assert matrix.build_of(matrix.Cell("memory-hotplug", "4k-48", "uefi")) == matrix.SERVER


def test_the_seeds_share_the_guest_time_evenly():
    """schedule() deals each cell to the seed with the least guest time so
    far among those that build its kernel."""
    load = [sum(map(matrix.minutes, matrix.seed_cells(s))) for s in range(matrix.PERIOD)]
    assert max(load) < 1.2 * min(load), load
    assert matrix.minutes(matrix.Cell("selftests", "4k-48", "dt-el2", variant="debug")) > \
        matrix.minutes(matrix.Cell("kexec-reboot", "4k-48", "dt-el2", payload_mib=512)) > \
        matrix.minutes(matrix.Cell("kexec-reboot", "4k-48", "dt-el2"))


def test_kunit_runs_on_four_configs_and_at_up_to_16_gib():
    kunit = matrix.kunit_cells()
    assert set(kunit) <= set(matrix.cells())
    assert {c.config for c in kunit} == {"4k-48", "4k-39", "16k-47", "64k-48"}
    assert {c.mem for c in kunit if c.config == "4k-48"} == {1024, 8192, 16384}
    assert [c for c in kunit if c.config == "64k-48"][0].args()[-2:] == ["--mem", "16384"]


def test_the_seed_is_a_counter_unless_fixed(tmp_path, monkeypatch):
    monkeypatch.setattr(matrix, "SEED_FILE", tmp_path / "seed")
    monkeypatch.delenv("KX_MATRIX_SEED", raising=False)
    assert [matrix.next_seed() for _ in range(3)] == [0, 1, 2]
    monkeypatch.setenv("KX_MATRIX_SEED", "41")
    assert matrix.next_seed() == matrix.next_seed() == 41
    monkeypatch.delenv("KX_MATRIX_SEED")
    assert matrix.peek_seed() == matrix.peek_seed() == 3
    assert matrix.next_seed() == 3
    assert matrix.peek_seed() == 4


def test_cell_arguments_name_only_what_differs_from_the_defaults():
    cell = matrix.Cell("kexec-file", "64k-52", "uefi", payload_mib=256, smp=4)
    assert cell.args() == ["kexec-file", "--kernel", "series", "--config", "64k-52",
                           "--profile", "uefi", "--payload-mib", "256", "--smp", "4"]
    assert str(cell) == "series-64k-52-uefi-kexec-file-256m-smp4"
    assert matrix.Cell("kdump", "4k-48", "dt-el1").args()[-2:] == ["--profile", "dt-el1"]
    server = matrix.Cell("mmu-state", "4k-48", "uefi", append="kpti=1", cpu="max",
                         variant="server")
    assert server.args()[-6:] == ["--append", "kpti=1", "--cpu", "max", "--variant", "server"]
    assert str(server) == "series-4k-48-server-uefi-mmu-state-kpti-1-max"


def test_pending_cells_fail_the_run_only_by_passing(monkeypatch, capsys):
    assert not [c for c in matrix.cells() if c.pending]    # no scenario is pending
    monkeypatch.setattr(matrix, "PENDING", {"ptwalk": "waits for a kernel change"})
    pending = [c for c in matrix.cells() if c.pending]
    assert {(c.config, c.profile) for c in pending} == {
        (config, profile) for config in matrix.CONFIGS for profile in matrix.PTWALK_PROFILES}
    two = [pending[0], matrix.Cell("kdump", "4k-48", "uefi")]
    monkeypatch.setattr(matrix, "sample", lambda seed: two)
    monkeypatch.setattr(matrix, "run_cell", lambda c: (c, False, "FAIL ...") if c.pending
                        else (c, True, "PASS ..."))
    assert matrix.main(seed=0) == 0
    assert "1 pending cells failed as expected" in capsys.readouterr().out
    monkeypatch.setattr(matrix, "run_cell", lambda c: (c, True, "PASS ..."))
    assert matrix.main(seed=0) == 1
    assert "passes although pending" in capsys.readouterr().out


def test_make_setup_learns_the_debug_config_of_a_sample_without_advancing_the_seed(
        tmp_path, monkeypatch, capsys):
    from kxbench import cli
    monkeypatch.setattr(matrix, "SEED_FILE", tmp_path / "seed")
    monkeypatch.delenv("KX_MATRIX_SEED", raising=False)
    (tmp_path / "seed").write_text("5\n")
    kernels = "".join(f"{k} {c} {v or '-'}\n" for k, c, v in matrix.kernels(5))
    for argv, want in ((["matrix", "--debug-config"], "64k-48\n"),
                       (["matrix", "--debug-config", "--seed", "2"], "4k-48\n"),
                       (["matrix", "--peek-seed"], "5\n"),
                       (["matrix", "--kernels"], kernels)):
        assert cli.main(argv) == 0
        assert capsys.readouterr().out == want
    assert kernels.startswith("series 4k-48 -\nseries 64k-48 -\nbase 4k-48 -\n")
    assert "series 64k-48 debug\n" in kernels
    assert matrix.next_seed() == 5


def test_make_check_deals_the_slow_cells_evenly_to_its_workers():
    """The slow cells (SLOW_MINUTES or more) go to one group per worker, the
    longest first, each to the group with the least; the rest stay free."""
    costs = [1, 12, 11, 1, 7.4, 4, 2, 4]
    groups = matrix.deal(costs, 2)
    assert [g for c, g in zip(costs, groups) if c < matrix.SLOW_MINUTES] == [None] * 3
    load = [sum(c for c, g in zip(costs, groups) if g == w) for w in (0, 1)]
    assert groups[1] == 0 and groups[2] == 1 and abs(load[0] - load[1]) <= 4
    assert matrix.deal([], 2) == [] and matrix.deal([5, 5], 1) == [0, 0]


def test_the_v612_series_runs_its_proofs_on_each_granule_and_its_base_where_it_passes():
    """The v6.12 series: each scenario that proves one of its patches, on
    4K, 16K and 64K pages under DT and UEFI; the unmodified v6.12 only in
    the scenarios it passes (its must-fail tests are in test_scenarios)."""
    v612 = matrix.v612_cells()
    series = [c for c in v612 if c.kernel == matrix.V612]
    for config in matrix.V612_CONFIGS:
        for profile in ("dt-el2", "uefi"):
            mine = {c.scenario for c in series if (c.config, c.profile) == (config, profile)}
            assert set(matrix.V612_SCENARIOS) <= mine
    assert {c.scenario for c in series} >= {"selftests", "kunit"}
    base = {c.scenario for c in v612 if c.kernel == matrix.V612_BASE}
    assert base == {"kexec-reboot", "kexec-file", "kdump", "hibernate"}
    # Its 4k-48 kernels are built by every seed, so its fixed cells run in each.
    fixed = [c for c in matrix.fixed_cells() if c.kernel == matrix.V612]
    assert {c.scenario for c in fixed} >= {"ptwalk", "mmu-state", "reloc-fault", "selftests"}
    assert all(c in matrix.fixed(seed) for seed in range(matrix.PERIOD) for c in fixed)
