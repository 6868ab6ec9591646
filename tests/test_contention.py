"""Fair CPU sharing (stream.cpu_share) and ``densestream bench --contend``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from stream import cpu_share
from stream.bench.contention import BUSY_LOOP, busy_loops, fair_share
from stream.engine import set_cpu_threads

ROOT = Path(__file__).resolve().parents[1]


def _busy_loop_alive(pid: int) -> bool:
    """True while ``pid`` is still one of our busy loops (not gone, not a reaped zombie)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return BUSY_LOOP.splitlines()[0] in cmdline and state != "Z"


def _clean_env() -> dict[str, str]:
    """The environment of a user who set no thread or OpenMP variables."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", cpu_share.OFF_SWITCH)}
    env["DENSESTREAM_DEBUG"] = ""
    return env


def test_free_cores_leaves_the_busy_ones_and_keeps_one():
    assert cpu_share.free_cores(8, 0.1) == 8
    assert cpu_share.free_cores(8, 2.6) == 5
    assert cpu_share.free_cores(2, 1.0) == 1
    assert cpu_share.free_cores(2, 9.0) == 1


def test_prepare_environment_sets_a_short_spin_unless_chosen(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch")
    env: dict[str, str] = {}
    assert cpu_share.prepare_environment(env) and env == {"GOMP_SPINCOUNT": cpu_share.SPIN_COUNT}
    for mine in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "50000"}):
        chosen = dict(mine)
        assert not cpu_share.prepare_environment(chosen) and chosen == mine
    off = {cpu_share.OFF_SWITCH: "off"}
    assert not cpu_share.prepare_environment(off) and "GOMP_SPINCOUNT" not in off


def test_busy_cores_sees_a_busy_loop_and_not_this_process():
    baseline = cpu_share.busy_cores(0.3)  # other jobs on this machine, if any
    if baseline > os.cpu_count() - 1:
        pytest.skip(f"other jobs keep {baseline:.1f} cores busy: no idle core to see a new loop on")
    with busy_loops(1):
        assert 0.5 < cpu_share.busy_cores(0.3) - baseline < 1.5
    deadline = time.monotonic() + 0.5

    def spin() -> None:
        while time.monotonic() < deadline:
            pass

    spinner = threading.Thread(target=spin)
    spinner.start()  # this process's own threads are not another job
    try:
        assert cpu_share.busy_cores(0.2) - baseline < 0.5
    finally:
        spinner.join()


def test_busy_cores_falls_back_to_the_load_average_without_proc_stat(monkeypatch):
    monkeypatch.setattr(cpu_share, "_cpu_times", lambda: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 0.0, 0.0))
    assert cpu_share.busy_cores() == 1.5


def test_prepare_environment_does_nothing_once_torch_is_loaded():
    env: dict[str, str] = {}
    assert not cpu_share.prepare_environment(env) and env == {}


def test_choose_threads_uses_the_free_cores_once(monkeypatch):
    cores = cpu_share.usable_cores()
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(cpu_share.OFF_SWITCH, raising=False)
    monkeypatch.setattr(cpu_share, "_chosen", False)
    monkeypatch.setattr(cpu_share, "busy_cores", lambda: float(cores))
    torch.set_num_threads(cores)
    try:
        assert cpu_share.choose_threads() == 1
        assert torch.get_num_threads() == 1
        torch.set_num_threads(cores)
        assert cpu_share.choose_threads() is None  # once per process
        assert torch.get_num_threads() == cores
    finally:
        torch.set_num_threads(before)


def test_choose_threads_keeps_a_count_the_user_set(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr(cpu_share, "_chosen", False)
    monkeypatch.setattr(cpu_share, "busy_cores", lambda: 99.0)
    assert cpu_share.choose_threads() is None
    assert torch.get_num_threads() == before


def _threads_in_a_new_thread(action) -> int:
    """torch's thread count in a fresh thread after ``action()`` ran there."""
    seen: list[int] = []

    def body() -> None:
        action()
        seen.append(torch.get_num_threads())

    worker = threading.Thread(target=body)
    worker.start()
    worker.join()
    return seen[0]


def test_follow_load_sets_the_calling_threads_count_only_where_threads_were_chosen(monkeypatch):
    main_threads = torch.get_num_threads()
    monkeypatch.setattr(cpu_share, "_follower", None)
    assert _threads_in_a_new_thread(cpu_share.follow_load) == main_threads  # nothing chosen: left alone
    other = 1 if main_threads > 1 else 2
    monkeypatch.setattr(cpu_share, "_follower", cpu_share.LoadFollower(2, other, interval=3600))
    assert _threads_in_a_new_thread(cpu_share.follow_load) == other
    assert torch.get_num_threads() == main_threads  # another thread's count is its own
    set_cpu_threads(main_threads)  # the user chose: following ends
    assert cpu_share._follower is None
    assert _threads_in_a_new_thread(cpu_share.follow_load) == main_threads


