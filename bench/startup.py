"""Start-up figures from a fresh clone: `make run` to the first answer (the pip install apart from the
project's own start-up), a warm restart to the first answer, memory of each serving process, how fast a
killed answering process is replaced, and a cold `rag ask` in-process and through the running server.

Clones the repository's committed HEAD into a temporary folder (so the venv, the ONNX export and the index
are all built from nothing), serves it on a free 127.0.0.1 port and asks over HTTP. Bounded in time."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import ROOT, free_port

QUESTION = "How much did the government give Rapidus?"
TARGETS = {"first_answer_s": 90.0, "warm_restart_s": 5.0, "answering_rss_mib": 500.0, "cold_ask_server_s": 1.5,
           "replacement_s": 5.0}


def ask_once(port: int, timeout: float = 10.0) -> bool:
    body = json.dumps({"question": QUESTION}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/ask", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status == 200 and bool(json.load(resp).get("answer"))
    except (OSError, ValueError):
        return False


@dataclass
class Served:
    """A `make run` in its own process group, its output lines with the second each arrived at."""

    proc: subprocess.Popen[str]
    started: float
    lines: list[tuple[float, str]] = field(default_factory=list)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append((time.monotonic() - self.started, line.rstrip("\n")))

    def stop(self) -> None:
        for sig, wait in ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a newcomer's shell: this one without PYTHONDONTWRITEBYTECODE (set on some build
    machines), under which every start compiles every module from source, about twice the CPU."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | extra


def make_run(repo: Path, port: int, workers: int) -> Served:
    proc = subprocess.Popen(["make", "run", f"PORT={port}", f"WORKERS={workers}"], cwd=repo, text=True,
                            env=user_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    served = Served(proc, time.monotonic())
    threading.Thread(target=served.read, daemon=True).start()
    return served


def until_answered(served: Served, port: int, deadline_s: float) -> float:
    """Seconds from `make run` to the first 200 from POST /ask."""
    while time.monotonic() - served.started < deadline_s:
        if served.proc.poll() is not None:
            tail = "\n".join(line for _, line in served.lines[-30:])
            raise SystemExit(f"make run exited with {served.proc.returncode}:\n{tail}")
        if ask_once(port, timeout=5):
            return time.monotonic() - served.started
        time.sleep(0.25)
    raise SystemExit(f"no answer within {deadline_s:.0f} s")


def descendants(pid: int) -> list[int]:
    """Every process under pid (from /proc), depth first."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def process_cpu_s(pid: int) -> float:
    """CPU seconds a running process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def python_processes(served: Served) -> dict[str, tuple[int, float]]:
    """(pid, RSS MiB) of each Python process of the service by role: the HTTP server, the fork server and
    the answering processes forked from it."""
    out = {}
    pids = descendants(served.proc.pid)
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "python" not in cmd or "resource_tracker" in cmd:
            continue
        rss = rss_mib(pid)
        if rss is None:
            continue
        if "forkserver" in cmd:
            role = "answering" if "forkserver" in _cmdline(parent_of(pid)) else "fork server"
        else:
            role = "answering" if "spawn_main" in cmd else "server"
        out[f"{role} {pid}"] = (pid, round(rss, 1))
    return out


def _cmdline(pid: int | None) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") if pid else ""
    except OSError:
        return ""


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
            return json.load(resp)
    except (OSError, ValueError):
        return None


def replacement_s(port: int, pid: int, deadline_s: float = 120) -> float:
    """Seconds from kill -9 of one answering process until /health, having said it lost one, says every
    process is ready again."""
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    seen_loss = False
    while time.monotonic() - killed < deadline_s:
        h = health(port) or {}
        answering = h.get("answering") or {}
        if answering.get("ready", 0) < answering.get("total", 1):
            seen_loss = True
        elif seen_loss and h.get("status") == "ok":
            return time.monotonic() - killed
        time.sleep(0.01)
    raise SystemExit(f"no replacement within {deadline_s:.0f} s")


def cold_ask(repo: Path, port: int, runs: int, local: bool) -> tuple[float, float, float]:
    """Median wall seconds, largest peak RSS (MiB) and median CPU seconds of `rag ask` in a new process."""
    times, peaks, cpus = [], [], []
    env = user_env(RAG_PORT=str(port), RAG_HOST="127.0.0.1")
    for _ in range(runs):
        t0 = time.monotonic()
        proc = subprocess.Popen([str(repo / ".venv" / "bin" / "rag"), "ask", QUESTION, *(["--local"] if local else [])],
                                cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.monotonic() - t0)
        peaks.append(usage.ru_maxrss / 1024)
        cpus.append(usage.ru_utime + usage.ru_stime)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"rag ask failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return statistics.median(times), max(peaks), statistics.median(cpus)


def children_cpu_s() -> float:
    """CPU seconds of every finished child process and its descendants so far (load-independent work)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def milestones(served: Served) -> list[tuple[float, str]]:
    """The lines `make run` printed that say which step it is on, with when."""
    keys = ("[setup", "[run", "export", "index ", "ingest", "answering process", "Uvicorn running",
            "Application startup")
    return [(t, line) for t, line in served.lines if any(k in line for k in keys)]


