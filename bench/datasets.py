"""Benchmark data sets in and out: the Diffusion-DPO parquet export and the Pick-a-Pic import.

Export: campaigns of 3 humans (of 100) + 2 AI judges per pair on 4 aspects (20 judgments per pair, the
data of bench/report.py, inserted with COPY into its own database ``vp_bench_datasets``, dropped and
recreated), exported with the human-majority label source, ties dropped: in paths mode (storage names)
at each size, and in bytes mode (the image files read from storage) on a smaller size, for which small
PNG files are written under a temporary media folder.

Import: a synthetic Pick-a-Pic-shaped parquet (distinct 16x16 JPEGs made of four flat blocks, 4 models, 200 raters) imported
into an empty campaign by the real job handler: pass one checks every row and image, pass two writes.

Each measurement runs in a fresh child process, so its peak RSS (ru_maxrss) is its own. Prints wall
time, rows/s, CPU seconds per 1,000 rows, peak RSS and the load average before and after.

    .venv/bin/python bench/datasets.py                                   # 100k and 1M judgments, 100k pairs
    .venv/bin/python bench/datasets.py --judgments 100000 --bytes-judgments 20000 --import-pairs 10000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DB_NAME = "vp_bench_datasets"


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_handler(kind: str, params: object) -> tuple[dict, float, float]:
    """Run a job kind's handler in this process (no broker); returns its result, wall and CPU seconds."""
    from core.jobs import JobContext
    from core.models import Job

    job = Job.objects.create(kind=kind, params=params.to_json(), title="bench", queue="default")  # type: ignore[attr-defined]
    from django.utils.module_loading import import_string

    from core.registry import job_kind

    handler = import_string(job_kind(kind).handler)
    cpu0, t0 = cpu_s(), time.perf_counter()
    result = handler(JobContext(job))
    return result, time.perf_counter() - t0, cpu_s() - cpu0


def measure_export(slug: str, images: str) -> dict:
    from annotate.models import Campaign, Judgment
    from pipeline.jobs import DatasetExportParams

    campaign = Campaign.objects.get(slug=slug)
    judgments = Judgment.objects.filter(pair__campaign=campaign).count()
    params = DatasetExportParams(campaign_ids=[campaign.pk], images=images, filename=f"{slug}-{images}")
    result, wall, cpu = run_handler("dataset_export", params)
    return {
        "judgments": judgments,
        "rows": result["rows"],
        "bytes": result["bytes"],
        "wall_s": wall,
        "cpu_s": cpu,
    }


