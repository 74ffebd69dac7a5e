"""Time rendering every variant of Vol. 36, and the per-reader fill of a send with variants.

    python benchmarks/variants.py [--runs 5] [--readers 10000 100000]

1. Every variant of Vol. 36 (its editions x the subsets of its pillars, `tailor: lead`) built
   in-process with build_variant(), median time per variant, side by side with one build_issue()
   of the same issue (the reference: what a send without variants renders).
2. A send's work before the wire, for lists of N readers in 3 languages with 4-pillar interests
   and merge fields in subject and body: finding the variants (one pass over the list), rendering
   each once, and filling every reader's message (plan.dry_run: the same personalize() the
   transports call). Messages per second and peak memory (tracemalloc) per N, side by side with
   the same list and issue without merge fields, translations or tailor.
3. `--smtp N`: a whole `compose send` (child process) of N readers over SMTP to Postfix's
   `smtp-sink`, of benchmarks/send.py's 17 KB fixture issue given merge fields in subject and
   body, 3 languages and 4 pillars with `tailor: lead` (48 variants), side by side with the
   same issue without them; each beside `smtp-source -s 4` sending N messages of its size (the
   48-variant issue has 16 sections: its messages are ~31 KB, the plain one's ~17 KB). Medians
   of `--repeat` interleaved rounds.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from composer.build import build_issue, build_variant
from composer.delivery.plan import dry_run, plan_send
from composer.delivery.transports.base import message_for
from composer.project import load_project
from composer.render import variants

REPO = Path(__file__).resolve().parent.parent
ISSUE = REPO / "issues" / "vol-36.yaml"
LANGUAGES = ["en", "sr", "sq"]
PILLARS = ["I", "II", "III", "IV"]


def variant_render(runs: int) -> None:
    project = load_project(REPO)
    reference, per_variant = [], []
    count = 0
    for _ in range(runs):
        start = time.perf_counter()
        built = build_issue(project, ISSUE)
        reference.append(time.perf_counter() - start)
        issue = built.loaded
        assert issue is not None
        keys = variants.all_variants(issue, project.newsletter)
        slots = variants.issue_slots(issue)
        start = time.perf_counter()
        for key in keys:
            build_variant(
                project, ISSUE, issue, language=key.language, interests=key.interests, slots=slots
            )
        per_variant.append((time.perf_counter() - start) / len(keys))
        count = len(keys)
    print(f"Vol. 36: {count} variants (editions x subsets of its pillars), median of {runs} runs")
    print(f"  one build_issue() (reference)   {statistics.median(reference) * 1000:8.1f} ms")
    print(f"  build_variant() per variant     {statistics.median(per_variant) * 1000:8.1f} ms")
    print(f"  all {count} variants               {statistics.median(per_variant) * count:8.2f} s")


def make_project(folder: Path, readers: int, personal: bool) -> Path:
    root = folder / ("personal" if personal else "plain")
    root.mkdir()
    shutil.copy(REPO / "newsletter.yaml", root / "newsletter.yaml")
    (root / "issues").mkdir()
    (root / "subscribers").mkdir()
    text = ISSUE.read_text(encoding="utf-8")
    if personal:
        # 3 editions: give Albanian a translated subject so sq readers are an edition of their own.
        text = text.replace(
            'subject: "UNODC in South Eastern Europe — Newsletter Vol. 36"',
            'subject: "{{ name | default(\\"Colleague\\") }}: UNODC in SEE — Vol. 36"',
        )
        text += '  sq:\n    subject: "{{ name | default(\\"Koleg\\") }}: UNODC në EJL — Nr. 36"\n'
        # Give a pillar IV section so all 4 pillars are tailored.
        text = text.replace(
            '  - title: "Human Trafficking and Migrant Smuggling"\n    pillar: II',
            '  - title: "Human Trafficking and Migrant Smuggling"\n    pillar: IV',
        )
    else:
        text = text.replace("tailor: lead\n", "")
        text = text.replace('Dear {{ name | default("colleague") }},', "Dear colleague,")
        text = text.split("\n# The Serbian (Latin) edition")[0] + "\n"
    (root / "issues" / "vol-36.yaml").write_text(text, encoding="utf-8")
    rng = random.Random(12)
    with open(root / "subscribers" / "bench.csv", "w", encoding="utf-8") as out:
        out.write("email,name,language,interests\n")
        for n in range(readers):
            chosen = [p for p in PILLARS if rng.random() < 0.35]
            out.write(
                f"reader{n}@example.org,Reader {n},{rng.choice(LANGUAGES)},{';'.join(chosen)}\n"
            )
    return root


def send_fill(readers: int, personal: bool) -> None:
    """One measurement, in a process of its own so that its peak memory is its own."""
    with tempfile.TemporaryDirectory() as folder:
        root = make_project(Path(folder), readers, personal)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        plan = plan_send(load_project(root), root / "issues" / "vol-36.yaml", "bench")
        planned = time.perf_counter() - start
        report = dry_run(plan)
        total = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        assert report.rendered == readers, report.problems[:3]
        variants_count = len(plan.variants.keys) if plan.variants else 1
        kind = "variants + merge fields" if personal else "one variant"
        print(
            f"  {readers:>7,} readers, {kind:<24} {variants_count:>3} variant(s): "
            f"plan {planned:6.2f} s, fill {readers / (total - planned):7,.0f} msg/s, "
            f"peak RSS {peak / 1024:6.1f} MiB (after import {before / 1024:5.1f})",
            flush=True,
        )


def _send_module():  # benchmarks/send.py, for its fixture project and smtp-sink helpers
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_send", REPO / "benchmarks" / "send.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_SECTION = """\
  - title: {title}
    pillar: {pillar}
    articles:
      - title: News of pillar {pillar}
        dateline: "3 March 2024, Testville"
        body: |
          Dear {{{{ name | default("colleague") }}}}, the work of pillar {pillar} in
          {{{{ country | default("the region") }}}} went on, with partners across the region.