def setup_done_s(served: Served) -> float | None:
    """When the installs ended: `make run` echoes the ingest (or `rag serve --ingest`) command next."""
    return next((t for t, line in served.lines if ("rag ingest" in line or "rag serve" in line)
                 and "[setup" not in line), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="answering processes, as `make run` (default 2)")
    parser.add_argument("--runs", type=int, default=3, help="cold `rag ask` runs per mode (median)")
    parser.add_argument("--deadline", type=float, default=900, help="seconds allowed for the first answer")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone")
    parser.add_argument("--json-out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    figures_load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="rag-startup-"))
    repo = tmp / "repo"
    figures: dict[str, Any] = {}
    try:
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
        port = free_port()

        cpu0 = children_cpu_s()
        served = make_run(repo, port, args.workers)
        try:
            figures["first_answer_s"] = round(until_answered(served, port, args.deadline), 1)
            figures["first_run_steps"] = [(round(t, 1), line) for t, line in milestones(served)]
            setup = setup_done_s(served)
            if setup is not None:
                figures["first_run_setup_s"] = round(setup, 1)
                figures["first_run_project_s"] = round(figures["first_answer_s"] - setup, 1)
        finally:
            served.stop()
        figures["first_run_cpu_s"] = round(children_cpu_s() - cpu0, 1)

        cpu0 = children_cpu_s()
        served = make_run(repo, port, args.workers)
        try:
            figures["warm_restart_s"] = round(until_answered(served, port, 120), 2)
            figures["warm_restart_cpu_s"] = round(sum(process_cpu_s(p) for p in descendants(served.proc.pid)), 1)
            time.sleep(1.0)  # let every answering process settle after its first answer
            for _ in range(4 * args.workers):
                ask_once(port)
            processes = python_processes(served)
            figures["rss_mib"] = {k: rss for k, (_, rss) in processes.items()}
            cold_s, cold_rss, cold_cpu = cold_ask(repo, port, args.runs, local=False)
            figures["cold_ask_server_s"], figures["cold_ask_server_rss_mib"] = round(cold_s, 2), round(cold_rss)
            figures["cold_ask_server_cpu_s"] = round(cold_cpu, 2)
            victims = [pid for k, (pid, _) in processes.items() if k.startswith("answering")]
            if victims:
                figures["replacement_s"] = round(replacement_s(port, victims[0]), 2)
                figures["answers_after_replacement"] = ask_once(port)
        finally:
            served.stop()

        cold_s, cold_rss, cold_cpu = cold_ask(repo, free_port(), args.runs, local=True)
        figures["cold_ask_local_s"], figures["cold_ask_local_rss_mib"] = round(cold_s, 2), round(cold_rss)
        figures["cold_ask_local_cpu_s"] = round(cold_cpu, 2)
        answering = [v for k, v in figures["rss_mib"].items() if k.startswith("answering")] or \
            list(figures["rss_mib"].values())
        figures["answering_rss_mib"] = max(answering)
        figures["venv_mib"] = round(sum(f.stat().st_size for f in (repo / ".venv").rglob("*") if f.is_file()) / 2**20)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    figures["load_average"] = [round(figures_load, 1), round(os.getloadavg()[0], 1)]
    print(f"load average at start and end: {figures['load_average'][0]} and {figures['load_average'][1]} "
          f"on {os.cpu_count()} cores")
    print(f"fresh clone, `make run` (WORKERS={args.workers}) to the first answer: {figures['first_answer_s']} s "
          f"(target <= {TARGETS['first_answer_s']:g} s)")
    if "first_run_setup_s" in figures:
        print(f"    of which pip installs (registry-bound): {figures['first_run_setup_s']} s; the project's own "
              f"start-up after them (ONNX export, ingest, serving): {figures['first_run_project_s']} s")
    for t, line in figures["first_run_steps"]:
        print(f"    {t:7.1f} s  {line[:100]}")
    print(f"    CPU used by the whole first run: {figures['first_run_cpu_s']} s")
    print(f"warm restart to the first answer: {figures['warm_restart_s']} s (target <= {TARGETS['warm_restart_s']:g} s); "
          f"CPU used by the serving processes by then: {figures['warm_restart_cpu_s']} s")
    print("resident memory per process (MiB): " + ", ".join(f"{k} {v}" for k, v in figures["rss_mib"].items())
          + f" (target <= {TARGETS['answering_rss_mib']:g} per answering process)")
    if "replacement_s" in figures:
        print(f"kill -9 of an answering process: replaced (every process ready) in {figures['replacement_s']} s "
              f"(target <= {TARGETS['replacement_s']:g} s); /ask answered afterwards: "
              f"{figures['answers_after_replacement']}")
    print(f"cold `rag ask` through the running server: {figures['cold_ask_server_s']} s, "
          f"{figures['cold_ask_server_rss_mib']} MiB, {figures['cold_ask_server_cpu_s']} s CPU "
          f"(target <= {TARGETS['cold_ask_server_s']:g} s)")
    print(f"cold `rag ask` in-process: {figures['cold_ask_local_s']} s, {figures['cold_ask_local_rss_mib']} MiB, "
          f"{figures['cold_ask_local_cpu_s']} s CPU")
    print(f"venv: {figures['venv_mib']} MiB")
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