def test_load_follower_measures_again_only_after_its_interval(monkeypatch):
    samples = iter([0.0, 1.6, 0.2])
    monkeypatch.setattr(cpu_share, "_others_between", lambda first, second: next(samples))
    follower = cpu_share.LoadFollower(cores=2, count=2, interval=0.05)
    assert follower.threads() == 2  # too soon: no new measurement
    time.sleep(0.06)
    assert follower.threads() == 2  # others used nothing
    time.sleep(0.06)
    assert follower.threads() == 1  # others kept 1.6 cores busy
    time.sleep(0.06)
    assert follower.threads() == 2  # and went away again


def test_load_follower_sees_a_busy_loop_arrive():
    if cpu_share.busy_cores(0.3) > os.cpu_count() - 1 or cpu_share.usable_cores() < 2:
        pytest.skip("needs an idle core to see a new loop on")
    cores = cpu_share.usable_cores()
    follower = cpu_share.LoadFollower(cores, cores, interval=0.3)
    with busy_loops(1):
        time.sleep(0.4)
        assert follower.threads() == cores - 1


def test_busy_loops_spin_and_are_gone_after_an_error():
    with pytest.raises(RuntimeError):
        with busy_loops(2) as pids:
            assert len(pids) == 2 and all(_busy_loop_alive(pid) for pid in pids)
            raise RuntimeError("boom")
    assert not any(_busy_loop_alive(pid) for pid in pids)


@pytest.mark.parametrize("own", [True, False])
def test_busy_loops_run_in_sessions_of_their_own_or_in_ours(own):
    with busy_loops(1, own_sessions=own) as pids:
        assert (os.getsid(pids[0]) == pids[0]) is own
        assert (os.getsid(pids[0]) == os.getsid(0)) is not own


def test_fair_share_by_session_under_autogroup_and_by_thread_otherwise():
    # 2 threads on 2 cores next to 2 loops: three sessions get 2/3 CPU each, four threads 1/2
    assert fair_share(2, 2, 2, own_sessions=True, autogroup=True) == pytest.approx(1 / 3)
    assert fair_share(2, 2, 2, own_sessions=False, autogroup=True) == pytest.approx(0.5)
    assert fair_share(2, 2, 2, own_sessions=True, autogroup=False) == pytest.approx(0.5)
    # one thread next to one loop on two cores keeps all of its core
    assert fair_share(1, 2, 1, own_sessions=True, autogroup=True) == pytest.approx(1.0)


def test_busy_loops_are_gone_after_sigterm(tmp_path):
    script = ("import sys, time\nfrom stream.bench.contention import busy_loops\n"
              "with busy_loops(2) as pids:\n    print(*pids, flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert len(pids) == 2 and all(_busy_loop_alive(pid) for pid in pids)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert proc.returncode != 0
    assert not any(_busy_loop_alive(pid) for pid in pids)


def test_bench_contend_reports_both_phases_with_the_cpu_set_up_in_effect(tmp_path):
    out = tmp_path / "contend.json"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "stream", "bench", "--contend", "1", "--frames", "2", "--repeat", "1",
         "--resolution", "32x24", "--json", str(out)],
        cwd=ROOT, env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 60
    assert "| row | idle frames/s | contended frames/s | contended / idle |" in done.stdout
    result = json.loads(out.read_text())
    meta = result["meta"]
    assert meta["gomp_spincount"] == cpu_share.SPIN_COUNT and meta["omp_wait_policy"] is None and meta["cpu_share"]
    assert 1 <= meta["torch_threads"] <= cpu_share.usable_cores()
    assert set(result["rows"]) == {"model", "pipeline", "drive"}
    for row in result["rows"].values():
        assert row["idle_median"] > 0 and row["contended_median"] > 0
        assert row["ratio"] == pytest.approx(row["contended_median"] / row["idle_median"])
    assert len(meta["competitor_pids"]) == 1
    assert not _busy_loop_alive(meta["competitor_pids"][0])
    assert meta["sessions"] == "own" and 0 < meta["fair_share"] <= 1
    assert f"a fair share is {meta['fair_share']:.2f} of the idle CPU time" in done.stdout


@pytest.mark.parametrize("switch, policy", [("", cpu_share.SPIN_COUNT), ("off", None)])
def test_import_stream_before_torch_sets_a_short_spin_unless_switched_off(switch, policy):
    script = "import os, stream, torch\nprint(os.environ.get('GOMP_SPINCOUNT'))"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={**_clean_env(), cpu_share.OFF_SWITCH: switch}, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(policy)


def test_bench_contend_rejects_zero_competitors():
    done = subprocess.run([sys.executable, "-m", "stream", "bench", "--contend", "0"], cwd=ROOT,
                          env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: --contend needs at least 1")