"""


def smtp_projects(send, readers: int) -> tuple[Path, Path]:
    """The send benchmark's 17 KB project twice: as it is, and with 48 variants."""
    plain = send.make_project("variants-plain", readers, "smtp", 17)
    personal = send.make_project("variants-personal", readers, "smtp", 17)
    config = personal / "newsletter.yaml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'pillars:\n  I: {title: First pillar, color: "#1f6fb2"}',
            "languages: [en, sr-Latn, sq]\npillars:\n"
            + "".join(f'  {p}: {{title: Pillar {p}, color: "#1f6fb2"}}\n' for p in PILLARS),
        ),
        encoding="utf-8",
    )
    issue = personal / "issues" / "x.yaml"
    text = issue.read_text(encoding="utf-8").replace(
        'subject: "Test Bulletin — Vol. 1: Grüße & <news>"',
        'subject: "{{ name | default(\\"Reader\\") }}: Test Bulletin — Vol. 1"\ntailor: lead',
    )
    text += "".join(_SECTION.format(title=f"Section {p}", pillar=p) for p in PILLARS[1:])
    text += "translations:\n" + "".join(
        f'  {lang}:\n    subject: "{{{{ name }}}}: Bilten {lang}"\n'
        f"    sections: [{{title: Prvi {lang}}}, {{}}, {{}}, {{}}]\n"
        for lang in ("sr-Latn", "sq")
    )
    issue.write_text(text, encoding="utf-8")
    rng = random.Random(36)
    with (personal / "subscribers" / "main.csv").open("w", encoding="utf-8") as out:
        out.write("email,name,country,language,interests\n")
        for n in range(readers):
            chosen = ";".join(p for p in PILLARS if rng.random() < 0.35)
            language = rng.choice(["en", "sr-Latn", "sq"])
            out.write(f"reader{n:06d}@example.org,Reader Nº {n},Serbia,{language},{chosen}\n")
    return plain, personal