def write_bench_pngs(slug: str) -> None:
    """Small real PNG files at the storage names of a benchmark campaign's images (bytes mode reads them)."""
    from django.conf import settings
    from PIL import Image as PILImage

    from annotate.models import Image

    for pk, name in (
        Image.objects.filter(prompt__pairs__campaign__slug=slug).values_list("pk", "file").distinct()
    ):
        path = Path(settings.MEDIA_ROOT) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        PILImage.new("RGB", (16, 16), (pk % 256, pk // 256 % 256, 7)).save(path, format="PNG")


def synthetic_pickapic(path: Path, pairs: int) -> None:
    """A Pick-a-Pic-shaped parquet of `pairs` rows with distinct small JPEGs, written in row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image as PILImage

    from tests.pipeline.datasets_files import PICKAPIC_SCHEMA

    def jpeg(n: int) -> bytes:
        # JPEG blurs near colours together; distinct bytes need distinct blocks: a 16x16 image of 8x8 blocks.
        image = PILImage.new("RGB", (16, 16))
        for block, value in enumerate((n % 64 * 4, n // 64 % 64 * 4, n // 4096 % 64 * 4, 128)):
            image.paste(
                (value, 255 - value, value // 2),
                (block % 2 * 8, block // 2 * 8, block % 2 * 8 + 8, block // 2 * 8 + 8),
            )
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=95)
        return buffer.getvalue()

    with pq.ParquetWriter(path, PICKAPIC_SCHEMA) as writer:
        for start in range(0, pairs, 5000):
            rows = []
            for k in range(start, min(pairs, start + 5000)):
                label = [1.0, 0.0, 0.5][k % 3] if k % 10 else 0.5
                rows.append(
                    {
                        "caption": f"synthetic prompt {k // 2}",
                        "jpg_0": jpeg(2 * k),
                        "jpg_1": jpeg(2 * k + 1),
                        "label_0": label,
                        "label_1": 1.0 - label,
                        "model_0": f"model-{k % 4}",
                        "model_1": f"model-{(k + 1) % 4}",
                        "user_id": k % 200,
                        "has_label": True,
                        "image_0_uid": f"u{2 * k}",
                        "image_1_uid": f"u{2 * k + 1}",
                    }  # fmt: skip
                )
            writer.write_table(pa.Table.from_pylist(rows, schema=PICKAPIC_SCHEMA))


def measure_import(source_name: str) -> dict:
    from pipeline.jobs import DatasetImportParams

    params = DatasetImportParams(source_name=source_name, campaign_name=f"Bench import {source_name}")
    result, wall, cpu = run_handler("dataset_import", params)
    return {
        "rows": result["rows"],
        "pairs": result["pairs"],
        "judgments": result["judgments"],
        "wall_s": wall,
        "cpu_s": cpu,
    }


def child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(out.stderr[-4000:])
        raise SystemExit(out.returncode)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--judgments", default="100000,1000000", help="export sizes (judgments), comma-separated"
    )
    parser.add_argument("--bytes-judgments", type=int, default=100000, help="export size in bytes mode")
    parser.add_argument(
        "--import-pairs", type=int, default=100000, help="rows of the synthetic Pick-a-Pic file"
    )
    parser.add_argument("--media", default="", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()

    import report  # bench/report.py: database helpers and the COPY population

    if args.child:
        os.environ["DJANGO_MEDIA_ROOT"] = args.media
        report.django_setup(DB_NAME)
        what, value = args.child[0], args.child[1]
        result = measure_export(value, args.child[2]) if what == "export" else measure_import(value)
        result["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    media = tempfile.mkdtemp(prefix="bench-datasets-media-")
    os.environ["DJANGO_MEDIA_ROOT"] = media
    report.recreate_database(DB_NAME)
    report.django_setup(DB_NAME)
    from django.core.management import call_command

    call_command("migrate", verbosity=0, stdout=io.StringIO())
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; cpus: {os.cpu_count()}")
    sizes = [int(s) for s in args.judgments.split(",") if s]
    slugs = {}
    for size in sorted({*sizes, args.bytes_judgments} - {0}):
        started = time.perf_counter()
        slugs[size] = report.populate(size, seed=size)
        print(f"inserted {size:>9,} judgments with COPY in {time.perf_counter() - started:6.1f} s")

    print(
        "\nDPO parquet export, human majority, ties dropped (20 judgments per pair: 3 humans + 2 AI x 4 aspects)"
    )
    print(
        f"{'mode':>6} {'judgments':>10} {'rows':>8} {'MiB':>7} {'wall s':>7} {'rows/s':>8} {'CPU s/1k rows':>13} {'maxRSS MiB':>10} {'load1':>6}"
    )
    runs = [(size, "paths") for size in sizes] + (
        [(args.bytes_judgments, "bytes")] if args.bytes_judgments else []
    )
    for size, mode in runs:
        if mode == "bytes":
            report.django_setup(DB_NAME)
            write_bench_pngs(slugs[size])
        r = child(["--media", media, "--child", "export", slugs[size], mode])
        print(
            f"{mode:>6} {r['judgments']:>10,} {r['rows']:>8,} {r['bytes'] / 2**20:>7.1f} {r['wall_s']:>7.1f} "
            f"{r['rows'] / r['wall_s']:>8,.0f} {r['cpu_s'] / r['rows'] * 1000:>13.3f} {r['maxrss_mib']:>10.0f} {os.getloadavg()[0]:>6.2f}"
        )

    if args.import_pairs:
        source = Path(media) / "imports" / f"pickapic-{args.import_pairs}.parquet"
        source.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        synthetic_pickapic(source, args.import_pairs)
        print(
            f"\nwrote a {args.import_pairs:,}-row Pick-a-Pic parquet ({source.stat().st_size / 2**20:.1f} MiB) in {time.perf_counter() - started:.1f} s"
        )
        r = child(["--media", media, "--child", "import", f"imports/{source.name}", ""])
        print(
            f"import: {r['rows']:,} rows, {r['pairs']:,} pairs, {r['judgments']:,} judgments in {r['wall_s']:.1f} s = "
            f"{r['rows'] / r['wall_s']:,.0f} pairs/s (both passes); CPU {r['cpu_s'] / r['rows'] * 1000:.2f} s per 1k pairs; "
            f"maxRSS {r['maxrss_mib']:.0f} MiB; load1 {os.getloadavg()[0]:.2f}"
        )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