def mean_size(project: Path, sample: int = 500) -> int:
    """The mean size in bytes of the first `sample` readers' messages (they differ in
    variant and merge values)."""
    plan = plan_send(
        load_project(project), project / "issues" / "x.yaml", "main", transport="outbox"
    )
    assert plan.audience is not None
    sizes: list[int] = []
    for list_name, chunk in plan.audience.chunks():
        for reader in chunk[: sample - len(sizes)]:
            envelope = plan.reader_envelope(reader, list_name)
            sizes.append(len(message_for(plan.template, envelope)))
        if len(sizes) >= sample:
            break
    return round(statistics.mean(sizes))


def bench_smtp(readers: int, repeat: int) -> None:
    send = _send_module()
    if shutil.which("smtp-sink") is None or shutil.which("smtp-source") is None:
        print("smtp: skipped (smtp-sink/smtp-source not installed; apt-get install postfix)")
        return
    plain, personal = smtp_projects(send, readers)
    sizes = {"one variant": send.message_size(plain), "48 variants": mean_size(personal)}
    port = send.free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(["smtp-sink", *user, f"127.0.0.1:{port}", "256"])
    try:
        send.wait_for_port(port)
        times: dict[str, list[float]] = {}
        before = send.load()
        for _ in range(repeat):
            for label, project in (("one variant", plain), ("48 variants", personal)):
                source = ["smtp-source", "-s", "4", "-m", str(readers), "-l",
                          str(sizes[label]), f"127.0.0.1:{port}"]  # fmt: skip
                started = time.perf_counter()
                subprocess.run(source, check=True)
                times.setdefault(f"smtp-source, {label}", []).append(time.perf_counter() - started)
                times.setdefault(label, []).append(send.run_whole(project, port))
            # As the officer works: the preview's "view as" (or a dry run) rendered every
            # variant, and the send reads them back from the render cache.
            dry = [*send.send_command(personal), "--dry-run"]
            env = {
                **send.user_env(),
                "COMPOSE_SMTP_HOST": "127.0.0.1",
                "COMPOSE_SMTP_PORT": str(port),
            }
            subprocess.run(dry, check=True, stdout=subprocess.DEVNULL, env=env)
            times.setdefault("48, previewed", []).append(
                send.run_whole(personal, port, after_build=True)
            )
        print(
            f"smtp: {readers:,} messages, 4 connections, median of {repeat} "
            f"(load {before} -> {send.load()})"
        )
        sizes["48, previewed"] = sizes["48 variants"]
        times["smtp-source, 48, previewed"] = times["smtp-source, 48 variants"]
        for label, size in sizes.items():
            base = statistics.median(times[f"smtp-source, {label}"])
            elapsed = statistics.median(times[label])
            print(
                f"  {label:<12} {size:7,} bytes  smtp-source {base:5.2f} s  whole send "
                f"{elapsed:5.2f} s {readers / elapsed:8,.0f} msg/s  {base / elapsed:.2f} of "
                f"smtp-source  (runs: {', '.join(f'{t:.2f}' for t in times[label])})"
            )
    finally:
        sink.terminate()
        sink.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--readers", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--smtp", type=int, default=0, help="readers of a whole send over SMTP")
    parser.add_argument("--repeat", type=int, default=3, help="SMTP rounds (medians reported)")
    args = parser.parse_args()
    if args.smtp:
        bench_smtp(args.smtp, args.repeat)
        return
    if args.child:
        send_fill(args.child[0], bool(args.child[1]))
        return
    variant_render(args.runs)
    print("Send before the wire (find variants, render each once, fill every message):")
    for readers in args.readers:
        for personal in (0, 1):
            command = [sys.executable, __file__, "--child", str(readers), str(personal)]
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
